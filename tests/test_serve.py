"""`quasar serve` against the real server on loopback: every endpoint equals the read layer,
keys and scopes, the rate limit, the cache dropped when bars are announced, the stream, and
bad parameters answered with the parameter named."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pyarrow
import pytest
import websockets
from serve_rig import Api, running_api
from test_read import mapped, random_bars, store

from quasar_tui.client import AsyncQuasar
from quasar_tui.engine.events import BarsWritten, EventBus, TickEvent
from quasar_tui.engine.lock import EngineOwner
from quasar_tui.engine.publisher import Publisher
from quasar_tui.engine.status import report_dict, status_report
from quasar_tui.registry.secrets import Keyring
from quasar_tui.sdk.models import Tick
from quasar_tui.serve.app import ServeOptions, create_app
from quasar_tui.serve.bind import Bind
from quasar_tui.serve.cache import Answer, AnswerCache
from quasar_tui.serve.metrics import ServerMetrics
from quasar_tui.serve.problems import Problem
from quasar_tui.serve.server import serve
from quasar_tui.serve.stream import Hub, StreamClient
from quasar_tui.serve.tickets import TICKET_SECONDS, Offered, TicketBook, offered
from quasar_tui.store.announce import CHANNEL, Written, announce_written, decode
from quasar_tui.store.database import Database
from quasar_tui.store.read import Reader

START = datetime(2026, 10, 30, tzinfo=UTC)
MINUTES = random_bars(START, 3 * 1440, timedelta(minutes=1), 11)


@pytest.fixture
async def collected(db: Database) -> Database:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"), ("ETH/USD", "KRAKEN", "ETH/USD"))
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", MINUTES)
    await store(db, "live_data", "KRAKEN", "XBT/USD", "1min", MINUTES[-3:], trades=4)
    await store(db, "historical_data", "KRAKEN", "ETH/USD", "1min", MINUTES[:60])
    async with db.pool.acquire() as conn:
        await conn.copy_records_to_table(
            "live_ticks",
            records=[
                ("KRAKEN", "XBT/USD", START + timedelta(seconds=i), i, 100.0 + i, 0.5, "buy")
                for i in range(20)
            ],
            columns=["provider", "symbol", "ts", "seq", "price", "size", "side"],
        )
        await conn.execute(
            """INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason)
               VALUES ('KRAKEN', 'XBT/USD', '1min', $1, $2, 'provider error')""",
            START + timedelta(hours=5),
            START + timedelta(hours=6),
        )
    return db


@pytest.fixture
async def api(collected: Database) -> Api:
    async with running_api(collected) as running:
        yield running


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_bars_over_http_equal_the_read_layer_in_every_format(
    api: Api, collected: Database
) -> None:
    reader = Reader(collected)
    params = {
        "series": "BTC/USD",
        "interval": "1h",
        "start": "2026-10-30T12:00",
        "end": "2026-11-01",
    }
    got = (await api.http.get("/v1/bars", params=params, headers=api.auth())).json()
    want = await reader.bars(
        "BTC/USD", "1h", _time("2026-10-30T12:00+00:00"), _time("2026-11-01T00:00+00:00")
    )
    assert (got["series"], got["common"], got["interval"], got["derived_from"]) == (
        "KRAKEN:XBT/USD",
        "BTC/USD",
        "1h",
        "1min",
    )
    assert len(got["bars"]) == len(want.bars) == 36
    for g, w in zip(got["bars"], want.bars, strict=True):
        assert _time(g["ts"]) == w.ts
        assert (g["open"], g["high"], g["low"], g["close"], g["volume"]) == (
            w.open,
            w.high,
            w.low,
            w.close,
            w.volume,
        )
        assert (g["trades"], g["complete"]) == (w.trades, w.complete)

    # Arrow: the very table the Python API gives a notebook.
    arrow = await api.http.get("/v1/bars", params={**params, "format": "arrow"}, headers=api.auth())
    assert arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pyarrow.ipc.open_stream(io.BytesIO(arrow.content)).read_all()
    local = await AsyncQuasar(collected).bars(
        "BTC/USD", "1h", "2026-10-30T12:00", "2026-11-01", as_="arrow"
    )
    assert table.equals(local)

    csv = await api.http.get("/v1/bars", params={**params, "format": "csv"}, headers=api.auth())
    lines = csv.text.splitlines()
    assert lines[0] == "ts,open,high,low,close,volume,trades,complete,provider"
    first = lines[1].split(",")
    assert _time(first[0]) == want.bars[0].ts and float(first[4]) == want.bars[0].close
    assert len(lines) == 1 + len(want.bars)


async def test_ticks_symbols_gaps_and_status_equal_the_read_layer(
    api: Api, collected: Database
) -> None:
    reader = Reader(collected)
    ticks = (
        await api.http.get(
            "/v1/ticks",
            params={"series": "BTC/USD", "start": "2026-10-30T00:00:05", "limit": 10},
            headers=api.auth(),
        )
    ).json()
    want = await reader.ticks("BTC/USD", START + timedelta(seconds=5), limit=10)
    assert [(_time(t["ts"]), t["seq"], t["price"]) for t in ticks["ticks"]] == [
        (t.ts, t.seq, t.price) for t in want.ticks
    ]

    symbols = (await api.http.get("/v1/symbols", headers=api.auth())).json()
    assert symbols == {
        "symbols": [
            {
                "common": "BTC/USD",
                "providers": [
                    {"provider": "KRAKEN", "symbol": "XBT/USD", "series": "KRAKEN:XBT/USD"}
                ],
            },
            {
                "common": "ETH/USD",
                "providers": [
                    {"provider": "KRAKEN", "symbol": "ETH/USD", "series": "KRAKEN:ETH/USD"}
                ],
            },
        ],
        "unmapped": [],
    }

    gaps = (
        await api.http.get(
            "/v1/gaps", params={"series": "BTC/USD", "interval": "1min"}, headers=api.auth()
        )
    ).json()["gaps"]
    open_gaps = await reader.gaps("BTC/USD")
    assert [(g["symbol"], _time(g["start_ts"]), g["reason"]) for g in gaps] == [
        (g.symbol, g.start_ts, g.reason) for g in open_gaps
    ]
    none = await api.http.get("/v1/gaps", params={"interval": "1d"}, headers=api.auth())
    assert none.json() == {"gaps": []}

    status = (await api.http.get("/v1/status", headers=api.auth())).json()
    local = report_dict(await status_report(collected), datetime.now(UTC))
    assert status["engine"] == local["engine"]
    assert len(status["subscriptions"]) == len(local["subscriptions"])


async def test_keys_scopes_expiry_and_revocation(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    url, params = "/v1/bars", {"series": "BTC/USD", "interval": "1d"}
    missing = await api.http.get(url, params=params)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert "X-API-Key" in missing.json()["detail"] and missing.headers["www-authenticate"]

    forged = api.key[:-4] + "AAAA"
    assert (await api.http.get(url, params=params, headers=api.auth(forged))).status_code == 401

    _, streamer = await api.keys.create("dashboard", ["stream"])
    refused = await api.http.get(url, params=params, headers=api.auth(streamer))
    assert refused.status_code == 403 and "this needs read" in refused.json()["detail"]

    _, reader_key = await api.keys.create("notebook", ["read"])
    caplog.set_level(logging.INFO, logger="quasar.serve.access")
    ok = await api.http.get(
        url,
        params=params,
        headers={"Authorization": f"Bearer {reader_key}", "X-Request-ID": "nb-42"},
    )
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "nb-42"
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "quasar.serve.access"]
    line = next(entry for entry in lines if entry["request_id"] == "nb-42")
    assert (line["key"], line["route"], line["status"]) == ("notebook", "/v1/bars", 200)
    assert line["duration_ms"] >= 0
    assert all(reader_key not in r.getMessage() for r in caplog.records)

    with pytest.raises(websockets.exceptions.InvalidStatus) as denied:
        async with websockets.connect(
            f"{api.ws_url}?series=BTC/USD", additional_headers=api.auth(reader_key)
        ):
            pass
    assert denied.value.response.status_code == 403

    _, old = await api.keys.create(
        "old", ["read"], expires_at=datetime.now(UTC) + timedelta(milliseconds=300)
    )
    await asyncio.sleep(0.4)
    expired = await api.http.get(url, params=params, headers=api.auth(old))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    # Revoked: the table's NOTIFY drops the server's cached key at once.
    await api.keys.revoke("notebook")
    for _ in range(100):
        gone = await api.http.get(url, params=params, headers=api.auth(reader_key))
        if gone.status_code == 401:
            break
        await asyncio.sleep(0.05)
    assert gone.status_code == 401

    await api.services.guard.flush_uses()
    uses = {k.name: k for k in await api.keys.list()}
    assert uses["dashboard"].uses == 0 and uses["dashboard"].last_used is None
    assert "notebook" not in uses


async def test_a_key_beyond_its_rate_gets_429_with_retry_after(api: Api) -> None:
    _, slow = await api.keys.create("slow", ["read"], rate=1)
    answers = await asyncio.gather(
        *(api.http.get("/v1/symbols", headers=api.auth(slow)) for _ in range(5))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200 and codes[-1] == 429
    limited = next(a for a in answers if a.status_code == 429)
    assert (
        limited.headers["retry-after"] == "1" and "1 requests a second" in limited.json()["detail"]
    )
    metrics = await api.http.get("/metrics")
    assert "quasar_api_rate_limited_total" in metrics.text


async def test_cached_answers_go_when_bars_of_their_series_are_announced(
    api: Api, collected: Database
) -> None:
    params = {"series": "BTC/USD", "interval": "1min", "limit": 5}
    before = (await api.http.get("/v1/bars", params=params, headers=api.auth())).json()
    again = (await api.http.get("/v1/bars", params=params, headers=api.auth())).json()
    assert again == before
    assert api.services.cache.stats.hits >= 1

    new_ts = MINUTES[-1][0] + timedelta(minutes=1)
    bar = (new_ts, 1.0, 2.0, 0.5, 1.5, 3.0)
    await store(collected, "live_data", "KRAKEN", "XBT/USD", "1min", [bar], trades=2)
    # Written but not announced: the cache still answers (the TTL bounds this case).
    stale = (await api.http.get("/v1/bars", params=params, headers=api.auth())).json()
    assert stale["bars"][-1]["ts"] == before["bars"][-1]["ts"]

    # Another series' announcement leaves this answer cached.
    await announce_written(
        collected, [Written("live_data", "KRAKEN", "ETH/USD", "1min", 1, START, START)]
    )
    await announce_written(
        collected, [Written("live_data", "KRAKEN", "XBT/USD", "1min", 1, new_ts, new_ts)]
    )
    for _ in range(100):
        fresh = (await api.http.get("/v1/bars", params=params, headers=api.auth())).json()
        if _time(fresh["bars"][-1]["ts"]) == new_ts:
            break
        await asyncio.sleep(0.05)
    assert _time(fresh["bars"][-1]["ts"]) == new_ts and fresh["bars"][-1]["trades"] == 2
    metrics = (await api.http.get("/metrics")).text
    assert "quasar_api_cache_invalidations_total" in metrics


async def test_the_stream_sends_a_bar_as_it_is_written_and_conflated_ticks(
    api: Api, collected: Database
) -> None:
    url = f"{api.ws_url}?series=BTC/USD,KRAKEN:ETH/USD&kinds=bars,ticks"
    async with websockets.connect(url, additional_headers=api.auth()) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "subscribed" and hello["kinds"] == ["bars", "ticks"]
        assert [s["series"] for s in hello["series"]] == ["KRAKEN:XBT/USD", "KRAKEN:ETH/USD"]

        # The engine's write and announcement, through the call the writer makes.
        new_ts = MINUTES[-1][0] + timedelta(minutes=1)
        await store(
            collected,
            "live_data",
            "KRAKEN",
            "XBT/USD",
            "1min",
            [(new_ts, 1, 2, 0.5, 1.5, 3)],
            trades=2,
        )
        await announce_written(
            collected, [Written("live_data", "KRAKEN", "XBT/USD", "1min", 1, new_ts, new_ts)]
        )
        bar = json.loads(await asyncio.wait_for(ws.recv(), 10))
        want = (await Reader(collected).bars("KRAKEN:XBT/USD", "1min", new_ts, limit=1)).bars[0]
        assert (bar["type"], bar["series"], bar["common"], bar["interval"]) == (
            "bar",
            "KRAKEN:XBT/USD",
            "BTC/USD",
            "1min",
        )
        assert _time(bar["bar"]["ts"]) == want.ts and bar["bar"]["close"] == want.close

        # Ticks as the engine publishes them for attached consoles (live_quotes).
        owner = EngineOwner("host", 1, "daemon", datetime.now(UTC), datetime.now(UTC))
        publisher = Publisher(collected, owner, dict)
        for i in range(50):
            publisher.note_ticks("KRAKEN", [Tick("ETH/USD", datetime.now(UTC), 2000.0 + i)])
        await publisher.flush_quotes()
        ticks = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ticks["type"] == "ticks"
        assert [(t["series"], t["common"], t["price"]) for t in ticks["ticks"]] == [
            ("KRAKEN:ETH/USD", "ETH/USD", 2049.0)
        ]

        metrics = (await api.http.get("/metrics")).text
        assert "quasar_stream_clients 1" in metrics


async def test_a_browser_opens_the_stream_with_a_ticket_never_a_key_in_the_url(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # A browser cannot set headers on a WebSocket: it asks for a ticket with its key, then
    # offers the ticket as a subprotocol.
    assert (await api.http.post("/v1/stream/tickets")).status_code == 401
    _, reader_key = await api.keys.create("notebook", ["read"])
    refused = await api.http.post("/v1/stream/tickets", headers=api.auth(reader_key))
    assert refused.status_code == 403 and "this needs stream" in refused.json()["detail"]

    _, browser_key = await api.keys.create("dashboard", ["stream"])

    async def ticket() -> str:
        issued = await api.http.post("/v1/stream/tickets", headers=api.auth(browser_key))
        assert issued.status_code == 201 and issued.headers["cache-control"] == "no-store"
        assert issued.json()["expires_in"] == 30
        return issued.json()["ticket"]

    def browser(text: str) -> websockets.connect:
        protocols = ["quasar.v1", f"quasar.ticket.{text}"]
        return websockets.connect(f"{api.ws_url}?series=BTC/USD", subprotocols=protocols)

    caplog.set_level(logging.INFO, logger="quasar.serve.access")
    first = await ticket()
    async with browser(first) as ws:
        assert ws.subprotocol == "quasar.v1"
        hello = json.loads(await ws.recv())
        assert hello["type"] == "subscribed" and hello["series"][0]["series"] == "KRAKEN:XBT/USD"

    def opened() -> list[dict]:
        lines = [
            json.loads(r.getMessage()) for r in caplog.records if r.name == "quasar.serve.access"
        ]
        return [line for line in lines if line["route"] == "/v1/stream" and line["status"] == 101]

    for _ in range(100):  # the line is written when the server's side of the stream ends
        if opened():
            break
        await asyncio.sleep(0.05)
    assert [line["key"] for line in opened()] == ["dashboard"]
    assert all(
        first not in r.getMessage() and browser_key not in r.getMessage() for r in caplog.records
    )

    # A ticket opens one connection; a made-up one none.
    for used in (first, "made-up"):
        with pytest.raises(websockets.exceptions.InvalidStatus) as denied:
            async with browser(used):
                pass
        assert denied.value.response.status_code == 401
    # A key revoked after its ticket was issued opens nothing.
    late = await ticket()
    await api.keys.revoke("dashboard")
    for _ in range(100):  # the table's NOTIFY reaches the server
        gone = await api.http.post("/v1/stream/tickets", headers=api.auth(browser_key))
        if gone.status_code == 401:
            break
        await asyncio.sleep(0.05)
    with pytest.raises(websockets.exceptions.InvalidStatus) as revoked:
        async with browser(late):
            pass
    assert revoked.value.response.status_code == 401


async def test_web_pages_of_the_allowed_origins_may_ask_for_tickets(collected: Database) -> None:
    options = ServeOptions(cors_origins=("https://dash.example",))
    async with running_api(collected, options) as api:

        async def preflight(origin: str) -> httpx.Response:
            return await api.http.options(
                "/v1/stream/tickets",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "x-api-key",
                },
            )

        allowed = await preflight("https://dash.example")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
        other = await preflight("https://evil.example")
        assert "access-control-allow-origin" not in other.headers
        issued = await api.http.post(
            "/v1/stream/tickets", headers={**api.auth(), "Origin": "https://dash.example"}
        )
        assert issued.status_code == 201
        assert issued.headers["access-control-allow-origin"] == "https://dash.example"


def test_a_stream_ticket_expires_unused() -> None:
    now = [100.0]
    book = TicketBook(clock=lambda: now[0])
    kept, stale = book.issue("a1"), book.issue("b2")
    now[0] += TICKET_SECONDS - 1
    assert book.redeem(kept) == "a1"
    now[0] += 2
    with pytest.raises(Problem, match="within 30s"):
        book.redeem(stale)
    assert offered(["quasar.ticket.xyz"]) == Offered("xyz", "quasar.ticket.xyz")
    assert offered(["quasar.v1", "quasar.ticket.xyz"]) == Offered("xyz", "quasar.v1")
    assert offered(["quasar.v1"]) is None


async def test_in_process_the_stream_follows_the_engines_bus(collected: Database) -> None:
    bus = EventBus()
    async with running_api(collected, events=bus) as api:
        url = f"{api.ws_url}?series=BTC/USD"
        async with websockets.connect(url, additional_headers=api.auth()) as ws:
            assert json.loads(await ws.recv())["type"] == "subscribed"
            for i in range(30):  # one send per 1/10 s window: conflated to the latest
                bus.publish(TickEvent("KRAKEN", Tick("XBT/USD", datetime.now(UTC), 50.0 + i)))
            ticks = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert (ticks["type"], [t["price"] for t in ticks["ticks"]]) == ("ticks", [79.0])
            last = MINUTES[-1][0]
            bus.publish(BarsWritten("live_data", "KRAKEN", "XBT/USD", "1min", 1, last))
            bar = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert bar["type"] == "bar" and _time(bar["bar"]["ts"]) == last


def test_a_slow_stream_client_is_dropped_and_never_holds_up_others() -> None:
    metrics = ServerMetrics()
    hub = Hub(metrics)
    slow = StreamClient({"K:A"}, {"ticks"}, limit=3)
    quick = StreamClient({"K:A"}, {"ticks"}, limit=3)
    hub.add(slow, {"K:A": None})
    hub.add(quick, {"K:A": None})
    for i in range(5):
        hub.note_tick("K:A", START, float(i))
        hub.flush_ticks()
        asyncio.run(quick.next_batch())  # the quick one keeps up
    assert slow.dropped is not None and "too slow" in slow.dropped and slow.gone.is_set()
    assert slow not in hub.clients and quick in hub.clients
    assert metrics.stream_dropped == 1 and quick.dropped is None


@pytest.mark.parametrize(
    ("query", "status", "param"),
    [
        ({"series": "BTC/USD", "interval": "2h"}, 400, "interval"),
        ({"series": "BTC/USD", "interval": "1h", "limit": "0"}, 422, "limit"),
        ({"series": "BTC/USD", "interval": "1h", "limit": "many"}, 422, "limit"),
        ({"series": "BTC/USD", "interval": "1h", "start": "yesterday"}, 400, "start"),
        (
            {"series": "BTC/USD", "interval": "1h", "start": "2026-11-02", "end": "2026-11-01"},
            400,
            "end",
        ),
        ({"series": "BTC/USD", "interval": "1h", "format": "xml"}, 422, "format"),
        ({"series": "KRAKEN:", "interval": "1h"}, 400, "series"),
        ({"interval": "1h"}, 422, "series"),
    ],
)
async def test_bad_parameters_are_named(
    api: Api, query: dict[str, str], status: int, param: str
) -> None:
    answer = await api.http.get("/v1/bars", params=query, headers=api.auth())
    problem = answer.json()
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["invalid_params"][0]["name"] == param
    assert problem["detail"].startswith(f"{param}:")


async def test_unknown_series_is_404_with_the_read_layers_message(api: Api) -> None:
    answer = await api.http.get(
        "/v1/bars", params={"series": "DOGE/EUR", "interval": "1h"}, headers=api.auth()
    )
    assert answer.status_code == 404
    assert answer.json()["detail"].startswith("no series named 'DOGE/EUR'")
    with pytest.raises(websockets.exceptions.InvalidStatus) as denied:
        async with websockets.connect(
            f"{api.ws_url}?series=DOGE/EUR", additional_headers=api.auth()
        ):
            pass
    assert denied.value.response.status_code == 404


async def test_probes_open_on_loopback_unless_a_key_is_required(collected: Database) -> None:
    async with running_api(collected) as api:
        assert (await api.http.get("/health")).json() == {"status": "ok"}
        assert (await api.http.get("/ready")).json() == {"status": "ready"}
        text = (await api.http.get("/metrics")).text
        assert 'quasar_api_requests_total{route="/health",status="200"} 1' in text
        assert "quasar_engine_running 0" in text
        page = await api.http.get("/docs")
        assert "/v1/bars" in page.text and "<script" not in page.text
        schema = (await api.http.get("/openapi.json")).json()
        assert {"/v1/bars", "/v1/ticks", "/v1/symbols", "/v1/gaps", "/v1/status"} <= set(
            schema["paths"]
        )
    async with running_api(collected, ServeOptions(probes_need_key=True)) as api:
        assert (await api.http.get("/metrics")).status_code == 401
        assert (await api.http.get("/ready", headers=api.auth())).status_code == 200


async def test_ready_says_which_migrations_are_missing(api: Api, collected: Database) -> None:
    await collected.execute("DELETE FROM schema_migrations WHERE version = 41")
    answer = await api.http.get("/ready")
    assert answer.status_code == 503 and "migrations 41 are not applied" in answer.json()["detail"]


async def test_a_request_id_is_made_when_the_client_sends_none(api: Api) -> None:
    answer = await api.http.get("/health")
    assert len(answer.headers["x-request-id"]) == 16


def test_the_cache_is_bounded_expires_and_never_keeps_an_answer_read_across_a_write() -> None:
    now = [0.0]
    cache = AnswerCache(ttl=5.0, max_bytes=250, max_item=100, clock=lambda: now[0])
    for i in range(4):
        cache.put(("bars", i), Answer(b"x" * 80, "application/json"), (f"K:{i}",), cache.mark())
    assert len(cache) == 3 and cache.size == 240 and cache.get(("bars", 0)) is None  # LRU out
    cache.put("big", Answer(b"x" * 101, "text/csv"), ("K:9",), cache.mark())
    assert cache.get("big") is None  # larger than one item may be
    assert cache.invalidate("K:1") == 1 and cache.get(("bars", 1)) is None
    mark = cache.mark()
    cache.invalidate("K:7")  # a write announced while an answer was being read
    cache.put("late", Answer(b"old", "application/json"), ("K:2",), mark)
    assert cache.get("late") is None
    now[0] = 5.0
    assert cache.get(("bars", 2)) is None and cache.get(("bars", 3)) is None  # expired


async def test_inside_the_daemon_cancelling_serve_stops_the_server(collected: Database) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(collected, Keyring(os.urandom(32)), events=EventBus())
    task = asyncio.create_task(serve(app, Bind("127.0.0.1", port), handle_signals=False))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(200):
            try:
                assert (await http.get("/health")).status_code == 200
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with pytest.raises(httpx.TransportError):
            await http.get("/health")


async def test_an_announcement_made_in_the_writers_transaction_arrives_at_commit(
    db: Database,
) -> None:
    heard: asyncio.Queue[Written] = asyncio.Queue()
    listener = await db.connect()
    await listener.add_listener(CHANNEL, lambda *a: heard.put_nowait(decode(a[3])))
    batch = Written(
        "live_data", "KRAKEN", "XBT/USD", "1min", 3, START, START - timedelta(minutes=2)
    )
    try:
        async with db.pool.acquire() as conn:
            async with conn.transaction():
                await announce_written(conn, [batch])
                await asyncio.sleep(0.2)
                assert heard.empty()  # nothing before the bars are visible
            assert await asyncio.wait_for(heard.get(), 5) == batch
    finally:
        await listener.close()
