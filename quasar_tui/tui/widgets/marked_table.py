"""A row table for bulk work: space marks rows, `*` marks every row shown, and marks and the
cursor follow each row's key when the rows are reloaded or filtered.

Marks outlive a filter (a row hidden by it stays marked); `keep_marks` drops the marks of
rows that are gone from the data itself.

Its columns fit the width (`FittedTable`: `drop_first` names the ones that go first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from quasar_tui.tui.widgets.fitted_table import FittedTable

MARK = Text("●", style="bold magenta")
MARK_COLUMN = "mark"

Row = tuple[str, Sequence[object]]
"""(row key, cells after the mark column)"""


class MarkedTable(FittedTable):
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

    LEAD_WIDTH = 1 + 2  # the mark column and its padding

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
        super().__init__(
            columns,
            drop_first=drop_first,
            enter=enter,
            enter_help=enter_help,
            id=id,
            classes=classes,
        )
        self.keys: list[str] = []
        self.marks: set[str] = set()

    def add_lead_columns(self) -> None:
        self.add_column(" ", key=MARK_COLUMN, width=1)

    def lead_cells(self, key: str) -> tuple[object, ...]:
        return (MARK if key in self.marks else "",)

    def redraw_rows(self) -> None:
        self.set_rows(self._rows)

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
        self.show_rows(list(rows))
        self.keys = [key for key, _ in self._rows]
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
