"""Quasar: market-data collection with a Textual console and a headless daemon."""

__version__ = "0.1.0"
