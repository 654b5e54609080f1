"""A loopback Binance spot stream of aggregate trades (`<symbol>@aggTrade`) and the REST
`exchangeInfo` that lists its symbols, for the peer benchmark.

Both ways a client can follow streams are served: a raw connection (`/ws`) subscribed with
`{"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}` (answered with
`{"result": null, "id": 1}`), which gets each event as it is, and a combined one
(`/stream?streams=a@aggTrade/b@aggTrade`), subscribed by its URL, which gets each event wrapped
as `{"stream": "a@aggTrade", "data": {...}}`. An event is one trade:
`{"e": "aggTrade", "E": event ms, "s": "BTCUSDT", "a": aggregate id, "p": "price",
"q": "quantity", "f": first id, "l": last id, "T": trade ms, "m": buyer is maker, "M": true}`.

`pump` offers trades at a fixed rate, one a message, symbol after symbol, to whoever follows
them: what a client cannot take waits in its socket, as it would from the exchange.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from fakes.http_server import FakeHttpServer

PATTERN = 64  # trade n of a symbol uses entry n % PATTERN of its prices and sizes
PUMP_STEP = 0.005  # seconds between the pump's rounds of sends


def loopback_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, written to `folder`: clients that
    only speak wss:// trust it through SSL_CERT_FILE."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "loopback.crt", folder / "loopback.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def symbol_name(index: int) -> str:
    return f"Q{index:03d}USDT"


def trade_values(index: int) -> tuple[list[str], list[str]]:
    """Prices and quantities of symbol `index`'s trades, as the wire's decimal strings."""
    base = 20.0 + index * 3.0
    prices = [f"{base * (1 + 0.001 * (k % 7 - 3)):.4f}" for k in range(PATTERN)]
    sizes = [f"{0.001 + (k * 37 % 500) / 250:.4f}" for k in range(PATTERN)]
    return prices, sizes


@dataclass
class _Follower:
    conn: ServerConnection
    combined: bool
    streams: set[str] = field(default_factory=set)


@dataclass
class PumpReport:
    """What the pump sent: messages in all, and per whole second of the run."""

    messages: int = 0
    per_second: list[int] = field(default_factory=list)
    seconds: float = 0.0


class BinanceFake:
    """The aggTrade stream and exchangeInfo of `count` symbols Q000USDT..."""

    def __init__(
        self,
        count: int,
        clock: Callable[[], float] = time.time,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """`tls`: (certificate, key) to serve wss:// instead of ws://."""
        self.tls = tls
        self.symbols = [symbol_name(i) for i in range(count)]
        self.clock = clock
        self.rest = FakeHttpServer()
        self.rest.route("/api/v3/exchangeInfo", self._exchange_info)
        self._followers: list[_Follower] = []
        self._server: Server | None = None
        self._next_id = [1] * count
        self._values = [trade_values(i) for i in range(count)]

    @property
    def ws_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{port}"

    async def start(self) -> tuple[str, str]:
        """(WebSocket base URL, REST base URL)."""
        context = None
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None, ssl=context)
        return self.ws_url, await self.rest.start()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.rest.stop()

    def following(self) -> int:
        """How many streams the connected clients follow in all."""
        return sum(len(f.streams) for f in self._followers)

    async def _exchange_info(self, _request: web.Request) -> web.Response:
        symbols = [
            {
                "symbol": s,
                "status": "TRADING",
                "baseAsset": s.removesuffix("USDT"),
                "quoteAsset": "USDT",
                "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00010000"}],
            }
            for s in self.symbols
        ]
        return web.json_response({"timezone": "UTC", "symbols": symbols})

    async def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        url = urlsplit(conn.request.path)
        follower = _Follower(conn, combined=url.path.startswith("/stream"))
        if follower.combined:
            for stream in parse_qs(url.query).get("streams", [""])[0].split("/"):
                follower.streams.add(stream)
        self._followers.append(follower)
        try:
            async for message in conn:
                request: dict[str, Any] = json.loads(message)
                if request.get("method") == "SUBSCRIBE":
                    follower.streams.update(request.get("params", []))
                elif request.get("method") == "UNSUBSCRIBE":
                    follower.streams.difference_update(request.get("params", []))
                await conn.send(json.dumps({"result": None, "id": request.get("id")}))
        except ConnectionClosed:
            pass
        finally:
            self._followers.remove(follower)

    def _event(self, index: int, millis: int) -> tuple[str, str]:
        """(stream name, event JSON) of symbol `index`'s next trade."""
        symbol = self.symbols[index]
        n = self._next_id[index]
        self._next_id[index] = n + 1
        prices, sizes = self._values[index]
        event = (
            f'{{"e":"aggTrade","E":{millis},"s":"{symbol}","a":{n},"p":"{prices[n % PATTERN]}",'
            f'"q":"{sizes[n % PATTERN]}","f":{n},"l":{n},"T":{millis},'
            f'"m":{"true" if n % 2 else "false"},"M":true}}'
        )
        return f"{symbol.lower()}@aggTrade", event

    async def pump(self, rate: float, duration: float) -> PumpReport:
        """Offer `rate` trades a second for `duration` seconds, one a message, symbol after
        symbol; a follower that cannot take them holds the pump back (its socket is full)."""
        report = PumpReport()
        began = time.monotonic()
        index = 0
        count = len(self.symbols)
        while (elapsed := time.monotonic() - began) < duration:
            due = int(rate * elapsed) - report.messages
            millis = int(self.clock() * 1000)
            for _ in range(due):
                stream, event = self._event(index, millis)
                index = (index + 1) % count
                for follower in self._followers:
                    if stream in follower.streams:
                        text = (
                            f'{{"stream":"{stream}","data":{event}}}'
                            if follower.combined
                            else event
                        )
                        await follower.conn.send(text)
                report.messages += 1
            second = int(time.monotonic() - began)  # when this round's sends got through
            while len(report.per_second) <= second:
                report.per_second.append(0)
            report.per_second[second] += due
            await asyncio.sleep(PUMP_STEP)
        report.seconds = time.monotonic() - began
        return report
