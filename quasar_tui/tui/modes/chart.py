"""Chart mode: pick a series, see candles and volume at any interval (derived in the database
from a finer stored one when it was not collected), read through the read layer like `quasar
bars`, exports and the Python API; keys change interval, zoom and pan, move a cursor over the
bars, toggle moving averages and the time zone of the axis."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual.widgets.option_list import Option

from quasar_tui.core.errors import NotFoundError
from quasar_tui.core.indicators import bollinger, ema, sma, vwap
from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.core.numbers import plain
from quasar_tui.core.series import SeriesName
from quasar_tui.core.text import printable
from quasar_tui.store.read import ReadBar, Reader, source_interval
from quasar_tui.store.series import Series, common_symbols, resolve
from quasar_tui.tui.commands import RowRef, command
from quasar_tui.tui.console_state import ConsoleState
from quasar_tui.tui.modals.periods import Periods, PeriodsModal
from quasar_tui.tui.modes.base import Mode, ModeScreen
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.candle_chart import CandleChart, Drawing
from quasar_tui.tui.widgets.live_table import fmt_pct, fmt_price, fmt_volume
from quasar_tui.tui.widgets.vim import VimOptionList

ZOOMS = (30, 60, 120, 240, 480)
DEFAULT_ZOOM = 2
RELOAD_SECONDS = 5.0
TICK_SECONDS = 0.2  # how often the forming candle follows the trades the console sees
LOCAL_TIME = "chart.local_time"  # remembered in console.json


def _closes(bars: Sequence[ReadBar]) -> list[float]:
    return [b.close for b in bars]


# Lines over the candles, by name: each gives one value (or None) per bar.
OVERLAYS: dict[str, Callable[[Sequence[ReadBar], Periods], list[list[float | None]]]] = {
    "bollinger": lambda bars, periods: list(bollinger(_closes(bars), periods.sma)),
    "ema": lambda bars, periods: [ema(_closes(bars), periods.ema)],
    "sma": lambda bars, periods: [sma(_closes(bars), periods.sma)],
    "vwap": lambda bars, _: [
        vwap([(b.high + b.low + b.close) / 3 for b in bars], [b.volume for b in bars])
    ],
}
NO_SERIES = (
    "No series yet: subscribe a symbol (a in the Subscriptions mode, 5, or s in the "
    "Assets mode, 3); its bars show here once the engine has stored some."
)
PICK_ONE = "Pick a series on the left (j/k)."
PROBED = 30


def _sort_key(series: Series) -> tuple[str, str, str]:
    return (series.common or series.symbol, series.provider, series.symbol)


def _name(series: Series) -> SeriesName:
    return SeriesName(series.symbol, series.provider)


def _title(series: Series) -> str:
    """Short enough for the list at 80 columns: `BTC/USD (KRAKEN:XBT/USD)`, `ACME (EODHD)`."""
    return f"{series.common or series.symbol} ({series.source})"


_INTERVAL = Binding.Group("Interval")
_ZOOM = Binding.Group("Zoom")
_PAN = Binding.Group("Pan")
_CURSOR = Binding.Group("Cursor")


class ChartScreen(ModeScreen):
    MODE_TITLE = "Chart"
    HELP = (
        "Candles and volume of a series, historical and live bars merged. Pick the series on "
        "the left (j/k; Tab moves between the list and the chart). [ and ] step through every "
        "interval: stored ones, and the others derived from a finer stored one (marked "
        "derived). - and + zoom out and in, h and l go back and forth in time, e returns to "
        "the latest bars. Left and right (or a click) move a cursor whose bar's open, high, "
        "low, close and volume show above the chart. s and m toggle the simple and "
        "exponential moving averages (p sets their periods, 20 bars at first), b Bollinger "
        "bands, v the VWAP of "
        "the bars shown, c lines of the same common symbol from its other providers, t the "
        "time axis between UTC and local time (remembered). The newest candle moves with "
        "each trade. Enter on a row in the Live or Subscriptions mode opens its chart here."
    )
    BINDINGS = [
        Binding(
            "left_square_bracket",
            "interval(-1)",
            "Prev interval",
            group=_INTERVAL,
            tooltip="The previous interval (stored, or derived from a finer one)",
            id="chart.prev_interval",
        ),
        Binding(
            "right_square_bracket",
            "interval(1)",
            "Next interval",
            group=_INTERVAL,
            tooltip="The next interval (stored, or derived from a finer one)",
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
            "h",
            "pan(1)",
            "Older",
            group=_PAN,
            tooltip="Back in time half a screen",
            id="chart.older",
        ),
        Binding(
            "l",
            "pan(-1)",
            "Newer",
            group=_PAN,
            tooltip="Forward in time half a screen",
            id="chart.newer",
        ),
        Binding(
            "left",
            "cursor(-1)",
            "Cursor left",
            group=_CURSOR,
            tooltip="Move the cursor to the previous bar",
            id="chart.cursor_left",
        ),
        Binding(
            "right",
            "cursor(1)",
            "Cursor right",
            group=_CURSOR,
            tooltip="Move the cursor to the next bar",
            id="chart.cursor_right",
        ),
        Binding(
            "s",
            "overlay('sma')",
            "SMA",
            tooltip="Show or hide the simple moving average (p sets its period)",
            id="chart.sma",
        ),
        Binding(
            "m",
            "overlay('ema')",
            "EMA",
            tooltip="Show or hide the exponential moving average (p sets its period)",
            id="chart.ema",
        ),
        Binding(
            "b",
            "overlay('bollinger')",
            "Bollinger",
            show=False,
            tooltip="Show or hide Bollinger bands (2 standard deviations around the SMA)",
            id="chart.bollinger",
        ),
        Binding(
            "v",
            "overlay('vwap')",
            "VWAP",
            show=False,
            tooltip="Show or hide the volume-weighted average price since the first bar shown",
            id="chart.vwap",
        ),
        Binding(
            "p",
            "periods",
            "Periods",
            show=False,
            tooltip="Set the moving averages' periods (a small form)",
            id="chart.periods",
        ),
        Binding(
            "c",
            "compare",
            "Compare",
            show=False,
            tooltip="Lines of the same common symbol from its other providers",
            id="chart.compare",
        ),
        Binding(
            "t",
            "time_zone",
            "UTC/local",
            show=False,
            tooltip="Label the time axis in UTC or in local time",
            id="chart.time_zone",
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

    def row_in_view(self) -> RowRef | None:
        """The series shown, at the interval shown (a palette command acts on it)."""
        current = self.current
        if current is None:
            return None
        interval = self.interval.value if self.interval is not None else None
        return RowRef(current.provider, current.symbol, interval)

    def __init__(self) -> None:
        super().__init__()
        self.series: list[Series] = []
        self.current: Series | None = None
        self.interval: Interval | None = None
        self.stored: set[Interval] = set()
        self.bars: list[ReadBar] = []
        self.derived_from: Interval | None = None
        self.zoom = DEFAULT_ZOOM
        self.bars_back = 0
        self.cursor: int | None = None
        self.overlays: set[str] = set()
        self.periods = Periods()
        self.compare = False
        self.compared: list[tuple[Series, list[float | None]]] = []
        self.local_time = False
        self._tick_seq = 0

    @property
    def reader(self) -> Reader:
        return Reader(self.services.db)

    @property
    def reachable(self) -> list[Interval]:
        """Every interval the stored bars of the current series can give."""
        return [i for i in Interval if source_interval(i, self.stored) is not None]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="chart-body"):
            yield VimOptionList(id="series-list")
            with Vertical(id="chart-pane"):
                yield Static(id="chart-info", classes="status-line")
                yield Static(id="chart-cursor", classes="status-line")
                yield CandleChart(NO_SERIES, id="candles")

    async def on_mount(self) -> None:
        self.query_one(VimOptionList).focus()
        self.state = ConsoleState(self.services.data_dir)
        self.local_time = self.state.flag(LOCAL_TIME)
        self.set_interval(RELOAD_SECONDS, self._auto_reload)
        self.set_interval(TICK_SECONDS, self._follow_ticks)
        await self.load_series()

    async def on_screen_resume(self) -> None:
        await self.load_series()

    async def load_series(self, pick_first: bool = True) -> None:
        """The series the user subscribed, named by common symbol; with none shown yet, the
        first one with bars is (unless the caller is about to pick one)."""
        try:
            subscriptions = await self.services.subscriptions.list()
            commons = await common_symbols(self.services.db)
        except READ_ERRORS as exc:
            self.notify(f"cannot list subscriptions: {exc}", severity="error")
            return
        found = sorted(
            {
                Series(s.provider, s.symbol, commons.get((s.provider, s.symbol)))
                for s in subscriptions
            },
            key=_sort_key,
        )
        if found == self.series:
            return
        self.series = found
        options = self.query_one(VimOptionList)
        options.clear_options()
        options.add_options(Option(Text(printable(_title(s))), id=s.key) for s in found)
        if self.current in found:
            options.highlighted = found.index(self.current)
        elif self.current is None:
            self.query_one(CandleChart).show(
                [], intraday=True, empty_text=PICK_ONE if found else NO_SERIES
            )
            if found and pick_first:
                await self.show_series(await self._first_with_bars(found))

    async def open_symbol(self, provider: str, symbol: str) -> bool:
        """Chart a provider's symbol at its finest stored interval; False when it is not a
        subscribed series."""
        await self.load_series(pick_first=False)
        matches = [s for s in self.series if s.provider == provider and s.symbol == symbol]
        if not matches:
            return False
        self.interval = None  # its finest stored interval
        await self.show_series(matches[0])
        return True

    async def _first_with_bars(self, candidates: list[Series]) -> Series:
        """The first of `candidates` with stored bars (a few are tried), else the first."""
        for series in candidates[:PROBED]:
            try:
                if await self.reader.stored_intervals(series):
                    return series
            except READ_ERRORS:
                break  # reload() says what is wrong when the chosen series is shown
        return candidates[0]

    async def show_series(self, series: Series) -> None:
        """Show `series` at the interval shown before when it can give it, else at its
        finest stored interval."""
        if series != self.current:
            self.bars_back, self.cursor = 0, None
        self.current = series
        options = self.query_one(VimOptionList)
        if series in self.series and options.highlighted != self.series.index(series):
            options.highlighted = self.series.index(series)
        await self._find_intervals(keep=True)
        await self.reload()

    async def _find_intervals(self, keep: bool) -> None:
        """What the current series has stored; the interval shown stays when `keep` and the
        series can give it, else it is the finest stored one."""
        series = self.current
        if series is None:
            return
        try:
            self.stored = await self.reader.stored_intervals(series)
        except READ_ERRORS as exc:
            self._say(f"{_title(series)}: cannot read bars: {one_line(exc)}")
            return
        if not keep or self.interval is None or self.interval not in self.reachable:
            self.interval = min(self.stored, key=lambda i: i.seconds) if self.stored else None

    def _say(self, text: str) -> None:
        self.query_one("#chart-info", Static).update(Text(printable(text)))
        self.query_one("#chart-cursor", Static).update("")

    async def reload(self) -> None:
        if self.current is not None and self.interval is None:
            await self._find_intervals(keep=False)  # bars may have been stored since
        series, interval = self.current, self.interval
        chart = self.query_one(CandleChart)
        if series is None:
            return
        if interval is None:
            self.bars = []
            chart.show(
                [],
                intraday=True,
                empty_text=f"No bars stored yet for {_title(series)}; they appear when the "
                "engine writes them (r reloads).",
            )
            self._say(f"{_title(series)}: no bars")
            return
        count = ZOOMS[self.zoom]
        try:
            read = await self.reader.bars(_name(series), interval, limit=count + self.bars_back)
            if self.bars_back == 0:
                read = await self.reader.with_forming(read)  # the live candle, to the last tick
        except READ_ERRORS as exc:
            self._say(f"{_title(series)}: cannot read bars: {one_line(exc)}")
            return
        bars = read.bars[: len(read.bars) - self.bars_back] if self.bars_back else read.bars
        bars = bars[-count:]
        self.bars = bars
        self._tick_seq = 0  # the latest trade again: it may not be stored yet
        self.derived_from = read.source_interval if read.derived else None
        if self.cursor is not None:
            self.cursor = min(self.cursor, len(bars) - 1) if bars else None
        self.compared = await self._compared(series, interval, bars) if self.compare else []
        self._draw()

    async def _compared(
        self, series: Series, interval: Interval, bars: list[ReadBar]
    ) -> list[tuple[Series, list[float | None]]]:
        """The closes of the other providers' series of the same common symbol, at the
        times of `bars` (None where one has no bar)."""
        if series.common is None or not bars:
            return []
        end = interval.next_start(bars[-1].ts)
        lines: list[tuple[Series, list[float | None]]] = []
        try:
            others = [s for s in await resolve(self.services.db, series.common) if s != series]
            for other in others:
                try:
                    read = await self.reader.bars(
                        _name(other), interval, bars[0].ts, end, limit=len(bars) * 2
                    )
                except NotFoundError:
                    continue  # it cannot give this interval
                closes = {b.ts: b.close for b in read.bars}
                lines.append((other, [closes.get(b.ts) for b in bars]))
        except READ_ERRORS as exc:
            self.notify(f"cannot read the series to compare: {one_line(exc)}", severity="error")
        return lines

    def _draw(self) -> None:
        series, interval, bars = self.current, self.interval, self.bars
        if series is None or interval is None:
            return
        overlays = (
            *(
                line
                for name in sorted(self.overlays)
                for line in OVERLAYS[name](bars, self.periods)
            ),
            *(line for _, line in self.compared),
        )
        self.query_one(CandleChart).show(
            bars,
            intraday=interval.is_intraday,
            empty_text=f"No {interval.value} bars of {_title(series)} in this range (r reloads).",
            drawing=Drawing(overlays, self.cursor, self.zone),
        )
        if not bars:
            self._say(f"{_title(series)} {interval.value}: no bars")
            return
        first, last = bars[0], bars[-1]
        change = (last.close - first.open) / first.open * 100 if first.open else None
        derived = f" derived from {self.derived_from.value}" if self.derived_from else ""
        shift = f", {self.bars_back} bars back" if self.bars_back else ""
        shown = " ".join(
            [self._overlay_name(name) for name in sorted(self.overlays)]
            + [f"vs {other.source}" for other, _ in self.compared]
        )
        self.query_one("#chart-info", Static).update(
            Text(
                printable(
                    f"{_title(series)} {interval.value}{derived}  {len(bars)} bars{shift}  "
                    f"{self._time(first)} -> {self._time(last)} {self.zone_name}  "
                    f"last {fmt_price(last.close)} ({fmt_pct(change)})"
                    + (f"  {shown}" if shown else "")
                )
            )
        )
        self.query_one("#chart-cursor", Static).update(Text(printable(self._cursor_text())))

    def _overlay_name(self, name: str) -> str:
        period = {"sma": self.periods.sma, "ema": self.periods.ema}.get(name)
        return name.upper() + (f"({period})" if period else "")

    def _cursor_text(self) -> str:
        """The OHLCV of the bar under the cursor (the newest bar while there is no cursor)."""
        bars = self.bars
        bar = bars[self.cursor] if self.cursor is not None else bars[-1]
        trades = f" trades {bar.trades:,}" if bar.trades is not None else ""
        state = "" if bar.complete else "  (incomplete)"
        shape = "%m-%d %H:%M" if self.interval and self.interval.is_intraday else "%Y-%m-%d"
        return (
            f"{bar.ts.astimezone(self.zone).strftime(shape)} "
            f"O {plain(bar.open)} H {plain(bar.high)} L {plain(bar.low)} C {plain(bar.close)} "
            f"V {fmt_volume(bar.volume)}{trades}{state}"
        )

    @property
    def zone(self) -> tzinfo:
        return _local_zone() if self.local_time else UTC

    @property
    def zone_name(self) -> str:
        return "local" if self.local_time else "UTC"

    def _time(self, bar: ReadBar) -> str:
        return f"{bar.ts.astimezone(self.zone):%Y-%m-%d %H:%M}"

    async def _auto_reload(self) -> None:
        if self.is_current and self.current is not None and self.bars_back == 0:
            await self.reload()

    def _follow_ticks(self) -> None:
        """The forming candle moves with each trade the console sees (the live book: the
        engine's ticks, or the daemon's published quotes), between reads; the next read puts
        its volume and trade count right from the stored ticks."""
        series, interval = self.current, self.interval
        if not self.is_current or series is None or interval is None or self.bars_back:
            return
        row = self.services.book.rows.get((series.provider, series.symbol))
        if row is None or row.seq == self._tick_seq or row.last is None or row.ts is None:
            return
        self._tick_seq = row.seq
        bars = with_trade(self.bars, interval, row.ts, row.last)
        if bars is self.bars:
            return
        dropped = max(0, len(bars) - ZOOMS[self.zoom])
        self.bars = bars[dropped:]
        if self.cursor is not None:
            self.cursor = max(0, self.cursor - dropped)
        self._draw()

    async def on_option_list_option_highlighted(
        self, event: VimOptionList.OptionHighlighted
    ) -> None:
        """Moving through the list charts each series; no Enter needed. An event the highlight
        has already moved past is dropped: charting it would move the highlight back and
        start a ping-pong with the events queued behind it."""
        if event.option_index != self.query_one(VimOptionList).highlighted:
            return
        series = self.series[event.option_index]
        if series != self.current:
            await self.show_series(series)

    async def action_interval(self, step: int) -> None:
        await self._find_intervals(keep=True)  # another interval may have been stored since
        current, interval = self.current, self.interval
        if current is None or interval is None:
            return
        reachable = self.reachable
        if len(reachable) < 2:
            self.notify(
                f"{_title(current)} has {interval.value} bars only, which no other interval "
                "can be derived from",
                severity="warning",
            )
            return
        at = reachable.index(interval) if interval in reachable else 0
        self.interval = reachable[(at + step) % len(reachable)]
        self.bars_back, self.cursor = 0, None
        await self.reload()

    async def action_zoom(self, step: int) -> None:
        self.zoom = max(0, min(len(ZOOMS) - 1, self.zoom + step))
        await self.reload()

    async def action_pan(self, direction: int) -> None:
        self.bars_back = max(0, self.bars_back + direction * ZOOMS[self.zoom] // 2)
        await self.reload()

    async def action_latest(self) -> None:
        self.bars_back, self.cursor = 0, None
        await self.reload()

    def action_cursor(self, step: int) -> None:
        """Move the cursor a bar; it starts on the newest bar."""
        if not self.bars:
            return
        at = len(self.bars) - 1 if self.cursor is None else self.cursor + step
        self.cursor = max(0, min(len(self.bars) - 1, at))
        self._draw()

    def on_candle_chart_picked(self, message: CandleChart.Picked) -> None:
        """A click on a candle puts the cursor on it."""
        self.cursor = message.index
        self._draw()

    def action_overlay(self, name: str) -> None:
        self.overlays ^= {name}
        self._draw()

    def action_periods(self) -> None:
        def chosen(periods: Periods | None) -> None:
            if periods is not None:
                self.periods = periods
                self._draw()

        self.app.push_screen(PeriodsModal(self.periods), chosen)

    async def action_compare(self) -> None:
        """Lines of the same common symbol from its other providers, or none again."""
        current = self.current
        if not self.compare and (current is None or current.common is None):
            self.notify("compare needs a series mapped to a common symbol", severity="warning")
            return
        self.compare = not self.compare
        await self.reload()
        if self.compare and not self.compared:
            self.notify(
                "no other provider has bars of this common symbol at this interval",
                severity="warning",
            )

    def action_time_zone(self) -> None:
        self.local_time = not self.local_time
        self.state.set(LOCAL_TIME, self.local_time)
        self._draw()

    async def action_reload(self) -> None:
        await self.load_series()
        await self.reload()


def with_trade(
    bars: list[ReadBar], interval: Interval, ts: datetime, price: float
) -> list[ReadBar]:
    """`bars` with a trade at `ts` in the forming bar: the last bar moved when the trade is in
    it, a new bar when the trade starts the next one, `bars` itself when the trade is older
    than the last bar or there are no bars to continue."""
    if not bars:
        return bars
    start, last = interval.floor(ts), bars[-1]
    if start < last.ts:
        return bars
    if start > last.ts:
        return [*bars, ReadBar(start, price, price, price, price, 0.0, None, complete=False)]
    moved = dataclasses.replace(
        last, high=max(last.high, price), low=min(last.low, price), close=price, complete=False
    )
    return [*bars[:-1], moved]


def _local_zone() -> tzinfo:
    """This machine's time zone (the console's user's)."""
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


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
    "Show the same symbol at the next interval (stored or derived)",
    "interval(1)",
    mode="chart",
)
command(
    "chart: previous interval",
    "Show the same symbol at the previous interval (stored or derived)",
    "interval(-1)",
    mode="chart",
)
command("chart: zoom in", "Fewer, wider candles", "zoom(-1)", mode="chart")
command("chart: zoom out", "More candles", "zoom(1)", mode="chart")
command(
    "chart: moving average",
    "Show or hide the simple moving average",
    "overlay('sma')",
    mode="chart",
)
command(
    "chart: exponential average",
    "Show or hide the exponential moving average",
    "overlay('ema')",
    mode="chart",
)
command(
    "chart: UTC or local time",
    "Label the time axis in UTC or local time",
    "time_zone",
    mode="chart",
)
command(
    "chart: Bollinger bands", "Show or hide Bollinger bands", "overlay('bollinger')", mode="chart"
)
command(
    "chart: VWAP", "Show or hide the volume-weighted average price", "overlay('vwap')", mode="chart"
)
command("chart: average periods", "Set the moving averages' periods", "periods", mode="chart")
command(
    "chart: compare providers",
    "Lines of the same common symbol from its other providers",
    "compare",
    mode="chart",
)
command("chart: reload", "Read the series list and bars again", "reload", mode="chart")
