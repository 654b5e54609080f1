"""Snapshots of screens whose content is deterministic: an empty dashboard with no engine
running, the empty Live mode, and the help screen over it (Textual is pinned in pyproject)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot
from tui_helpers import wait_for

from quasar_tui.store.database import Database
from quasar_tui.store.server import ServerInfo
from quasar_tui.tui.app import QuasarApp
from quasar_tui.tui.services import ConsoleOptions, Services

SIZE = (110, 32)
STILL = ConsoleOptions(animation=False, clock=False)


def console_without_engine(dsn: str, data_dir: Path) -> QuasarApp:
    """A console on an empty database where no engine runs (it does not start one)."""

    @asynccontextmanager
    async def open_services() -> AsyncIterator[Services]:
        db = await Database.open(ServerInfo(dsn=dsn, embedded=False), migrate=False)
        try:
            async with Services.running(db, data_dir, run_engine=False) as services:
                yield services
        finally:
            await db.close()

    return QuasarApp(open_services, STILL)


async def settled(pilot: Pilot) -> None:
    """Started, the first engine status read (none running) shown, the dashboard refreshed."""
    app = pilot.app
    assert isinstance(app, QuasarApp)
    await wait_for(pilot, lambda: app.current_mode == "dashboard")
    await wait_for(pilot, lambda: app.sub_title.startswith("no engine running"))
    await pilot.press("r")
    await pilot.pause(0.2)


def test_empty_dashboard(snap_compare, test_dsn: str, tmp_path: Path) -> None:
    assert snap_compare(console_without_engine(test_dsn, tmp_path), terminal_size=SIZE,
                        run_before=settled)


def test_empty_live_mode(snap_compare, test_dsn: str, tmp_path: Path) -> None:
    assert snap_compare(console_without_engine(test_dsn, tmp_path), terminal_size=SIZE,
                        run_before=settled, press=["6", "_"])


def test_help_screen(snap_compare, test_dsn: str, tmp_path: Path) -> None:
    assert snap_compare(console_without_engine(test_dsn, tmp_path), terminal_size=SIZE,
                        run_before=settled, press=["6", "question_mark", "_"])
