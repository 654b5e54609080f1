"""The read-only HTTP API as an ASGI app: routes over the read layer, keys, cache, stream.

`create_app` builds it on an open database. Without an event bus it follows what a running
engine publishes through the database (standalone `quasar serve`); given the engine's bus, it
streams straight from it (`quasar --daemon --serve`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response

from quasar_tui import __version__
from quasar_tui.core.errors import InvalidInputError, NotFoundError, QuasarError
from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.core.moments import moment
from quasar_tui.core.series import parse_series
from quasar_tui.engine.events import EventBus
from quasar_tui.engine.publisher import EngineMonitor
from quasar_tui.engine.status import report_dict, status_report
from quasar_tui.frames import MissingExtraError
from quasar_tui.quality.flags import judging_reader
from quasar_tui.registry.apikeys import ApiKeyStore
from quasar_tui.registry.secrets import Keyring
from quasar_tui.serve import bodies, docs, metrics
from quasar_tui.serve.access import KEY_NAME, AccessLog
from quasar_tui.serve.auth import Caller, KeyGuard, presented_key
from quasar_tui.serve.cache import Answer, AnswerCache
from quasar_tui.serve.feeds import BusFeed, DatabaseFeed, WrittenBars
from quasar_tui.serve.problems import HANDLERS, Problem, bad_param, problem_response
from quasar_tui.serve.stream import KINDS, SLOW_CLOSE_CODE, Hub, Kind, StreamClient
from quasar_tui.serve.tickets import TICKET_SECONDS, TicketBook, offered
from quasar_tui.store import migrations
from quasar_tui.store.database import Database
from quasar_tui.store.read import MAX_LIMIT, Reader
from quasar_tui.store.series import all_series, resolve

log = logging.getLogger("quasar.serve")

MAX_STREAM_SERIES = 500
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

DESCRIPTION = """Read-only market data by series name: a common symbol (`BTC/USD`, served by its
providers in priority order) or `PROVIDER:SYMBOL`. Send an API key as `X-API-Key` or
`Authorization: Bearer`. Errors are RFC 9457 problem details naming the bad parameter.
Live data: WebSocket `/v1/stream?series=BTC/USD,ETH/USD&kinds=ticks,bars` (scope `stream`;
browsers, which cannot set headers, open it with a ticket from `POST /v1/stream/tickets`)
sends `{"type":"ticks","ticks":[...]}` (the latest tick of each series, at most 10 times a
second) and `{"type":"bar",...}` as bars are written."""


@dataclass(frozen=True)
class ServeOptions:
    """How the app behaves; the bind address lives with the server."""

    cache_ttl: float = 5.0
    cache_bytes: int = 64 * 2**20
    probes_need_key: bool = False
    # Web pages from these origins may call the API (a browser dashboard on another host).
    cors_origins: tuple[str, ...] = ()


@dataclass
class Services:
    db: Database
    reader: Reader
    cache: AnswerCache
    hub: Hub
    guard: KeyGuard
    metrics: metrics.ServerMetrics
    options: ServeOptions
    written: WrittenBars
    listener: DatabaseFeed
    bus_feed: BusFeed | None
    tickets: TicketBook


async def services_of(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain-function dependency in a worker thread."""
    return request.app.state.services


Svc = Annotated[Services, Depends(services_of)]


def needs(scope: str) -> Callable[[Request], Awaitable[Caller]]:
    async def check(request: Request) -> Caller:
        caller = await (await services_of(request)).guard.check(request.headers, scope)
        request.scope[KEY_NAME] = caller.key.name
        return caller

    return check


async def probe_guard(request: Request) -> None:
    """/health, /ready, /metrics: open to loopback clients unless a key is required."""
    services = await services_of(request)
    client = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(client).is_loopback
    except ValueError:
        loopback = False
    if services.options.probes_need_key or not loopback:
        await needs("read")(request)


Reading = Depends(needs("read"))
Probe = Depends(probe_guard)

SeriesParam = Annotated[
    str, Query(description="a common symbol (BTC/USD) or PROVIDER:SYMBOL (KRAKEN:BTC/USD)")
]
IntervalParam = Annotated[str, Query(description="1min 5min 15min 30min 1h 4h 1d 1w 1M")]
TimeParam = Annotated[
    str | None, Query(description="a date (YYYY-MM-DD) or an ISO time; naive means UTC")
]
ProviderParam = Annotated[str | None, Query(description="read this provider's series only")]
FormatParam = Annotated[Literal["json", "csv", "arrow"], Query(description="answer format")]
SourceParam = Annotated[Literal["historical", "live", "both"], Query()]
MinQualityParam = Annotated[
    float | None,
    Query(
        ge=0,
        le=1,
        description="leave out bars whose quality flags score below this (0 to 1): 1 keeps "
        "unflagged bars only, 0.5 drops inconsistent, non-positive and spiking ones; derived "
        "bars are built from the source bars left",
    ),
]


def _limit(default: int) -> Any:
    return Query(default, ge=1, le=MAX_LIMIT, description=f"the newest N rows, 1 to {MAX_LIMIT}")


def _series(text: str) -> str:
    try:
        return str(parse_series(text))
    except InvalidInputError as exc:
        raise bad_param("series", exc) from None


def _interval(text: str) -> Interval:
    try:
        return Interval.parse(text)
    except (InvalidInputError, ValueError) as exc:
        raise bad_param("interval", exc) from None


def _bounds(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    bounds = []
    for name, text in (("start", start), ("end", end)):
        try:
            bounds.append(moment(text))
        except InvalidInputError as exc:
            raise bad_param(name, exc) from None
    low, high = bounds
    if low is not None and high is not None and high <= low:
        raise Problem(400, "end: must be later than start", param="end")
    return low, high


def _send(answer: Answer) -> Response:
    return Response(answer.body, media_type=answer.media_type)


async def _cached(
    services: Services,
    key: Hashable,
    read: Callable[[], Awaitable[tuple[Answer, tuple[str, ...]]]],
) -> Response:
    """The cached answer for `key`, or read it (tagged with its series) and keep it."""
    answer = services.cache.get(key)
    if answer is None:
        mark = services.cache.mark()
        try:
            answer, tags = await read()
        except MissingExtraError as exc:
            raise Problem(501, f"format: {exc}", param="format") from None
        services.cache.put(key, answer, tags, mark)
    return _send(answer)


def create_app(
    db: Database,
    keyring: Keyring,
    options: ServeOptions | None = None,
    *,
    events: EventBus | None = None,
) -> FastAPI:
    """The API on `db`; live data from `events` (the engine's bus) or, without it, the database."""
    options = options or ServeOptions()
    server_metrics = metrics.ServerMetrics()
    reader = judging_reader(db)
    cache = AnswerCache(ttl=options.cache_ttl, max_bytes=options.cache_bytes)
    hub = Hub(server_metrics)
    guard = KeyGuard(ApiKeyStore(db, keyring))
    written = WrittenBars(reader, cache, hub)
    bus_feed = BusFeed(events, written, hub) if events is not None else None
    listener = DatabaseFeed(db, written, hub, guard.forget, follow_data=bus_feed is None)
    services = Services(
        db,
        reader,
        cache,
        hub,
        guard,
        server_metrics,
        options,
        written,
        listener,
        bus_feed,
        TicketBook(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(job(), name=f"quasar-serve-{name}")
            for name, job in (
                ("hub", hub.run),
                ("written", written.run),
                ("listener", listener.run),
                ("keys", guard.run),
            )
        ]
        if bus_feed is not None:
            tasks.append(asyncio.create_task(bus_feed.run(), name="quasar-serve-bus"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await guard.flush_uses()

    app = FastAPI(
        title="Quasar market data API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        exception_handlers=HANDLERS,
    )
    app.state.services = services
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Authorization", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(AccessLog, metrics=server_metrics)
    _routes(app)
    return app


def _routes(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(docs.render(app.openapi()))

    @app.get("/health", dependencies=[Probe], description="Liveness: the server answers.")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        dependencies=[Probe],
        description="Readiness: the database answers and its migrations are current.",
    )
    async def ready(services: Svc) -> JSONResponse:
        try:
            async with services.db.pool.acquire() as conn:
                pending = await migrations.pending_versions(conn)
        except _DB_ERRORS as exc:
            raise Problem(503, f"the database cannot be reached: {exc}") from None
        if pending:
            raise Problem(
                503,
                f"migrations {', '.join(map(str, pending))} are not applied: "
                "run any quasar command once against this database",
            )
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", dependencies=[Probe], description="Prometheus text format.")
    async def metrics_page(services: Svc) -> Response:
        try:
            engine = await EngineMonitor(services.db).status()
        except _DB_ERRORS as exc:
            log.warning("metrics without engine figures: %s", exc)
            engine = None
        stats = services.cache.stats
        cache = {
            "hits": stats.hits,
            "misses": stats.misses,
            "evictions": stats.evictions,
            "invalidations": stats.invalidations,
            "entries": len(services.cache),
            "bytes": services.cache.size,
        }
        services.metrics.rate_limited = services.guard.rate_limited
        text = metrics.render(
            services.metrics, cache=cache, stream_clients=len(services.hub.clients), engine=engine
        )
        return Response(text, media_type=metrics.MEDIA_TYPE)

    @app.get(
        "/v1/symbols",
        dependencies=[Reading],
        description="Common symbols with their providers (priority order), then unmapped "
        "subscribed series.",
    )
    async def symbols(services: Svc) -> Response:
        async def read() -> tuple[Answer, tuple[str, ...]]:
            return bodies.symbols_answer(await all_series(services.db)), ("symbols",)

        return await _cached(services, ("symbols",), read)

    @app.get(
        "/v1/bars",
        dependencies=[Reading],
        description="Bars with start <= ts < end, oldest first (the newest `limit`); intervals "
        "not collected are derived; `complete` is false for a bar still forming or missing "
        "source bars.",
    )
    async def bars(
        services: Svc,
        series: SeriesParam,
        interval: IntervalParam,
        start: TimeParam = None,
        end: TimeParam = None,
        provider: ProviderParam = None,
        source: SourceParam = "both",
        limit: int = _limit(10_000),
        min_quality: MinQualityParam = None,
        format: FormatParam = "json",  # noqa: A002 - FastAPI: the `?format=` query parameter
    ) -> Response:
        name, wanted = _series(series), _interval(interval)
        low, high = _bounds(start, end)

        async def read() -> tuple[Answer, tuple[str, ...]]:
            got = await services.reader.bars(
                name,
                wanted,
                low,
                high,
                provider=provider,
                source=source,
                limit=limit,
                min_quality=min_quality,
            )
            return bodies.bars_answer(got, format), (got.series.key,)

        key = ("bars", name, wanted, low, high, provider, source, limit, min_quality, format)
        return await _cached(services, key, read)

    @app.get(
        "/v1/ticks",
        dependencies=[Reading],
        description="Stored ticks with start <= ts < end, oldest first (the newest `limit`).",
    )
    async def ticks(
        services: Svc,
        series: SeriesParam,
        start: TimeParam = None,
        end: TimeParam = None,
        provider: ProviderParam = None,
        limit: int = _limit(10_000),
        format: FormatParam = "json",  # noqa: A002 - FastAPI: the `?format=` query parameter
    ) -> Response:
        name = _series(series)
        low, high = _bounds(start, end)

        async def read() -> tuple[Answer, tuple[str, ...]]:
            got = await services.reader.ticks(name, low, high, provider=provider, limit=limit)
            return bodies.ticks_answer(got, format), (got.series.key,)

        return await _cached(services, ("ticks", name, low, high, provider, limit, format), read)

    @app.get(
        "/v1/gaps",
        dependencies=[Reading],
        description="Spans that should hold bars and do not yet, of one series or of all.",
    )
    async def gaps(
        services: Svc,
        series: Annotated[str | None, Query(description="BTC/USD or PROVIDER:SYMBOL")] = None,
        interval: Annotated[str | None, Query(description="only gaps of this interval")] = None,
        provider: ProviderParam = None,
    ) -> Response:
        name = _series(series) if series is not None else None
        wanted = _interval(interval) if interval is not None else None
        found = await services.reader.gaps(name, provider=provider)
        if wanted is not None:
            found = [g for g in found if g.interval == wanted.value]
        return _send(bodies.gaps_answer(found))

    @app.get(
        "/v1/status",
        dependencies=[Reading],
        description="The engine (owner, heartbeat, writers, providers) and every "
        "subscription's freshness, as `quasar status --json` prints them.",
    )
    async def status(services: Svc) -> Response:
        now = datetime.now(UTC)
        report = await status_report(services.db, now=now)
        return _send(bodies.json_answer(report_dict(report, now)))

    @app.post(
        "/v1/stream/tickets",
        status_code=201,
        description="A ticket that opens one stream connection within "
        f"{int(TICKET_SECONDS)}s as this key, for browsers (they cannot set headers on a "
        'WebSocket): `new WebSocket(url, ["quasar.v1", "quasar.ticket." + ticket])`.',
    )
    async def stream_ticket(
        services: Svc, caller: Annotated[Caller, Depends(needs("stream"))]
    ) -> JSONResponse:
        ticket = services.tickets.issue(caller.key.key_id)
        return JSONResponse(
            {"ticket": ticket, "expires_in": int(TICKET_SECONDS)},
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await _stream(websocket)


async def _refuse(websocket: WebSocket, problem: Problem) -> None:
    """Answer the handshake with the problem as an HTTP error."""
    response = problem_response(problem, websocket.url.path)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:  # the server cannot send HTTP answers to a handshake
        await websocket.close(1008, problem.detail[:120])


async def _caller(websocket: WebSocket, services: Services) -> tuple[Caller, str | None]:
    """Who opens the stream, and the subprotocol to select: a key in the headers, or a ticket
    offered as a subprotocol (browsers)."""
    ticket = offered(websocket.scope.get("subprotocols", []))
    if ticket is None or presented_key(websocket.headers) is not None:
        return await services.guard.check(websocket.headers, "stream"), None
    key_id = services.tickets.redeem(ticket.ticket)
    return await services.guard.check_ticket(key_id, "stream"), ticket.protocol


@dataclass(frozen=True)
class _Subscribed:
    """A stream request checked: its client, what it follows, and the subprotocol to select."""

    client: StreamClient
    following: list[dict[str, Any]]
    common: dict[str, str | None]
    protocol: str | None


async def _subscribe(websocket: WebSocket, services: Services) -> _Subscribed:
    caller, protocol = await _caller(websocket, services)
    websocket.scope[KEY_NAME] = caller.key.name
    names = [n for n in (websocket.query_params.get("series") or "").split(",") if n.strip()]
    if not names:
        raise Problem(400, "series: give one or more series, comma-separated", param="series")
    if len(names) > MAX_STREAM_SERIES:
        raise Problem(
            400, f"series: at most {MAX_STREAM_SERIES} series per connection", param="series"
        )
    kinds_text = websocket.query_params.get("kinds") or ",".join(KINDS)
    kinds: set[Kind] = set()
    for kind in kinds_text.split(","):
        if kind not in KINDS:
            raise Problem(400, f"kinds: unknown kind {kind!r}: use ticks, bars", param="kinds")
        kinds.add(kind)
    following: list[dict[str, Any]] = []
    common: dict[str, str | None] = {}
    for name in names:
        best = (await resolve(services.db, _series(name)))[0]
        following.append({"name": name.strip(), "series": best.key, "common": best.common})
        common[best.key] = best.common
    return _Subscribed(StreamClient(set(common), kinds), following, common, protocol)


async def _stream(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    try:
        subscribed = await _subscribe(websocket, services)
    except Problem as problem:
        await _refuse(websocket, problem)
        return
    except NotFoundError as exc:
        await _refuse(websocket, Problem(404, str(exc), param="series"))
        return
    except QuasarError as exc:
        await _refuse(websocket, Problem(400, str(exc)))
        return
    client = subscribed.client
    await websocket.accept(subprotocol=subscribed.protocol)
    await websocket.send_json(
        {"type": "subscribed", "series": subscribed.following, "kinds": sorted(client.kinds)}
    )
    services.hub.add(client, subscribed.common)

    async def pump() -> None:
        while True:
            batch = await client.next_batch()
            if not batch:
                return
            for message in batch:
                await websocket.send_text(message)

    async def listen() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [asyncio.create_task(pump()), asyncio.create_task(listen())]
    gone = asyncio.create_task(client.gone.wait())
    try:
        await asyncio.wait([*tasks, gone], return_when=asyncio.FIRST_COMPLETED)
    finally:
        services.hub.remove(client)
        for task in (*tasks, gone):
            task.cancel()
        await asyncio.gather(*tasks, gone, return_exceptions=True)
    if client.dropped is not None:
        try:
            await asyncio.wait_for(websocket.close(SLOW_CLOSE_CODE, client.dropped[:120]), 2.0)
        except (TimeoutError, RuntimeError, OSError, WebSocketDisconnect) as exc:
            log.info("a slow stream client went before its close: %s", one_line(exc))
