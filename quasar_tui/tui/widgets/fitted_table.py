"""A table whose columns fit its width: on a narrow terminal the columns named in `drop_first`
go, the first ones first, until the others fit, so the columns a user needs to act stay whole
rather than scroll out of sight. The last column (free text: an error, a reason) counts as at
most `TAIL` cells: it may be cut.

A click on a column title sorts the rows by it (numbers as numbers), a second click the other
way, a third goes back to the rows' own order."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets.data_table import ColumnKey, RowKey

from quasar_tui.tui.widgets.vim import VimDataTable

TAIL = 20
PADDING = 2  # a DataTable cell's padding, both sides

Row = tuple[str, Sequence[object]]
"""(row key, cells after any lead column)"""


def _width(cell: object) -> int:
    return cell_len(cell.plain if isinstance(cell, Text) else str(cell))


def sort_value(cell: object) -> tuple[int, float, str]:
    """Numbers ("1,234.5", "+0.3%") before text, each in its own order; "" and "-" last."""
    text = (cell.plain if isinstance(cell, Text) else str(cell)).strip()
    if text in ("", "-"):
        return (2, 0.0, "")
    try:
        return (0, float(text.replace(",", "").rstrip("%")), "")
    except ValueError:
        return (1, 0.0, text.lower())


def content_widths(titles: Sequence[str], rows: Sequence[Row]) -> dict[str, int]:
    """Each column's widest cell (or title)."""
    widths = [_width(t) for t in titles]
    for _, cells in rows:
        widths = [max(w, _width(c)) for w, c in zip(widths, cells, strict=True)]
    return dict(zip(titles, widths, strict=True))


def fitting(
    titles: Sequence[str], rows: Sequence[Row], room: int, drop_first: Sequence[str]
) -> tuple[str, ...]:
    """The titles of the columns to show in `room` cells, in their order."""
    need = {t: w + PADDING for t, w in content_widths(titles, rows).items()}
    need[titles[-1]] = min(need[titles[-1]], TAIL)
    shown = {t for t in titles if t not in drop_first}
    used = sum(need[t] for t in shown)
    for title in reversed(drop_first):
        if used + need[title] <= room:
            shown.add(title)
            used += need[title]
    return tuple(t for t in titles if t in shown)


class FittedTable(VimDataTable):
    """Rows are given whole (`show_rows`); the table shows the cells of the columns that fit.
    A subclass may put columns before them (`LEAD_WIDTH`, `add_lead_columns`, `lead_cells`)."""

    LEAD_WIDTH = 0

    def __init__(
        self,
        columns: Sequence[str],
        *,
        drop_first: Sequence[str] = (),
        enter: str | None = None,
        enter_help: str = "",
        id: str | None = None,
        classes: str | None = None,
        zebra_stripes: bool = False,
    ) -> None:
        super().__init__(
            enter=enter, enter_help=enter_help, id=id, classes=classes, zebra_stripes=zebra_stripes
        )
        self._titles = tuple(columns)
        self._drop_first = tuple(drop_first)
        self._shown = self._titles
        self._rows: list[Row] = []
        self.sort_title: str | None = None
        self.sort_reverse = False

    @property
    def shown_columns(self) -> tuple[str, ...]:
        return self._shown

    def on_mount(self) -> None:
        self._add_columns()

    def key_at(self, row: int) -> str | None:
        """The key of the row shown at `row` (a click on a title may have sorted them)."""
        if not 0 <= row < self.row_count:
            return None
        return self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value

    @property
    def cursor_key(self) -> str | None:
        return self.key_at(self.cursor_row)

    def move_to_key(self, key: str | None) -> bool:
        """Put the cursor on the row of `key`; False when no row has it."""
        if key is None or RowKey(key) not in self.rows:
            return False
        self.move_cursor(row=self.get_row_index(key), animate=False)
        return True

    def add_lead_columns(self) -> None:
        """Columns before the fitted ones."""

    def lead_cells(self, key: str) -> tuple[object, ...]:
        return ()

    def _add_columns(self) -> None:
        self.add_lead_columns()
        for title in self._shown:
            arrow = "" if title != self.sort_title else " ▼" if self.sort_reverse else " ▲"
            self.add_column(title + arrow, key=title.lower())

    def on_data_table_header_selected(self, event: VimDataTable.HeaderSelected) -> None:
        """Sort by the clicked column; again: the other way; a third time: unsorted."""
        event.stop()
        title = next((t for t in self._titles if t.lower() == event.column_key.value), None)
        if title is None:
            return
        if title != self.sort_title:
            self.sort_title, self.sort_reverse = title, False
        elif not self.sort_reverse:
            self.sort_reverse = True
        else:
            self.sort_title, self.sort_reverse = None, False
        self.clear(columns=True)
        self._add_columns()
        self.redraw_rows()

    def on_resize(self) -> None:
        if self._refit():
            self.redraw_rows()
        else:
            self._widen()
            self.refresh()

    def redraw_rows(self) -> None:
        self.show_rows(self._rows)

    def show_rows(self, rows: Sequence[Row]) -> None:
        """Replace the rows (the cursor is the caller's business), sorted when a column
        title was clicked."""
        self._rows = list(rows)
        if self.sort_title is not None:
            at = self._titles.index(self.sort_title)
            valued = [(sort_value(r[1][at]), r) for r in self._rows]
            present = [pair for pair in valued if pair[0][0] < 2]
            present.sort(key=lambda pair: pair[0], reverse=self.sort_reverse)
            self._rows = [r for _, r in present] + [r for v, r in valued if v[0] == 2]
        if not self._refit():
            self.clear()
        for key, cells in self._rows:
            self.add_row(*self.lead_cells(key), *self._visible(cells), key=key)
        self._widen()

    def _widen(self) -> None:
        """Make each shown column as wide as its widest cell now. DataTable measures new rows
        later, and just after the columns were rebuilt it could measure with the cells of the
        old ones (a State column cut to "runni").

        When the columns that stay are too wide even so (a long backfill progress in State, an
        alert's text), the widest of them is cut to what is left, if it is long text (wider than
        the last column counts): the others stay in view."""
        widths = content_widths(self._titles, self._rows)
        need = {t: widths[t] + PADDING for t in self._shown}
        tail = self._titles[-1]
        if tail in need:
            need[tail] = min(need[tail], TAIL)
        excess = sum(need.values()) - self._room()
        cut = max((t for t in self._shown if t != tail), key=need.__getitem__, default=None)
        if cut is not None and need[cut] <= TAIL:
            cut = None
        for title in self._shown:
            column = self.columns.get(ColumnKey(title.lower()))
            if column is None:
                continue
            if excess > 0 and title == cut:
                column.auto_width = False
                column.width = max(cell_len(title), widths[title] - excess)
            else:
                column.auto_width = True
                column.content_width = max(column.content_width, widths[title])
        self._require_update_dimensions = True

    def set_cells(self, key: str, cells: Sequence[object]) -> None:
        """Redraw one row's cells (after the lead columns) in place."""
        self._rows = [(k, cells if k == key else old) for k, old in self._rows]
        for column, value in zip(self._titles, cells, strict=True):
            if column in self._shown:
                self.update_cell(key, column.lower(), value)

    def _refit(self) -> bool:
        """Choose the columns for the current width; True when they changed (and the
        table's columns were rebuilt, empty)."""
        room = self._room()
        shown = fitting(self._titles, self._rows, room, self._drop_first) if room > 0 else ()
        if not shown or shown == self._shown:
            return False
        self._shown = shown
        self.clear(columns=True)
        self._add_columns()
        return True

    def _room(self) -> int:
        """The cells the fitted columns have."""
        return self.size.width - self.styles.scrollbar_size_vertical - self.LEAD_WIDTH

    def _visible(self, cells: Sequence[object]) -> list[object]:
        if self._shown == self._titles:
            return list(cells)
        return [c for t, c in zip(self._titles, cells, strict=True) if t in self._shown]
