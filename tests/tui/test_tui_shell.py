"""The console shell: modes, palette, help, keymap, engine errors, and leaving with the terminal."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Static
from tui_helpers import wait_for

from quasar_tui.engine.engine import Engine
from quasar_tui.engine.events import EngineError
from quasar_tui.store.database import Database
from quasar_tui.tui.app import QuasarApp
from quasar_tui.tui.commands import commands
from quasar_tui.tui.keymap import KeymapError, console_bindings, find_keymap, load_keymap
from quasar_tui.tui.modes import MODES
from quasar_tui.tui.modes.log import LogScreen
from quasar_tui.tui.screens.help import HelpScreen
from quasar_tui.tui.screens.stopping import StoppingScreen, stopping_words
from quasar_tui.tui.services import ConsoleOptions, Say, Services
from quasar_tui.tui.widgets.mode_bar import ModeBar
from quasar_tui.tui.widgets.vim import VimLog


async def test_number_keys_and_palette_switch_modes(make_console) -> None:
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        assert app.sub_title == f"engine runs here (pid {os.getpid()})"
        for mode in MODES:
            await pilot.press(mode.key)
            assert app.current_mode == mode.name
            assert app.screen.title == f"Quasar · {mode.title}"
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"mode: live", "enter")
        await wait_for(pilot, lambda: app.current_mode == "live")


async def test_start_screen_shows_and_keys_wait_while_services_open(
    db: Database, tmp_path: Path
) -> None:
    opened = asyncio.Event()

    @asynccontextmanager
    async def slow_services(say: Say) -> AsyncIterator[Services]:
        await opened.wait()
        async with Services.running(db, tmp_path, run_engine=False, say=say) as services:
            yield services

    app = QuasarApp(slow_services, ConsoleOptions(animation=False, clock=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#starting"))
        starting = app.screen.query_one("#starting", Static)
        assert "Opening the database" in str(starting.render())
        await pilot.press("6")
        assert app.current_mode == "_default"
        opened.set()
        await wait_for(pilot, lambda: app.current_mode == "dashboard")


def _gated(db: Database, data_dir: Path, opened: asyncio.Event):
    """Services that stay on the loading screen, after saying what they do, until `opened`."""

    @asynccontextmanager
    async def gated(say: Say) -> AsyncIterator[Services]:
        async with Services.running(db, data_dir, say=say) as services:
            await opened.wait()
            yield services

    return gated


def _starting_text(app: QuasarApp) -> str:
    return "".join(str(s.render()) for s in app.screen.query("#starting").results(Static))


@pytest.mark.parametrize("daemon_runs", [True, False])
async def test_the_loading_screen_says_whether_it_attaches_or_starts_the_engine(
    db: Database, tmp_path: Path, daemon_runs: bool
) -> None:
    daemon = Engine.create(db, data_dir=tmp_path, mode="daemon")
    if daemon_runs:
        await daemon.start()
    opened = asyncio.Event()
    app = QuasarApp(_gated(db, tmp_path, opened), ConsoleOptions(animation=False, clock=False))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            if daemon_runs:
                words = f"Attaching to the engine of the daemon on {socket.gethostname()}:"
            else:
                words = "Starting the engine"
            await wait_for(pilot, lambda: words in _starting_text(app))
            opened.set()
            await wait_for(pilot, lambda: app.current_mode == "dashboard")
            assert app.services.attached is daemon_runs
    finally:
        await daemon.stop()


async def test_quitting_shows_the_engine_flushing_until_it_has_stopped(
    make_console, seeded, db: Database
) -> None:
    await seeded()
    app = make_console(run_engine=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        engine = app.services.engine
        assert engine is not None
        await wait_for(pilot, lambda: engine.stats()["rows_written"] > 0, "rows written")
        blocker = await db.connect()
        try:
            # The ticks table locked: the flush cannot finish until the test lets it.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE live_ticks IN ACCESS EXCLUSIVE MODE")
            # Trades keep arriving behind the lock: some must wait before the quit, or the
            # stop could find nothing to flush and end before the test looks.
            await wait_for(pilot, lambda: app.services.rows_to_write() > 0, "rows waiting")
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, StoppingScreen))
            shown = app.screen.query_one("#stopping", Static)
            await wait_for(
                pilot, lambda: str(shown.render()) == stopping_words(app.services.rows_to_write())
            )
            assert re.fullmatch(
                r"Stopping the engine: flushing [\d,]+ rows?\.\.\.", str(shown.render())
            )
            await pilot.press("1", "q")  # no mode switch nor exit meanwhile
            assert app.screen is shown.screen and app.is_running
            await transaction.rollback()
        finally:
            await blocker.close()
        await wait_for(pilot, lambda: app.return_code is not None, "the exit, once stopped")
    assert app.return_code == 0
    assert app.services.rows_to_write() == 0


def test_palette_lists_every_mode_and_action_by_name() -> None:
    names = {c.name for c in commands()}
    assert {f"mode: {m.name}" for m in MODES} <= names
    assert {"live: filter", "chart: next interval", "log: errors only", "app: quit"} <= names


async def test_help_lists_the_screen_bindings_with_ids(make_console) -> None:
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        await pilot.press("6", "question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = {(r.binding_id, r.keys) for r in help_screen.rows}
        assert ("live.sort", "s") in rows
        assert ("filter.open", "/") in rows
        assert ("mode.chart", "7") in rows
        assert ("list.down", "j, ↓") in rows
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_keymap_file_remaps_a_binding(make_console, tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('"mode.log" = "f8"\n"live.sort" = ["o", "ctrl+o"]\n')
    assert find_keymap(None, tmp_path) == path
    keymap = load_keymap(path)
    assert keymap == {"mode.log": "f8", "live.sort": "o,ctrl+o"}
    app = make_console(options=ConsoleOptions(animation=False, keymap=keymap, keymap_path=path))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        await pilot.press("8")
        assert app.current_mode == "dashboard"
        await pilot.press("f8")
        assert app.current_mode == "log"
        assert " f8 Log" in app.screen.query_one(ModeBar).render().plain
        await pilot.press("6", "question_mark")
        assert ("live.sort", "o, ^o") in {(r.binding_id, r.keys) for r in app.screen.rows}


async def test_unknown_binding_ids_in_the_keymap_are_reported(make_console) -> None:
    keymap = {"mode.lvie": "f6"}
    path = Path("keymap.toml")
    app = make_console(options=ConsoleOptions(animation=False, keymap=keymap, keymap_path=path))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        assert any("no binding with id mode.lvie" in n.message for n in app._notifications)


def test_the_console_refuses_to_start_without_a_terminal(run_quasar) -> None:
    result = run_quasar()
    assert result.returncode == 2
    assert "needs a terminal" in result.stderr and "ssh -t" in result.stderr
    assert result.stderr.count("\n") == 1


def test_bad_keymap_files_say_what_to_fix(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('"mode.log" = \n')
    with pytest.raises(KeymapError, match="not valid TOML"):
        load_keymap(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('"mode.log" = 8\n')
    with pytest.raises(KeymapError, match=r"'mode\.log' must be a key"):
        load_keymap(wrong)
    with pytest.raises(KeymapError, match="does not exist"):
        find_keymap(str(tmp_path / "missing.toml"), tmp_path)
    assert {"mode.live", "app.help", "live.sort", "list.down"} <= set(console_bindings())


async def test_engine_errors_notify_and_reach_the_log(make_console) -> None:
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        engine = app.services.engine
        assert engine is not None
        engine.bus.publish(EngineError("live:KRAKEN", "connection refused; retrying in 4s"))
        await wait_for(
            pilot, lambda: any("connection refused" in n.message for n in app._notifications)
        )
        await pilot.press("8")
        screen = app.screen
        assert isinstance(screen, LogScreen)
        log_text = "\n".join(line.text for line in screen.query_one(VimLog).lines)
        assert "live:KRAKEN: connection refused; retrying in 4s" in log_text
        await pilot.press("e")
        assert screen.min_level == "error"
        await pilot.pause()
        shown = [line.text for line in screen.query_one(VimLog).lines]
        assert any("live:KRAKEN: connection refused" in line for line in shown)
        assert all(line.startswith("ERROR") or " ERROR " in line for line in shown)


def _drain(fd: int, until: float, needle: bytes | None = None) -> bytes:
    """Read what the console draws (it blocks if nobody reads) until `needle` or `until`."""
    seen = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if needle is not None and needle in seen:
            break
    return seen


def _exit_status(pid: int, until: float) -> int | None:
    while time.monotonic() < until:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.1)
    return None


@pytest.mark.parametrize("how", ["sighup", "close-terminal"])
def test_console_exits_when_the_terminal_goes(quasar_env: dict[str, str], how: str) -> None:
    env = {**quasar_env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    status: int | None = None
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console in a terminal of its own, as over `ssh -t`
        os.execvpe(sys.executable, [sys.executable, "-m", "quasar_tui", "--no-animation"], env)
    try:
        drawn = _drain(fd, time.monotonic() + 60, needle=b"Dashboard")
        assert b"Dashboard" in drawn
        if how == "sighup":
            os.kill(pid, signal.SIGHUP)
            _drain(fd, time.monotonic() + 2)
        else:
            os.close(fd)
        status = _exit_status(pid, time.monotonic() + 30)
        assert status is not None, "the console kept running after its terminal went away"
    finally:
        if how == "sighup":
            os.close(fd)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
