"""cryptofeed's Binance feed with its PostgreSQL trade backend, pointed at the loopback feed:
the peer run of bench/peer.py, in a process of its own (run as `python -m bench.peer_cryptofeed`).

Its settings come as one JSON line on stdin (the DSN holds a password, so not in argv):
`{"ws_url", "rest_url", "symbols", "dsn", "log"}`. cryptofeed has no setting for its
endpoints; they are class attributes of each exchange, so the run subclasses `Binance` with
the loopback addresses (`websocket_endpoints`, and `rest_endpoints` for the exchangeInfo it
reads its symbols from). cryptofeed accepts only wss:// addresses, so the feed serves TLS with a
self-signed certificate for 127.0.0.1 that both clients trust through SSL_CERT_FILE (set by
bench/peer.py). Nothing of cryptofeed is patched. It runs as cryptofeed's examples run it:
`FeedHandler.run()` (uvloop when installed), stopped by SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptofeed import FeedHandler
from cryptofeed.backends.postgres import TradePostgres
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
from cryptofeed.defines import TRADES
from cryptofeed.exchanges import Binance

#: cryptofeed's trades table for `TradePostgres` (its default column order).
TRADES_TABLE = """
    CREATE TABLE IF NOT EXISTS trades (
        id serial PRIMARY KEY,
        timestamp TIMESTAMP,
        receipt_timestamp TIMESTAMP,
        exchange VARCHAR(32),
        symbol VARCHAR(32),
        side VARCHAR(8),
        amount NUMERIC(64, 32),
        price NUMERIC(64, 32),
        trade_id VARCHAR(64),
        type VARCHAR(32)
    )"""


def loopback_binance(ws_url: str, rest_url: str) -> type[Binance]:
    class LoopbackBinance(Binance):
        websocket_endpoints = [WebsocketEndpoint(ws_url)]
        rest_endpoints = [RestEndpoint(rest_url, routes=Routes("/api/v3/exchangeInfo"))]

    return LoopbackBinance


def backend(dsn: str) -> TradePostgres:
    """cryptofeed's backend takes host, port, user, password and database apart: the DSN's
    socket folder (`?host=`) is its host, and its passfile is read by asyncpg (PGPASSFILE)."""
    parts = urlsplit(dsn)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if "passfile" in query:
        os.environ["PGPASSFILE"] = query["passfile"]
    return TradePostgres(
        host=query.get("host") or parts.hostname,
        port=parts.port,
        user=unquote(parts.username or ""),
        pw=unquote(parts.password or "") or None,
        db=unquote(parts.path.lstrip("/")),
    )


def main() -> None:
    settings: dict[str, Any] = json.loads(sys.stdin.readline())
    feed = loopback_binance(settings["ws_url"], settings["rest_url"])
    handler = FeedHandler(config={"log": {"filename": settings["log"], "level": "WARNING"}})
    handler.add_feed(
        feed(
            symbols=[f"{s.removesuffix('USDT')}-USDT" for s in settings["symbols"]],
            channels=[TRADES],
            callbacks={TRADES: backend(settings["dsn"])},
        )
    )
    handler.run()


if __name__ == "__main__":
    main()
