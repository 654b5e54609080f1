"""Quasar: market-data collection with a Textual console and a headless daemon.

`quasar_tui.open()` (and `await quasar_tui.open_async()`) reads stored data from Python; see
quasar_tui/client.py. They are loaded on first use, so the `quasar` command does not pay for
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quasar_tui.client import open, open_async  # noqa: A004 - the public API

__version__ = "0.1.0"
__all__ = ["__version__", "open", "open_async"]


def __getattr__(name: str) -> Any:
    if name in ("open", "open_async"):
        from quasar_tui import client

        return getattr(client, name)
    raise AttributeError(f"module 'quasar_tui' has no attribute {name!r}")
