"""What a new user trips over in the console (issue 17): the Dashboard's late-trades row,
palette targets and keys, mouse, narrow terminals, keymap conflicts, toasts."""

from __future__ import annotations

from registry_ui import plain
from tui_helpers import started, wait_for

from quasar_tui.tui.services.view import LateTrades
from quasar_tui.tui.widgets.health import EnginePanel


async def test_trades_left_to_history_are_no_alarm_but_lost_ones_are(make_console) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await started(pilot)
        view = app.services.view

        def panel() -> str:
            return plain(app.screen.query_one(EnginePanel))

        view.late = LateTrades(0, 0, 0, history_filled=512)
        await pilot.press("r")
        await wait_for(pilot, lambda: "512 trades before the session" in panel())
        assert "Late trades" not in panel() and "lost" not in panel()
        view.late = LateTrades(3, 1, 2, history_filled=512)
        await pilot.press("r")
        await wait_for(pilot, lambda: "Late trades" in panel())
        assert "3 after their bar (1 bars rebuilt), 2 lost" in panel()
