"""Screens pushed over a mode (help, modals)."""
