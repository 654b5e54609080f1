"""Quality mode: is each series complete and clean, and if not where and why.

The series table is what `quasar quality` prints (coverage by the market's calendar, flagged
bars by kind, the worst day); under it, the highlighted series' holes as `quasar gaps` lists
them, or with `f` its flagged bars. Enter on a hole or a flagged bar opens the Chart there;
`b` asks the engine to fetch the highlighted hole (or the series' missing bars).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical

from quasar_tui.core.text import printable
from quasar_tui.engine.gaps import SeriesGaps
from quasar_tui.quality.flags import FlaggedBar, flagged_bars
from quasar_tui.quality.holes import Hole, Tracked, holes_of, tracked_series
from quasar_tui.quality.report import SeriesQuality, series_quality
from quasar_tui.store.read import Reader
from quasar_tui.tui.commands import command
from quasar_tui.tui.modes.base import Mode, ModeScreen
from quasar_tui.tui.modes.chart import ZOOMS, ChartScreen, open_chart
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.fitted_table import FittedTable
from quasar_tui.tui.widgets.vim import VimDataTable

SERIES_COLUMNS = (
    "Series",
    "Provider",
    "Interval",
    "Calendar",
    "Coverage",
    "Bars",
    "Missing",
    "Flagged",
    "Worst day",
)
# On a narrow terminal these go first (the first first): the figures that say what is wrong
# with a series stay.
SERIES_SPARE = ("Calendar", "Provider", "Bars")
HOLE_COLUMNS = ("First missing (UTC)", "Last missing (UTC)", "Bars", "State", "Detail")
FLAG_COLUMNS = ("Bar (UTC)", "Flags", "Score")
BAR_WIDTH = 10
REFRESH_SECONDS = 30.0  # the report again while the mode is shown (holes fill, bars arrive)
FLAGS_LISTED = 1000
# Farthest back (in bars of the chart's interval) the Chart is panned to show a spot.
CHART_REACH = 100_000
_STATE_STYLES = {
    "open": "yellow",
    "filling": "cyan",
    "failed": "bold red",
    "unfillable": "dim",
}


@dataclass(frozen=True)
class SeriesRow:
    """One series at one interval: its report and its holes."""

    tracked: Tracked
    quality: SeriesQuality
    holes: list[Hole]

    @property
    def key(self) -> str:
        """Its row's key in the series table (the cursor stays on it across reports)."""
        series = self.tracked.series
        return f"{series.provider}\t{series.symbol}\t{self.quality.interval}"


def series_cells(row: SeriesRow) -> tuple[object, ...]:
    q, series = row.quality, row.tracked.series
    worst = q.worst_days[0] if q.worst_days else None
    return (
        Text(printable(series.common or series.symbol), style="bold"),
        printable(series.source),
        q.interval,
        q.calendar,
        coverage_bar(q.coverage) if q.bars else Text("no bars yet", style="dim"),
        f"{q.bars:,}",
        f"{q.missing:,}",
        ", ".join(f"{n:,} {kind}" for kind, n in q.flags.items()) or "-",
        f"{worst.day} ({worst.score:.0%})" if worst else "-",
    )


def coverage_bar(share: float) -> Text:
    """`████████░░ 95.8%`, green when complete, yellow above 95 %, red below."""
    filled = round(share * BAR_WIDTH)
    style = "green" if share >= 1 else "yellow" if share >= 0.95 else "red"
    bar = Text("█" * filled, style=style)
    bar.append("░" * (BAR_WIDTH - filled), style="dim")
    bar.append(f" {share:.1%}")
    return bar


def _when(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M}"


class QualityScreen(ModeScreen):
    MODE_TITLE = "Quality"
    HELP = (
        "Is each series complete and clean? Coverage is the share of the bars its market's "
        "calendar expects that are stored (holidays, nights and weekends are not missing); "
        "flags mark bars that look wrong (nothing is changed for them). Under the series, "
        "the highlighted one's holes, or with f its flagged bars. Enter on a hole or a "
        "flagged bar opens the Chart there; b fetches the highlighted hole (or every hole of "
        "the series); r runs the report again."
    )
    BINDINGS = [
        Binding(
            "b",
            "backfill",
            "Backfill",
            tooltip="Fetch the highlighted hole (or the series' holes) now",
            id="quality.backfill",
        ),
        Binding(
            "f",
            "flags",
            "Flags/holes",
            tooltip="List the series' flagged bars (again: its holes)",
            id="quality.flags",
        ),
        Binding("r", "refresh", "Refresh", tooltip="Run the report again", id="quality.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[SeriesRow] = []
        self.by_key: dict[str, SeriesRow] = {}
        self.showing_flags = False
        self.flagged: list[FlaggedBar] = []
        self.loaded = False

    def compose_body(self) -> ComposeResult:
        with Vertical(id="quality"):
            yield FittedTable(
                SERIES_COLUMNS, drop_first=SERIES_SPARE, id="quality-series", classes="panel"
            )
            yield VimDataTable(
                id="quality-detail",
                classes="panel",
                enter="Chart",
                enter_help="Open the Chart at the highlighted hole or flagged bar",
            )
        yield self.status_line()

    @property
    def series_table(self) -> FittedTable:
        return self.query_one("#quality-series", FittedTable)

    @property
    def detail_table(self) -> VimDataTable:
        return self.query_one("#quality-detail", VimDataTable)

    async def on_mount(self) -> None:
        self.series_table.border_title = "Series"
        self.series_table.focus()
        self.show_status("running the quality report...")
        self.run_worker(self.load(), exclusive=True, group="quality-load")
        self.set_interval(REFRESH_SECONDS, self._refresh_shown)

    def _refresh_shown(self) -> None:
        if self.is_current:
            self.run_worker(self.load(), exclusive=True, group="quality-load")

    async def action_refresh(self) -> None:
        self.show_status("running the quality report...")
        self.run_worker(self.load(), exclusive=True, group="quality-load")

    async def load(self) -> None:
        """The report: flags brought up to date, coverage and holes of every series."""
        db = self.services.db
        rows = []
        try:
            for tracked in await tracked_series(db, None):
                quality = await series_quality(db, tracked)
                holes = await holes_of(db, tracked, include_filled=False)
                rows.append(SeriesRow(tracked, quality, holes))
        except READ_ERRORS as exc:
            self.show_status(f"cannot run the quality report: {exc}")
            return
        self.rows = rows
        self.loaded = True
        self._show_series()

    def _show_series(self) -> None:
        table = self.series_table
        cursor, current = table.cursor_row, table.cursor_key
        self.by_key = {row.key: row for row in self.rows}
        table.show_rows([(row.key, series_cells(row)) for row in self.rows])
        if self.rows and not table.move_to_key(current):
            table.move_cursor(row=min(max(cursor, 0), len(self.rows) - 1), animate=False)
        self._summarise()
        self.run_worker(self._show_detail(), exclusive=True, group="quality-detail")

    def _summarise(self) -> None:
        if not self.rows:
            self.show_status("No subscribed series yet: subscribe one (Subscriptions, 5).")
            return
        holes = sum(len(r.holes) for r in self.rows)
        missing = sum(r.quality.missing for r in self.rows)
        flagged = sum(sum(r.quality.flags.values()) for r in self.rows)
        empty = sum(1 for r in self.rows if not r.quality.bars)
        complete = sum(
            1 for r in self.rows if r.quality.bars and not r.quality.missing and not r.quality.flags
        )
        waiting = f", {empty} with no bars yet" if empty else ""
        self.show_status(
            f"{len(self.rows)} series, {complete} complete and clean{waiting} · {holes:,} holes "
            f"({missing:,} bars missing) · {flagged:,} bars flagged · f flags, b backfills"
        )

    @property
    def current(self) -> SeriesRow | None:
        return self.by_key.get(self.series_table.cursor_key or "")

    async def on_data_table_row_highlighted(self, event: VimDataTable.RowHighlighted) -> None:
        if event.data_table.id == "quality-series":
            self.run_worker(self._show_detail(), exclusive=True, group="quality-detail")

    async def action_flags(self) -> None:
        self.showing_flags = not self.showing_flags
        await self._show_detail()

    async def _show_detail(self) -> None:
        """The holes, or the flagged bars, of the highlighted series."""
        table, row = self.detail_table, self.current
        table.clear(columns=True)
        if row is None:
            table.border_title = "Holes"
            return
        name = f"{row.tracked.series.label} {row.tracked.interval.value}"
        if self.showing_flags:
            try:
                self.flagged = await flagged_bars(
                    self.services.db, row.tracked.series, row.tracked.interval, FLAGS_LISTED
                )
            except READ_ERRORS as exc:
                self.notify(f"cannot read the flagged bars: {exc}", severity="error")
                return
            table.border_title = f"Flagged bars of {printable(name)} (newest first)"
            table.add_columns(*FLAG_COLUMNS)
            for bar in self.flagged:
                table.add_row(_when(bar.ts), bar.labels, f"{bar.score:g}")
            return
        table.border_title = f"Holes of {printable(name)} ({row.tracked.calendar.name})"
        table.add_columns(*HOLE_COLUMNS)
        for hole in row.holes:
            table.add_row(
                _when(hole.first_missing),
                _when(hole.last_missing),
                f"{hole.missing:,}",
                Text(hole.state, style=_STATE_STYLES.get(hole.state, "")),
                printable(hole.detail or ""),
            )

    @property
    def picked_hole(self) -> Hole | None:
        row, at = self.current, self.detail_table.cursor_row
        if row is None or self.showing_flags or not 0 <= at < len(row.holes):
            return None
        return row.holes[at]

    async def on_data_table_row_selected(self, event: VimDataTable.RowSelected) -> None:
        if event.data_table.id != "quality-detail":
            return
        event.stop()
        row, at = self.current, event.cursor_row
        if row is None:
            return
        if self.showing_flags and 0 <= at < len(self.flagged):
            await chart_at(self, row.tracked, self.flagged[at].ts)
        elif (hole := self.picked_hole) is not None:
            await chart_at(self, row.tracked, hole.first_missing)

    async def action_backfill(self) -> None:
        """Record the hole (or the series' holes) for the engine and run its job now."""
        row = self.current
        if row is None:
            return
        holes = [h] if (h := self.picked_hole) is not None else row.holes
        holes = [h for h in holes if h.state != "unfillable"]
        if not holes:
            self.notify("no hole to fetch for this series", severity="warning")
            return
        tracked = row.tracked
        series, step = tracked.series, tracked.interval
        try:
            gaps = SeriesGaps(self.services.db, series.provider, series.symbol, step)
            for hole in holes:
                await gaps.mark(hole.first_missing, step.next_start(hole.last_missing), "asked")
            subs = [
                s.id
                for s in await self.services.subscriptions.list()
                if (s.provider, s.symbol, s.interval, s.mode)
                == (series.provider, series.symbol, step.value, "historical")
                and s.enabled
            ]
        except READ_ERRORS as exc:
            self.notify(f"cannot record the holes: {exc}", severity="error")
            return
        await self._run_jobs(subs, len(holes))

    async def _run_jobs(self, subs: list[int], holes: int) -> None:
        what = f"{holes} hole{'s' if holes != 1 else ''}"
        if not subs:
            self.notify(
                f"{what} recorded; no enabled historical subscription collects this series, "
                "so nothing fetches them yet",
                severity="warning",
            )
            return
        engine = self.services.engine
        if engine is not None:
            for sub_id in subs:
                engine.backfill_now(sub_id)
            self.notify(f"fetching {what} now")
            return
        try:
            await self.services.subscriptions.request_backfill(subs)
        except READ_ERRORS as exc:
            self.notify(f"cannot ask the engine: {exc}", severity="error")
            return
        self.notify(f"asked the engine to fetch {what}")


async def chart_at(screen: ModeScreen, tracked: Tracked, ts: datetime) -> None:
    """The Chart at `tracked`'s interval with the bar at (or just before) `ts` under its
    cursor, in the middle of the view."""
    series, step = tracked.series, tracked.interval
    await open_chart(screen, series.provider, series.symbol)
    chart = screen.app.screen
    if not isinstance(chart, ChartScreen) or chart.current is None:
        return
    try:
        newer = await Reader(screen.services.db).bars(series.key, step, start=ts, limit=CHART_REACH)
    except READ_ERRORS as exc:
        screen.notify(f"cannot read the bars around it: {exc}", severity="error")
        return
    if len(newer.bars) >= CHART_REACH:
        screen.notify("that is too far back to show on the Chart", severity="warning")
    after = sum(1 for b in newer.bars if b.ts > ts)
    chart.interval = step
    chart.bars_back = max(0, after - ZOOMS[chart.zoom] // 2)
    await chart.reload()
    before = [i for i, b in enumerate(chart.bars) if b.ts <= ts]
    if before:
        chart.cursor = before[-1]
        chart.action_cursor(0)


MODE = Mode(
    "quality",
    "Quality",
    9,
    QualityScreen,
    "coverage by calendar, flagged bars and holes of every series",
    short="Qual",
)

command("quality: refresh", "Run the quality report again", "refresh", mode="quality")
command(
    "quality: backfill",
    "Fetch the highlighted hole (or the series' holes) now",
    "backfill",
    mode="quality",
)
command(
    "quality: flagged bars",
    "List the highlighted series' flagged bars (again: its holes)",
    "flags",
    mode="quality",
)
