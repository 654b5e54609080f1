"""The peer benchmark's parts: the loopback Binance aggTrade fake, followed both ways Binance
allows, and the third-party style provider the benchmark adds to Quasar for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import websockets
from fakes.binance import BinanceFake, symbol_name, trade_values

from quasar_tui.core.intervals import Interval
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.sdk import Tick

PROVIDER_FILE = Path(__file__).resolve().parent.parent / "bench/providers/binance_aggtrades.py"
T = 1_767_225_600.0  # 2026-01-01 00:00 UTC


async def test_the_aggtrade_provider_reads_the_fakes_trades_as_a_user_adds_it(
    registry: ProviderRegistry,
) -> None:
    fake = BinanceFake(3, clock=lambda: T)
    ws_url, rest_url = await fake.start()
    try:
        record = await registry.add(PROVIDER_FILE)
        await registry.set_preferences(record.name, {"ws_url": ws_url, "rest_url": rest_url})
        provider = await registry.load(record.name)
        await AssetStore(registry.db).refresh(record.name, provider)
        listed = [a.symbol for a in await AssetStore(registry.db).list(record.name)]
        assert listed == [symbol_name(i) for i in range(3)]

        conn = await provider._connect()
        combined = await websockets.connect(f"{ws_url}/stream?streams=q001usdt@aggTrade")
        try:
            await conn.send(json.dumps(await provider._subscribe(Interval.M1, listed[:2])))
            assert await provider._parse_message(await conn.recv()) == []  # the answer
            assert fake.following() == 3
            report = await fake.pump(rate=400.0, duration=0.05)
            raw = [await provider._parse_message(await conn.recv()) for _ in range(2)]
            wrapped = json.loads(await combined.recv())
        finally:
            await conn.close()
            await combined.close()
            await provider.aclose()
    finally:
        await fake.stop()

    assert report.messages >= 3  # symbol after symbol: Q000, Q001, Q002, ...
    at = datetime.fromtimestamp(T, UTC)
    expected = []
    for i in range(2):
        prices, sizes = trade_values(i)  # trade 1 of each: the buyer made the book, a sell
        expected.append([Tick(symbol_name(i), at, float(prices[1]), float(sizes[1]), "sell", 1)])
    assert raw == expected
    assert wrapped["stream"] == "q001usdt@aggTrade"
    assert wrapped["data"]["s"] == "Q001USDT" and wrapped["data"]["a"] == 1
