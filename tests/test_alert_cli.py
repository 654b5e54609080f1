"""`quasar alert ...` as a user runs it, and the done-when of alerts: with only `quasar --daemon`
running on the SIMULATED feed, a price level crossed reaches a loopback webhook once, signed,
and not again after the daemon restarts; an alert fired by a daemon killed (SIGKILL) before
its webhook got it reaches the webhook once after the restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes.webhook import WebhookReceiver
from helpers import until, with_simulated
from test_daemon import Daemon

from quasar_tui.providers.simulated import SimulatedProvider
from quasar_tui.registry.alerts import AlertStore, Delivery, FiredEvent, NewRule
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk import ProviderContext
from quasar_tui.store.database import Database

SECRET = "webhook-secret-kept-out-of-argv"
RATE = 20.0  # simulated trades a second, per symbol


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def quasar(run_quasar: Callable, *args: str, stdin: str | None = None):
    return await asyncio.to_thread(run_quasar, "alert", *args, input=stdin)


async def test_rules_are_added_listed_paused_resumed_and_removed_without_showing_secrets(
    run_quasar: Callable, db: Database, registry: ProviderRegistry, hook: WebhookReceiver
) -> None:
    await with_simulated(registry)
    added = await quasar(
        run_quasar,
        "add",
        "above",
        "SIMULATED:SIM/BTC",
        "--level",
        "50000",
        "--hysteresis",
        "0.5",
        "--webhook",
        hook.url + "?token=abc",
        stdin=SECRET + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("alert rule 1: SIMULATED:SIM/BTC price crosses above 50000")
    gap = await quasar(run_quasar, "add", "gap", "--all", "--cooldown", "0")
    assert gap.returncode == 0, gap.stderr

    listed = await quasar(run_quasar, "list", "--json")
    rules = json.loads(listed.stdout)
    assert [(r["id"], r["kind"], r["target"], r["signed"]) for r in rules] == [
        (1, "above", "SIMULATED:SIM/BTC", True),
        (2, "gap", None, False),
    ]
    table = (await quasar(run_quasar, "list")).stdout
    for shown in (listed.stdout, table, added.stdout):
        assert SECRET not in shown and "token=abc" not in shown

    assert (await quasar(run_quasar, "pause", "1")).stdout == "alert rule 1 paused\n"
    assert (await quasar(run_quasar, "pause", "1")).stdout == "alert rule 1 paused already\n"
    assert "paused" in (await quasar(run_quasar, "list")).stdout.splitlines()[1]
    assert (await quasar(run_quasar, "resume", "1")).returncode == 0
    assert (await quasar(run_quasar, "remove", "2")).stdout == "removed alert rule 2\n"
    assert [r["id"] for r in json.loads((await quasar(run_quasar, "list", "--json")).stdout)] == [1]
    assert (await quasar(run_quasar, "history")).stdout == "no alerts yet\n"
    assert await db.fetchval("SELECT enabled FROM alert_rules WHERE id = 1")


async def test_history_tells_pending_and_retrying_channels_from_failed_ones(
    run_quasar: Callable, db: Database, registry: ProviderRegistry
) -> None:
    """An alert whose deliveries an engine has not finished (still retrying, or stopped
    first) says so, and is failed only once its last attempt failed."""
    store = AlertStore(db, registry.keyring)
    rule = await store.add(
        NewRule("above", "X:A", level=1.0, webhook_url="http://127.0.0.1:9/", command="true")
    )
    assert rule.channels == ["log", "console", "webhook", "command"]
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    fired = FiredEvent(rule.id, "above", "X:A", "A above 1", {}, at, ("webhook", "command"))
    [event] = await store.record([fired], {})
    await store.record_delivery(event, Delivery("webhook", 1, False, "HTTP 503"))

    shown = (await quasar(run_quasar, "history")).stdout
    assert "webhook retrying x1: HTTP 503; command pending" in shown
    [entry] = json.loads((await quasar(run_quasar, "history", "--json")).stdout)
    assert entry["pending"] == ["webhook", "command"] and entry["failed"] == []
    retrying = (await quasar(run_quasar, "history", "--failed")).stdout
    assert retrying == "no alerts with a failed delivery yet\n"

    await store.record_delivery(event, Delivery("webhook", 2, False, "HTTP 500"), done=True)
    await store.record_delivery(event, Delivery("command", 1, True), done=True)
    shown = (await quasar(run_quasar, "history")).stdout
    assert "webhook FAILED x2: HTTP 500; command ok" in shown
    assert "pending" not in shown and "retrying" not in shown
    assert "webhook FAILED x2" in (await quasar(run_quasar, "history", "--failed")).stdout
    [entry] = json.loads((await quasar(run_quasar, "history", "--json")).stdout)
    assert entry["failed"] == ["webhook"]


@dataclass(frozen=True)
class Crossing:
    """A level no trade of `symbol` reaches until a few seconds from now, and the first trade
    after that leaving the range (at epoch second `at`, at `price`)."""

    at: float
    symbol: str
    kind: str
    level: float
    price: float


def crossing(market: SimulatedProvider, symbol: str, now: float) -> Crossing | None:
    soon = [t.price for t in market.trades(symbol, now - 5, now + 12)]
    low, high = min(soon), max(soon)
    for trade in market.trades(symbol, now + 12, now + 132):
        at = trade.ts.timestamp()
        if trade.price > high:
            return Crossing(at, symbol, "above", (high + trade.price) / 2, trade.price)
        if trade.price < low:
            return Crossing(at, symbol, "below", (low + trade.price) / 2, trade.price)
    return None


def plan_level(now: float) -> Crossing:
    """From the simulated market's own prices, the symbol crossing first: one symbol's wait for
    a trade leaving its range is long-tailed (a minute at times), the first of six's is not."""
    market = SimulatedProvider(ProviderContext(preferences={"ticks_per_second": RATE}))
    planned = [c for s in market.symbols() if (c := crossing(market, s, now)) is not None]
    if not planned:
        raise AssertionError("the simulated market stayed in its range for two minutes")
    return min(planned, key=lambda c: c.at)


async def test_a_level_crossed_on_the_simulated_feed_reaches_the_webhook_once_across_a_restart(
    run_quasar: Callable,
    db: Database,
    registry: ProviderRegistry,
    hook: WebhookReceiver,
    quasar_env: dict[str, str],
    tmp_path: Path,
) -> None:
    await with_simulated(registry, ticks_per_second=str(RATE))
    symbols = SimulatedProvider(ProviderContext()).symbols()
    await SubscriptionStore(db).add("SIMULATED", symbols, "1min", "live")
    daemons: list[Daemon] = []
    try:
        daemons.append(Daemon(quasar_env, tmp_path / "daemon0.log"))
        await until(
            lambda: db.fetchval(
                "SELECT count(*) = $1 FROM live_quotes WHERE ticks > 0", len(symbols)
            ),
            "live trades of every symbol",
            give_up=daemons[0].exited,
        )
        plan = plan_level(time.time())
        added = await quasar(
            run_quasar,
            "add",
            plan.kind,
            f"SIMULATED:{plan.symbol}",
            "--level",
            repr(plan.level),
            "--hysteresis",
            "1",
            "--cooldown",
            "0",
            "--webhook",
            hook.url,
            stdin=SECRET,
        )
        assert added.returncode == 0, added.stderr
        await until(lambda: hook.received, "the alert at the webhook", give_up=daemons[0].exited)
        [post] = hook.received
        alert = post.alert
        assert alert["kind"] == plan.kind and alert["details"]["price"] == plan.price
        signature = hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
        assert post.headers["X-Quasar-Signature"] == f"sha256={signature}"
        tick_ts = alert["details"]["tick_ts"]
        print(f"tick {tick_ts} -> webhook at {post.at:.3f}")  # the latency, for the report

        assert daemons[0].stop(signal.SIGTERM) == 0
        restarted_at = await db.fetchval("SELECT now()")
        daemons.append(Daemon(quasar_env, tmp_path / "daemon1.log"))
        await until(  # fifty trades of the alerted series evaluated by the restarted engine
            lambda: db.fetchval(
                "SELECT count(*) >= 50 FROM live_ticks WHERE symbol = $1 AND ts > $2",
                plan.symbol,
                restarted_at,
            ),
            "trades after the restart",
            give_up=daemons[1].exited,
        )
        assert daemons[1].stop(signal.SIGTERM) == 0
    finally:
        for daemon in daemons:
            daemon.kill()
    assert len(hook.received) == 1
    history = await quasar(run_quasar, "history", "--json")
    [entry] = json.loads(history.stdout)
    assert entry["failed"] == [] and entry["key"] == f"SIMULATED:{plan.symbol}"
    assert "ALERT rule 1" in daemons[0].stderr() and SECRET not in daemons[0].stderr()


async def test_an_alert_fired_just_before_a_sigkill_reaches_the_webhook_once_after_the_restart(
    db: Database,
    registry: ProviderRegistry,
    hook: WebhookReceiver,
    quasar_env: dict[str, str],
    tmp_path: Path,
) -> None:
    await with_simulated(registry, ticks_per_second=str(RATE))
    await SubscriptionStore(db).add("SIMULATED", ["SIM/BTC"], "1min", "live")
    store = AlertStore(db, registry.keyring)
    await store.add(  # fires on the first move of the price, then not for an hour
        NewRule(
            "change",
            "SIMULATED:SIM/BTC",
            percent=0.0001,
            window_s=60,
            cooldown_s=3600,
            webhook_url=hook.url,
        )
    )
    hook.fail_next(*[503] * 1000)  # the receiver is down when the alert fires
    daemons = [Daemon(quasar_env, tmp_path / "daemon0.log")]
    try:
        await until(
            lambda: db.fetchval("SELECT count(*) FROM alert_deliveries WHERE channel = 'webhook'"),
            "a first webhook attempt, answered 503",
            give_up=daemons[0].exited,
        )
        daemons[0].kill()  # SIGKILL while the webhook is still to be retried
        hook.stop_failing()
        restarted_at = await db.fetchval("SELECT now()")
        daemons.append(Daemon(quasar_env, tmp_path / "daemon1.log"))
        await until(lambda: hook.delivered, "the alert delivered", give_up=daemons[1].exited)
        await until(  # trades evaluated by the restarted engine: none fires it again
            lambda: db.fetchval(
                "SELECT count(*) >= $1 FROM live_ticks WHERE ts > $2", int(RATE * 2), restarted_at
            ),
            "trades after the restart",
            give_up=daemons[1].exited,
        )
        assert daemons[1].stop(signal.SIGTERM) == 0
    finally:
        for daemon in daemons:
            daemon.kill()
    [delivered] = hook.delivered
    [entry] = await store.history()
    assert {post.alert["id"] for post in hook.received} == {entry.id}  # one alert, one id
    assert delivered.alert["key"] == "SIMULATED:SIM/BTC" and entry.failed == []
    assert await db.fetchval("SELECT pending FROM alert_events") == []
