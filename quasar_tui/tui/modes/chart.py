"""Chart mode: pick a stored series, see candles and volume; keys change interval, zoom and pan."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual.widgets.option_list import Option

from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.core.text import printable
from quasar_tui.store.bars import fetch_bars
from quasar_tui.tui.commands import command
from quasar_tui.tui.modes.base import Mode, ModeScreen
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.candle_chart import CandleChart
from quasar_tui.tui.widgets.live_table import fmt_pct, fmt_price
from quasar_tui.tui.widgets.vim import VimOptionList

ZOOMS = (30, 60, 120, 240, 480)
DEFAULT_ZOOM = 2
RELOAD_SECONDS = 5.0
_TABLES = {"historical": "historical_data", "live": "live_data"}
_INTERVAL_ORDER = {interval.value: i for i, interval in enumerate(Interval)}
NO_SERIES = (
    "No series yet: subscribe a symbol (a in the Subscriptions mode, 5, or s in the "
    "Assets mode, 3); its bars show here once the engine has stored some."
)
PICK_ONE = "Pick a series on the left (j/k)."
PROBED = 30


@dataclass(frozen=True, order=True)
class Series:
    provider: str
    symbol: str
    interval: str
    mode: str

    @property
    def table(self) -> str:
        return _TABLES[self.mode]

    @property
    def label(self) -> str:
        return f"{self.provider} {self.symbol} {self.interval} {self.mode}"

    @property
    def option_id(self) -> str:
        return "|".join((self.provider, self.symbol, self.interval, self.mode))


def _sort_key(series: Series) -> tuple[str, str, int, str]:
    return (series.provider, series.symbol, _INTERVAL_ORDER.get(series.interval, 99), series.mode)


_INTERVAL = Binding.Group("Interval")
_ZOOM = Binding.Group("Zoom")
_PAN = Binding.Group("Pan")


class ChartScreen(ModeScreen):
    MODE_TITLE = "Chart"
    HELP = (
        "Candles and volume of a stored series. Pick the series on the left (j/k; Tab "
        "moves between the list and the chart). [ and ] show the same symbol at another "
        "stored interval, - and + zoom out and in, h and l go back and forth in time, e "
        "returns to the latest bars. Enter on a row in the Live or Subscriptions mode "
        "opens its chart here."
    )
    BINDINGS = [
        Binding(
            "left_square_bracket",
            "interval(-1)",
            "Prev interval",
            group=_INTERVAL,
            tooltip="The same symbol at the previous stored interval",
            id="chart.prev_interval",
        ),
        Binding(
            "right_square_bracket",
            "interval(1)",
            "Next interval",
            group=_INTERVAL,
            tooltip="The same symbol at the next stored interval",
            id="chart.next_interval",
        ),
        Binding(
            "minus",
            "zoom(1)",
            "Zoom out",
            group=_ZOOM,
            tooltip="More, narrower candles",
            id="chart.zoom_out",
        ),
        Binding(
            "plus,equals_sign",
            "zoom(-1)",
            "Zoom in",
            group=_ZOOM,
            tooltip="Fewer, wider candles",
            id="chart.zoom_in",
        ),
        Binding(
            "h,left",
            "pan(1)",
            "Older",
            group=_PAN,
            tooltip="Back in time half a screen",
            id="chart.older",
        ),
        Binding(
            "l,right",
            "pan(-1)",
            "Newer",
            group=_PAN,
            tooltip="Forward in time half a screen",
            id="chart.newer",
        ),
        Binding(
            "e",
            "latest",
            "Latest",
            show=False,
            tooltip="Back to the latest bars",
            id="chart.latest",
        ),
        Binding(
            "r",
            "reload",
            "Reload",
            show=False,
            tooltip="Read the series list and bars again",
            id="chart.reload",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.series: list[Series] = []
        self.current: Series | None = None
        self.zoom = DEFAULT_ZOOM
        self.bars_back = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="chart-body"):
            yield VimOptionList(id="series-list")
            with Vertical(id="chart-pane"):
                yield Static(id="chart-info", classes="status-line")
                yield CandleChart(NO_SERIES, id="candles")

    async def on_mount(self) -> None:
        self.query_one(VimOptionList).focus()
        self.set_interval(RELOAD_SECONDS, self._auto_reload)
        await self.load_series()

    async def on_screen_resume(self) -> None:
        await self.load_series()

    async def load_series(self, pick_first: bool = True) -> None:
        """The series the user subscribed (each mode writes its own bar table); with none
        shown yet, the first one is (unless the caller is about to pick one)."""
        try:
            subscriptions = await self.services.subscriptions.list()
        except READ_ERRORS as exc:
            self.notify(f"cannot list subscriptions: {exc}", severity="error")
            return
        found = sorted(
            {Series(s.provider, s.symbol, s.interval, s.mode) for s in subscriptions},
            key=_sort_key,
        )
        if found == self.series:
            return
        self.series = found
        options = self.query_one(VimOptionList)
        options.clear_options()
        options.add_options(Option(Text(printable(s.label)), id=s.option_id) for s in found)
        if self.current in found:
            options.highlighted = found.index(self.current)
        elif self.current is None:
            self.query_one(CandleChart).show(
                [], intraday=True, empty_text=PICK_ONE if found else NO_SERIES
            )
            if found and pick_first:
                await self.show_series(await self._first_with_bars(found))

    async def open_symbol(self, provider: str, symbol: str) -> bool:
        """Chart a symbol: its finest series that has bars (live first), else its finest
        series; False when the symbol has no series at all."""
        await self.load_series(pick_first=False)
        matches = [s for s in self.series if s.provider == provider and s.symbol == symbol]
        if not matches:
            return False
        matches.sort(key=lambda s: (s.mode != "live", _INTERVAL_ORDER.get(s.interval, 99)))
        await self.show_series(await self._first_with_bars(matches))
        return True

    async def _first_with_bars(self, candidates: list[Series]) -> Series:
        """The first of `candidates` with a stored bar (a few are tried), else the first."""
        for series in candidates[:PROBED]:
            try:
                if await fetch_bars(
                    self.services.db,
                    series.table,
                    series.provider,
                    series.symbol,
                    series.interval,
                    limit=1,
                ):
                    return series
            except READ_ERRORS:
                break  # reload() says what is wrong when the chosen series is shown
        return candidates[0]

    async def show_series(self, series: Series) -> None:
        if series != self.current:
            self.bars_back = 0
        self.current = series
        if series in self.series:
            self.query_one(VimOptionList).highlighted = self.series.index(series)
        await self.reload()

    async def reload(self) -> None:
        series = self.current
        chart = self.query_one(CandleChart)
        info = self.query_one("#chart-info", Static)
        if series is None:
            return
        count = ZOOMS[self.zoom]
        try:
            bars = await fetch_bars(
                self.services.db,
                series.table,
                series.provider,
                series.symbol,
                series.interval,
                limit=count + self.bars_back,
            )
        except READ_ERRORS as exc:
            reason = one_line(exc)
            info.update(Text(printable(f" {series.label}: cannot read bars: {reason}")))
            return
        bars = bars[: len(bars) - self.bars_back] if self.bars_back else bars
        interval = Interval.parse(series.interval)
        chart.show(
            bars,
            intraday=interval.is_intraday,
            empty_text=f"No {series.interval} bars stored yet for {series.label}; "
            "they appear when the engine writes them (r reloads).",
        )
        if not bars:
            info.update(Text(printable(f" {series.label}: no bars")))
            return
        first, last = bars[0], bars[-1]
        change = (last.close - first.open) / first.open * 100 if first.open else None
        shift = f", {self.bars_back} bars back" if self.bars_back else ""
        info.update(
            Text(
                printable(
                    f" {series.label}  {len(bars)} bars{shift}  {first.ts:%Y-%m-%d %H:%M} -> "
                    f"{last.ts:%Y-%m-%d %H:%M} UTC  last {fmt_price(last.close)} "
                    f"({fmt_pct(change)})"
                )
            )
        )

    async def _auto_reload(self) -> None:
        if self.is_current and self.current is not None and self.bars_back == 0:
            await self.reload()

    async def on_option_list_option_highlighted(
        self, event: VimOptionList.OptionHighlighted
    ) -> None:
        """Moving through the list charts each series; no Enter needed."""
        series = self.series[event.option_index]
        if series != self.current:
            await self.show_series(series)

    async def action_interval(self, step: int) -> None:
        current = self.current
        if current is None:
            return
        siblings = [
            s for s in self.series if (s.provider, s.symbol) == (current.provider, current.symbol)
        ]
        if len(siblings) < 2:
            self.notify(
                f"{current.provider} {current.symbol} is stored at one interval only; "
                "subscribe another to switch",
                severity="warning",
            )
            return
        await self.show_series(siblings[(siblings.index(current) + step) % len(siblings)])

    async def action_zoom(self, step: int) -> None:
        self.zoom = max(0, min(len(ZOOMS) - 1, self.zoom + step))
        await self.reload()

    async def action_pan(self, direction: int) -> None:
        self.bars_back = max(0, self.bars_back + direction * ZOOMS[self.zoom] // 2)
        await self.reload()

    async def action_latest(self) -> None:
        self.bars_back = 0
        await self.reload()

    async def action_reload(self) -> None:
        await self.load_series()
        await self.reload()


async def open_chart(screen: ModeScreen, provider: str, symbol: str) -> None:
    """Switch to the Chart mode showing a symbol, or say why there is nothing to show."""
    app = screen.app
    await app.switch_mode(MODE.name)
    chart = app.screen
    if isinstance(chart, ChartScreen) and not await chart.open_symbol(provider, symbol):
        app.notify(
            f"no stored bars for {provider} {symbol}: subscribe it with an interval "
            "to collect bars",
            severity="warning",
        )


MODE = Mode("chart", "Chart", 7, ChartScreen, "candles and volume of a stored series")

command(
    "chart: next interval",
    "Show the same symbol at the next stored interval",
    "interval(1)",
    mode="chart",
)
command(
    "chart: previous interval",
    "Show the same symbol at the previous stored interval",
    "interval(-1)",
    mode="chart",
)
command("chart: zoom in", "Fewer, wider candles", "zoom(-1)", mode="chart")
command("chart: zoom out", "More candles", "zoom(1)", mode="chart")
command("chart: reload", "Read the series list and bars again", "reload", mode="chart")
