"""What a user reads on an 80x24 terminal and on a wide one (issue 17): the tables keep the
columns a user acts on, with their titles whole, a click on a title sorts, and the status line
keeps its hint."""

from __future__ import annotations

import pytest
from registry_rows import add_provider
from registry_ui import open_mode
from test_quality_mode import a_series_with_a_hole_and_a_bad_bar
from textual.app import App
from tui_helpers import wait_for

from quasar_tui.store.database import Database
from quasar_tui.tui.modes.quality import QualityScreen
from quasar_tui.tui.widgets.fitted_table import FittedTable

SIZES = [(80, 24), (140, 45)]


def screen_lines(app: App[object]) -> list[str]:
    """The terminal's lines as the user sees them."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def header_titles(table: FittedTable) -> list[str]:
    """The column titles as drawn on the table's first line (arrows of a sort included)."""
    return [c.label.plain for c in table.ordered_columns]


async def laid_out(pilot, table: FittedTable) -> None:
    """The table has fitted its columns to its width, and they fit."""
    await wait_for(
        pilot,
        lambda: table.size.width > 0
        and sum(c.get_render_width(table) for c in table.ordered_columns)
        <= table.scrollable_content_region.width,
    )
    await pilot.pause()


def title_line(app: App[object], table: FittedTable) -> str:
    return screen_lines(app)[table.content_region.y]


@pytest.mark.parametrize("size", SIZES)
async def test_quality_keeps_flags_and_worst_day_and_shows_the_holes(
    make_console, db: Database, size
) -> None:
    await a_series_with_a_hole_and_a_bad_bar(db)
    app = make_console(run_engine=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_mode(pilot, "9", QualityScreen)
        table = screen.series_table
        await wait_for(pilot, lambda: screen.loaded and table.row_count == 1)
        await laid_out(pilot, table)
        titles = title_line(app, table)
        for title in ("Series", "Interval", "Coverage", "Missing", "Flagged", "Worst day"):
            assert f" {title} " in titles, (title, titles)
        await wait_for(pilot, lambda: screen.detail_table.row_count == 1)
        await pilot.pause()
        shown = "\n".join(screen_lines(app))
        assert "1 ohlc" in shown and "2026-11-03" in shown  # the flags and the worst day
        assert "2026-11-02 03:00" in shown  # the hole, under the series
