"""Backoff moved to quasar_tui.core.backoff so the provider sandbox (below the engine) shares it."""

from quasar_tui.core.backoff import Backoff

__all__ = ["Backoff"]
