"""Common symbols in the console: the Live and Subscriptions modes name a series by the common
symbol it is mapped to, with the provider's own symbol beside it; filters find either."""

from __future__ import annotations

from datetime import UTC, datetime
from time import monotonic

from registry_rows import add_provider
from registry_ui import SIZE, open_mode
from tui_helpers import wait_for

from quasar_tui.registry.mappings import MappingStore
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.tui.modes.live import LiveScreen
from quasar_tui.tui.modes.subscriptions import SubscriptionsScreen
from quasar_tui.tui.widgets.live_table import LiveTable

TS = datetime(2026, 1, 2, tzinfo=UTC)


def line(table: LiveTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


async def test_live_and_subscriptions_show_common_symbols(make_console, db) -> None:
    await add_provider(db, "KRAKEN", assets=["XBT/USD", "ETH/USD"])
    await add_provider(db, "POLY", assets=["X:BTCUSD"])
    await MappingStore(db).map_many(
        [("BTC/USD", "KRAKEN", "XBT/USD"), ("BTC/USD", "POLY", "X:BTCUSD")]
    )
    await SubscriptionStore(db).add("KRAKEN", ["XBT/USD", "ETH/USD"], "1h", "historical")
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        subs = await open_mode(pilot, "5", SubscriptionsScreen)
        await wait_for(pilot, lambda: subs.table.row_count == 2)
        rows = [[str(c) for c in subs.table.get_row_at(i)][2:4] for i in range(2)]
        assert sorted(rows) == [["BTC/USD", "KRAKEN:XBT/USD"], ["ETH/USD", "KRAKEN"]]

        # Quotes as the engine's feed puts them in the book.
        book = app.services.book
        for provider, symbol, price in (
            ("POLY", "X:BTCUSD", 101.0),
            ("KRAKEN", "ETH/USD", 3.0),
            ("KRAKEN", "XBT/USD", 100.0),
        ):
            book.apply_tick(provider, symbol, TS, price, 1.0, None, None, monotonic())
        await pilot.press("6")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        live = app.screen
        table = live.query_one(LiveTable)
        await wait_for(pilot, lambda: len(table.order) == 3 and "BTC/USD" in line(table, 1))
        # Named by common symbol, the two BTC/USD series side by side, each with its source.
        shown = [line(table, y).split()[:2] for y in (1, 2, 3)]
        assert shown == [
            ["BTC/USD", "KRAKEN:XBT/USD"],
            ["BTC/USD", "POLY:X:BTCUSD"],
            ["ETH/USD", "KRAKEN"],
        ]
        await pilot.press("slash", *"btc/", "enter")
        assert [k[0] for k in table.order] == ["KRAKEN", "POLY"]

        await pilot.press("5")
        await wait_for(pilot, lambda: app.screen is subs)
        await pilot.press("slash", *"btc", "enter")
        assert subs.table.row_count == 1
