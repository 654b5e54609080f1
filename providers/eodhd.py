"""EODHD (eodhd.com): end-of-day and intraday bars for stocks, ETFs, indices, forex and crypto.

Symbols are `CODE.EXCHANGE` (`AAPL.US`, `BTC-USD.CC`, `EURUSD.FOREX`). Set the token with
`quasar provider secret EODHD` (it prompts without echo).

Intervals: 1d, 1w and 1M from `/eod`; 1min, 5min and 1h from `/intraday`. EODHD has no 15min,
30min or 4h bars and this provider does not build them from smaller ones (a roll-up would be
a second source of truth for the same series): subscribe to 5min or 1h instead.

Keys: EODHD dates a daily bar by its day, and a weekly or monthly bar by a trading day inside
the period; every bar is stored under its period's start in UTC (the day, the Monday, the 1st).
Intraday rows carry the bar start as a unix `timestamp`.
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


class EODHD(HistoricalDataProvider):
    name = "EODHD"
    RATE_LIMIT = (1000, 60.0)
    CONCURRENCY = 4
    SECRETS = ("api_token",)
    CONFIGURABLE = {
        "base_url": Setting(default="https://eodhd.com/api", help="API root URL", max_length=512),
        "exchanges": Setting(
            default="US",
            help="exchange codes to list symbols from, comma separated (US,LSE,CC)",
            max_length=512,
        ),
    }

    EOD_PERIODS = {Interval.D1: "d", Interval.W1: "w", Interval.MO1: "m"}
    INTRADAY = {Interval.M1: "1m", Interval.M5: "5m", Interval.H1: "1h"}
    INTERVALS = (*INTRADAY, *EOD_PERIODS)
    # The longest `from` -> `to` span /intraday accepts per request.
    MAX_RANGE = {
        Interval.M1: timedelta(days=120),
        Interval.M5: timedelta(days=600),
        Interval.H1: timedelta(days=7200),
    }
    MISSING_TOKEN = "EODHD needs an API token: set it with `quasar provider secret EODHD`"
    REFUSALS = {
        401: "EODHD rejected the API token: set another with `quasar provider secret EODHD`",
        402: "EODHD says the daily quota is spent: collection resumes when it resets",
        403: "EODHD refused the request: the token's plan does not include this data",
        404: "EODHD does not know this symbol (symbols look like AAPL.US or BTC-USD.CC)",
    }

    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        symbols = []
        for exchange in str(self.pref("exchanges")).split(","):
            exchange = exchange.strip().upper()
            if not exchange:
                continue
            for row in await self._get(f"/exchange-symbol-list/{quote(exchange)}", {}):
                code = row["Code"]
                base, _, quote_ccy = code.partition("-")
                crypto = exchange == "CC"
                symbols.append(
                    SymbolInfo(
                        symbol=f"{code}.{exchange}",
                        name=row.get("Name") or None,
                        exchange=row.get("Exchange") or exchange,
                        asset_class=row.get("Type") or None,
                        base=base if crypto else None,
                        quote=(quote_ccy if crypto else row.get("Currency")) or None,
                        provider_id=row.get("Isin") or None,
                    )
                )
        return symbols

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        if interval in self.EOD_PERIODS:
            rows = await self._get(
                f"/eod/{quote(sym)}",
                {
                    "period": self.EOD_PERIODS[interval],
                    "from": start.date().isoformat(),
                    "to": (end - timedelta(days=1)).date().isoformat(),
                },
            )
            stamps = [
                interval.floor(datetime.fromisoformat(r["date"]).replace(tzinfo=UTC)) for r in rows
            ]
        elif interval in self.INTRADAY:
            rows = await self._get(
                f"/intraday/{quote(sym)}",
                {
                    "interval": self.INTRADAY[interval],
                    "from": int(start.timestamp()),
                    "to": int(end.timestamp()) - 1,
                },
            )
            stamps = [datetime.fromtimestamp(r["timestamp"], UTC) for r in rows]
        else:
            offered = " ".join(i.value for i in self.INTERVALS)
            raise ValueError(f"EODHD has no {interval.value} bars (it has: {offered})")
        for ts, row in zip(stamps, rows, strict=True):
            if start <= ts < end:
                yield Bar(
                    ts, row["open"], row["high"], row["low"], row["close"], row.get("volume") or 0.0
                )

    async def _get(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        token = self.context.get("api_token")
        if not token:
            raise ProviderHTTPError(self.MISSING_TOKEN)
        url = str(self.pref("base_url")).rstrip("/") + path
        try:
            answer = await self.http.get_json(url, {**params, "fmt": "json", "api_token": token})
        except ProviderHTTPError as exc:
            if exc.status in self.REFUSALS:
                raise ProviderHTTPError(self.REFUSALS[exc.status], exc.status) from None
            raise
        if not isinstance(answer, list):
            raise ProviderHTTPError(
                f"EODHD answered {path} with {type(answer).__name__}, not a list"
            )
        return answer
