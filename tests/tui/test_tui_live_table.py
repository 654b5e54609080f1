"""The line-based live table on its own, fed straight from a LiveBook in a tiny app."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from time import monotonic

import pytest
from helpers import HANG_SECONDS
from textual.app import App, ComposeResult
from tui_helpers import wait_for

from quasar_tui.tui.livebook import LiveBook
from quasar_tui.tui.widgets import live_table
from quasar_tui.tui.widgets.live_table import COLUMNS, LiveTable

TS = datetime(2024, 1, 2, tzinfo=UTC)


class TableApp(App[None]):
    def __init__(self, book: LiveBook) -> None:
        super().__init__()
        self.book = book
        self.selected: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield LiveTable(self.book, hz=20)

    def on_live_table_selected(self, message: LiveTable.Selected) -> None:
        self.selected.append(message.key)


def tick(book: LiveBook, symbol: str, price: float, size: float = 1.0) -> None:
    book.apply_tick("SIM", symbol, TS, price, size, price - 0.5, price + 0.5, monotonic())


def line_text(table: LiveTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


def test_book_conflates_ticks_per_symbol() -> None:
    book = LiveBook()
    for i in range(1000):
        tick(book, "AAA", 100 + i, 2)
    tick(book, "BBB", 50)
    row = book.rows[("SIM", "AAA")]
    assert len(book) == 2
    assert row.last == 1099 and row.volume == 2000 and row.ticks == 1000
    assert row.change == 999
    assert book.changed_since(book.seq - 1) == [("SIM", "BBB")]
    assert set(book.changed_since(0)) == {("SIM", "AAA"), ("SIM", "BBB")}


async def test_rows_appear_by_name_and_update_in_place() -> None:
    book = LiveBook()
    app = TableApp(book)
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(LiveTable)
        assert "waiting for ticks" in line_text(table, 1)
        for symbol, price in (("CCC", 3.0), ("AAA", 1.0), ("BBB", 2.0)):
            tick(book, symbol, price)
        await wait_for(pilot, lambda: [k[1] for k in table.order] == ["AAA", "BBB", "CCC"])
        tick(book, "AAA", 1.5)
        await wait_for(pilot, lambda: "1.5000" in line_text(table, 1))
        assert "+0.50" in line_text(table, 1) and "+50.00%" in line_text(table, 1)
        assert "Symbol" in line_text(table, 0)


async def test_sort_filter_and_vim_keys() -> None:
    book = LiveBook()
    app = TableApp(book)
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(LiveTable)
        for symbol, price in (("BTC-USD", 30.0), ("ETH-USD", 10.0), ("ADA-EUR", 20.0)):
            tick(book, symbol, price)
        await wait_for(pilot, lambda: len(table.order) == 3)
        table.focus()
        await pilot.press("s")  # symbol
        assert [k[1] for k in table.order] == ["ADA-EUR", "BTC-USD", "ETH-USD"]
        await pilot.press("S")
        assert [k[1] for k in table.order] == ["ETH-USD", "BTC-USD", "ADA-EUR"]
        table.sort_by("last")
        assert [k[1] for k in table.order] == ["ETH-USD", "ADA-EUR", "BTC-USD"]
        await pilot.press("u")
        assert [k[1] for k in table.order] == ["ADA-EUR", "BTC-USD", "ETH-USD"]
        await pilot.press("G")
        assert table.cursor_key == ("SIM", "ETH-USD")
        await pilot.press("k", "k")
        assert table.cursor_key == ("SIM", "ADA-EUR")
        await pilot.press("j", "enter")
        assert app.selected == [("SIM", "BTC-USD")]
        table.set_filter("usd")
        assert [k[1] for k in table.order] == ["BTC-USD", "ETH-USD"]
        assert table.cursor_key == ("SIM", "BTC-USD")
        table.set_filter("")
        await pilot.press("g")
        assert table.cursor_key == ("SIM", "ADA-EUR")


async def test_every_column_header_shows_its_sort_arrow() -> None:
    app = TableApp(LiveBook())
    async with app.run_test(size=(140, 20)) as pilot:
        table = app.query_one(LiveTable)
        for column in COLUMNS:
            for reverse in (False, True):
                table.sort_by(column.key, reverse=reverse)
                await pilot.pause()
                arrow = "▼" if reverse else "▲"
                assert f"{column.title} {arrow}" in line_text(table, 0), column.title


async def test_keys_work_while_500_symbols_tick() -> None:
    book = LiveBook()
    app = TableApp(book)
    names = [f"S{n:03d}" for n in range(500)]
    stop = asyncio.Event()

    async def market() -> None:
        step = 0
        while not stop.is_set():
            step += 1
            for n, name in enumerate(names):
                tick(book, name, 100.0 + n + (step % 7))
            await asyncio.sleep(0.05)

    async with app.run_test(size=(120, 30)) as pilot:
        feed = asyncio.create_task(market())
        table = app.query_one(LiveTable)
        table.focus()
        await wait_for(pilot, lambda: len(table.order) == 500)
        await pilot.press("s", "s", "s", "S")  # last price, highest first
        assert table.sort_column == "last" and table.order[0] == ("SIM", "S499")
        await pilot.press("G")
        assert table.cursor_key == ("SIM", "S000")
        table.set_filter("s00")
        await pilot.press("g", "j")
        assert table.cursor_key == ("SIM", "S008")
        assert book.rows[("SIM", "S000")].ticks > 1
        stop.set()
        await feed


async def test_user_order_is_stable_and_movable() -> None:
    book = LiveBook()
    app = TableApp(book)
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(LiveTable)
        for symbol in ("A", "B", "C"):
            tick(book, symbol, 1.0)
        await wait_for(pilot, lambda: len(table.order) == 3)
        table.focus()
        await pilot.press("J")
        assert [k[1] for k in table.order] == ["B", "A", "C"]
        assert table.cursor_key == ("SIM", "A")
        tick(book, "D", 1.0)
        tick(book, "A", 2.0)
        await wait_for(pilot, lambda: len(table.order) == 4)
        assert [k[1] for k in table.order] == ["B", "A", "C", "D"]
        table.sort_by("last", reverse=True)
        assert [k[1] for k in table.order] == ["A", "B", "C", "D"]
        table.action_cursor_to(0)
        await pilot.press("J")  # moving a row in a sorted view keeps what the user saw
        assert table.sort_column is None
        assert [k[1] for k in table.order] == ["B", "A", "C", "D"]
        assert table.cursor_key == ("SIM", "A")


async def test_changed_price_cells_flash(monkeypatch: pytest.MonkeyPatch) -> None:
    # A flash lasts FLASH_SECONDS of wall time; a busy machine must not see it end first.
    monkeypatch.setattr(live_table, "FLASH_SECONDS", HANG_SECONDS)
    book = LiveBook()
    app = TableApp(book)
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(LiveTable)
        tick(book, "UP", 10.0)
        tick(book, "DN", 10.0)
        await wait_for(pilot, lambda: len(table.order) == 2)
        tick(book, "UP", 11.0)
        tick(book, "DN", 9.0)
        up = table.get_component_rich_style("live-table--flash-up").bgcolor
        down = table.get_component_rich_style("live-table--flash-down").bgcolor
        # DN sorts before UP; the row text is live, the flash comes with the next repaint
        await wait_for(pilot, lambda: _flashes(table, 2, "11.0000", up), "UP flashing up")
        assert _flashes(table, 1, "9.0000", down)


def _flashes(table: LiveTable, y: int, text: str, color: object) -> bool:
    """Line `y` shows `text` on the flash background `color`."""
    return any(s.style and s.style.bgcolor == color for s in table.render_line(y) if text in s.text)


@pytest.mark.parametrize(
    ("width", "shown"),
    [
        (140, [c.title for c in COLUMNS]),
        (80, ["Symbol", "Last", "Change", "Chg %", "Bid", "Ask", "Age"]),
        (60, ["Symbol", "Last", "Bid", "Ask", "Age"]),
    ],
)
async def test_a_narrow_table_keeps_the_columns_a_trader_reads(width: int, shown: list) -> None:
    app = TableApp(LiveBook())
    async with app.run_test(size=(width, 20)) as pilot:
        table = app.query_one(LiveTable)
        await pilot.pause()
        assert line_text(table, 0).split() == [w for t in shown for w in t.split()]
        table.focus()
        await pilot.press(*"s" * (len(shown) + 1))
        assert table.sort_column is None  # s cycled through the shown columns only


async def test_clicking_a_column_title_sorts_by_it_and_again_reverses() -> None:
    book = LiveBook()
    app = TableApp(book)
    async with app.run_test(size=(140, 20)) as pilot:
        table = app.query_one(LiveTable)
        for symbol, price in (("BTC-USD", 30.0), ("ETH-USD", 10.0), ("ADA-EUR", 20.0)):
            tick(book, symbol, price)
        await wait_for(pilot, lambda: len(table.order) == 3)
        last_x = line_text(table, 0).index("Last")
        await pilot.click(LiveTable, offset=(last_x, 0))
        assert [k[1] for k in table.order] == ["ETH-USD", "ADA-EUR", "BTC-USD"]
        assert "Last ▲" in line_text(table, 0)
        await pilot.click(LiveTable, offset=(last_x, 0))
        assert [k[1] for k in table.order] == ["BTC-USD", "ADA-EUR", "ETH-USD"]
        await pilot.click(LiveTable, offset=(1, 0))
        assert table.sort_column == "symbol" and not table.sort_reverse
        await pilot.click(LiveTable, offset=(1, 2))
        assert table.cursor_key == ("SIM", "BTC-USD")
