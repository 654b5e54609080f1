"""Helpers for console tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers import until
from textual.pilot import Pilot


async def wait_for(pilot: Pilot, condition: Callable[[], Any], what: str = "the condition") -> Any:
    """Let the app run until `condition()` (plain or async) holds; returns its value."""
    return await until(condition, what, step=lambda: pilot.pause(0.1))


async def started(pilot: Pilot) -> None:
    """Wait until the console has opened its services (it does so after its first frame is
    painted) and shows the Dashboard."""
    await wait_for(pilot, lambda: pilot.app.current_mode == "dashboard")
