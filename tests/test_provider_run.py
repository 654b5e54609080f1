"""`quasar provider run` as an author uses it: the bundled KRAKEN provider, pointed at the
loopback Kraken REST fake, answers from inside its sandbox."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.kraken_rest import KrakenRestFake
from fakes.kraken_ws import KrakenMarket

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


async def _quasar(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """The real command in a subprocess, without blocking the loop the fake serves on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "quasar_tui",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def kraken(quasar_env: dict[str, str]) -> AsyncIterator[KrakenRestFake]:
    market = KrakenMarket(lambda: NOW)
    for minute, price in ((-3, 100.0), (-3, 101.0), (-2, 99.5)):
        market.record("BTC/USD", price, 0.5, NOW + timedelta(minutes=minute, seconds=5), "buy")
    fake = KrakenRestFake(market)
    url = await fake.start()
    code, _, err = await _quasar(quasar_env, "provider", "set", "KRAKEN", f"rest_url={url}")
    assert code == 0, err
    yield fake
    await fake.stop()


async def test_symbols_come_from_inside_the_sandbox(
    quasar_env: dict[str, str], kraken: KrakenRestFake
) -> None:
    code, out, err = await _quasar(quasar_env, "provider", "run", "KRAKEN", "symbols", "--json")
    assert code == 0, err
    assert {s["symbol"] for s in json.loads(out)} == {"BTC/USD", "ETH/USD", "DOGE/USD"}
    assert err.startswith("KRAKEN runs in its sandbox (isolation: ")
    assert kraken.calls("AssetPairs")


async def test_history_prints_the_closed_bars(
    quasar_env: dict[str, str], kraken: KrakenRestFake
) -> None:
    start = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    args = ["provider", "run", "KRAKEN", "history", "BTC/USD", "-i", "1min", "--from", start]
    code, out, err = await _quasar(quasar_env, *args)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["TS", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME", "TRADES"]
    first, second = (line.split() for line in lines[1:])
    stamp = (NOW - timedelta(minutes=3)).strftime("%H:%M:00")
    assert first[1:] == [stamp, "100", "101", "100", "101", "1", "2"]
    assert second[2:] == ["99.5", "99.5", "99.5", "99.5", "0.5", "1"]


async def test_a_provider_error_is_one_line(
    quasar_env: dict[str, str], kraken: KrakenRestFake
) -> None:
    args = ["provider", "run", "KRAKEN", "history", "NOPE/USD", "-i", "1min"]
    code, _, err = await _quasar(quasar_env, *args)
    assert code == 1
    assert err.splitlines()[-1] == (
        "quasar: error: KRAKEN: ValueError: Kraken has no pair 'NOPE/USD'"
    )
    assert "Traceback" not in err
