"""A line-based quote table for hot data.

It reads a `LiveBook` on a timer (a few times a second), asks it which rows changed since the
last pass and refreshes only those lines; `render_line` draws one row on demand, so the cost of
a repaint is the number of changed visible rows, not the number of ticks or symbols.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from quasar_tui.core.text import printable
from quasar_tui.tui.livebook import STALE_SECONDS, Key, LiveBook, QuoteRow
from quasar_tui.tui.widgets.vim import moves

FLASH_SECONDS = 0.8


def fmt_price(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value:,.2f}"
    if magnitude >= 1:
        return f"{value:,.4f}"
    return f"{value:.6g}"


def fmt_change(value: float | None) -> str:
    """A price difference: cents for big moves, significant digits for tiny prices."""
    if value is None:
        return "-"
    if value == 0:
        return "0.00"
    return f"{value:+,.2f}" if abs(value) >= 0.01 else f"{value:+.2g}"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def fmt_volume(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:,.2f}{unit}"
    return f"{value:,.4g}"


def fmt_age(age: float | None) -> str:
    if age is None:
        return "-"
    if age < 10:
        return f"{age:.1f}s"
    if age < 120:
        return f"{age:.0f}s"
    if age < 7200:
        return f"{age / 60:.0f}m"
    return f"{age / 3600:.0f}h"


@dataclass(frozen=True)
class Column:
    """`sort_value` must return something comparable; None sorts last. `width` includes the
    gap after the cell and leaves room for the title and its sort arrow (" ▲"). `rank` says
    which columns stay on a narrow terminal: the lowest ranks, the ones a trader reads."""

    key: str
    title: str
    width: int
    text: Callable[[QuoteRow, float], str]
    sort_value: Callable[[QuoteRow, float], float | str | None]
    rank: int
    right: bool = True
    signed: bool = False


# Symbol is the common symbol (the provider's own when unmapped); Provider names where it
# comes from, with the provider's symbol when that differs (KRAKEN:XBT/USD).
COLUMNS: tuple[Column, ...] = (
    Column(
        "symbol",
        "Symbol",
        14,
        lambda r, _: printable(r.name),
        lambda r, _: r.name,
        right=False,
        rank=0,
    ),
    Column(
        "provider",
        "Provider",
        18,
        lambda r, _: printable(r.source),
        lambda r, _: r.source,
        right=False,
        rank=7,
    ),
    Column("last", "Last", 13, lambda r, _: fmt_price(r.last), lambda r, _: r.last, rank=1),
    Column(
        "change",
        "Change",
        11,
        lambda r, _: fmt_change(r.change),
        lambda r, _: r.change,
        signed=True,
        rank=4,
    ),
    Column(
        "change_pct",
        "Chg %",
        9,
        lambda r, _: fmt_pct(r.change_pct),
        lambda r, _: r.change_pct,
        signed=True,
        rank=6,
    ),
    Column("bid", "Bid", 13, lambda r, _: fmt_price(r.bid), lambda r, _: r.bid, rank=2),
    Column("ask", "Ask", 13, lambda r, _: fmt_price(r.ask), lambda r, _: r.ask, rank=3),
    Column(
        "volume", "Volume", 10, lambda r, _: fmt_volume(r.volume), lambda r, _: r.volume, rank=8
    ),
    Column(
        "rate",
        "Ticks/s",
        10,
        lambda r, now: f"{r.rate(now):.1f}",
        lambda r, now: r.rate(now),
        rank=9,
    ),
    Column("age", "Age", 6, lambda r, now: fmt_age(r.age(now)), lambda r, now: r.age(now), rank=5),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def fitting_columns(width: int) -> tuple[Column, ...]:
    """The columns a table `width` cells wide shows, in their usual order: by rank while they
    fit (a wide one that does not fit lets a narrower one of a later rank in)."""
    shown: set[str] = set()
    used = 0
    for column in sorted(COLUMNS, key=lambda c: c.rank):
        if used + column.width <= width:
            shown.add(column.key)
            used += column.width
    return tuple(c for c in COLUMNS if c.key in shown) or COLUMNS[:1]


FLASH_FIELDS = ("last", "bid", "ask")
"""Columns whose cells flash when their value moves (column key = QuoteRow attribute)."""


def sort_keys(
    keys: list[Key], rows: dict[Key, QuoteRow], column: Column, now: float, reverse: bool
) -> list[Key]:
    """Sorted by the column's value; rows without a value stay at the bottom either way."""
    valued = [(column.sort_value(rows[k], now), k) for k in keys]
    present = [(v, k) for v, k in valued if v is not None]
    present.sort(key=lambda pair: pair[0], reverse=reverse)
    return [k for _, k in present] + [k for v, k in valued if v is None]


class LiveTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Quotes from a `LiveBook`: sort, filter, a user order that survives, flashes on change."""

    HELP_GROUP = "Live table"

    DEFAULT_CSS = """
    LiveTable {
        background: $surface;
        color: $foreground;
    }
    LiveTable > .live-table--header { text-style: bold; color: $text-accent; }
    LiveTable > .live-table--cursor { background: $block-cursor-blurred-background; }
    LiveTable:focus > .live-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    LiveTable > .live-table--up { color: $text-success; }
    LiveTable > .live-table--down { color: $text-error; }
    LiveTable > .live-table--flash-up { background: $success-muted; }
    LiveTable > .live-table--flash-down { background: $error-muted; }
    LiveTable > .live-table--stale { color: $text-muted; }
    LiveTable > .live-table--empty { color: $text-muted; text-style: italic; }
    """
    COMPONENT_CLASSES = {
        "live-table--header",
        "live-table--cursor",
        "live-table--up",
        "live-table--down",
        "live-table--flash-up",
        "live-table--flash-down",
        "live-table--stale",
        "live-table--empty",
    }
    BINDINGS = [
        *moves("cursor(1)", "cursor(-1)", "cursor_to(0)", "cursor_to(-1)", "page(1)", "page(-1)"),
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by the next column", id="live.sort"),
        Binding(
            "S", "reverse_sort", "Reverse", tooltip="Flip the sort order", id="live.sort_reverse"
        ),
        Binding(
            "u",
            "user_order",
            "My order",
            tooltip="Back to your own row order",
            id="live.user_order",
        ),
        Binding(
            "J",
            "move_row(1)",
            "Move down",
            show=False,
            tooltip="Move the row down in your order",
            id="live.move_down",
        ),
        Binding(
            "K",
            "move_row(-1)",
            "Move up",
            show=False,
            tooltip="Move the row up in your order",
            id="live.move_up",
        ),
        Binding("enter", "select", "Chart", tooltip="Chart the symbol", id="live.select"),
    ]

    class Selected(Message):
        """Enter on a row."""

        def __init__(self, key: Key) -> None:
            self.key = key
            super().__init__()

    cursor = reactive(0, always_update=True, repaint=False)

    def __init__(
        self,
        book: LiveBook,
        *,
        hz: float = 4.0,
        flash: bool = True,
        empty_text: str = "waiting for ticks",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.book = book
        self.hz = hz
        self.flash = flash
        self.empty_text = empty_text
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.filter_text = ""
        self._user_order: list[Key] = []
        self._user_moved = False
        self._known: set[Key] = set()
        self._order: list[Key] = []
        self._index: dict[Key, int] = {}
        self._seen_seq = 0
        self._shown: dict[Key, tuple[float | None, ...]] = {}
        self._flashes: dict[Key, tuple[dict[str, int], float]] = {}
        self._last_full = 0.0
        self._away = False
        self.columns: tuple[Column, ...] = COLUMNS
        """The columns shown: those that fit the width, by rank (`fitting_columns`)."""

    def on_mount(self) -> None:
        self._sync(full=True)
        self.set_interval(1 / self.hz, self._sync)

    @property
    def order(self) -> list[Key]:
        """Keys as displayed, top to bottom (filtered and sorted)."""
        return list(self._order)

    @property
    def cursor_key(self) -> Key | None:
        return self._order[self.cursor] if self._order else None

    def sort_by(self, column: str | None, reverse: bool = False) -> None:
        """Sort by a column key, or None for the user's own order."""
        if column is not None and column not in COLUMN_KEYS:
            raise ValueError(f"unknown column {column!r}: use one of {', '.join(COLUMN_KEYS)}")
        self.sort_column, self.sort_reverse = column, reverse
        self._sync(full=True)

    def set_filter(self, text: str) -> None:
        """Show only symbols (common or the provider's) containing `text` (any case); empty
        shows all."""
        self.filter_text = text.strip().lower()
        self._sync(full=True)

    def set_commons(self, commons: dict[Key, str]) -> None:
        """Name rows by their common symbols; until the user arranges rows, they sort by it."""
        if self.book.set_commons(commons):
            self._sort_by_name()
            self._sync(full=True)

    def _sort_by_name(self) -> None:
        if not self._user_moved:
            rows = self.book.rows
            self._user_order.sort(key=lambda k: (rows[k].name, k[0]))

    def action_cycle_sort(self) -> None:
        """The next column shown (those a narrow terminal hides are skipped)."""
        keys = (None, *(c.key for c in self.columns))
        at = keys.index(self.sort_column) if self.sort_column in keys else 0
        self.sort_by(keys[(at + 1) % len(keys)], self.sort_reverse)

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_column or COLUMN_KEYS[0], not self.sort_reverse)

    def action_user_order(self) -> None:
        self.sort_by(None)

    def action_cursor(self, delta: int) -> None:
        self.cursor = self._clamp(self.cursor + delta)

    def action_cursor_to(self, row: int) -> None:
        self.cursor = self._clamp(row if row >= 0 else len(self._order) - 1)

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_move_row(self, delta: int) -> None:
        """Move the cursor row within the user's order (a sorted view becomes that order)."""
        key = self.cursor_key
        if key is None:
            return
        if self.sort_column is not None:
            self._adopt_displayed_order()
        shown = self._order
        target_pos = self._clamp(self.cursor + delta)
        if target_pos == self.cursor:
            return
        neighbour = shown[target_pos]
        order = self._user_order
        i, j = order.index(key), order.index(neighbour)
        order[i], order[j] = order[j], order[i]
        self._user_moved = True
        self._sync(full=True)
        self.cursor = self._index.get(key, self.cursor)

    def action_select(self) -> None:
        if (key := self.cursor_key) is not None:
            self.post_message(self.Selected(key))

    def watch_cursor(self, old: int, new: int) -> None:
        self._refresh_row(old)
        self._refresh_row(new)
        self._scroll_to_cursor()

    def on_click(self, event: Click) -> None:
        """A row: the cursor goes there. A column title: sort by it (again: the other way)."""
        if event.y == 0:
            self._sort_at(event.x)
            return
        row = int(self.scroll_offset.y) + event.y - 1
        if 0 <= row < len(self._order):
            self.cursor = row

    def _sort_at(self, x: int) -> None:
        left = 0
        for column in self.columns:
            left += column.width
            if x < left:
                same = column.key == self.sort_column
                self.sort_by(column.key, not self.sort_reverse if same else False)
                return

    def _clamp(self, row: int) -> int:
        return max(0, min(row, len(self._order) - 1))

    def _adopt_displayed_order(self) -> None:
        """Make the sorted view the user's order, keeping hidden (filtered) rows after it."""
        shown = set(self._order)
        self._user_order = self._order + [k for k in self._user_order if k not in shown]
        self._user_moved = True
        self.sort_column = None

    def _sync(self, full: bool = False) -> None:
        """One repaint pass: take new symbols, work out what changed, refresh only that.

        Skipped while another screen is showing; the first pass back catches up without
        flashing everything that moved meanwhile."""
        if not self.screen.is_current:
            self._away = True
            return
        back, self._away = self._away, False
        now = monotonic()
        book = self.book
        if len(book.rows) != len(self._known):
            fresh = [k for k in book.rows if k not in self._known]
            self._known.update(fresh)
            self._user_order.extend(fresh)
            self._sort_by_name()
            full = True
        changed = book.changed_since(self._seen_seq)
        self._seen_seq = book.seq
        if self.flash:
            self._update_flashes(changed, now, remember_only=back)
        if self.sort_column is not None and changed:
            full = True
        if full:
            self._rebuild(now)
        else:
            self._refresh_keys(changed)
        self._expire_flashes(now)
        if now - self._last_full >= 1.0:
            self._last_full = now
            self.refresh()

    def _rebuild(self, now: float) -> None:
        text = self.filter_text
        rows = self.book.rows
        keys = [
            k
            for k in self._user_order
            if not text or text in k[1].lower() or text in rows[k].name.lower()
        ]
        if self.sort_column is not None:
            column = next(c for c in COLUMNS if c.key == self.sort_column)
            keys = sort_keys(keys, self.book.rows, column, now, self.sort_reverse)
        if keys != self._order:
            cursor_key = self.cursor_key
            self._order = keys
            self._index = {k: i for i, k in enumerate(keys)}
            self.virtual_size = Size(self.size.width, len(keys) + 1)
            kept = None if cursor_key is None else self._index.get(cursor_key)
            self.cursor = self._clamp(self.cursor) if kept is None else kept
        self.refresh()

    def _update_flashes(self, changed: list[Key], now: float, remember_only: bool) -> None:
        rows = self.book.rows
        until = now + FLASH_SECONDS
        for key in changed:
            row = rows[key]
            values: tuple[float | None, ...] = (row.last, row.bid, row.ask)  # FLASH_FIELDS
            before = self._shown.get(key)
            self._shown[key] = values
            if before is None or remember_only:
                continue
            moved = {
                field: (1 if new > old else -1)
                for field, old, new in zip(FLASH_FIELDS, before, values, strict=True)
                if old is not None and new is not None and new != old
            }
            if moved:
                self._flashes[key] = (moved, until)

    def _expire_flashes(self, now: float) -> None:
        done = [k for k, (_, until) in self._flashes.items() if until <= now]
        for key in done:
            del self._flashes[key]
        self._refresh_keys(done)

    def _refresh_keys(self, keys: list[Key]) -> None:
        """Repaint the lines of these rows that are in view, in one refresh: with hundreds of
        symbols ticking, most changed rows are scrolled away."""
        top = int(self.scroll_offset.y)
        width, height = self.size
        index = self._index
        regions = []
        for key in keys:
            row = index.get(key)
            if row is not None and 1 <= row - top + 1 < height:
                regions.append(Region(0, row - top + 1, width, 1))
        if regions:
            self.refresh(*regions)

    def _refresh_row(self, index: int) -> None:
        y = index - int(self.scroll_offset.y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_to_cursor(self) -> None:
        body = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + body:
            self.scroll_to(y=self.cursor - body + 1, animate=False)

    def on_resize(self) -> None:
        self.columns = fitting_columns(self.scrollable_content_region.width)
        self.virtual_size = Size(self.size.width, len(self._order) + 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            return self._header(width, base)
        index = int(self.scroll_offset.y) + y - 1
        if not self._order:
            if y == 1:
                style = base + self.get_component_rich_style("live-table--empty")
                return Strip([Segment(f" {self.empty_text}", style)]).adjust_cell_length(
                    width, base
                )
            return Strip.blank(width, base)
        if index >= len(self._order):
            return Strip.blank(width, base)
        return self._row_strip(self._order[index], index == self.cursor, width, base)

    def _header(self, width: int, base: Style) -> Strip:
        style = base + self.get_component_rich_style("live-table--header")
        segments = []
        for column in self.columns:
            title = column.title
            if column.key == self.sort_column:
                title += " ▼" if self.sort_reverse else " ▲"
            segments.append(Segment(_cell(title, column), style))
        return Strip(segments).adjust_cell_length(width, style)

    def _row_strip(self, key: Key, is_cursor: bool, width: int, base: Style) -> Strip:
        now = monotonic()
        row = self.book.rows[key]
        style = base
        age = row.age(now)
        if age is None or age > STALE_SECONDS:
            style += self.get_component_rich_style("live-table--stale")
        if is_cursor:
            style += self.get_component_rich_style("live-table--cursor")
        flashes = self._flashes.get(key, ({}, 0.0))[0]
        change = row.change
        signed_style = None
        if change:
            signed_style = self.get_component_rich_style(
                "live-table--up" if change > 0 else "live-table--down"
            )
        segments = []
        for column in self.columns:
            cell_style = style
            if column.signed and signed_style is not None:
                cell_style = style + signed_style
            if flash := flashes.get(column.key):
                cell_style = cell_style + self.get_component_rich_style(
                    "live-table--flash-up" if flash > 0 else "live-table--flash-down"
                )
            segments.append(Segment(_cell(column.text(row, now), column), cell_style))
        return Strip(segments).adjust_cell_length(width, style)


def _cell(text: str, column: Column) -> str:
    width = column.width - 1
    text = text if len(text) <= width else text[: width - 1] + "…"
    return (text.rjust(width) if column.right else text.ljust(width)) + " "
