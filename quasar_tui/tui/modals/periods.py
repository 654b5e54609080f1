"""The chart's moving-average periods, typed in a small form (Enter saves, Escape cancels)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from textual.widget import Widget
from textual.widgets import Input

from quasar_tui.tui.modals.form import Field, FormModal

LOWEST, HIGHEST = 2, 500


@dataclass(frozen=True)
class Periods:
    """Bars averaged by the SMA and EMA lines (and the Bollinger bands, on the SMA)."""

    sma: int = 20
    ema: int = 20


class PeriodsModal(FormModal[Periods]):
    FORM_TITLE = "Moving averages"
    SUBMIT_LABEL = "Use (Enter)"

    def __init__(self, current: Periods) -> None:
        super().__init__()
        self.current = current

    def compose_fields(self) -> Iterator[Widget]:
        for name in ("sma", "ema"):
            yield Field(
                f"{name.upper()} bars",
                Input(str(getattr(self.current, name)), id=f"{name}-input", type="integer"),
                f"a whole number from {LOWEST} to {HIGHEST}",
                id=name,
            )

    def on_mount(self) -> None:
        self.query_one("#sma-input", Input).focus()

    async def submit(self) -> None:
        values: dict[str, int] = {}
        for name in ("sma", "ema"):
            text = self.query_one(f"#{name}-input", Input).value.strip()
            value = int(text) if text.isdigit() else None
            if value is None or not LOWEST <= value <= HIGHEST:
                self.fail(name, f"give a whole number of bars from {LOWEST} to {HIGHEST}")
                continue
            values[name] = value
        if self.has_errors:
            return
        self.dismiss(Periods(**values))
