"""A live provider in the original system's style: WebSocket methods, history, context.get."""

import json
from datetime import UTC, datetime

import websockets

from quasar_tui.sdk import Bar, LiveDataProvider, SymbolInfo


def _bar(row: dict) -> Bar:
    return Bar(
        ts=datetime.fromtimestamp(row["t"], UTC),
        open=row["o"],
        high=row["h"],
        low=row["l"],
        close=row["c"],
        volume=row["v"],
        symbol=row.get("s"),
    )


class WsDemo(LiveDataProvider):
    name = "wsdemo"
    RATE_LIMIT = (5, 1.0)
    CONCURRENCY = 2
    SECRETS = ("api_token",)
    CONFIGURABLE = {
        "base_url": {"type": "str", "default": "http://127.0.0.1:9", "help": "REST endpoint"},
        "ws_url": {"type": "str", "default": "ws://127.0.0.1:9/ws", "help": "stream endpoint"},
    }

    async def fetch_available_symbols(self):
        url = f"{self.pref('base_url')}/symbols"
        rows = await self.http.get_json(url, params={"api_token": self.context.get("api_token")})
        return [SymbolInfo(symbol=s) for s in rows]

    async def get_history(self, sym, start, end, interval):
        url = f"{self.pref('base_url')}/bars/{sym}"
        params = {
            "from": int(start.timestamp()),
            "to": int(end.timestamp()),
            "interval": str(interval),
            "api_token": self.context.get("api_token"),
        }
        for row in await self.http.get_json(url, params=params):
            yield _bar(row)

    async def _connect(self):
        return await websockets.connect(self.pref("ws_url"))

    async def _subscribe(self, interval, symbols):
        return {
            "action": "subscribe",
            "token": self.context.get("api_token"),
            "interval": str(interval),
            "symbols": symbols,
        }

    async def _unsubscribe(self, symbols):
        return {"action": "unsubscribe", "symbols": symbols}

    async def _parse_message(self, message):
        data = json.loads(message)
        if data.get("type") != "bar":
            return []
        return [_bar(data)]
