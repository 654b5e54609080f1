"""The Dashboard shows TimescaleDB's policy jobs and flags one that keeps failing.

TimescaleDB cannot be installed here: its `timescaledb_information` views are stood in for
with tables holding what TimescaleDB 2.x documents (see tests/test_timescale.py)."""

from __future__ import annotations

from helpers import requires_embedded
from registry_ui import plain
from test_timescale import STAND_IN
from tui_helpers import wait_for

from quasar_tui.store.database import Database
from quasar_tui.tui.modes.dashboard import DashboardScreen
from quasar_tui.tui.widgets.health import EnginePanel


@requires_embedded
async def test_the_dashboard_shows_timescaledbs_jobs_and_flags_a_failing_one(
    db: Database, make_console
) -> None:
    await db.execute(STAND_IN)
    app = make_console()
    async with app.run_test(size=(140, 40)) as pilot:

        def panel() -> str:
            found = app.screen.query(EnginePanel) if isinstance(app.screen, DashboardScreen) else []
            return plain(found[0]) if found else ""

        await wait_for(pilot, lambda: "TimescaleDB" in panel())
        text = panel()
        line = next(x for x in text.splitlines() if "TimescaleDB" in x)
        assert "policy_retention on live_ticks" in line and "7 of 7 runs failed" in line
        assert "last success never" in line and line.rstrip().endswith("OVERDUE")
