"""Mappings mode by keyboard: a hundred obvious symbols in a few keys, Enter on one, another
suggestion picked from the pane, inline edit (with its errors), filter, rename and delete."""

from __future__ import annotations

from registry_rows import add_provider
from registry_ui import SIZE, field_error, open_mode, until_screen
from textual.widgets import Input, Static
from tui_helpers import started, wait_for

from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.tui.modals.confirm import ConfirmModal
from quasar_tui.tui.modals.edit_common import EditCommonModal
from quasar_tui.tui.modes.mappings import MappingsScreen

PAIRS = [f"K{n:03d}" for n in range(100)]
NEW = ["NEWCOIN1", "NEWCOIN2", "NEWCOIN3"]


async def mapped_pairs(db, services) -> None:
    """ALPHA lists K000/USD... (all mapped); BETA the same pairs spelt K000-USD, plus three
    symbols nobody else has, plus Apple under another name."""
    await add_provider(
        db,
        "ALPHA",
        assets=[
            *(f"{base}/USD" for base in PAIRS),
            SymbolInfo(symbol="AAPL.US", name="Apple Inc"),
        ],
    )
    await services.mappings.map_many(
        [(f"{base}/USD", "ALPHA", f"{base}/USD") for base in PAIRS] + [("AAPL", "ALPHA", "AAPL.US")]
    )
    await add_provider(
        db,
        "BETA",
        assets=[
            *(f"{base}-USD" for base in PAIRS),
            *NEW,
            SymbolInfo(symbol="APPLE", name="Apple Inc."),
        ],
    )


async def pick_beta(pilot, screen: MappingsScreen) -> None:
    """`p` opens the provider list; BETA is the second entry."""
    await wait_for(pilot, lambda: screen.provider == "ALPHA")
    await pilot.press("p", "down", "enter")
    await wait_for(pilot, lambda: screen.provider == "BETA" and len(screen.unmapped) == 104)


async def beta_mappings(services) -> dict[str, str]:
    return {m.symbol: m.common_symbol for m in await services.mappings.list(provider="BETA")}


async def test_a_hundred_obvious_symbols_take_two_keys(make_console, db):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await mapped_pairs(db, app.services)
        screen = await open_mode(pilot, "4", MappingsScreen)
        await pick_beta(pilot, screen)
        assert screen.unmapped["K042-USD"].proposal.common_symbol == "K042/USD"

        await pilot.press("t")
        assert len(screen.table.marks) == 100
        await pilot.press("a")
        await wait_for(pilot, lambda: len(screen.unmapped) == 4)

        mapped = await beta_mappings(app.services)
        assert len(mapped) == 100
        assert all(mapped[f"{base}-USD"] == f"{base}/USD" for base in PAIRS)
        assert sorted(screen.table.keys) == sorted([*NEW, "APPLE"])
        assert screen.table.marks == set()


async def test_enter_accepts_and_the_suggestions_pane_picks_another(make_console, db):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await mapped_pairs(db, app.services)
        screen = await open_mode(pilot, "4", MappingsScreen)
        await pick_beta(pilot, screen)

        await pilot.press("slash", *"apple", "enter")
        await wait_for(
            pilot, lambda: screen.table.keys == ["APPLE"] and screen.alternatives_for == "APPLE"
        )
        assert [s.common_symbol for s in screen.alternatives] == ["AAPL", "APPLE"]
        assert screen.unmapped["APPLE"].proposal.common_symbol == "AAPL"
        await pilot.press("l", "j")
        await wait_for(pilot, lambda: screen.unmapped["APPLE"].proposal.common_symbol == "APPLE")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "APPLE" not in screen.unmapped)
        assert (await beta_mappings(app.services))["APPLE"] == "APPLE"

        await pilot.press("escape")
        await wait_for(pilot, lambda: len(screen.table.keys) == 103)
        screen.table.focus()
        await pilot.press("G", "enter")
        last = "NEWCOIN3"
        await wait_for(pilot, lambda: last not in screen.unmapped)
        assert (await beta_mappings(app.services))[last] == last


async def test_inline_edit_refuses_bad_symbols_then_maps(make_console, db):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await mapped_pairs(db, app.services)
        screen = await open_mode(pilot, "4", MappingsScreen)
        await pick_beta(pilot, screen)
        await app.services.mappings.map("K001/USD", "BETA", "K001-USD")
        await pilot.press("r")
        await wait_for(pilot, lambda: len(screen.unmapped) == 103)

        await pilot.press("slash", *"newcoin2", "enter")
        await wait_for(pilot, lambda: screen.table.keys == ["NEWCOIN2"])
        await pilot.press("e")
        modal = await until_screen(pilot, EditCommonModal)
        box = modal.query_one("#common-input", Input)
        assert box.value == "NEWCOIN2"

        box.value = "NEW COIN"
        await pilot.press("enter")
        await wait_for(pilot, lambda: field_error(app, "common") != "")
        assert "whitespace" in field_error(app, "common")
        assert box.has_class("-invalid")

        box.value = "k001/usd"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "K001/USD already has BETA:K001-USD" in field_error(app, "common")
        )
        assert "NEWCOIN2" not in await beta_mappings(app.services)

        box.value = "nc2"
        await pilot.press("enter")
        await until_screen(pilot, MappingsScreen)
        assert (await beta_mappings(app.services))["NEWCOIN2"] == "NC2"
        await wait_for(pilot, lambda: "NEWCOIN2" not in screen.unmapped)


async def test_filter_mark_all_accept_then_rename_and_delete_mappings(make_console, db):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await mapped_pairs(db, app.services)
        screen = await open_mode(pilot, "4", MappingsScreen)
        await pick_beta(pilot, screen)

        await pilot.press("slash", *"newcoin", "enter", "asterisk", "escape")
        await wait_for(pilot, lambda: len(screen.table.keys) == 104)
        assert screen.table.marks == set(NEW)
        await pilot.press("a")
        await wait_for(pilot, lambda: len(screen.unmapped) == 101)
        assert {s: c for s, c in (await beta_mappings(app.services)).items()} == {
            name: name for name in NEW
        }

        await pilot.press("v")
        await wait_for(pilot, lambda: screen.mapped_table.row_count == 3)
        await pilot.press("g", "n")
        modal = await until_screen(pilot, EditCommonModal)
        modal.query_one("#common-input", Input).value = "FRESHCOIN"
        await pilot.press("enter")
        await until_screen(pilot, MappingsScreen)
        await wait_for(pilot, lambda: any(m.common_symbol == "FRESHCOIN" for m in screen.mapped))
        assert (await beta_mappings(app.services))["NEWCOIN1"] == "FRESHCOIN"

        await pilot.press("d")
        await until_screen(pilot, ConfirmModal)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(screen.mapped) == 2)
        assert "NEWCOIN1" not in await beta_mappings(app.services)


async def test_after_accepting_the_pane_shows_the_next_rows_suggestions(make_console, db):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await mapped_pairs(db, app.services)
        screen = await open_mode(pilot, "4", MappingsScreen)
        await pick_beta(pilot, screen)
        screen.table.focus()
        first = screen.table.cursor_key
        await wait_for(pilot, lambda: screen.alternatives_for == first)
        title = screen.query_one("#alternatives-title", Static)
        await pilot.press("enter")
        await wait_for(pilot, lambda: first not in screen.unmapped)
        assert screen.table.cursor_key != first
        assert str(title.render()) != f"Suggestions for {first}"  # never the mapped row's
        await wait_for(pilot, lambda: screen.alternatives_for == screen.table.cursor_key)
        assert str(title.render()) == f"Suggestions for {screen.table.cursor_key}"
