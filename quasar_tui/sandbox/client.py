"""The engine's side of a provider host: start it, talk to it, stop or kill it.

`ProviderHost` mirrors the provider API (`fetch_available_symbols`, `get_history`,
`get_trades`, live subscriptions) so the engine can use it where it used a provider instance.
The host's stdout and stderr go to this process's log, marked with the provider's name and
rate-limited; its private directory is removed when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from quasar_tui.core.errors import QuasarError
from quasar_tui.core.intervals import Interval
from quasar_tui.sandbox import confine
from quasar_tui.sandbox.protocol import (
    Bars,
    Cancel,
    Done,
    Failed,
    FromHost,
    History,
    ListSymbols,
    Live,
    LogLine,
    Msg,
    Observing,
    Ping,
    Pong,
    Ready,
    Start,
    State,
    Stop,
    Subscribe,
    Symbols,
    TickBatch,
    Trades,
    decoder,
    frame,
    read_frame,
)
from quasar_tui.sdk.models import Bar, RateBudget, SymbolInfo, Tick
from quasar_tui.sdk.settings import Setting

HOST_MODULE = "quasar_tui.sandbox.host"
PRIVATE_PREFIX = "quasar-host-"
START_TIMEOUT = 20.0
REQUEST_QUEUE = 64  # frames of one answer held before the host is made to wait
LIVE_QUEUE = 256
LINES_PER_WINDOW = 20  # stdout/stderr lines logged per provider per window
LINE_WINDOW = 10.0


MEMORY_PREFERENCE = "memory_mib"
#: Preferences every provider has, whatever its own schema: they set up its sandbox.
SANDBOX_SETTINGS = {
    MEMORY_PREFERENCE: Setting(
        "int",
        1024,
        "address-space limit of the provider's sandbox, in MiB (the host is restarted with it)",
        min=256,
        max=65536,
    )
}


def memory_mib(preferences: Mapping[str, Any]) -> int:
    """The address-space limit a provider's preferences ask for."""
    return int(preferences.get(MEMORY_PREFERENCE, SANDBOX_SETTINGS[MEMORY_PREFERENCE].default))


class HostError(QuasarError):
    """The host failed to start, exited, or a request failed in it; the message is one line,
    "NAME: reason". `reason` is the part without the provider's name, for callers that name
    the provider themselves."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass(frozen=True)
class HostSpec:
    """What one host gets: the provider's code and only its own preferences and secrets."""

    name: str
    source: str
    filename: str
    preferences: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    memory_mib: int = 1024
    network: bool = True

    def __repr__(self) -> str:  # secrets never reach a log through repr
        return f"HostSpec(name={self.name!r}, secrets={sorted(self.secrets)})"


def sweep_stale(root: Path) -> list[Path]:
    """Remove the private directories of hosts whose engine was killed before it could (the
    directory names carry the engine's pid); return them."""
    removed = []
    for path in root.glob(f"{PRIVATE_PREFIX}*-*"):
        pid_text = path.name.removeprefix(PRIVATE_PREFIX).split("-", 1)[0]
        try:
            owned = path.is_dir() and path.stat().st_uid == os.getuid()
        except OSError:
            continue
        if owned and pid_text.isdigit() and not psutil.pid_exists(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class _LineLog:
    """A host's output lines into the log, at most LINES_PER_WINDOW per LINE_WINDOW seconds."""

    def __init__(self, name: str, stream: str, log: logging.Logger) -> None:
        self.name = name
        self.stream = stream
        self.log = log
        self.last = ""
        self._window = 0.0
        self._count = 0
        self._dropped = 0

    def add(self, line: str) -> None:
        self.last = line[:300]
        now = time.monotonic()
        if now - self._window >= LINE_WINDOW:
            self.close()
            self._window, self._count = now, 0
        self._count += 1
        if self._count > LINES_PER_WINDOW:
            self._dropped += 1
            return
        self.log.warning("%s %s: %s", self.name, self.stream, line[:2000])

    def close(self) -> None:
        """Say how many lines were left out of the last window."""
        if self._dropped:
            self.log.warning("%s: %d %s lines not logged", self.name, self._dropped, self.stream)
            self._dropped = 0


class ProviderHost:
    def __init__(self, spec: HostSpec, *, log: logging.Logger | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.log = log or logging.getLogger(f"quasar.provider.{spec.name}")
        self.ready: Ready | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self._lines = {s: _LineLog(spec.name, s, self.log) for s in ("stdout", "stderr")}
        self._writer: asyncio.StreamWriter | None = None
        self._private: Path | None = None
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Queue[Msg]] = {}
        self._live: asyncio.Queue[Live | State] = asyncio.Queue(LIVE_QUEUE)
        self._ready: asyncio.Future[Ready] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._exit_error: str | None = None
        self._budget: RateBudget | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def backlogged(self) -> bool:
        """Whether the engine is behind on the live feed: the host's frames (a pong among
        them) then wait in the pipe, and a missed ping says nothing about the host."""
        return self._live.full()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, limit: float = START_TIMEOUT) -> Ready:
        """Spawn the host, hand it the code and secrets, and wait until it has imported them."""
        sweep_stale(Path(tempfile.gettempdir()))
        self._private = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-"))
        ours, theirs = socket.socketpair()
        self._exit_error = None
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self._argv(theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=confine.scrubbed_env(self._private),
                cwd=self._private,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_connection(sock=ours, limit=1024 * 1024)
        self._ready = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._read(reader), name=f"host:{self.name}:read"),
            asyncio.create_task(self._drain("stdout", self.proc.stdout)),
            asyncio.create_task(self._drain("stderr", self.proc.stderr)),
        ]
        spec = self.spec
        with contextlib.suppress(ConnectionError, HostError):  # the reader reports the exit
            await self._send(Start(spec.source, spec.filename, spec.preferences, spec.secrets))
        try:
            self.ready = await asyncio.wait_for(asyncio.shield(self._ready), limit)
        except TimeoutError:
            await self.kill()
            raise HostError(f"{self.name}: did not start within {limit:g} s") from None
        except HostError:
            await self.kill()
            raise
        return self.ready

    def _argv(self, fd: int) -> list[str]:
        network = "--network" if self.spec.network else "--no-network"
        return [
            sys.executable,
            "-P",
            "-m",
            HOST_MODULE,
            "--fd",
            str(fd),
            "--private",
            str(self._private),
            "--memory-mib",
            str(self.spec.memory_mib),
            network,
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Ask the host to close its provider and exit; kill it if it does not."""
        if self.running and self._writer is not None:
            with contextlib.suppress(ConnectionError):
                await self._send(Stop())
            with contextlib.suppress(TimeoutError):
                # `running` above says the process is there.
                await asyncio.wait_for(self.proc.wait(), grace)  # type: ignore[union-attr]
        await self.kill()

    async def kill(self) -> None:
        """SIGKILL the host's whole session (anything it started dies with it) and clean up."""
        if self.proc is not None:
            self._kill_session()
            await self.proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None

    def _kill_session(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def wait(self) -> str:
        """Wait for the host to exit; return its exit as one line (with its last output)."""
        assert self.proc is not None
        await self.proc.wait()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task], timeout=1.0)
        return self._describe_exit()

    async def ping(self, within: float) -> bool:
        """Whether the host's event loop answers within `within` seconds. A host that has
        exited raises HostError instead: it did not hang, and its exit says what happened."""
        rid = next(self._ids)
        queue = self._answers[rid] = asyncio.Queue(1)
        try:
            await self._send(Ping(rid))
            answer = await asyncio.wait_for(queue.get(), within)
        except TimeoutError:
            return False
        except ConnectionError as exc:
            raise HostError(f"{self.name}: the provider host closed its pipe") from exc
        finally:
            self._answers.pop(rid, None)
        if isinstance(answer, Failed):  # the host exited while the ping waited
            raise HostError(f"{self.name}: {answer.error}", answer.error)
        return True

    # -- the provider API ----------------------------------------------------------------------

    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        items: list[SymbolInfo] = []
        async for answer in self._request(lambda rid: ListSymbols(rid)):
            if isinstance(answer, Symbols):
                items.extend(answer.items)
        return items

    def rate_budget(self) -> RateBudget | None:
        """What the provider's rate limit still allowed when its host last answered."""
        return self._budget

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        async for answer in self._request(lambda rid: History(rid, sym, start, end, interval)):
            if isinstance(answer, Bars):
                for bar in answer.items:
                    yield bar

    async def get_trades(self, sym: str, since: datetime) -> AsyncIterator[Tick]:
        async for answer in self._request(lambda rid: Trades(rid, sym, since)):
            if isinstance(answer, TickBatch):
                for tick in answer.items:
                    yield tick

    async def set_subscriptions(self, subs: Mapping[str, Iterable[Interval | str]]) -> None:
        """The whole live set (symbol -> intervals); the host's feed follows it."""
        await self._send(Subscribe({s: [Interval(i) for i in ivs] for s, ivs in subs.items()}))

    async def observing(self) -> None:
        """The engine marked where its series are observed from: the feed may subscribe."""
        await self._send(Observing())

    async def live(self) -> AsyncIterator[Live | State]:
        """Live record batches and feed state changes, until the host exits."""
        while True:
            item = await self._live.get()
            yield item

    # -- plumbing ------------------------------------------------------------------------------

    async def _send(self, message: Msg) -> None:
        if self._writer is None or not self.running:
            raise HostError(self._exit_error or f"{self.name}: the provider host is not running")
        self._writer.write(frame(message))
        await self._writer.drain()

    async def _request(self, build: Any) -> AsyncIterator[Msg]:
        rid = next(self._ids)
        queue: asyncio.Queue[Msg] = asyncio.Queue(REQUEST_QUEUE)
        self._answers[rid] = queue
        finished = False
        try:
            await self._send(build(rid))
            while True:
                answer = await queue.get()
                if isinstance(answer, Done):
                    finished = True
                    return
                if isinstance(answer, Failed):
                    finished = True
                    raise HostError(f"{self.name}: {answer.error}", answer.error)
                yield answer
        finally:
            self._answers.pop(rid, None)
            if not finished and self.running:
                with contextlib.suppress(ConnectionError, HostError):
                    await self._send(Cancel(rid))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decode = decoder(FromHost)
        try:
            while (body := await read_frame(reader)) is not None:
                await self._dispatch(decode.decode(body))
        except ConnectionResetError:
            self._kill_session()  # it exited mid-write: its exit, described below, says why
        except Exception as exc:
            # Provider code can write to the pipe too: one bad frame and the host is gone.
            self.log.warning("%s: unreadable output from the host, killing it: %s", self.name, exc)
            self._kill_session()
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 2.0)
        self._exit_error = self._describe_exit()
        self._fail_all(self._exit_error)

    async def _dispatch(self, message: Msg) -> None:
        if isinstance(message, Live | State):
            await self._live.put(message)
        elif isinstance(message, LogLine):
            self.log.log(message.level, "%s: %s", self.name, message.line)
        elif isinstance(message, Ready):
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message)
        elif isinstance(message, Failed) and message.id == 0:
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(HostError(f"{self.name}: {message.error}"))
            else:
                self.log.warning("%s: %s", self.name, message.error)
        elif isinstance(message, Pong | Symbols | Bars | TickBatch | Done | Failed):
            if isinstance(message, Bars | Done) and message.budget is not None:
                self._budget = message.budget
            queue = self._answers.get(message.id)
            if queue is not None:
                await queue.put(message)

    def _fail_all(self, error: str) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(HostError(error))
        for rid, queue in list(self._answers.items()):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(Failed(rid, error.removeprefix(f"{self.name}: ")))
        if self._live.full():
            self._live.get_nowait()
        self._live.put_nowait(State("exited", error))

    def _describe_exit(self) -> str:
        code = self.proc.returncode if self.proc else None
        if code is None:
            how = "closed its pipe"
        elif code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        last_line = self._lines["stderr"].last or self._lines["stdout"].last
        last = f": {last_line}" if last_line else ""
        return f"{self.name}: the provider host {how}{last}"

    async def _drain(self, stream: str, pipe: asyncio.StreamReader | None) -> None:
        if pipe is None:
            return
        lines = self._lines[stream]
        while True:
            try:
                line = await pipe.readline()
            except ValueError:  # a line longer than the reader's limit: take a piece of it
                line = await pipe.read(64 * 1024)
            if not line:
                lines.close()
                return
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                lines.add(text)
