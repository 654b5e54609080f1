"""What to collect: provider, symbol, interval and mode, validated against the provider.

User edits fire the NOTIFY trigger of db/005_notify.sql so a running engine reconciles within a
second; the engine's own `set_state` touches only columns the trigger ignores.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from quasar_tui.core.errors import ConflictError, InvalidInputError, NotFoundError
from quasar_tui.core.intervals import Interval
from quasar_tui.quality.calendars import calendar as trading_calendar
from quasar_tui.registry.assets import provider_row, unknown_symbol_error
from quasar_tui.store.database import Database
from quasar_tui.store.engine_lock import ENGINE_HELD

MODES = ("historical", "live")

# The last stored bar comes from the table the mode writes to; each max(ts) is one backward
# step on the (provider, symbol, interval, ts) primary key. A subscription the engine left
# `running` reads `stopped` when no engine holds the lock (it stopped, or was killed).
_SELECT = f"""
SELECT s.id, s.provider, s.symbol, s.interval, s.mode, s.enabled, s.lookback_days,
       CASE WHEN s.state = 'running' AND NOT {ENGINE_HELD} THEN 'stopped' ELSE s.state END
           AS state,
       s.last_error, s.last_run_at, s.created_at, s.updated_at, s.calendar,
       CASE WHEN s.mode = 'historical'
            THEN (SELECT max(h.ts) FROM historical_data h
                  WHERE h.provider = s.provider AND h.symbol = s.symbol
                    AND h.interval = s.interval)
            ELSE (SELECT max(l.ts) FROM live_data l
                  WHERE l.provider = s.provider AND l.symbol = s.symbol
                    AND l.interval = s.interval)
       END AS last_bar_ts
FROM subscriptions s
"""
LIST = (
    _SELECT
    + """
WHERE ($1::text IS NULL OR s.provider = $1)
ORDER BY s.provider, s.symbol, s.interval, s.mode
"""
)
GET = _SELECT + "WHERE s.id = $1"
BY_IDS = _SELECT + "WHERE s.id = ANY($1::bigint[]) ORDER BY s.id"
FIND = _SELECT + "WHERE s.provider = $1 AND s.symbol = $2 AND s.interval = $3 AND s.mode = $4"

ASSETS_AMONG = "SELECT symbol, active FROM assets WHERE provider = $1 AND symbol = ANY($2::text[])"
EXISTING = """
SELECT id, symbol FROM subscriptions
WHERE provider = $1 AND symbol = ANY($2::text[]) AND interval = $3 AND mode = $4
ORDER BY symbol
"""
INSERT = """
INSERT INTO subscriptions (provider, symbol, interval, mode, lookback_days, calendar)
SELECT $1, s, $3, $4, $5, $6 FROM unnest($2::text[]) WITH ORDINALITY AS t(s, n)
ORDER BY n
RETURNING id
"""
IDS_AMONG = "SELECT id FROM subscriptions WHERE id = ANY($1::bigint[])"
SET_ENABLED = """
UPDATE subscriptions SET enabled = $2, updated_at = now()
WHERE id = ANY($1::bigint[]) AND enabled IS DISTINCT FROM $2
"""
DELETE = "DELETE FROM subscriptions WHERE id = ANY($1::bigint[])"
SET_STATE = """
UPDATE subscriptions SET state = $2, last_error = $3, last_run_at = coalesce($4, last_run_at)
WHERE id = $1
"""
# What the engine, in whatever process holds its lock, listens for (engine/engine.py).
CHANGES_CHANNEL = "quasar_changes"
BACKFILL_PREFIX = "backfill:"
NOTIFY_BACKFILL = """
SELECT pg_notify($1::text, $2::text || t.id) FROM unnest($3::bigint[]) AS t(id)
"""

MAX_LOOKBACK_DAYS = 36_500
"""A hundred years: more is a typo, and would overflow date arithmetic later."""


@dataclass(frozen=True)
class SubscriptionRecord:
    id: int
    provider: str
    symbol: str
    interval: str
    mode: str
    enabled: bool
    lookback_days: int
    state: str
    last_error: str | None
    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    calendar: str | None  # the user's choice; None: from the asset's exchange
    last_bar_ts: datetime | None


def _record(row: asyncpg.Record) -> SubscriptionRecord:
    return SubscriptionRecord(**dict(row))


def _check_interval(provider: str, capabilities: dict[str, Any], interval: str) -> Interval:
    parsed = Interval.parse(interval)
    offered = capabilities.get("intervals")
    if offered is not None and parsed.value not in offered:
        raise InvalidInputError(
            f"{provider} does not offer {parsed.value} bars; it offers: {' '.join(offered)}"
        )
    return parsed


def _check_mode(provider: str, kind: str, capabilities: dict[str, Any], mode: str) -> None:
    if mode not in MODES:
        raise InvalidInputError(f"unknown mode {mode!r}: use historical or live")
    if mode == "live" and kind != "live":
        raise InvalidInputError(f"{provider} is a historical provider; subscribe without --live")
    if mode == "historical" and kind == "live" and not capabilities.get("has_history"):
        raise InvalidInputError(
            f"{provider} is a live provider with no history; subscribe with --live"
        )


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


async def _existing_ids(conn: asyncpg.Connection, ids: Iterable[int]) -> list[int]:
    wanted = _unique(ids)
    if not wanted:
        raise InvalidInputError("name at least one subscription id")
    found = {r["id"] for r in await conn.fetch(IDS_AMONG, wanted)}
    missing = [str(i) for i in wanted if i not in found]
    if missing:
        raise NotFoundError(
            f"no subscription with id {', '.join(missing)}; see `quasar subscriptions`"
        )
    return wanted


class SubscriptionStore:
    """Subscriptions CRUD; every change is all-or-nothing."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        provider: str,
        symbols: Sequence[str],
        interval: str,
        mode: str,
        *,
        lookback_days: int = 365,
        calendar: str | None = None,
    ) -> list[SubscriptionRecord]:
        """Subscribe each symbol; one bad symbol or duplicate writes none. `calendar` names the
        market's trading calendar when the asset's exchange does not say (`24/7`, `XNYS`...)."""
        wanted = _unique(s.strip() for s in symbols if s.strip())
        if not wanted:
            raise InvalidInputError("name at least one symbol to subscribe")
        if (
            isinstance(lookback_days, bool)
            or not isinstance(lookback_days, int)
            or not 0 < lookback_days <= MAX_LOOKBACK_DAYS
        ):
            raise InvalidInputError(
                f"lookback must be a whole number of days from 1 to {MAX_LOOKBACK_DAYS}, "
                f"not {lookback_days!r}"
            )
        chosen = trading_calendar(calendar).name if calendar is not None else None
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await provider_row(conn, provider)
            capabilities = row["capabilities"] or {}
            parsed = _check_interval(provider, capabilities, interval)
            _check_mode(provider, row["kind"], capabilities, mode)
            known = {
                r["symbol"]: r["active"] for r in await conn.fetch(ASSETS_AMONG, provider, wanted)
            }
            for symbol in wanted:
                if symbol not in known:
                    raise await unknown_symbol_error(conn, provider, symbol)
                if not known[symbol]:
                    raise InvalidInputError(
                        f"{provider} no longer lists {symbol}; "
                        f"see `quasar assets refresh {provider}`"
                    )
            taken = await conn.fetch(EXISTING, provider, wanted, parsed.value, mode)
            if taken:
                listed = ", ".join(f"{r['symbol']} (id {r['id']})" for r in taken)
                raise ConflictError(
                    f"already subscribed to {parsed.value} {mode} bars of {provider}: {listed}"
                )
            try:
                ids = [
                    r["id"]
                    for r in await conn.fetch(
                        INSERT, provider, wanted, parsed.value, mode, lookback_days, chosen
                    )
                ]
            except asyncpg.UniqueViolationError:
                raise ConflictError(
                    f"subscriptions of {provider} changed meanwhile; run the command again"
                ) from None
            return [_record(r) for r in await conn.fetch(BY_IDS, ids)]

    async def list(self, provider: str | None = None) -> list[SubscriptionRecord]:
        if provider is not None:
            await provider_row(self.db, provider)
        return [_record(r) for r in await self.db.fetch(LIST, provider)]

    async def get(self, sub_id: int) -> SubscriptionRecord:
        row = await self.db.fetchrow(GET, sub_id)
        if row is None:
            raise NotFoundError(f"no subscription with id {sub_id}; see `quasar subscriptions`")
        return _record(row)

    async def find(
        self, provider: str, symbol: str, interval: str, mode: str
    ) -> SubscriptionRecord | None:
        """The subscription with exactly these keys, if there is one."""
        value = Interval.parse(interval).value
        row = await self.db.fetchrow(FIND, provider, symbol, value, mode)
        return _record(row) if row else None

    async def set_enabled(self, ids: Iterable[int], enabled: bool) -> int:
        """Pause or resume; returns how many changed. Unknown ids change nothing."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            wanted = await _existing_ids(conn, ids)
            status = await conn.execute(SET_ENABLED, wanted, enabled)
        return int(status.split()[-1])

    async def delete(self, ids: Iterable[int]) -> int:
        """Remove subscriptions; the bars they collected stay. Unknown ids remove nothing."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            wanted = await _existing_ids(conn, ids)
            status = await conn.execute(DELETE, wanted)
        return int(status.split()[-1])

    async def request_backfill(self, ids: Iterable[int]) -> builtins.list[SubscriptionRecord]:
        """Ask the running engine, in this process or another, to run these subscriptions'
        historical jobs now; returns the ones asked for: enabled historical ones (live ones
        fill their own gaps, paused ones have no job). Unknown ids ask for nothing."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            wanted = await _existing_ids(conn, ids)
            records = [_record(r) for r in await conn.fetch(BY_IDS, wanted)]
            due = [r for r in records if r.mode == "historical" and r.enabled]
            if due:
                await conn.execute(
                    NOTIFY_BACKFILL, CHANGES_CHANNEL, BACKFILL_PREFIX, [r.id for r in due]
                )
        return due

    async def set_state(
        self,
        sub_id: int,
        state: str,
        error: str | None = None,
        *,
        ran_at: datetime | None = None,
    ) -> None:
        """The engine's progress note; does not wake the engine through NOTIFY."""
        status = await self.db.execute(SET_STATE, sub_id, state, error, ran_at)
        if status == "UPDATE 0":
            raise NotFoundError(f"no subscription with id {sub_id}")
