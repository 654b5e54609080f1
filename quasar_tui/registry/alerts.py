"""Alert rules, their per-series state and their history: every SQL statement of alerts.

A rule watches one series (a common symbol or PROVIDER:SYMBOL), one provider (kind
`provider`) or everything (`target` None). A webhook's signing secret is stored encrypted with
a key derived from the master key and bound to the webhook's URL, so a secret cannot be made
to sign for another endpoint by editing the row.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg

from quasar_tui.core.errors import InvalidInputError, NotFoundError
from quasar_tui.core.intervals import Interval
from quasar_tui.registry.secrets import Keyring
from quasar_tui.store.database import Database

Kind = Literal["above", "below", "change", "volume", "stale", "gap", "provider", "backfill"]
KINDS: tuple[Kind, ...] = (
    "above",
    "below",
    "change",
    "volume",
    "stale",
    "gap",
    "provider",
    "backfill",
)
Channel = Literal["log", "console", "webhook", "command"]
CHANGES_CHANNEL = "quasar_alerts"
_SECRET_SCOPE = "alert webhook"  # a space: no provider can be named this
_MAX_TEXT = 2000

_RULE_COLUMNS = """
    id, kind, target, level, percent, window_s, factor, bars, interval, stale_s, hysteresis,
    cooldown_s, webhook_url, webhook_secret IS NOT NULL AS signed, command, command_timeout_s,
    enabled, created_at"""
_INSERT_RULE = f"""
    INSERT INTO alert_rules (kind, target, level, percent, window_s, factor, bars, interval,
                             stale_s, hysteresis, cooldown_s, webhook_url, command,
                             command_timeout_s)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    RETURNING {_RULE_COLUMNS}"""
_SET_SECRET = "UPDATE alert_rules SET webhook_secret = $2 WHERE id = $1"
_LIST_RULES = f"SELECT {_RULE_COLUMNS} FROM alert_rules ORDER BY id"
_ENABLED_RULES = f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE enabled ORDER BY id"
_GET_RULE = f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE id = $1"
_SECRET_OF = "SELECT webhook_url, webhook_secret FROM alert_rules WHERE id = $1"
_SET_ENABLED = "UPDATE alert_rules SET enabled = $2 WHERE id = $1 AND enabled <> $2"
_EXISTS = "SELECT EXISTS (SELECT 1 FROM alert_rules WHERE id = $1)"
_DELETE_RULE = "DELETE FROM alert_rules WHERE id = $1"
_LAST_FIRED = """
    SELECT rule_id, max(fired_at) AS last FROM alert_events
     WHERE rule_id = ANY($1::bigint[]) GROUP BY rule_id"""

_STATES = """
    SELECT rule_id, key, side, last_fired, mark FROM alert_state
     WHERE rule_id = ANY($1::bigint[])"""
_SAVE_STATES = """
    INSERT INTO alert_state (rule_id, key, side, last_fired, mark)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[])
                  AS u(rule_id, key, side, last_fired, mark)
     WHERE EXISTS (SELECT 1 FROM alert_rules r WHERE r.id = u.rule_id)
    ON CONFLICT (rule_id, key) DO UPDATE
       SET side = excluded.side, last_fired = excluded.last_fired, mark = excluded.mark"""

# A rule removed while its alert was on the way: the event is kept, without its rule.
_INSERT_EVENT = """
    INSERT INTO alert_events (rule_id, kind, key, message, body, fired_at, pending)
    VALUES ((SELECT id FROM alert_rules WHERE id = $1), $2, $3, $4, $5, $6, $7) RETURNING id"""
_PENDING = """
    SELECT id, rule_id, kind, key, message, body, fired_at, pending FROM alert_events
     WHERE pending <> '{}' ORDER BY id"""
# An attempt, and when it is the channel's last (it got through, or was given up), the
# channel leaves the alert's pending list: both or neither.
_INSERT_DELIVERY = """
    WITH attempt AS (
        INSERT INTO alert_deliveries (event_id, channel, attempt, ok, detail)
        VALUES ($1, $2, $3, $4, $5))
    UPDATE alert_events SET pending = array_remove(pending, $2::text) WHERE id = $1 AND $6"""
_HISTORY = """
    SELECT e.id, e.rule_id, e.kind, e.key, e.message, e.fired_at, e.pending,
           coalesce(jsonb_agg(jsonb_build_object(
               'channel', d.channel, 'attempt', d.attempt, 'ok', d.ok, 'detail', d.detail,
               'at', d.at) ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '[]') AS deliveries
      FROM alert_events e
      LEFT JOIN alert_deliveries d ON d.event_id = e.id
     WHERE ($1::bigint IS NULL OR e.rule_id = $1)
     GROUP BY e.id
    HAVING NOT $2 OR bool_or(NOT d.ok AND d.channel <> ALL(e.pending) AND NOT EXISTS (
               SELECT 1 FROM alert_deliveries s
                WHERE s.event_id = e.id AND s.channel = d.channel AND s.ok))
     ORDER BY e.id DESC LIMIT $3"""

_TRIM_HISTORY = "DELETE FROM alert_events WHERE id <= (SELECT max(id) FROM alert_events) - $1"

# New gap records after a mark: what gap rules fire on (whoever recorded them).
_GAPS_AFTER = """
    SELECT id, provider, symbol, interval, mode, start_ts, end_ts, reason FROM gaps
     WHERE id > $1 ORDER BY id LIMIT $2"""
_LAST_GAP = "SELECT coalesce(max(id), 0) FROM gaps"
_LIVE_SERIES = """
    SELECT DISTINCT provider, symbol, interval FROM subscriptions
     WHERE mode = 'live' AND enabled ORDER BY provider, symbol, interval"""
_RECENT_BARS = """
    SELECT ts, volume FROM live_data
     WHERE provider = $1 AND symbol = $2 AND interval = $3 AND ts <= $4
     ORDER BY ts DESC LIMIT $5"""


@dataclass(frozen=True)
class NewRule:
    """What `quasar alert add` asks for; `check` says what is wrong with it, if anything."""

    kind: Kind
    target: str | None = None
    level: float | None = None
    percent: float | None = None
    window_s: int | None = None
    factor: float | None = None
    bars: int | None = None
    interval: str | None = None
    stale_s: int | None = None
    hysteresis: float = 0.0
    cooldown_s: int = 300
    webhook_url: str | None = None
    command: str | None = None
    command_timeout_s: int = 10

    def check(self) -> None:
        """InvalidInputError naming the first thing that makes no sense."""
        if self.kind not in KINDS:
            raise InvalidInputError(f"unknown alert kind {self.kind!r}: use {', '.join(KINDS)}")
        needs: dict[str, tuple[str, ...]] = {
            "above": ("level",),
            "below": ("level",),
            "change": ("percent", "window_s"),
            "volume": ("factor",),
            "stale": ("stale_s",),
        }
        for name in needs.get(self.kind, ()):
            value = getattr(self, name)
            if value is None:
                raise InvalidInputError(f"a {self.kind} alert needs --{_option(name)}")
            if not (math.isfinite(value) and value > 0):
                raise InvalidInputError(f"--{_option(name)} must be a number above 0")
        if self.kind in ("above", "below") and self.target is None:
            raise InvalidInputError(f"a {self.kind} alert watches one series: name it")
        if not (math.isfinite(self.hysteresis) and 0 <= self.hysteresis < 100):
            raise InvalidInputError("--hysteresis is a percentage from 0 to below 100")
        if self.webhook_url is not None and not self.webhook_url.startswith(
            ("http://", "https://")
        ):
            raise InvalidInputError("--webhook must be an http:// or https:// URL")
        for text in (self.target, self.webhook_url, self.command):
            if text is not None and (not text.strip() or len(text) > _MAX_TEXT):
                raise InvalidInputError(f"a value is empty or longer than {_MAX_TEXT} characters")


def _option(name: str) -> str:
    return {"window_s": "window", "stale_s": "seconds"}.get(name, name)


@dataclass(frozen=True)
class AlertRule:
    """A stored rule; `signed` says a webhook secret is stored (it is never read here)."""

    id: int
    kind: Kind
    target: str | None
    level: float | None
    percent: float | None
    window_s: int | None
    factor: float | None
    bars: int | None
    interval: str | None
    stale_s: int | None
    hysteresis: float
    cooldown_s: int
    webhook_url: str | None
    signed: bool
    command: str | None
    command_timeout_s: int
    enabled: bool
    created_at: datetime
    last_fired: datetime | None = None

    @property
    def condition(self) -> str:
        """The rule in words, as lists and messages show it."""
        match self.kind:
            case "above" | "below":
                band = f" (re-arms {self.hysteresis:g} % back)" if self.hysteresis else ""
                return f"price crosses {self.kind} {self.level:g}{band}"
            case "change":
                return f"moves {self.percent:g} % within {self.window_s} s"
            case "volume":
                return f"{self.interval} bar volume over {self.factor:g} x the last {self.bars}"
            case "stale":
                return f"no trade for {self.stale_s} s while its market is open"
            case "gap":
                return "a new gap is recorded"
            case "provider":
                return "provider goes bad (error, crashed, parked) or comes back"
        return "a backfill finished"

    @property
    def channels(self) -> list[Channel]:
        found: list[Channel] = ["log", "console"]
        if self.webhook_url:
            found.append("webhook")
        if self.command:
            found.append("command")
        return found


@dataclass
class RuleState:
    """What one rule last saw of one key (a series, a provider, or `*`)."""

    side: str | None = None
    last_fired: datetime | None = None
    mark: int | None = None


@dataclass(frozen=True)
class Delivery:
    channel: Channel
    attempt: int
    ok: bool
    detail: str | None = None


@dataclass(frozen=True)
class FiredEvent:
    """An alert as recorded when it fired: `pending`, the channels it has still to reach;
    `rule_id` None once its rule was removed."""

    rule_id: int | None
    kind: str
    key: str
    message: str
    body: dict[str, Any]  # JSON-ready
    fired_at: datetime
    pending: tuple[Channel, ...]


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    rule_id: int | None
    kind: str
    key: str
    message: str
    fired_at: datetime
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    pending: tuple[str, ...] = ()  # channels still to reach (being tried, or the engine stopped)

    @property
    def failed(self) -> list[str]:
        """Channels that never succeeded for this alert (some may still be `pending`)."""
        ok = {d["channel"] for d in self.deliveries if d["ok"]}
        return sorted({d["channel"] for d in self.deliveries if d["channel"] not in ok})

    @property
    def failed_for_good(self) -> list[str]:
        """Channels that failed and will not be tried again."""
        return [c for c in self.failed if c not in self.pending]


@dataclass(frozen=True)
class GapRecord:
    id: int
    provider: str
    symbol: str
    interval: str
    mode: str
    start_ts: datetime
    end_ts: datetime
    reason: str


@dataclass(frozen=True)
class LiveSeries:
    provider: str
    symbol: str
    interval: str


class AlertStore:
    """Rules, states, history; the keyring encrypts and decrypts webhook secrets."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self.keyring = keyring

    # -- rules -----------------------------------------------------------------------------

    async def add(self, rule: NewRule, webhook_secret: str | None = None) -> AlertRule:
        rule.check()
        if webhook_secret is not None and rule.webhook_url is None:
            raise InvalidInputError("a webhook secret needs --webhook")
        if rule.kind == "volume" and rule.interval is not None:
            Interval.parse(rule.interval)
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                _INSERT_RULE,
                rule.kind,
                rule.target,
                rule.level,
                rule.percent,
                rule.window_s,
                rule.factor,
                rule.bars,
                rule.interval,
                rule.stale_s,
                rule.hysteresis,
                rule.cooldown_s,
                rule.webhook_url,
                rule.command,
                rule.command_timeout_s,
            )
            assert row is not None
            if webhook_secret:
                assert rule.webhook_url is not None
                blob = self._encrypt(rule.webhook_url, webhook_secret)
                await conn.execute(_SET_SECRET, row["id"], blob)
                row = await conn.fetchrow(_GET_RULE, row["id"])
                assert row is not None
        return AlertRule(**dict(row))

    def _encrypt(self, url: str, secret: str) -> bytes:
        return self.keyring.encrypt(_SECRET_SCOPE, _url_hash(url), {"hmac": secret})

    async def webhook_secret(self, rule_id: int) -> str | None:
        """The decrypted secret of a rule's webhook (only the engine's delivery calls this)."""
        row = await self.db.fetchrow(_SECRET_OF, rule_id)
        if row is None or row["webhook_secret"] is None:
            return None
        values = self.keyring.decrypt(_SECRET_SCOPE, _url_hash(row["webhook_url"]), row[1])
        return values["hmac"]

    async def rules(self, *, enabled_only: bool = False) -> list[AlertRule]:
        rows = await self.db.fetch(_ENABLED_RULES if enabled_only else _LIST_RULES)
        rules = [AlertRule(**dict(r)) for r in rows]
        fired = {
            r["rule_id"]: r["last"] for r in await self.db.fetch(_LAST_FIRED, [x.id for x in rules])
        }
        return [_with_last(rule, fired.get(rule.id)) for rule in rules]

    async def get(self, rule_id: int) -> AlertRule:
        row = await self.db.fetchrow(_GET_RULE, rule_id)
        if row is None:
            raise NotFoundError(f"no alert rule {rule_id}; see `quasar alert list`")
        return AlertRule(**dict(row))

    async def set_enabled(self, rule_id: int, enabled: bool) -> bool:
        """Whether it changed (False: it was so already)."""
        changed = await self.db.execute(_SET_ENABLED, rule_id, enabled)
        if changed == "UPDATE 0" and not await self.db.fetchval(_EXISTS, rule_id):
            raise NotFoundError(f"no alert rule {rule_id}; see `quasar alert list`")
        return changed != "UPDATE 0"

    async def remove(self, rule_id: int) -> None:
        if await self.db.execute(_DELETE_RULE, rule_id) == "DELETE 0":
            raise NotFoundError(f"no alert rule {rule_id}; see `quasar alert list`")

    # -- state and what fired --------------------------------------------------------------

    async def states(self, rule_ids: Sequence[int]) -> dict[tuple[int, str], RuleState]:
        rows = await self.db.fetch(_STATES, list(rule_ids))
        return {
            (r["rule_id"], r["key"]): RuleState(r["side"], r["last_fired"], r["mark"]) for r in rows
        }

    async def record(
        self, events: Sequence[FiredEvent], states: dict[tuple[int, str], RuleState]
    ) -> list[int]:
        """Alerts that fired and the states that changed, in one transaction: an alert is
        stored with the state that made it fire or not at all. The alerts' ids, in order."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            ids = [await _insert_event(conn, event) for event in events]
            await _save_states(conn, states)
        return ids

    async def pending(self) -> list[tuple[int, FiredEvent]]:
        """Recorded alerts with channels they have not reached yet, oldest first."""
        return [
            (
                r["id"],
                FiredEvent(
                    r["rule_id"],
                    r["kind"],
                    r["key"],
                    r["message"],
                    _json(r["body"]),
                    r["fired_at"],
                    tuple(r["pending"]),
                ),
            )
            for r in await self.db.fetch(_PENDING)
        ]

    # -- history ---------------------------------------------------------------------------

    async def record_delivery(self, event_id: int, delivery: Delivery, done: bool = False) -> None:
        """One attempt; `done`: the channel's last one for this alert."""
        await self.db.execute(
            _INSERT_DELIVERY,
            event_id,
            delivery.channel,
            delivery.attempt,
            delivery.ok,
            delivery.detail,
            done,
        )

    async def history(
        self, rule_id: int | None = None, *, failed_only: bool = False, limit: int = 50
    ) -> list[HistoryEntry]:
        rows = await self.db.fetch(_HISTORY, rule_id, failed_only, limit)
        return [
            HistoryEntry(
                **{
                    **dict(r),
                    "deliveries": _deliveries(r["deliveries"]),
                    "pending": tuple(r["pending"]),
                }
            )
            for r in rows
        ]

    async def trim_history(self, kept: int) -> None:
        """Keep the newest `kept` alerts (and their deliveries)."""
        await self.db.execute(_TRIM_HISTORY, kept)

    # -- what rules watch ------------------------------------------------------------------

    async def gaps_after(self, mark: int, limit: int = 500) -> list[GapRecord]:
        return [GapRecord(**dict(r)) for r in await self.db.fetch(_GAPS_AFTER, mark, limit)]

    async def last_gap(self) -> int:
        last: int = await self.db.fetchval(_LAST_GAP)
        return last

    async def live_series(self) -> list[LiveSeries]:
        return [LiveSeries(**dict(r)) for r in await self.db.fetch(_LIVE_SERIES)]

    async def recent_volumes(
        self, provider: str, symbol: str, interval: str, upto: datetime, count: int
    ) -> list[tuple[datetime, float]]:
        """The newest `count` live bars' (start, volume) at or before `upto`, newest first."""
        rows = await self.db.fetch(_RECENT_BARS, provider, symbol, interval, upto, count)
        return [(r["ts"], float(r["volume"] or 0.0)) for r in rows]


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _with_last(rule: AlertRule, last: datetime | None) -> AlertRule:
    return AlertRule(**{**rule.__dict__, "last_fired": last})


def _deliveries(value: Any) -> list[dict[str, Any]]:
    return json.loads(value) if isinstance(value, str) else list(value)


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


async def _insert_event(conn: asyncpg.Connection, event: FiredEvent) -> int:
    args = (event.kind, event.key, event.message, event.body, event.fired_at, list(event.pending))
    try:
        async with conn.transaction():  # a savepoint: the rule may go while this is written
            event_id: int = await conn.fetchval(_INSERT_EVENT, event.rule_id, *args)
    except asyncpg.ForeignKeyViolationError:
        event_id = await conn.fetchval(_INSERT_EVENT, None, *args)
    return event_id


async def _save_states(conn: asyncpg.Connection, states: dict[tuple[int, str], RuleState]) -> None:
    """Upsert in one statement; states of rules removed meanwhile are skipped."""
    if not states:
        return
    items = list(states.items())
    await conn.execute(
        _SAVE_STATES,
        [k[0] for k, _ in items],
        [k[1] for k, _ in items],
        [s.side for _, s in items],
        [s.last_fired for _, s in items],
        [s.mark for _, s in items],
    )
