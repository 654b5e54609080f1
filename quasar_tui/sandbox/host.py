"""The provider host: a process that confines itself, then imports and runs one provider.

Run as `python -m quasar_tui.sandbox.host --fd N --private DIR ...` by `ProviderHost`. It applies
`confine` before reading anything from the engine, then reads the `Start` frame (code,
preferences, secrets) from its socket, imports the code, and answers requests until `Stop` or the
end of its socket. It has no database, no data dir and no master key path.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec

from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.sandbox import confine, loader
from quasar_tui.sandbox.feed import LiveFeed
from quasar_tui.sandbox.loader import InvalidProviderError
from quasar_tui.sandbox.protocol import (
    Bars,
    Cancel,
    Done,
    Failed,
    History,
    ListSymbols,
    LogLine,
    Msg,
    Observing,
    Ping,
    Pong,
    Profile,
    Ready,
    Start,
    Stop,
    Subscribe,
    Symbols,
    TickBatch,
    ToHost,
    Trades,
    decoder,
    frame,
    read_frame,
)
from quasar_tui.sandbox.stall import StallWatch
from quasar_tui.sdk.abilities import HistorySource, TradeSource
from quasar_tui.sdk.base import DataProvider, LiveDataProvider
from quasar_tui.sdk.context import ProviderContext
from quasar_tui.sdk.http import HttpClient
from quasar_tui.sdk.models import RateBudget

BATCH = 500  # records per frame for history and trades
BATCH_SECONDS = 0.25  # a slower provider's records go out at least this often (progress moves)
PIPE_BUFFER = 4 * 1024 * 1024
LOG_BUFFER_LIMIT = 1024 * 1024  # log lines are dropped while this much output waits
HELD_AFTER_FAILURE = 0.75  # of the memory limit, still held after a MemoryError: a leak


class _PipeLog(logging.Handler):
    """Provider log records as `LogLine` frames; dropped rather than queued when the engine
    is not reading."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__(logging.INFO)
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        transport = self._writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > LOG_BUFFER_LIMIT:
            return
        self._writer.write(frame(LogLine(record.levelno, self.format(record)[:2000])))


def out_of_memory(memory_mib: int) -> Callable[[BaseException], None]:
    """What the host does when provider code runs out of memory. One allocation too big fails
    its call and nothing more; but when the memory is still held afterwards (a leak), the
    host says so on stderr (the engine's last line of it) and exits, to be restarted."""

    def fatal(exc: BaseException) -> None:
        if address_space() < HELD_AFTER_FAILURE * memory_mib * 2**20:
            return
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" at {where[0].filename}:{where[0].lineno}" if where else ""
        sys.stderr.write(f"ran out of its {memory_mib} MiB memory limit{at}; exiting\n")
        sys.stderr.flush()
        os._exit(1)

    return fatal


def address_space() -> int:
    """Bytes of address space this process holds now (its own /proc entry stays readable)."""
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


class Host:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, memory_mib: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._fatal = out_of_memory(memory_mib)
        self.provider: DataProvider | None = None
        self.feed: LiveFeed | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._decode = decoder(ToHost)

    async def send(self, message: Msg) -> None:
        self.writer.write(frame(message))
        await self.writer.drain()

    async def start(self, isolation: str) -> bool:
        body = await read_frame(self.reader)
        if body is None:
            return False
        start = self._decode.decode(body)
        if not isinstance(start, Start):
            await self.send(Failed(0, "the first message was not Start"))
            return False
        try:
            self.provider, ready = self._load(start, isolation)
        except InvalidProviderError as exc:
            await self.send(Failed(0, exc.reason))
            return False
        except Exception as exc:
            await self.send(Failed(0, f"failed to start: {one_line(exc)}"))
            return False
        if isinstance(self.provider, LiveDataProvider):
            self.feed = LiveFeed(self.provider, self.send, on_fatal=self._fatal)
        await self.send(ready)
        return True

    def _load(self, start: Start, isolation: str) -> tuple[DataProvider, Ready]:
        code = loader.compile_source(start.source, start.filename)
        sha = loader.sha256_hex(start.source.encode("utf-8"))
        try:
            module = loader.run_module(code, start.source, loader.module_name_for(sha))
        except Exception as exc:
            raise InvalidProviderError(loader.explain_import_failure(exc, start.filename)) from None
        info = loader.inspect_module(module)
        defaults = {key: s.default for key, s in info.cls.settings().items()}
        log = logging.getLogger(f"quasar.provider.{info.name}")
        log.addHandler(_PipeLog(self.writer))
        log.setLevel(logging.INFO)
        context = ProviderContext(
            secrets=start.secrets,
            preferences={**defaults, **start.preferences},
            http=HttpClient(info.cls.RATE_LIMIT, info.cls.CONCURRENCY),
            logger=log,
        )
        provider = info.cls(context)
        ready = Ready(
            info.name,
            info.kind,
            info.cls.__name__,
            isolation,
            info.capabilities,
            profile_of(provider, info.kind),
        )
        return provider, ready

    async def serve(self) -> None:
        while True:
            body = await read_frame(self.reader)
            if body is None:
                return
            message = self._decode.decode(body)
            if isinstance(message, Stop):
                return
            if isinstance(message, Ping):
                await self.send(Pong(message.id))
            elif isinstance(message, Cancel):
                task = self._tasks.pop(message.id, None)
                if task is not None:
                    task.cancel()
            elif isinstance(message, Subscribe):
                await self._subscribe(message)
            elif isinstance(message, Observing):
                if self.feed is not None:
                    self.feed.observing()
            elif isinstance(message, ListSymbols | History | Trades):
                self._tasks[message.id] = asyncio.create_task(self._answer(message))

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self.feed is not None:
            await self.feed.stop(report=False)
        if self.provider is not None:
            await self.provider.aclose()

    async def _subscribe(self, message: Subscribe) -> None:
        if self.feed is None:
            await self.send(Failed(0, "not a live provider: it has no live feed"))
            return
        await self.feed.set_subscriptions(message.subs)

    async def _answer(self, request: ListSymbols | History | Trades) -> None:
        try:
            if isinstance(request, ListSymbols):
                # Requests are served only once start() has loaded the provider.
                items = await self.provider.fetch_available_symbols()  # type: ignore[union-attr]
                await self.send(Symbols(request.id, list(items)))
            elif isinstance(request, History):
                await self._stream(self._bars(request.id), self._history(request))
            else:
                await self._stream(
                    lambda batch: TickBatch(request.id, batch), self._trades(request)
                )
            await self.send(Done(request.id, self._budget()))
        except asyncio.CancelledError:
            raise
        except MemoryError as exc:
            self._fatal(exc)
            await self.send(Failed(request.id, one_line(exc)))
        except Exception as exc:
            await self.send(Failed(request.id, one_line(exc)))
        finally:
            self._tasks.pop(request.id, None)

    def _history(self, request: History) -> AsyncIterator[Any]:
        if not isinstance(self.provider, HistorySource):
            raise NotImplementedError("this provider has no get_history")
        return self.provider.get_history(
            request.symbol, request.start, request.end, request.interval
        )

    def _trades(self, request: Trades) -> AsyncIterator[Any]:
        if not isinstance(self.provider, TradeSource):
            raise NotImplementedError("this provider has no get_trades")
        return self.provider.get_trades(request.symbol, request.since)

    def _budget(self) -> RateBudget | None:
        return self.provider.rate_budget() if self.provider is not None else None

    def _bars(self, rid: int) -> Callable[[list[Any]], Msg]:
        """Batches of bars, each with the rate budget left as it goes out."""
        return lambda batch: Bars(rid, batch, self._budget())

    async def _stream(self, message: Callable[[list[Any]], Msg], items: AsyncIterator) -> None:
        batch: list[Any] = []
        loop = asyncio.get_running_loop()
        due = loop.time() + BATCH_SECONDS
        async for item in items:
            batch.append(item)
            if len(batch) >= BATCH or loop.time() >= due:
                await self.send(message(batch))
                batch = []
                due = loop.time() + BATCH_SECONDS
        if batch:
            await self.send(message(batch))


def profile_of(provider: DataProvider, kind: str) -> Profile:
    """What the engine plans with, read from the instance it never sees."""
    live = provider if isinstance(provider, LiveDataProvider) else None
    intervals = getattr(provider, "INTERVALS", None)
    max_range = getattr(provider, "MAX_RANGE", None) or {}
    return Profile(
        kind=kind,
        has_history=isinstance(provider, HistorySource),
        has_trades=isinstance(provider, TradeSource),
        fills_trades=live is not None and live.fills_trades,
        bars_have_close_flag=live is not None and bool(live.BARS_HAVE_CLOSE_FLAG),
        intervals=None if intervals is None else [Interval(i) for i in intervals],
        max_range={Interval(i): span.total_seconds() for i, span in max_range.items()},
    )


async def _main(fd: int, isolation: str, memory_mib: int) -> None:
    sock = socket.socket(fileno=fd)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER)
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024 * 1024)
    # Room for a few batches in flight, so the feed keeps parsing while the engine reads.
    writer.transport.set_write_buffer_limits(high=PIPE_BUFFER)
    StallWatch(asyncio.get_running_loop()).start()
    host = Host(reader, writer, memory_mib)
    try:
        if await host.start(isolation):
            await host.serve()
    except (ConnectionError, msgspec.DecodeError) as exc:
        sys.stderr.write(f"host: the engine's pipe failed: {one_line(exc)}\n")
    finally:
        await host.close()
        await writer.drain()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="quasar-provider-host")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--private", type=Path, required=True)
    parser.add_argument("--memory-mib", type=int, default=1024)
    parser.add_argument("--network", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    os.chdir(args.private)
    isolation = confine.apply(
        confine.Policy(private=args.private, network=args.network, memory_mib=args.memory_mib)
    )
    try:
        asyncio.run(_main(args.fd, isolation, args.memory_mib))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # threads the provider left behind must not keep the host alive


if __name__ == "__main__":
    main()
