"""Helpers every test module shares: waiting on a condition, and the provider set-up steps.

Tests wait on what they assert, never on a duration: `until` polls a condition and its timeout
only bounds a hang, so a busy machine makes a test slower, not red.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
import pytest

from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.store.server import ServerInfo

HANG_SECONDS = 120.0
"""How long `until` waits before it calls a condition never reached: far beyond any slow
machine, only there so a hang fails the test instead of the session's timeout."""


def _sleep() -> Awaitable[None]:
    return asyncio.sleep(0.02)


async def until(
    check: Callable[[], Any],
    what: str = "the condition",
    *,
    hang_seconds: float = HANG_SECONDS,
    step: Callable[[], Awaitable[Any]] = _sleep,
    give_up: Callable[[], str | None] = lambda: None,
) -> Any:
    """Poll `check` (plain or async) until it returns something truthy, and return that.

    `step` lets the caller's world run between polls (a Textual pilot's pause); `give_up`
    says why waiting is pointless (a child process died) to fail at once with that reason."""
    try:
        async with asyncio.timeout(hang_seconds):
            while True:
                value = check()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                reason = give_up()
                if reason is not None:
                    raise AssertionError(f"{reason} before {what}")
                await step()
    except TimeoutError as exc:
        raise AssertionError(f"not reached within {hang_seconds:.0f} s: {what}") from exc


async def refresh_assets(registry: ProviderRegistry, name: str) -> ProviderRecord:
    """List a registered provider's assets as `quasar assets refresh` does."""
    instance = await registry.load(name)
    try:
        await AssetStore(registry.db).refresh(name, instance)
    finally:
        await instance.aclose()
    return await registry.get(name)


async def with_simulated(registry: ProviderRegistry, **preferences: str) -> ProviderRegistry:
    """The bundled providers registered and the simulated market's assets listed."""
    await registry.ensure_bundled()
    if preferences:
        await registry.set_preferences("SIMULATED", preferences)
    await refresh_assets(registry, "SIMULATED")
    return registry


def stop_server(info: ServerInfo, patience: float = 30.0) -> None:
    """Stop the session's embedded server now, whatever connections a failed test left open:
    fast shutdown (connections are cut, work is written), then immediate, then a kill."""
    if not info.embedded or info.data_dir is None:
        return
    pid_file = info.data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    except psutil.NoSuchProcess:
        return
    for sig, wait in ((signal.SIGINT, patience), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
        try:
            postmaster.send_signal(sig)
            postmaster.wait(wait)
            return
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            print(
                f"the test server did not stop within {wait:.0f} s of {sig.name}", file=sys.stderr
            )


#: A server named by QUASAR_TEST_DSN (say, one with TimescaleDB) instead of the embedded one.
EXTERNAL_DSN = os.environ.get("QUASAR_TEST_DSN") or None

requires_embedded = pytest.mark.skipif(
    EXTERNAL_DSN is not None,
    reason="assumes the plain embedded PostgreSQL; QUASAR_TEST_DSN points at another server",
)
