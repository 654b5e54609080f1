"""Alerts evaluated by the engine's alert service on real bus events, stored in the real
database, delivered to a loopback webhook receiver: each kind fires once per event, cooldown
and hysteresis hold, state survives a restart of the service, the stale-feed alert follows the
market's calendar (on an injected clock), failed deliveries are retried and recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes.webhook import WebhookReceiver
from helpers import until, with_simulated
from registry_rows import add_provider

from quasar_tui.engine.alerts import AlertService
from quasar_tui.engine.alerts.delivery import SIGNATURE_HEADER, command_environment
from quasar_tui.engine.alerts.evaluator import Evaluator, Target
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.events import (
    AlertFired,
    BarsWritten,
    EngineError,
    EventBus,
    JobRun,
    ProviderState,
    TradesRead,
)
from quasar_tui.quality.calendars import Calendar, calendar
from quasar_tui.registry.alerts import AlertStore, FiredEvent, NewRule, RuleState
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk.models import Tick
from quasar_tui.store.database import Database

SECRET = "hook-secret-never-shown"
MONDAY = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # XNYS open (10:00 New York)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def store(db: Database, registry: ProviderRegistry) -> AlertStore:
    return AlertStore(db, registry.keyring)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


class Rig:
    """An alert service on its own bus; `restart` builds a new one on the same database."""

    def __init__(
        self, store: AlertStore, clock: Clock, calendars: dict[str, Calendar] | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.calendars = calendars or {}
        self.bus = EventBus()
        self.seen = self.bus.subscribe(kinds=(AlertFired,))
        self.service = self._service()

    def _service(self) -> AlertService:
        async def calendar_of(provider: str, symbol: str, interval: str) -> Calendar | None:
            return self.calendars.get(f"{provider}:{symbol}")

        # Checks run when a test calls them (the once-a-second loop is an hour apart here).
        return AlertService(
            self.store, self.bus, self.clock, check_every=3600, calendars=calendar_of
        )

    async def restart(self) -> None:
        await self.service.stop()
        self.service = self._service()
        await self.service.start()

    def trades(self, symbol: str, *prices: float, provider: str = "SIMULATED") -> None:
        ticks = [
            Tick(symbol, self.clock.now + timedelta(milliseconds=i), p, 1.0)
            for i, p in enumerate(prices)
        ]
        self.bus.publish(TradesRead(provider, ticks))

    async def settle(self) -> None:
        """Everything published so far evaluated, delivered and recorded."""
        await until(self.service.idle, "alerts evaluated and delivered")
        await self.service.save()

    def fired(self) -> list[AlertFired]:
        return [e for e in self.seen.drain() if isinstance(e, AlertFired)]


@pytest.fixture
async def rig(store: AlertStore, clock: Clock) -> AsyncIterator[Rig]:
    built = Rig(store, clock)
    yield built
    await built.service.stop()


async def add(store: AlertStore, rig: Rig, **fields: object) -> int:
    rule = await store.add(NewRule(**fields))  # type: ignore[arg-type]
    await rig.service.reload()
    return rule.id


async def test_a_level_crossed_reaches_the_webhook_once_signed_and_recorded(
    store: AlertStore, rig: Rig, hook: WebhookReceiver
) -> None:
    rule = await store.add(
        NewRule("above", "SIMULATED:SIM/BTC", level=100.0, webhook_url=hook.url),
        webhook_secret=SECRET,
    )
    await rig.service.start()
    rig.trades("SIM/BTC", 99.0, 99.5)
    rig.trades("SIM/ETH", 150.0)  # another series: nothing
    rig.trades("SIM/BTC", 100.5, 101.0, 99.9, 100.2)  # crosses, dips, crosses again
    await rig.settle()
    await until(lambda: hook.received, "webhook POST")

    [post] = hook.received
    assert post.alert["rule_id"] == rule.id and post.alert["key"] == "SIMULATED:SIM/BTC"
    assert post.alert["details"]["price"] == 100.5
    expected = hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
    assert post.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    [entry] = await store.history()
    assert entry.message == "SIMULATED:SIM/BTC crossed above 100 at 100.5"
    assert {d["channel"] for d in entry.deliveries if d["ok"]} == {"log", "console", "webhook"}
    assert [a.message for a in rig.fired()] == [entry.message]
    raw = await store.db.fetchval("SELECT webhook_secret FROM alert_rules")
    assert SECRET.encode() not in raw  # stored encrypted


async def test_alerts_left_pending_are_delivered_once_on_start_unless_their_rule_went(
    store: AlertStore, rig: Rig, hook: WebhookReceiver, clock: Clock
) -> None:
    kept = await store.add(NewRule("above", "SIMULATED:A", level=1.0, webhook_url=hook.url))
    gone = await store.add(NewRule("above", "SIMULATED:B", level=1.0, webhook_url=hook.url))
    left = [  # what an engine killed before delivering leaves: recorded, the webhook to go
        FiredEvent(rule.id, "above", rule.target or "", "crossed", {}, clock.now, ("webhook",))
        for rule in (kept, gone)
    ]
    kept_id, gone_id = await store.record(left, {})
    await store.remove(gone.id)

    await rig.service.start()
    await rig.settle()
    assert [post.alert["id"] for post in hook.received] == [kept_id]
    entries = {e.id: e for e in await store.history()}
    assert entries[kept_id].failed == [] and entries[gone_id].failed == ["webhook"]
    assert entries[gone_id].deliveries[0]["detail"] == "its rule was removed before delivery"
    await rig.restart()
    await rig.settle()
    assert len(hook.received) == 1  # delivered is delivered: not again on the next start


async def test_hysteresis_and_cooldown_hold_and_survive_a_restart(
    store: AlertStore, rig: Rig, clock: Clock
) -> None:
    await rig.service.start()
    await add(
        store, rig, kind="below", target="SIMULATED:ACME", level=50.0, hysteresis=1.0, cooldown_s=60
    )
    rig.trades("ACME", 51.0, 49.9)  # fires
    rig.trades("ACME", 50.2, 49.8, 50.4, 49.7)  # never back beyond 50.5: not re-armed
    await rig.settle()
    assert len(rig.fired()) == 1

    clock.step(30)
    rig.trades("ACME", 50.6, 49.5)  # re-armed and crossed, but within the cooldown
    await rig.settle()
    assert rig.fired() == []

    await rig.restart()  # the side (below) and the last firing are read back
    rig.trades("ACME", 49.0)
    clock.step(20)
    rig.trades("ACME", 50.6, 49.6)  # still within 60 s of the first alert
    await rig.settle()
    assert rig.fired() == []

    clock.step(20)
    await rig.restart()
    rig.trades("ACME", 49.4)  # below already before the restart: not a crossing
    rig.trades("ACME", 50.8, 49.2)  # a real crossing after the cooldown
    await rig.settle()
    assert [a.details["price"] for a in rig.fired()] == [49.2]


async def test_a_move_within_the_window_fires_once_per_move(
    store: AlertStore, rig: Rig, clock: Clock
) -> None:
    await rig.service.start()
    await add(store, rig, kind="change", target=None, percent=2.0, window_s=60, cooldown_s=0)
    rig.trades("SIM/BTC", 100.0, 101.0, 101.9)  # +1.9 %: nothing
    rig.trades("SIM/BTC", 102.1)  # +2.1 % from the low
    rig.trades("SIM/BTC", 102.5)  # the window restarted at 102.1: nothing
    clock.step(120)
    rig.trades("ACME", 10.0)
    await rig.settle()
    [up] = rig.fired()
    assert up.key == "SIMULATED:SIM/BTC" and up.details["from"] == 100.0

    for seconds, price in [(0, 10.0), (90, 9.7), (100, 9.79)]:  # 10.0 leaves the window
        tick = Tick("ACME", clock.now + timedelta(seconds=seconds), price, 1.0)
        rig.bus.publish(TradesRead("SIMULATED", [tick]))
    later = Tick("ACME", clock.now + timedelta(seconds=110), 9.5, 1.0)
    rig.bus.publish(TradesRead("SIMULATED", [later]))  # -2.96 % from the window's high
    await rig.settle()
    [down] = rig.fired()
    assert down.key == "SIMULATED:ACME" and down.details["from"] == 9.79


async def test_a_move_on_every_series_counts_on_a_series_with_a_rule_of_its_own(
    store: AlertStore, rig: Rig
) -> None:
    await rig.service.start()
    await add(store, rig, kind="above", target="SIMULATED:SIM/BTC", level=1000.0)
    await add(store, rig, kind="change", target=None, percent=2.0, window_s=60, cooldown_s=0)
    rig.trades("SIM/BTC", 100.0, 102.1)
    await rig.settle()
    [moved] = rig.fired()
    assert moved.kind == "change" and moved.key == "SIMULATED:SIM/BTC"


async def test_a_reload_keeps_the_windows_of_the_move_rules_it_left_as_they_were(
    store: AlertStore, rig: Rig
) -> None:
    """Adding a rule (or editing a mapping) reloads them all; a move that began before the
    reload still fires after it."""
    await rig.service.start()
    one = await add(store, rig, kind="change", target="SIMULATED:SIM/BTC", percent=2.0, window_s=60)
    every = await add(store, rig, kind="change", target=None, percent=2.0, window_s=60)
    rig.trades("SIM/BTC", 100.0)
    await rig.settle()
    await add(store, rig, kind="above", target="SIMULATED:ACME", level=50.0)
    rig.trades("SIM/BTC", 102.1)
    await rig.settle()
    fired = rig.fired()
    assert sorted(a.rule_id for a in fired) == [one, every]
    assert {a.details["from"] for a in fired} == {100.0}


async def test_bar_volume_over_its_recent_average_fires_once_per_bar(
    store: AlertStore, rig: Rig, db: Database
) -> None:
    await rig.service.start()
    await add(
        store, rig, kind="volume", target="SIMULATED:SIM/BTC", factor=3.0, bars=3, interval="1min"
    )
    start = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    volumes = [10.0, 12.0, 8.0, 29.0, 100.0]  # 29 < 3 x 10; 100 > 3 x 16.3
    for i, volume in enumerate(volumes):
        ts = start + timedelta(minutes=i)
        await db.execute(
            "INSERT INTO live_data (provider, symbol, interval, ts, open, high, low, close, "
            "volume, trades) VALUES ('SIMULATED', 'SIM/BTC', '1min', $1, 1, 1, 1, 1, $2, 1)",
            ts,
            volume,
        )
        event = BarsWritten("live_data", "SIMULATED", "SIM/BTC", "1min", 1, ts)
        rig.bus.publish(event)
        rig.bus.publish(event)  # written again (a correction): judged once
        await rig.settle()
    [alert] = rig.fired()
    assert alert.details["volume"] == 100.0
    assert alert.details["average"] == pytest.approx((12 + 8 + 29) / 3)


async def test_a_stale_feed_alerts_only_while_its_market_is_open(
    store: AlertStore, clock: Clock
) -> None:
    saturday = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    clock.now = saturday
    rig = Rig(store, clock, {"SIMULATED:ACME": calendar("XNYS")})
    try:
        await rig.service.start()
        await add(store, rig, kind="stale", target="SIMULATED:ACME", stale_s=60, cooldown_s=0)
        rig.trades("ACME", 10.0)
        await rig.settle()
        for _ in range(40):  # the weekend, an hour at a time: the market is closed
            clock.step(3600)
            rig.service.check_silence()
        clock.now = datetime(2026, 11, 30, 14, 29, 30, tzinfo=UTC)  # still closed
        rig.service.check_silence()
        await rig.settle()
        assert rig.fired() == []

        clock.now = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)  # Monday 09:30 New York
        rig.service.check_silence()
        clock.step(29)
        rig.service.check_silence()
        await rig.settle()
        assert rig.fired() == []  # silence counts from the open, not from Friday
        clock.step(2)
        rig.service.check_silence()
        clock.step(30)
        rig.service.check_silence()  # still silent: no second alert for the same silence
        await rig.settle()
        [alert] = rig.fired()
        assert alert.key == "SIMULATED:ACME" and alert.details["silent_s"] == 61

        await rig.restart()  # the silence was alerted already: not again after a restart
        clock.step(120)
        rig.service.check_silence()
        await rig.settle()
        assert rig.fired() == []

        rig.trades("ACME", 10.1)  # trading again re-arms it
        await rig.settle()
        rig.service.check_silence()
        clock.step(61)
        rig.service.check_silence()
        await rig.settle()
        assert len(rig.fired()) == 1
    finally:
        await rig.service.stop()


async def test_new_gaps_provider_trouble_and_finished_backfills_fire_once_each(
    store: AlertStore, rig: Rig, db: Database, clock: Clock
) -> None:
    insert_gap = (
        "INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason) "
        "VALUES ('SIMULATED', $1, '1h', $2, $3, 'missing')"
    )
    day = datetime(2026, 11, 20, tzinfo=UTC)
    await db.execute(insert_gap, "ACME", day, day + timedelta(hours=3))  # before the rule
    await rig.service.start()
    await add(store, rig, kind="gap", target=None, cooldown_s=0)
    await add(store, rig, kind="provider", target="SIMULATED", cooldown_s=0)
    await add(store, rig, kind="backfill", target="SIMULATED:SIM/BTC", cooldown_s=0)

    await db.execute(insert_gap, "SIM/BTC", day, day + timedelta(hours=2))
    await rig.service.check_gaps()
    await rig.restart()  # the gap was seen: not news again
    await rig.service.check_gaps()
    for state in ("connecting", "connected", "error", "error", "connecting", "connected"):
        rig.bus.publish(ProviderState("SIMULATED", state, "refused" if state == "error" else None))
    rig.bus.publish(ProviderState("KRAKEN", "error", "refused"))  # not this rule's provider
    rig.bus.publish(EngineError("provider:SIMULATED", "failed to load: boom"))
    run = JobRun("SIMULATED", "SIM/BTC", "1h", "ok", 24, clock.now, clock.now)
    rig.bus.publish(run)
    rig.bus.publish(JobRun("SIMULATED", "SIM/BTC", "1h", "ok", 0, clock.now, clock.now))
    rig.bus.publish(JobRun("SIMULATED", "ACME", "1h", "ok", 5, clock.now, clock.now))
    await rig.settle()
    assert [a.message for a in rig.fired()] == [
        "SIMULATED:SIM/BTC 1h: historical gap 2026-11-20 00:00 to 2026-11-20 02:00 UTC (missing)",
        "provider SIMULATED is error: refused",
        "provider SIMULATED is back",
        "provider SIMULATED is error: failed to load: boom",
        "SIMULATED:SIM/BTC 1h: backfill ok, 24 rows",
    ]


async def test_a_failing_webhook_is_retried_and_a_dead_one_recorded_as_failed(
    store: AlertStore, rig: Rig, hook: WebhookReceiver
) -> None:
    await rig.service.start()
    rig.service.deliverer.backoff = lambda: _NoWait()
    await add(store, rig, kind="above", target="SIMULATED:A", level=1.0, webhook_url=hook.url)
    dead = "http://127.0.0.1:9/hook"  # discard port: connection refused
    await add(store, rig, kind="above", target="SIMULATED:B", level=1.0, webhook_url=dead)
    hook.fail_next(503, 500)
    rig.trades("A", 0.5, 1.5)
    rig.trades("B", 0.5, 1.5)
    await rig.settle()

    assert [r.status for r in hook.received] == [503, 500, 200]
    ok, failed = sorted(await store.history(), key=lambda e: e.key)
    assert ok.failed == [] and failed.failed == ["webhook"]
    attempts = [d for d in failed.deliveries if d["channel"] == "webhook"]
    assert len(attempts) == 5 and not any(d["ok"] for d in attempts)
    [only] = await store.history(failed_only=True)
    assert only.key == "SIMULATED:B"


class _NoWait:
    def next(self) -> float:
        return 0.0


async def test_a_command_gets_the_alert_on_stdin_and_is_killed_after_its_timeout(
    store: AlertStore, rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It runs without the engine's database and secrets settings in its environment (not
    PGPASSWORD here: the test's own connections would use it)."""
    monkeypatch.setenv("QUASAR_DSN", "postgresql://quasar:hunter2@db/quasar")
    monkeypatch.setenv("ALERT_TEST_KEPT", "yes")
    await rig.service.start()
    out, seen = tmp_path / "alert.json", tmp_path / "env.json"
    script = tmp_path / "save.py"
    script.write_text(
        "import json, os, sys\n"
        f"open({str(out)!r}, 'w').write(sys.stdin.read())\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
    )
    await add(
        store,
        rig,
        kind="above",
        target="SIMULATED:A",
        level=1.0,
        command=f"{sys.executable} {script}",
    )
    await add(
        store,
        rig,
        kind="above",
        target="SIMULATED:B",
        level=1.0,
        command=f"{sys.executable} -c 'import time; time.sleep(60)'",
        command_timeout_s=1,
    )
    rig.trades("A", 0.5, 1.5)
    rig.trades("B", 0.5, 1.5)
    await rig.settle()

    assert json.loads(out.read_text())["key"] == "SIMULATED:A"
    environment = json.loads(seen.read_text())
    assert environment["ALERT_TEST_KEPT"] == "yes" and "PATH" in environment
    assert "hunter2" not in seen.read_text()
    entries = {e.key: e for e in await store.history()}
    assert entries["SIMULATED:A"].failed == []
    [killed] = [d for d in entries["SIMULATED:B"].deliveries if d["channel"] == "command"]
    assert not killed["ok"] and killed["detail"] == "killed after 1 s"


def test_a_command_gets_neither_quasar_nor_libpq_settings() -> None:
    parent = {
        "PATH": "/bin",
        "HOME": "/home/u",
        "QUASAR_DSN": "postgresql://u:pw@h/db",
        "QUASAR_SYSTEM_CONTEXT": "master key",
        "PGPASSWORD": "pw",
        "PGPASSFILE": "/home/u/.pgpass",
    }
    assert command_environment(parent) == {"PATH": "/bin", "HOME": "/home/u"}


async def test_rules_paused_removed_or_added_take_effect_on_reload(
    store: AlertStore, rig: Rig
) -> None:
    await rig.service.start()
    rule = await add(store, rig, kind="above", target="SIMULATED:A", level=1.0, cooldown_s=0)
    await store.set_enabled(rule, False)
    await rig.service.reload()
    rig.trades("A", 0.5, 1.5)
    await rig.settle()
    assert rig.fired() == []
    assert rig.service.stats()["rules"] == 0
    await store.set_enabled(rule, True)
    await rig.service.reload()
    rig.trades("A", 0.5, 1.5)
    await store.remove(rule)
    await rig.settle()
    [alert] = rig.fired()  # fired before the removal; its history outlives the rule
    [entry] = await store.history()
    assert entry.rule_id is None and entry.message == alert.message


async def test_stale_alerts_on_all_series_follow_new_subscriptions_and_history_is_capped(
    store: AlertStore, rig: Rig, clock: Clock, registry: ProviderRegistry
) -> None:
    await with_simulated(registry)
    await rig.service.start()
    await add(store, rig, kind="stale", target=None, stale_s=60, cooldown_s=0)
    assert rig.service.evaluator.stale == []  # nothing collected live yet

    await SubscriptionStore(store.db).add("SIMULATED", ["ACME"], "1min", "live")
    await rig.service.look_around()  # what the engine does every half minute
    await until(lambda: rig.service.evaluator.stale, "the checks reloaded the rules")
    rig.service.check_silence()
    clock.step(61)
    rig.service.check_silence()
    await rig.settle()
    assert [a.key for a in rig.fired()] == ["SIMULATED:ACME"]

    old = [
        FiredEvent(1, "stale", "SIMULATED:ACME", f"old {n}", {}, clock.now, ()) for n in range(3)
    ]
    await store.record(old, {})
    await store.trim_history(2)
    assert [e.message for e in await store.history()] == ["old 2", "old 1"]


async def test_a_reload_takes_over_what_changed_while_it_read_the_states(
    store: AlertStore, clock: Clock
) -> None:
    rule = await store.add(NewRule("above", "SIMULATED:A", level=100.0))
    key = (rule.id, "SIMULATED:A")
    fired: list[AlertFired] = []
    old = Evaluator([(rule, Target("SIMULATED:A"))], {key: RuleState("below")}, clock, fired.append)
    new = Evaluator([(rule, Target("SIMULATED:A"))], {key: RuleState("below")}, clock, fired.append)
    ticks = [Tick("A", clock.now, price, 1.0) for price in (99.0, 101.0)]
    old.on_trades(TradesRead("SIMULATED", ticks))  # crossed while the new one was loading
    new.adopt(old.take_dirty())
    new.on_trades(TradesRead("SIMULATED", [Tick("A", clock.now, 101.5, 1.0)]))
    assert [a.details["price"] for a in fired] == [101.0]
    assert new.take_dirty()[key].side == "above"


async def test_a_rule_on_a_common_symbol_follows_its_mappings_in_a_running_engine(
    store: AlertStore, db: Database, registry: ProviderRegistry, tmp_path: Path
) -> None:
    await with_simulated(registry)
    await add_provider(db, "OTHER", "live", assets=["XBT-USD"])
    mappings = MappingStore(db)
    await mappings.map("BTC/USD", "SIMULATED", "SIM/BTC")
    await mappings.map("BTC/USD", "OTHER", "XBT-USD")
    await mappings.set_priority("BTC/USD", ["SIMULATED", "OTHER"])
    await store.add(NewRule("above", "BTC/USD", level=100.0, cooldown_s=0))
    engine = Engine(db, registry, SubscriptionStore(db), data_dir=tmp_path, reconcile_every=3600)
    seen = engine.bus.subscribe(kinds=(AlertFired,))
    await engine.start()

    async def cross(provider: str, symbol: str) -> list[str]:
        """A crossing of the level on one series: the keys of the alerts consoles got."""
        ticks = [Tick(symbol, datetime.now(UTC), price, 1.0) for price in (99.0, 101.0)]
        engine.bus.publish(TradesRead(provider, ticks))
        await until(engine.alerts.idle, "alerts delivered")
        return [e.key for e in seen.drain() if isinstance(e, AlertFired)]

    try:
        assert await until(lambda: cross("SIMULATED", "SIM/BTC"), "an alert") == [
            "SIMULATED:SIM/BTC"
        ]
        await mappings.set_priority("BTC/USD", ["OTHER", "SIMULATED"])  # `quasar map priority`
        assert await until(lambda: cross("OTHER", "XBT-USD"), "the rule on OTHER") == [
            "OTHER:XBT-USD"
        ]
        assert await cross("SIMULATED", "SIM/BTC") == []  # no longer what BTC/USD means

        await mappings.delete("OTHER", "XBT-USD")  # back to the one series left
        assert await until(lambda: cross("SIMULATED", "SIM/BTC"), "the rule back") == [
            "SIMULATED:SIM/BTC"
        ]
    finally:
        await engine.stop()
