"""Alert at this price: a price-level rule for the series under the cursor of the Live table
or the Chart, from a small form prefilled with the price there (the level can be edited).

The rule fires when the price crosses the level from where it trades now: above when the level
is over the current price, below otherwise. It is delivered to the log and consoles; a webhook
or a command are added with `quasar alert add`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from quasar_tui.core.errors import QuasarError
from quasar_tui.core.numbers import plain
from quasar_tui.registry.alerts import AlertRule, AlertStore, Kind, NewRule
from quasar_tui.tui.modals.form import Field, FormModal
from quasar_tui.tui.modes.chart import ChartScreen
from quasar_tui.tui.modes.live import LiveScreen
from quasar_tui.tui.widgets.live_table import LiveTable

DEFAULT_COOLDOWN = 300
DEFAULT_HYSTERESIS = 0.2


@dataclass(frozen=True)
class PricePoint:
    """A series and the price the user pointed at, and the price it trades at now."""

    provider: str
    symbol: str
    price: float
    current: float

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.symbol}"


def price_here(screen: Screen[object]) -> PricePoint | None:
    """The Live table's highlighted row (its last price), or the Chart's bar under the cursor
    (its close; the newest bar without a cursor); None elsewhere or with nothing there."""
    if isinstance(screen, LiveScreen):
        key = screen.query_one(LiveTable).cursor_key
        row = screen.services.book.rows.get(key) if key is not None else None
        if row is None or row.last is None:
            return None
        return PricePoint(row.provider, row.symbol, row.last, row.last)
    if isinstance(screen, ChartScreen) and screen.current is not None and screen.bars:
        bars = screen.bars
        bar = bars[screen.cursor] if screen.cursor is not None else bars[-1]
        series = screen.current
        return PricePoint(series.provider, series.symbol, bar.close, bars[-1].close)
    return None


class PriceAlertModal(FormModal[AlertRule]):
    FORM_TITLE = "Alert at this price"
    SUBMIT_LABEL = "Add alert (Enter)"

    def __init__(self, point: PricePoint) -> None:
        super().__init__()
        self.point = point
        self.form_title = f"Alert: {point.key} (now {plain(point.current)})"

    def compose_fields(self) -> Iterator[Widget]:
        yield Field(
            "Level",
            Input(plain(self.point.price), id="level-input"),
            "fires when the price crosses it (above if it is over the price now, else below)",
            id="level",
        )
        yield Field(
            "Hysteresis %",
            Input(str(DEFAULT_HYSTERESIS), id="hysteresis-input"),
            "fires again only once the price was this far back",
            id="hysteresis",
        )
        yield Field(
            "Cooldown s",
            Input(str(DEFAULT_COOLDOWN), id="cooldown-input", type="integer"),
            "at most one alert in this time",
            id="cooldown",
        )

    def on_mount(self) -> None:
        self.query_one("#level-input", Input).focus()

    def _number(self, field: str) -> float | None:
        text = self.query_one(f"#{field}-input", Input).value.strip()
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    async def submit(self) -> None:
        level = self._number("level")
        if level is None or level <= 0:
            self.fail("level", "give a price above 0")
        hysteresis = self._number("hysteresis")
        if hysteresis is None or not 0 <= hysteresis < 100:
            self.fail("hysteresis", "give a percentage from 0 to below 100")
        cooldown = self._number("cooldown")
        if cooldown is None or cooldown < 0 or cooldown != int(cooldown):
            self.fail("cooldown", "give a whole number of seconds, 0 or more")
        if self.has_errors:
            return
        assert level is not None and hysteresis is not None and cooldown is not None
        kind: Kind = "above" if level >= self.point.current else "below"
        rule = NewRule(
            kind,
            self.point.key,
            level=level,
            hysteresis=hysteresis,
            cooldown_s=int(cooldown),
        )
        store = AlertStore(self.services.db, self.services.providers.keyring)
        try:
            added = await store.add(rule)
        except QuasarError as exc:
            self.fail_form(str(exc))
            return
        self.dismiss(added)


def alert_here(app: App[Any]) -> None:
    """The form for the price under the cursor of the screen shown, or why there is none;
    the new rule is confirmed in a toast."""
    point = price_here(app.screen)
    if point is None:
        app.notify(
            "put the cursor on a series in Live or on a bar in Chart first",
            title="alert at this price",
            severity="warning",
            timeout=5,
        )
        return

    def added(rule: AlertRule | None) -> None:
        if rule is not None:
            app.notify(f"alert rule {rule.id}: {rule.target} {rule.condition}", timeout=5)

    app.push_screen(PriceAlertModal(point), added)
