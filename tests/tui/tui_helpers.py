"""Helpers for console tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

WAIT_SECONDS = 20.0


async def wait_for(pilot: Pilot, condition: Callable[[], bool]) -> None:
    """Let the app run until `condition()` holds; fail after WAIT_SECONDS (a hang guard)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await pilot.pause(0.1)


async def started(pilot: Pilot) -> None:
    """Wait until the console has opened its services (it does so after its first frame is
    painted) and shows the Dashboard."""
    await wait_for(pilot, lambda: pilot.app.current_mode == "dashboard")
