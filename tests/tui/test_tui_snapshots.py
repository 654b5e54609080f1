"""Snapshots of screens whose content is deterministic: an empty dashboard with no engine
running, the empty Live mode, the help screen over it, the Mappings mode with a fixed set of
assets and suggestions, and the subscribe form refusing a symbol inline (Textual is pinned in
pyproject)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from registry_rows import add_provider
from registry_ui import field_error
from textual.pilot import Pilot
from textual.widgets import Input
from tui_helpers import wait_for

from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database
from quasar_tui.store.server import ServerInfo
from quasar_tui.tui.app import QuasarApp
from quasar_tui.tui.modals.subscribe import SubscribeModal
from quasar_tui.tui.modes.mappings import MappingsScreen
from quasar_tui.tui.services import ConsoleOptions, Say, Services

SIZE = (110, 32)
STILL = ConsoleOptions(animation=False, clock=False)


def console_without_engine(dsn: str, data_dir: Path) -> QuasarApp:
    """A console on an empty database where no engine runs (it does not start one)."""

    @asynccontextmanager
    async def open_services(say: Say) -> AsyncIterator[Services]:
        db = await Database.open(ServerInfo(dsn=dsn, embedded=False), migrate=False)
        try:
            async with Services.running(db, data_dir, run_engine=False, say=say) as services:
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
    assert snap_compare(
        console_without_engine(test_dsn, tmp_path), terminal_size=SIZE, run_before=settled
    )


def test_empty_live_mode(snap_compare, test_dsn: str, tmp_path: Path) -> None:
    assert snap_compare(
        console_without_engine(test_dsn, tmp_path),
        terminal_size=SIZE,
        run_before=settled,
        press=["6", "_"],
    )


def test_help_screen(snap_compare, test_dsn: str, tmp_path: Path) -> None:
    assert snap_compare(
        console_without_engine(test_dsn, tmp_path),
        terminal_size=SIZE,
        run_before=settled,
        press=["6", "question_mark", "_"],
    )


async def mappings_with_suggestions(pilot: Pilot) -> None:
    """ALPHA's symbols are mapped; BETA lists the same ones spelt differently, one by name
    only, and one nobody else has."""
    await settled(pilot)
    app = pilot.app
    assert isinstance(app, QuasarApp)
    db = app.services.db
    await add_provider(
        db,
        "ALPHA",
        assets=[
            SymbolInfo(symbol="BTC/USD", name="Bitcoin", base="BTC", quote="USD"),
            SymbolInfo(symbol="ETH/USD", name="Ether", base="ETH", quote="USD"),
            SymbolInfo(symbol="AAPL.US", name="Apple Inc"),
        ],
    )
    await app.services.mappings.map_many(
        [
            ("BTC/USD", "ALPHA", "BTC/USD"),
            ("ETH/USD", "ALPHA", "ETH/USD"),
            ("AAPL", "ALPHA", "AAPL.US"),
        ]
    )
    await add_provider(
        db,
        "BETA",
        assets=[
            SymbolInfo(symbol="XBT-USD", name="Bitcoin", base="BTC", quote="USD"),
            SymbolInfo(symbol="ETH-USD", name="Ether", base="ETH", quote="USD"),
            SymbolInfo(symbol="APPLE", name="Apple Inc."),
            SymbolInfo(symbol="NEWCOIN", name="A coin nobody else lists"),
        ],
    )
    app.chosen_provider = "BETA"
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(app.screen, MappingsScreen))
    screen = app.screen
    assert isinstance(screen, MappingsScreen)
    await wait_for(
        pilot,
        lambda: (
            len(screen.unmapped) == 4
            and screen.table.keys
            and screen.alternatives_for == screen.table.keys[0]
        ),
    )
    await pilot.press("space")
    await wait_for(pilot, lambda: screen.alternatives_for == screen.table.keys[1])


async def subscribe_refused(pilot: Pilot) -> None:
    await settled(pilot)
    app = pilot.app
    assert isinstance(app, QuasarApp)
    await add_provider(
        app.services.db, "EXCH", intervals=["1h", "1d"], assets=["AAA", "BBB", "CCC"]
    )
    await pilot.press("5", "a")
    await wait_for(pilot, lambda: isinstance(app.screen, SubscribeModal))
    for box in app.screen.query(Input):
        box.cursor_blink = False
    await pilot.press(*"AAB", "enter")
    await wait_for(pilot, lambda: field_error(app, "sub-symbols") != "")


def test_mappings_mode_with_suggestions(snap_compare, test_dsn: str, tmp_path: Path) -> None:
    assert snap_compare(
        console_without_engine(test_dsn, tmp_path),
        terminal_size=SIZE,
        run_before=mappings_with_suggestions,
    )


def test_subscribe_form_refuses_an_unknown_symbol_inline(
    snap_compare, test_dsn: str, tmp_path: Path
) -> None:
    assert snap_compare(
        console_without_engine(test_dsn, tmp_path), terminal_size=SIZE, run_before=subscribe_refused
    )
