"""The Python API for notebooks and scripts: stored data by series name, as data frames.

    import quasar_tui
    q = quasar_tui.open()                     # the same data dir (or --dsn) the console uses
    q.bars("BTC/USD", "1h", start="2026-11-01")

It reads through the same read layer as the console and `quasar bars`, shares the embedded
server with a running daemon or console, and never takes the engine's lock. `AsyncQuasar` is the
same for code that already runs an event loop; `Quasar` runs one of its own in a thread, so it
also works inside Jupyter, whose loop is already running.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from quasar_tui.core.moments import Moment, moment
from quasar_tui.frames import Shape, fields, table
from quasar_tui.quality.flags import judging_reader
from quasar_tui.registry.mappings import MappingRecord, MappingStore
from quasar_tui.store.database import Database, open_database
from quasar_tui.store.read import OpenGap, ReadBar, ReadTick, Source
from quasar_tui.store.series import Series, all_series
from quasar_tui.store.server import resolve_data_dir, resolve_dsn

T = TypeVar("T")

_BAR_COLUMNS = fields(ReadBar)
_TICK_COLUMNS = fields(ReadTick)


class AsyncQuasar:
    """Stored data by series name: `BTC/USD` (in its provider order) or `PROVIDER:SYMBOL`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.reader = judging_reader(db)

    async def bars(
        self,
        series: str,
        interval: str,
        start: Moment = None,
        end: Moment = None,
        *,
        provider: str | None = None,
        source: Source = "both",
        limit: int = 1_000_000,
        quality: float | None = None,
        as_: Shape = "pandas",
    ) -> Any:
        """Bars with `start <= ts < end`, oldest first; intervals not collected are derived.

        `quality` (0 to 1) leaves out bars whose quality flags score below it: 1 keeps
        unflagged bars only (see `quasar quality`)."""
        read = await self.reader.bars(
            series,
            interval,
            moment(start),
            moment(end),
            provider=provider,
            source=source,
            limit=limit,
            min_quality=quality,
        )
        return table(
            read.bars,
            _BAR_COLUMNS,
            as_,
            index="ts",
            extra={"provider": read.series.provider},
        )

    async def ticks(
        self,
        series: str,
        start: Moment = None,
        end: Moment = None,
        *,
        provider: str | None = None,
        limit: int = 1_000_000,
        as_: Shape = "pandas",
    ) -> Any:
        read = await self.reader.ticks(
            series, moment(start), moment(end), provider=provider, limit=limit
        )
        return table(
            read.ticks, _TICK_COLUMNS, as_, index="ts", extra={"provider": read.series.provider}
        )

    async def symbols(self, *, as_: Shape = "pandas") -> Any:
        """Common symbols with their providers (best first), then unmapped subscribed series."""
        return table(await all_series(self.db), fields(Series), as_)

    async def mappings(self, *, as_: Shape = "pandas") -> Any:
        return table(await MappingStore(self.db).list(), fields(MappingRecord), as_)

    async def gaps(
        self, series: str | None = None, *, provider: str | None = None, as_: Shape = "pandas"
    ) -> Any:
        """Spans that should hold bars and do not yet, of one series or of all."""
        return table(await self.reader.gaps(series, provider=provider), fields(OpenGap), as_)

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> AsyncQuasar:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_async(
    data_dir: str | os.PathLike[str] | None = None, dsn: str | None = None
) -> AsyncQuasar:
    """Open the database the console would use (`dsn`, `QUASAR_DSN`, else the data dir's)."""
    db = await open_database(resolve_dsn(dsn), resolve_data_dir(data_dir), max_size=4)
    return AsyncQuasar(db)


class Quasar:
    """`AsyncQuasar` for plain (blocking) code: each call waits for its result."""

    def __init__(self, data_dir: str | os.PathLike[str] | None, dsn: str | None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="quasar-api", daemon=True
        )
        self._thread.start()
        try:
            self._api = self._wait(open_async(data_dir, dsn))
        except BaseException:
            self._stop_loop()
            raise

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def bars(
        self, series: str, interval: str, start: Moment = None, end: Moment = None, **kw: Any
    ) -> Any:
        return self._wait(self._api.bars(series, interval, start, end, **kw))

    def ticks(self, series: str, start: Moment = None, end: Moment = None, **kw: Any) -> Any:
        return self._wait(self._api.ticks(series, start, end, **kw))

    def symbols(self, **kw: Any) -> Any:
        return self._wait(self._api.symbols(**kw))

    def mappings(self, **kw: Any) -> Any:
        return self._wait(self._api.mappings(**kw))

    def gaps(self, series: str | None = None, **kw: Any) -> Any:
        return self._wait(self._api.gaps(series, **kw))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._wait(self._api.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Quasar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open(  # noqa: A001 - the public `quasar_tui.open()`, named like `gzip.open`
    data_dir: str | os.PathLike[str] | None = None, dsn: str | None = None
) -> Quasar:
    """Open the database the console would use, for blocking calls (scripts, notebooks)."""
    return Quasar(data_dir, dsn)
