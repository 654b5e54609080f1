"""Polygon.io: aggregate bars for US stocks, options, forex and crypto (`X:BTCUSD`).

Set the key with `quasar provider secret POLYGON api_key=...`. The free plan allows five
requests a minute, which `RATE_LIMIT` keeps to; raise it for a paid plan.

Bars come from `/v2/aggs` (split-adjusted, oldest first), following `next_url` page by page;
`t` is the bar start in epoch milliseconds. Polygon starts days, weeks and months at midnight
New York time, and weeks on Sunday: every bar is stored under its period's start in UTC (the
day, the Monday, the 1st), intraday bars under their exact start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from quasar_tui.sdk import (
    Bar,
    HistoricalDataProvider,
    Interval,
    ProviderHTTPError,
    Setting,
    SymbolInfo,
)


class Polygon(HistoricalDataProvider):
    name = "POLYGON"
    RATE_LIMIT = (5, 60.0)
    CONCURRENCY = 1
    SECRETS = ("api_key",)
    CONFIGURABLE = {
        "base_url": Setting(default="https://api.polygon.io", help="API root URL", max_length=512),
        "market": Setting(
            default="stocks",
            choices=("stocks", "crypto", "fx", "otc", "indices"),
            help="which market's tickers to list",
        ),
    }

    # (multiplier, timespan) of each interval in /v2/aggs.
    AGGREGATES = {
        Interval.M1: (1, "minute"),
        Interval.M5: (5, "minute"),
        Interval.M15: (15, "minute"),
        Interval.M30: (30, "minute"),
        Interval.H1: (1, "hour"),
        Interval.H4: (4, "hour"),
        Interval.D1: (1, "day"),
        Interval.W1: (1, "week"),
        Interval.MO1: (1, "month"),
    }
    INTERVALS = tuple(AGGREGATES)
    # One chunk is about one 50,000-bar page of a market open around the clock.
    MAX_RANGE = {
        Interval.M1: timedelta(days=30),
        Interval.M5: timedelta(days=150),
        Interval.M15: timedelta(days=500),
        Interval.M30: timedelta(days=1000),
        Interval.H1: timedelta(days=2000),
    }
    # Sunday-based weeks: a week's bar starts a day before the Monday Quasar keys it by.
    LEAD = {Interval.W1: timedelta(days=1)}
    PAGE_LIMIT = 50_000
    MISSING_KEY = "POLYGON needs an API key: set it with `quasar provider secret POLYGON`"
    REFUSALS = {
        401: "POLYGON rejected the API key: set another with `quasar provider secret POLYGON`",
        403: "POLYGON refused the request: the key's plan does not include this data",
    }

    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        symbols = []
        url: str | None = f"{self._base()}/v3/reference/tickers"
        params: dict[str, Any] = {"market": self.pref("market"), "active": "true", "limit": 1000}
        while url:
            page = await self._get(url, params)
            for row in page.get("results") or []:
                quote_ccy = row.get("currency_symbol") or row.get("currency_name") or ""
                symbols.append(
                    SymbolInfo(
                        symbol=row["ticker"],
                        name=row.get("name") or None,
                        exchange=row.get("primary_exchange") or None,
                        asset_class=row.get("type") or row.get("market") or None,
                        base=row.get("base_currency_symbol") or None,
                        quote=quote_ccy.upper() or None,
                        provider_id=row.get("cik") or None,
                        figi=row.get("composite_figi") or None,
                    )
                )
            url, params = page.get("next_url"), {}
        return symbols

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        if interval not in self.AGGREGATES:
            raise ValueError(f"POLYGON has no {interval.value} bars")
        multiplier, timespan = self.AGGREGATES[interval]
        lead = self.LEAD.get(interval, timedelta(0))
        first = _ms(start - lead)
        last = _ms(end - lead) - 1
        url: str | None = (
            f"{self._base()}/v2/aggs/ticker/{quote(sym, safe=':')}/range/{multiplier}/"
            f"{timespan}/{first}/{last}"
        )
        params: dict[str, Any] = {"adjusted": "true", "sort": "asc", "limit": self.PAGE_LIMIT}
        while url:
            page = await self._get(url, params)
            for row in page.get("results") or []:
                ts = interval.floor(datetime.fromtimestamp(row["t"] / 1000, UTC) + lead)
                if start <= ts < end:
                    yield Bar(
                        ts,
                        row["o"],
                        row["h"],
                        row["l"],
                        row["c"],
                        row.get("v") or 0.0,
                        trades=row.get("n"),
                    )
            url, params = page.get("next_url"), {}

    def _base(self) -> str:
        return str(self.pref("base_url")).rstrip("/")

    async def _get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        key = self.context.get("api_key")
        if not key:
            raise ProviderHTTPError(self.MISSING_KEY)
        try:
            page = await self.http.get_json(url, {**params, "apiKey": key})
        except ProviderHTTPError as exc:
            if exc.status in self.REFUSALS:
                raise ProviderHTTPError(self.REFUSALS[exc.status], exc.status) from None
            raise
        if page.get("status") == "ERROR":
            raise ProviderHTTPError(f"POLYGON: {page.get('error') or page.get('message')}")
        return page


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)
