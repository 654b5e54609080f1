"""Subscriptions mode by keyboard: subscribe through the form (bad interval, symbol and lookback
refused inline), pause and resume, delete after confirming, backfill now."""

from __future__ import annotations

from registry_rows import StaticSymbols, add_provider
from registry_ui import PROVIDER_FILES, SIZE, field_error, notices, open_mode, until_screen
from textual.widgets import Button, Input, Select
from tui_helpers import started, wait_for

from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.tui.modals.confirm import ConfirmModal
from quasar_tui.tui.modals.subscribe import SubscribeModal
from quasar_tui.tui.modes.subscriptions import SubscriptionsScreen


async def stored(services) -> list[tuple[str, str, str, bool]]:
    return [(s.symbol, s.interval, s.mode, s.enabled) for s in await services.subscriptions.list()]


async def test_subscribe_in_the_form_with_bad_input_refused_inline(make_console, db):
    await add_provider(db, "EXCH", intervals=["1h", "1d"], assets=["AAA", "BBB", "CCC"])
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "5", SubscriptionsScreen)
        await pilot.press("a")
        modal = await until_screen(pilot, SubscribeModal)
        assert modal.query_one("#provider-select", Select).value == "EXCH"
        assert modal.query_one("#interval-select", Select).value == "1d"
        await pilot.press(*"AAA BBB", "enter")
        await until_screen(pilot, SubscriptionsScreen)
        await wait_for(pilot, lambda: len(screen.records) == 2)
        assert await stored(app.services) == [
            ("AAA", "1d", "historical", True),
            ("BBB", "1d", "historical", True),
        ]

        await pilot.press("a")
        modal = await until_screen(pilot, SubscribeModal)
        await pilot.press(*"CCC", "tab", "enter", "home", "enter", "ctrl+s")
        assert modal.query_one("#interval-select", Select).value == "1min"
        await wait_for(pilot, lambda: field_error(app, "sub-interval") != "")
        assert field_error(app, "sub-interval") == (
            "EXCH does not offer 1min bars; it offers: 1h 1d"
        )

        modal.query_one("#interval-select", Select).value = "1h"
        modal.query_one("#symbols-input", Input).value = "ZZZ"
        lookback = modal.query_one("#lookback-input", Input)
        lookback.value = "0"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field_error(app, "sub-lookback") != "")
        assert "above 0" in field_error(app, "sub-lookback")
        assert field_error(app, "sub-interval") == ""

        lookback.value = "30"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field_error(app, "sub-symbols") != "")
        assert "EXCH has no asset 'ZZZ'" in field_error(app, "sub-symbols")
        assert modal.query_one("#symbols-input", Input).has_class("-invalid")
        assert len(await stored(app.services)) == 2

        modal.query_one("#symbols-input", Input).value = "CCC"
        await pilot.press("ctrl+s")
        await until_screen(pilot, SubscriptionsScreen)
        subs = await app.services.subscriptions.list()
        assert [(s.symbol, s.interval, s.lookback_days) for s in subs][-1] == ("CCC", "1h", 30)


async def test_pause_resume_delete_and_backfill_by_keyboard(make_console, db):
    await add_provider(db, "EXCH", intervals=["1d"], assets=["AAA", "BBB"])
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await app.services.subscriptions.add("EXCH", ["AAA", "BBB"], "1d", "historical")
        screen = await open_mode(pilot, "5", SubscriptionsScreen)
        await wait_for(pilot, lambda: len(screen.records) == 2)

        await pilot.press("p")
        await wait_for(pilot, lambda: [s.enabled for s in screen.records.values()] == [False, True])
        assert [e for *_, e in await stored(app.services)] == [False, True]
        await pilot.press("u")
        await wait_for(pilot, lambda: all(s.enabled for s in screen.records.values()))

        await pilot.press("g", "space", "space", "p")
        await wait_for(pilot, lambda: not any(s.enabled for s in screen.records.values()))
        assert screen.table.marks == set()
        await pilot.press("g", "space", "space", "u")
        await wait_for(pilot, lambda: all(s.enabled for s in screen.records.values()))

        await wait_for(pilot, lambda: not app.services.view.running)
        await pilot.press("b")
        await wait_for(pilot, lambda: "will backfill when one starts" in notices(app)[-1])

        await pilot.press("j", "d")
        await until_screen(pilot, ConfirmModal)
        await pilot.press("n")
        await until_screen(pilot, SubscriptionsScreen)
        assert len(await stored(app.services)) == 2
        await pilot.press("d")
        await until_screen(pilot, ConfirmModal)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(screen.records) == 1)
        assert await stored(app.services) == [("AAA", "1d", "historical", True)]


async def test_backfill_now_runs_the_job_of_the_engine_in_this_console(make_console):
    app = make_console(run_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await app.services.providers.add(PROVIDER_FILES / "good_historical.py")
        await app.services.assets.refresh(
            "synthetic", await app.services.providers.load("synthetic")
        )
        await app.services.subscriptions.add(
            "synthetic", ["AAA"], "1d", "historical", lookback_days=5
        )
        await app.services.engine.reconcile()
        screen = await open_mode(pilot, "5", SubscriptionsScreen)
        await wait_for(pilot, lambda: len(screen.records) == 1)
        await pilot.press("b")
        await wait_for(pilot, lambda: notices(app)[-1] == "backfill started for 1 subscription")


async def test_on_a_24_line_terminal_the_form_scrolls_and_its_buttons_stay_in_view(
    make_console, db
):
    await add_provider(db, "EXCH", intervals=["1h", "1d"], assets=["AAA"])
    app = make_console(run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_mode(pilot, "5", SubscriptionsScreen)
        await pilot.press("a")
        modal = await until_screen(pilot, SubscribeModal)
        box = modal.query_one(".form-box")
        submit = modal.query_one("#form-submit", Button)
        lookback = modal.query_one("#lookback-input", Input)
        await pilot.pause()
        assert box.max_scroll_y > 0  # the fields do not fit: they scroll
        for _ in range(6):
            if modal.focused is lookback:
                break
            await pilot.press("tab")
        await pilot.pause()
        assert modal.focused is lookback and box.region.contains_region(lookback.region)
        inside = box.region.shrink((1, 1, 1, 1))  # within the border
        assert inside.contains_region(submit.region)


async def test_with_no_engine_running_a_subscription_left_running_reads_stopped(make_console, db):
    """The engine marks what it runs `running`; once it has stopped (or was killed) the row
    must not go on saying so."""
    await add_provider(db, "EXCH", intervals=["1d"], assets=["AAA"])
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        [sub] = await app.services.subscriptions.add("EXCH", ["AAA"], "1d", "historical")
        await app.services.subscriptions.set_state(sub.id, "running")
        screen = await open_mode(pilot, "5", SubscriptionsScreen)
        await wait_for(pilot, lambda: len(screen.records) == 1)
        state = screen.table.get_column_index("state")
        assert str(screen.table.get_row_at(0)[state]) == "stopped"


async def test_a_resumed_subscription_stops_reading_paused_at_once(make_console, db):
    """The engine marks a paused subscription's state "paused"; until it takes the resumed
    one up again, the row says "resuming", never "paused" beside its fresh bars."""
    await add_provider(db, "EXCH", intervals=["1d"], assets=["AAA"])
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        store = app.services.subscriptions
        [added] = await store.add("EXCH", ["AAA"], "1d", "historical")
        await store.set_enabled([added.id], False)
        await store.set_state(added.id, "paused", None)
        screen = await open_mode(pilot, "5", SubscriptionsScreen)
        await wait_for(pilot, lambda: len(screen.records) == 1)
        state = screen.table.get_column_index("state")

        def shown() -> str:
            return str(screen.table.get_row_at(0)[state])

        assert shown() == "paused"
        await pilot.press("u")
        await wait_for(pilot, lambda: shown() != "paused")
        assert shown() == "resuming"
        assert "0 paused" in str(screen.query_one("#status").render())


async def test_the_form_completes_symbols_and_points_to_the_assets_mode(make_console, db):
    await add_provider(db, "EXCH", intervals=["1d"], assets=["AAA", "BBB1", "CCC"])
    await AssetStore(db).refresh("EXCH", StaticSymbols(["AAA", "BBB1"]))  # CCC: delisted
    await MappingStore(db).map("ALPHA", "EXCH", "AAA")
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_mode(pilot, "5", SubscriptionsScreen)
        await pilot.press("a")
        modal = await until_screen(pilot, SubscribeModal)
        symbols = modal.query_one("#symbols-input", Input)
        await pilot.press("b")
        await wait_for(pilot, lambda: symbols._suggestion == "BBB1")
        await pilot.press("right")  # accepts the completion, in the provider's spelling
        assert symbols.value == "BBB1"
        await pilot.press("space", "a", "l")  # a common symbol mapped to one of its assets
        await wait_for(pilot, lambda: symbols._suggestion == "BBB1 ALPHA")
        await pilot.press("right", "space", *"QQQ", "ctrl+s")
        await wait_for(pilot, lambda: field_error(app, "sub-symbols") != "")
        assert field_error(app, "sub-symbols") == (
            "EXCH has no asset 'QQQ'; look for it in the Assets mode (key 3: / searches, "
            "s subscribes)"
        )
        assert await stored(app.services) == []

        await pilot.press(*["backspace"] * 3, *"CCC", "ctrl+s")
        await wait_for(pilot, lambda: "CCC" in field_error(app, "sub-symbols"))
        assert field_error(app, "sub-symbols") == (
            "EXCH no longer lists CCC; refresh its assets in the Providers mode (key 2, then r)"
        )

        await pilot.press(*["backspace"] * 4, "ctrl+s")
        await until_screen(pilot, SubscriptionsScreen)
        assert [s for s, *_ in await stored(app.services)] == ["AAA", "BBB1"]
