"""Assets mode by keyboard: search as you type, map one asset, subscribe the marked ones."""

from __future__ import annotations

from registry_rows import add_provider
from registry_ui import SIZE, open_mode, until_screen
from textual.widgets import Input
from tui_helpers import wait_for

from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.tui.modals.edit_common import EditCommonModal
from quasar_tui.tui.modals.subscribe import SubscribeModal
from quasar_tui.tui.modes.assets import AssetsScreen

LISTED = [
    SymbolInfo(symbol="XBTUSD", name="Bitcoin / US dollar", base="XBT", quote="USD"),
    SymbolInfo(symbol="ETHUSD", name="Ether / US dollar", base="ETH", quote="USD"),
    SymbolInfo(symbol="XBTEUR", name="Bitcoin / euro", base="XBT", quote="EUR"),
    *(SymbolInfo(symbol=f"COIN{n:02d}USD", name=f"Coin {n}") for n in range(30)),
]


async def test_search_narrows_as_you_type_then_map_and_subscribe(make_console, db):
    await add_provider(db, "EXCH", intervals=["1h", "1d"], assets=LISTED)
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "3", AssetsScreen)
        await wait_for(pilot, lambda: len(screen.assets) == len(LISTED))
        assert screen.provider == "EXCH"

        await pilot.press("slash", *"xbt")
        await wait_for(pilot, lambda: set(screen.table.keys) == {"XBTUSD", "XBTEUR"})
        await pilot.press("enter")
        assert screen.table.has_focus

        assert screen.table.keys == ["XBTEUR", "XBTUSD"]
        await pilot.press("j")
        assert screen.table.cursor_key == "XBTUSD"
        await pilot.press("m")
        modal = await until_screen(pilot, EditCommonModal)
        assert modal.query_one("#common-input", Input).value == "BTC/USD"
        await pilot.press("enter")
        await until_screen(pilot, AssetsScreen)
        mapped = await app.services.mappings.list(provider="EXCH")
        assert [(m.common_symbol, m.symbol) for m in mapped] == [("BTC/USD", "XBTUSD")]
        await wait_for(pilot, lambda: screen.assets["XBTUSD"].common_symbol == "BTC/USD")

        await pilot.press("g", "space", "space")
        assert screen.table.marks == {"XBTUSD", "XBTEUR"}
        await pilot.press("s")
        modal = await until_screen(pilot, SubscribeModal)
        assert modal.query_one("#symbols-input", Input).value == "XBTEUR XBTUSD"
        await pilot.press("enter")
        await until_screen(pilot, AssetsScreen)
        subs = await app.services.subscriptions.list("EXCH")
        assert sorted((s.symbol, s.interval, s.mode) for s in subs) == [
            ("XBTEUR", "1d", "historical"),
            ("XBTUSD", "1d", "historical"),
        ]
        assert screen.table.marks == set()

        await pilot.press("escape")
        await wait_for(pilot, lambda: len(screen.assets) == len(LISTED))


async def test_escape_sequences_in_asset_names_are_shown_escaped(make_console, db):
    evil = "\x1b]0;pwn\x07\x1b[2J"
    await add_provider(db, "EVIL", assets=[SymbolInfo(symbol="EV1", name="Evil " + evil)])
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "3", AssetsScreen)
        await wait_for(pilot, lambda: "EV1" in screen.assets)
        await pilot.pause(0.2)
        painted = "\n".join(
            screen.table.render_line(y).text for y in range(screen.table.size.height)
        )
        assert "Evil \\x1b]0;pwn\\x07\\x1b[2J" in painted
        assert "\x1b" not in painted and "\x07" not in painted
