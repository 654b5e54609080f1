"""The provider a mode works on, picked from the registered ones at the top of the screen."""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding
from textual.widgets import Select

from quasar_tui.registry.records import ProviderRecord


class ProviderPicker(Select[str]):
    HELP_GROUP = "Provider"
    BINDINGS = [
        Binding(
            "enter,down,space,up",
            "show_overlay",
            "Show the providers",
            tooltip="Open the list of providers to pick one",
            id="provider.open",
        )
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__([], prompt="pick a provider", id=id)
        self._shown: list[tuple[str, str]] = []

    def set_providers(self, records: Sequence[ProviderRecord], keep: str | None) -> str | None:
        """Show these providers with `keep` picked when it is one of them (else the first
        with assets); returns the pick. Posts no Changed message: that is kept for the
        user's picks."""
        options = [(f"{r.name} ({r.asset_count:,} assets)", r.name) for r in records]
        names = [r.name for r in records]
        listed = [r.name for r in records if r.asset_count] or names
        chosen = keep if keep in names else (listed[0] if listed else None)
        with self.prevent(Select.Changed):
            if options != self._shown:
                self._shown = options
                self.set_options(options)
            self.value = chosen if chosen is not None else Select.NULL
        return chosen
