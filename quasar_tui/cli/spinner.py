"""A spinner on stderr while a command waits on something slow (a provider, a validation child,
a large query), so a terminal user knows what is being waited for. Nothing when stderr is not a
terminal, so logs and pipes stay clean."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from quasar_tui.core.text import printable

_FRAMES = "|/-\\"
_PERIOD = 0.125
_DELAY = 0.25


async def _spin(what: str) -> None:
    await asyncio.sleep(_DELAY)
    frame = 0
    while True:
        sys.stderr.write(f"\r{_FRAMES[frame % len(_FRAMES)]} {what}\x1b[K")
        sys.stderr.flush()
        frame += 1
        await asyncio.sleep(_PERIOD)


@contextlib.asynccontextmanager
async def waiting(what: str) -> AsyncIterator[None]:
    """Show `| what...` on a terminal's stderr until the block ends, then erase it."""
    if not sys.stderr.isatty():
        yield
        return
    task = asyncio.create_task(_spin(printable(what) + "..."))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
