"""A row table for bulk work: space marks rows, `*` marks every row shown, and marks and the
cursor follow each row's key when the rows are reloaded or filtered.

Marks outlive a filter (a row hidden by it stays marked); `keep_marks` drops the marks of
rows that are gone from the data itself.

On a narrow terminal the columns named in `drop_first` go, the first ones first, until the
others fit: the columns a user needs to act stay whole rather than scroll out of sight. The
last column (free text: an error, a reason) counts as at most `TAIL` cells: it may be cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from quasar_tui.tui.widgets.vim import VimDataTable

MARK = Text("●", style="bold magenta")
MARK_COLUMN = "mark"

TAIL = 20
PADDING = 2  # a DataTable cell's padding, both sides

Row = tuple[str, Sequence[object]]
"""(row key, cells after the mark column)"""


def _width(cell: object) -> int:
    return cell_len(cell.plain if isinstance(cell, Text) else str(cell))


def fitting(
    titles: Sequence[str], rows: Sequence[Row], room: int, drop_first: Sequence[str]
) -> tuple[str, ...]:
    """The titles of the columns to show in `room` cells, in their order."""
    widths = [_width(t) for t in titles]
    for _, cells in rows:
        widths = [max(w, _width(c)) for w, c in zip(widths, cells, strict=True)]
    need = {t: w + PADDING for t, w in zip(titles, widths, strict=True)}
    need[titles[-1]] = min(need[titles[-1]], TAIL)
    shown = {t for t in titles if t not in drop_first}
    used = sum(need[t] for t in shown)
    for title in reversed(drop_first):
        if used + need[title] <= room:
            shown.add(title)
            used += need[title]
    return tuple(t for t in titles if t in shown)


class MarkedTable(VimDataTable):
    HELP_GROUP = "Marked list"
    BINDINGS = [
        Binding(
            "space",
            "toggle_mark",
            "Mark",
            tooltip="Mark or unmark the row (and go down)",
            id="list.mark",
        ),
        Binding(
            "asterisk",
            "mark_all",
            "Mark all",
            show=False,
            tooltip="Mark every row shown (again: unmark them)",
            id="list.mark_all",
        ),
    ]

    class MarksChanged(Message):
        """The set of marked rows changed (by a key or by a reload dropping rows)."""

        def __init__(self, table: MarkedTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> MarkedTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[str],
        *,
        enter: str | None = None,
        enter_help: str = "",
        id: str | None = None,
        classes: str | None = None,
        drop_first: Sequence[str] = (),
    ) -> None:
        super().__init__(enter=enter, enter_help=enter_help, id=id, classes=classes)
        self._titles = tuple(columns)
        self._drop_first = tuple(drop_first)
        self._shown = self._titles
        self._rows: list[Row] = []
        self.keys: list[str] = []
        self.marks: set[str] = set()

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        self.add_column(" ", key=MARK_COLUMN, width=1)
        for title in self._shown:
            self.add_column(title, key=title.lower())

    @property
    def shown_columns(self) -> tuple[str, ...]:
        return self._shown

    def on_resize(self) -> None:
        if self._refit():
            self.set_rows(self._rows)

    def _refit(self) -> bool:
        """Choose the columns for the current width; True when they changed (and the
        table's columns were rebuilt, empty)."""
        room = self.size.width - self.styles.scrollbar_size_vertical - 1 - PADDING
        shown = fitting(self._titles, self._rows, room, self._drop_first) if room > 0 else ()
        if not shown or shown == self._shown:
            return False
        self._shown = shown
        self.clear(columns=True)
        self._add_columns()
        return True

    def _visible(self, cells: Sequence[object]) -> list[object]:
        if self._shown == self._titles:
            return list(cells)
        return [c for t, c in zip(self._titles, cells, strict=True) if t in self._shown]

    @property
    def cursor_key(self) -> str | None:
        row = self.cursor_row
        return self.keys[row] if self.keys and 0 <= row < len(self.keys) else None

    @property
    def hidden_marks(self) -> int:
        """Marked rows the current rows (a filter) do not show."""
        return len(self.marks - set(self.keys))

    def selected_keys(self) -> list[str]:
        """The marked rows (shown ones in table order, then hidden ones), or the row under the
        cursor when none is marked."""
        if self.marks:
            shown = [k for k in self.keys if k in self.marks]
            return shown + sorted(self.marks.difference(shown))
        return [self.cursor_key] if self.cursor_key is not None else []

    def set_rows(self, rows: Iterable[Row]) -> None:
        """Replace the rows; the cursor stays on its row's key when it is still there."""
        current, row_index = self.cursor_key, self.cursor_row
        self._rows = list(rows)
        if not self._refit():
            self.clear()
        self.keys = []
        for key, cells in self._rows:
            self.add_row(MARK if key in self.marks else "", *self._visible(cells), key=key)
            self.keys.append(key)
        if self.keys:
            where = {k: i for i, k in enumerate(self.keys)}
            target = where.get(current, min(row_index, len(self.keys) - 1)) if current else 0
            self.move_cursor(row=target, animate=False)

    def keep_marks(self, existing: Iterable[str]) -> None:
        """Forget the marks of rows that no longer exist at all (mapped, deleted...)."""
        kept = self.marks.intersection(existing)
        if kept != self.marks:
            self.marks = kept
            self.post_message(self.MarksChanged(self))

    def set_cells(self, key: str, cells: Sequence[object]) -> None:
        """Redraw one row's cells (after the mark column) in place."""
        self._rows = [(k, cells if k == key else old) for k, old in self._rows]
        for column, value in zip(self._titles, cells, strict=True):
            if column in self._shown:
                self.update_cell(key, column.lower(), value)

    def set_marks(self, keys: Iterable[str]) -> None:
        wanted = set(keys)
        shown = set(self.keys)
        for key in (wanted ^ self.marks) & shown:
            self.update_cell(key, MARK_COLUMN, MARK if key in wanted else "")
        self.marks = wanted
        self.post_message(self.MarksChanged(self))

    def mark_where(self, predicate: Callable[[str], bool]) -> int:
        """Add the rows whose key passes to the marks; returns how many are marked now."""
        self.set_marks(self.marks | {k for k in self.keys if predicate(k)})
        return len(self.marks)

    def action_toggle_mark(self) -> None:
        key = self.cursor_key
        if key is None:
            return
        self.set_marks(self.marks ^ {key})
        self.action_cursor_down()

    def action_mark_all(self) -> None:
        """Mark every row shown; when all of them are marked already, unmark them."""
        shown = set(self.keys)
        self.set_marks(self.marks - shown if self.marks >= shown else self.marks | shown)
