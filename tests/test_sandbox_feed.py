"""The live feed loop's hand-over to the engine, against the loopback Binance aggTrade stream
(one trade a message): a busy stream goes out in few batches with every trade in order, and a
trade after a quiet spell goes out on its own, without waiting for more."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.binance import BinanceFake, symbol_name

from quasar_tui.core.intervals import Interval
from quasar_tui.sandbox import loader
from quasar_tui.sandbox.feed import HAND_ON_EVERY, LiveFeed
from quasar_tui.sandbox.protocol import Live, Msg, State
from quasar_tui.sdk import HttpClient, ProviderContext

PROVIDER_FILE = Path(__file__).resolve().parent.parent / "bench/providers/binance_aggtrades.py"
SYMBOLS = 5


class Engine:
    """What the feed hands on, as the engine gets it, with when each batch came."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, Live]] = []
        self.connected = asyncio.Event()

    async def send(self, message: Msg) -> None:
        if isinstance(message, Live):
            self.batches.append((time.monotonic(), message))
        elif isinstance(message, State) and message.state == "connected":
            self.connected.set()

    def trade_ids(self) -> dict[str, list[int]]:
        seen: dict[str, list[int]] = {}
        for _, batch in self.batches:
            for tick in batch.ticks:
                assert tick.trade_id is not None
                seen.setdefault(tick.symbol, []).append(tick.trade_id)
        return seen

    def ticks(self) -> int:
        return sum(len(batch.ticks) for _, batch in self.batches)


@pytest.fixture
async def fake() -> AsyncIterator[BinanceFake]:
    server = BinanceFake(SYMBOLS)
    await server.start()
    yield server
    await server.stop()


async def _following(fake: BinanceFake, engine: Engine) -> LiveFeed:
    source = PROVIDER_FILE.read_text()
    sha = loader.sha256_hex(source.encode())
    info = loader.load_class(source, sha, provider="BINANCE_AGGTRADES")
    context = ProviderContext(preferences={"ws_url": fake.ws_url}, http=HttpClient())
    feed = LiveFeed(info.cls(context), engine.send)
    await feed.set_subscriptions({symbol_name(i): [Interval.M1] for i in range(SYMBOLS)})
    await asyncio.wait_for(engine.connected.wait(), 30)
    feed.observing()
    for _ in range(300):
        if fake.following() == SYMBOLS:
            return feed
        await asyncio.sleep(0.1)
    raise AssertionError("the feed never subscribed")


async def _received(engine: Engine, ticks: int) -> None:
    for _ in range(600):
        if engine.ticks() >= ticks:
            return
        await asyncio.sleep(0.05)


async def test_a_busy_stream_goes_out_in_few_batches_with_every_trade_in_order(
    fake: BinanceFake,
) -> None:
    engine = Engine()
    feed = await _following(fake, engine)
    try:
        sent = await fake.pump(rate=5_000.0, duration=1.0)
        await _received(engine, sent.messages)
    finally:
        await feed.stop(report=False)

    ids = engine.trade_ids()
    assert sum(map(len, ids.values())) == sent.messages
    for symbol, trades in ids.items():  # each symbol's trades once each, as sent
        assert trades == list(range(1, len(trades) + 1)), symbol
    times = [at for at, batch in engine.batches if batch.ticks]
    assert all(b - a >= HAND_ON_EVERY * 0.99 for a, b in itertools.pairwise(times))
    assert len(times) < sent.messages / 5  # not a batch per message


async def test_a_trade_after_a_quiet_spell_goes_out_without_waiting_for_more(
    fake: BinanceFake,
) -> None:
    engine = Engine()
    feed = await _following(fake, engine)
    try:
        for expected in (1, 2):  # one trade, then nothing: it is handed on by itself
            await fake.pump(rate=2.0, duration=0.75)
            await _received(engine, expected)
            assert engine.ticks() == expected
            await asyncio.sleep(2 * HAND_ON_EVERY)
    finally:
        await feed.stop(report=False)
    assert [len(batch.ticks) for _, batch in engine.batches if batch.ticks] == [1, 1]
