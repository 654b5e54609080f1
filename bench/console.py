"""The console under a live load: CPU share of its process, and key press to painted frame.

Set-up: the bundled SIMULATED provider offering `--symbols` generated symbols (500) at
`--rate / --symbols` trades a second each (5,000 a second in total), every symbol subscribed
live, on a scratch embedded database. The console is the real `QuasarApp` with the options a
user gets by default (animations and the header clock on), run headless by `App.run_test` at
140x45, showing the Live mode (the busiest screen: all 500 rows conflated and repainted a few
times a second). Two variants, both by default:
- `attached`: the engine runs in a real `quasar --daemon` process and the console attaches to
  it (it reads what the daemon publishes). The console process does only console work, so this
  is the figure for "CPU share of the console process".
- `in_process`: the console runs the engine itself (as `quasar` does when no daemon runs): the
  share then includes the engine (simulated feed, aggregation, writer) in the same process.

CPU share: process CPU time (user + system, all threads) / wall time, over `--window` seconds
of watching the Live mode with no keys pressed, and again over the key-press phase.

Key press to painted frame: headless Textual computes every frame but skips turning it into
terminal bytes. The benchmark's app subclass therefore completes the frame as the terminal
driver would (`render_segments` into the escape sequences it would write), then looks at
what the frame painted. A press is timed from just before its key event is posted to the app
(as the terminal driver's input thread posts it) to the end of the first frame whose painted
lines show the press's effect:
- `j` / `k`: the table line of the new cursor row is painted with the cursor's background;
- `s` / `S` / `u`: the table header is painted with the new sort column and arrow (sorting the
  500 rows happens in between);
- `1` / `6`: the header bar is painted with the Dashboard / Live title (a mode switch, away
  and back, the Live table catching up with what ticked meanwhile).
So the time includes the key handler, the refresh it asks for, the compositor pass, rendering
the terminal bytes and the wait for the next frame slot; only the write to a real terminal is
missing. Presses are spaced by a random 0.15-0.35 s so they do not line up with the table's
repaint timer. Each round is 16 cursor moves, 5 sort keys and 2 mode switches; p50, p95 and
max are over all presses and per kind. Mode switches are the slowest kind and 2 of 23
presses (9 %), so the overall p95 falls among them: read it with the per-kind figures.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import math
import os
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.segment import Segment
from textual import events
from textual._compositor import ChopsUpdate, CompositorUpdate, LayoutUpdate
from textual.pilot import Pilot
from textual.screen import Screen

from bench.common import report, scratch_database
from bench.daemon import Daemon, MarketClock
from quasar_tui.engine.lock import engine_running
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.database import Database
from quasar_tui.tui.app import QuasarApp
from quasar_tui.tui.modes.live import LiveScreen
from quasar_tui.tui.services import Say, Services
from quasar_tui.tui.widgets.live_table import COLUMN_KEYS, COLUMNS, LiveTable, _cell

PROVIDER = "SIMULATED"
SIZE = (140, 45)
PRESS_TIMEOUT = 5.0
SETTLE_SECONDS = 5.0
WAIT_SECONDS = 60.0
Lines = dict[int, list[Segment]]
Check = Callable[[Lines], bool]


def painted_lines(update: CompositorUpdate) -> Lines:
    """The segments a frame paints, by screen line (only the lines it touches)."""
    lines: Lines = {}
    if isinstance(update, LayoutUpdate):
        for y, strips in enumerate(update.strips, update.region.y):
            lines[y] = [segment for strip in strips for segment in strip]
    elif isinstance(update, ChopsUpdate):
        for y, _, _ in update.spans:
            lines[y] = [
                segment
                for strip in update.chops[y].values()
                if strip is not None
                for segment in strip
            ]
    return lines


def line_text(lines: Lines, y: int) -> str | None:
    segments = lines.get(y)
    return None if segments is None else "".join(segment.text for segment in segments)


@dataclass
class Press:
    key: str
    check: Check
    began: float = field(default_factory=time.perf_counter)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    took: float | None = None


class BenchConsole(QuasarApp):
    """The console, completing each frame as a terminal driver would and timing presses."""

    CSS_PATH = str(Path(inspect.getfile(QuasarApp)).with_name(str(QuasarApp.CSS_PATH)))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: Press | None = None
        self.frames = 0
        self.frame_chars = 0

    def _display(self, screen: Screen, renderable: Any) -> None:
        super()._display(screen, renderable)
        if not isinstance(renderable, CompositorUpdate) or self._batch_count:
            return
        self.frame_chars += len(renderable.render_segments(self.console))
        self.frames += 1
        press = self.pending
        if press is not None and press.check(painted_lines(renderable)):
            press.took = time.perf_counter() - press.began
            self.pending = None
            press.done.set()

    async def press(self, key: str, check: Check) -> float | None:
        """Post `key` the way the terminal driver does; seconds until a frame satisfies
        `check`, or None when none does within PRESS_TIMEOUT."""
        press = Press(key, check)
        self.pending = press
        event = events.Key(key, key)
        event.set_sender(self)
        assert self._driver is not None
        self._driver.send_message(event)
        try:
            async with asyncio.timeout(PRESS_TIMEOUT):
                await press.done.wait()
        except TimeoutError:
            self.pending = None
        return press.took


class CpuMeter:
    """CPU seconds of a process per wall second, between `start()` and `stop()`."""

    def __init__(self, pid: int | None = None) -> None:
        self.process = psutil.Process(pid)

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def start(self) -> None:
        self._cpu0, self._wall0 = self._cpu(), time.monotonic()

    def stop(self) -> float:
        return (self._cpu() - self._cpu0) / (time.monotonic() - self._wall0)


async def prepare(db: Database, data_dir: Path, symbols: int, rate: float) -> None:
    """SIMULATED offering `symbols` symbols at `rate` trades/s in total, all subscribed live."""
    registry = ProviderRegistry(db, Keyring.load_or_create(data_dir))
    await registry.ensure_bundled()
    await registry.set_preferences(
        PROVIDER,
        {
            "symbol_count": str(symbols),
            "ticks_per_second": repr(rate / symbols),
        },
    )
    provider = await registry.load(PROVIDER)
    try:
        await AssetStore(db).refresh(PROVIDER, provider)
    finally:
        await provider.aclose()
    listed = [a.symbol for a in await AssetStore(db).list(PROVIDER, limit=symbols)]
    await SubscriptionStore(db).add(PROVIDER, listed, "1min", "live")


async def wait_until(pilot: Pilot, condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while not condition():
                await pilot.pause(0.1)
    except TimeoutError:
        raise SystemExit(f"console benchmark: not within {WAIT_SECONDS:g} s: {what}") from None


def header_check(y: int, wanted: str) -> Check:
    def check(lines: Lines) -> bool:
        text = line_text(lines, y)
        return text is not None and wanted in text

    return check


def cursor_check(y: int, symbol: str, background: Any) -> Check:
    def check(lines: Lines) -> bool:
        return any(
            symbol in s.text and s.style is not None and s.style.bgcolor == background
            for s in lines.get(y, ())
        )

    return check


def next_press(app: BenchConsole, key: str) -> Check:
    """What the frame after `key` must paint, from the state before it."""
    titles = {"1": "Quasar · Dashboard", "6": "Quasar · Live"}
    if key in titles:
        return header_check(0, titles[key])
    table = app.screen.query_one(LiveTable)
    top = table.content_region.y
    if key in ("j", "k"):
        row = max(0, min(table.cursor + (1 if key == "j" else -1), len(table.order) - 1))
        y = top + 1 + row - int(table.scroll_offset.y)
        background = table.get_component_rich_style("live-table--cursor").bgcolor
        return cursor_check(y, table.order[row][1], background)
    column, reverse = table.sort_column, table.sort_reverse
    if key == "s":
        keys = (None, *COLUMN_KEYS)
        column = keys[(keys.index(column) + 1) % len(keys)]
    elif key == "S":
        column, reverse = column or COLUMN_KEYS[0], not reverse
    else:  # u: the user's own order
        column = None
    return header_check(top, header_text(column, reverse))


def header_text(column: str | None, reverse: bool) -> str:
    """The table header as LiveTable draws it for this sort (titles cut to their cells)."""
    arrow = " ▼" if reverse else " ▲"
    return "".join(_cell(c.title + (arrow if c.key == column else ""), c) for c in COLUMNS)


CYCLE = [*"jjjjjjjj", *"kkkkkkkk", *"sssSu", "1", "6"]
KINDS = {
    "j": "cursor",
    "k": "cursor",
    "s": "sort",
    "S": "sort",
    "u": "sort",
    "1": "mode",
    "6": "mode",
}


async def measure(
    app: BenchConsole, pilot: Pilot, window: float, cycles: int, daemon_pid: int | None
) -> dict[str, Any]:
    await wait_until(pilot, lambda: app.current_mode == "dashboard", "the dashboard")
    await pilot.press("6")
    assert isinstance(app.screen, LiveScreen)
    table = app.screen.query_one(LiveTable)
    book = app.services.book
    await wait_until(
        pilot,
        lambda: (
            len(table.order) >= len(book) > 0 and all(row.ticks > 0 for row in book.rows.values())
        ),
        "every symbol ticking in the Live table",
    )
    await pilot.pause(SETTLE_SECONDS)

    console, daemon = CpuMeter(), CpuMeter(daemon_pid) if daemon_pid else None
    ticks0, frames0, chars0 = book.total_ticks, app.frames, app.frame_chars
    began = time.monotonic()
    console.start()
    if daemon:
        daemon.start()
    await asyncio.sleep(window)
    watching = console.stop()
    daemon_share = daemon.stop() if daemon else None
    wall = time.monotonic() - began
    ticks_per_s = (book.total_ticks - ticks0) / wall
    fps = (app.frames - frames0) / wall
    chars_per_s = (app.frame_chars - chars0) / wall

    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    missed: list[str] = []
    console.start()
    for _ in range(cycles):
        for key in CYCLE:
            took = await app.press(key, next_press(app, key))
            if took is None:
                missed.append(key)
            else:
                latencies.append(took)
                by_kind.setdefault(KINDS[key], []).append(took * 1000)
            await asyncio.sleep(random.uniform(0.15, 0.35))
    interactive = console.stop()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "symbols": len(book),
        "ticks_per_s_seen": round(ticks_per_s),
        "frames_per_s": round(fps, 1),
        "terminal_chars_per_s": round(chars_per_s),
        "cpu_share_watching": round(watching, 3),
        "cpu_share_pressing": round(interactive, 3),
        **({"daemon_cpu_share": round(daemon_share, 3)} if daemon_share is not None else {}),
        "presses": len(latencies),
        "presses_not_shown": "".join(missed),
        "press_to_frame_ms": spread(ms),
        "press_to_frame_ms_by_kind": {kind: spread(sorted(v)) for kind, v in by_kind.items()},
    }


def spread(ms: list[float]) -> dict[str, float]:
    """p50, p95 and max of sorted milliseconds (p95: the value 95 % of presses stay within)."""
    return {
        "p50": round(statistics.median(ms), 1),
        "p95": round(ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)], 1),
        "max": round(ms[-1], 1),
    }


async def run_variant(
    db: Database, data_dir: Path, attached: bool, window: float, cycles: int
) -> dict[str, Any]:
    daemon: Daemon | None = None
    if attached:
        daemon = Daemon(db.dsn, data_dir, data_dir / "daemon.log", MarketClock(time.time()))
        deadline = time.monotonic() + 60
        while not await engine_running(db):
            if not daemon.alive() or time.monotonic() > deadline:
                raise SystemExit(f"the daemon did not start:\n{daemon.tail()}")
            await asyncio.sleep(0.2)

    @asynccontextmanager
    async def open_services(say: Say) -> AsyncIterator[Services]:
        async with Services.running(db, data_dir, say=say) as services:
            yield services

    app = BenchConsole(open_services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            figures = await measure(app, pilot, window, cycles, daemon.pid if daemon else None)
            if app.services.attached != attached:
                raise SystemExit("the console did not run the engine where it was meant to")
    finally:
        if daemon is not None:
            await daemon.stop()
    return figures


async def main(variants: list[str], symbols: int, rate: float, window: float, cycles: int) -> None:
    results: dict[str, Any] = {}
    load = round(os.getloadavg()[0], 2)
    async with scratch_database() as db:
        data_dir = db.server.data_dir
        assert data_dir is not None
        await prepare(db, data_dir, symbols, rate)
        for variant in variants:
            results[variant] = await run_variant(
                db, data_dir, variant == "attached", window, cycles
            )
    report(
        {
            "bench": "console",
            "load_1m_at_start": load,
            "symbols": symbols,
            "ticks_per_s_offered": rate,
            "size": f"{SIZE[0]}x{SIZE[1]}",
            **results,
            "targets": {"press_to_frame_p95_ms": 100, "cpu_share": 0.5},
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("attached", "in_process", "both"), default="both")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=float, default=5000.0, help="ticks/s in total")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of watching")
    parser.add_argument(
        "--cycles", type=int, default=6, help=f"rounds of the {len(CYCLE)} timed key presses"
    )
    a = parser.parse_args()
    chosen = ["attached", "in_process"] if a.variant == "both" else [a.variant]
    asyncio.run(main(chosen, a.symbols, a.rate, a.window, a.cycles))
