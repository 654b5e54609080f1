"""Delivery of fired alerts: the log, the console (the bus), webhooks and commands.

Alerts arrive here recorded (engine/alerts/service.py writes each with the state that made it
fire), with the channels they have still to reach. One task delivers them in order; webhooks
and commands run in tasks of their own (at most `_PARALLEL` at once), so a slow endpoint
delays neither the engine nor other alerts. Every attempt is recorded in the history with its
result, and a channel's last attempt takes it off the alert's pending list; `resume` delivers
what an engine stopped or killed before it left pending. Delivery is at least once: an alert's
history id (`id` in what webhooks and commands receive) is the key to drop a repeat by.

Webhook: POST of the alert as JSON, `X-Quasar-Signature: sha256=<hex HMAC-SHA256 of the
body>` when the rule has a secret; retried on connection errors, 429 and 5xx with capped
backoff. Command: run without a shell, the alert as JSON on stdin, in the engine's environment
without Quasar's settings and libpq's (`QUASAR_*`, `PG*`: a DSN with its password, the master
key); killed (with its process group) after the rule's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import shlex
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from quasar_tui.core.backoff import Backoff
from quasar_tui.core.errors import NotFoundError
from quasar_tui.core.messages import one_line
from quasar_tui.core.text import printable
from quasar_tui.engine.events import AlertFired, EventBus
from quasar_tui.engine.states import DB_ERRORS
from quasar_tui.registry.alerts import AlertRule, AlertStore, Channel, Delivery

log = logging.getLogger("quasar.alerts")

WEBHOOK_ATTEMPTS = 5
WEBHOOK_TIMEOUT = 5.0
SIGNATURE_HEADER = "X-Quasar-Signature"
_PARALLEL = 8
_AT_ONCE: tuple[Channel, ...] = ("log", "console")  # delivered as they are handed over
_OUTPUT_KEPT = 200  # characters of a failed command's stderr kept in the history
_WITHHELD = ("QUASAR_", "PG")  # environment names a command does not get

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Firing:
    """An alert on its way: its history id (None: not recorded, the database was away), its
    rule (None: removed as it fired) and the channels it has still to reach."""

    alert: AlertFired
    rule: AlertRule | None
    event_id: int | None
    channels: tuple[Channel, ...]


def body_of(alert: AlertFired, rule: AlertRule, event_id: int | None) -> bytes:
    """What webhooks and commands receive."""
    document: dict[str, Any] = {
        "id": event_id,
        "rule_id": alert.rule_id,
        "kind": alert.kind,
        "key": alert.key,
        "target": rule.target,
        "condition": rule.condition,
        "message": alert.message,
        "fired_at": alert.at.isoformat(),
        "details": alert.details,
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class Deliverer:
    """Owns the alert queue and the delivery tasks; see the module docstring."""

    def __init__(
        self,
        store: AlertStore,
        bus: EventBus,
        *,
        backoff: Callable[[], Backoff] = lambda: Backoff(base=0.5, cap=10.0),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.bus = bus
        self.backoff = backoff
        self.sleep = sleep
        self.delivered = 0
        self.failed = 0
        # Unbounded: what comes in was bounded before it was recorded (see the service).
        self._queue: asyncio.Queue[Firing] = asyncio.Queue()
        self._pending = 0  # queued or being delivered
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(_PARALLEL)
        self._http: httpx.AsyncClient | None = None

    @property
    def idle(self) -> bool:
        return self._pending == 0 and not self._jobs

    def offer(self, firing: Firing) -> None:
        """Queue an alert for delivery; never blocks."""
        self._queue.put_nowait(firing)
        self._pending += 1

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="alerts:delivery")

    async def resume(self) -> None:
        """Queue what was recorded before this start but not delivered everywhere (the
        engine was stopped or killed first). Call it before anything fires here."""
        for event_id, event in await self.store.pending():
            rule = None
            if event.rule_id is not None:
                with contextlib.suppress(NotFoundError):
                    rule = await self.store.get(event.rule_id)
            if rule is None:
                for channel in event.pending:
                    gone = Delivery(channel, 1, False, "its rule was removed before delivery")
                    await self._note(event_id, gone)
                continue
            alert = AlertFired(
                rule.id, event.kind, event.key, event.message, event.fired_at, event.body
            )
            self.offer(Firing(alert, rule, event_id, event.pending))

    async def stop(self, grace: float = 2.0) -> None:
        """Deliver what is queued and let running deliveries finish for `grace` seconds."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), grace)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._jobs:
            _done, pending = await asyncio.wait(self._jobs, timeout=grace)
            for job in pending:
                job.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _run(self) -> None:
        while True:
            firing = await self._queue.get()
            try:
                await self._deliver(firing)
            except Exception:  # one alert's bad luck must not end delivery
                log.exception("delivering alert %d failed", firing.alert.rule_id)
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _deliver(self, firing: Firing) -> None:
        alert, rule, event_id = firing.alert, firing.rule, firing.event_id
        channels = firing.channels
        if rule is not None and rule.webhook_url and "webhook" in channels:
            self._spawn(self._webhook(alert, rule, event_id))
        if rule is not None and rule.command and "command" in channels:
            self._spawn(self._command(alert, rule, event_id))
        if "log" in channels:
            log.warning("ALERT rule %d: %s", alert.rule_id, alert.message)
        if "console" in channels:
            self.bus.publish(alert)
        for done in _AT_ONCE:
            if done in channels:
                await self._note(event_id, Delivery(done, 1, True))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def bounded() -> None:
            async with self._slots:
                await work

        job = asyncio.create_task(bounded())
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _note(self, event_id: int | None, delivery: Delivery, done: bool = True) -> None:
        """Record an attempt; `done`: the channel's last for this alert (no retry follows)."""
        if delivery.ok:
            self.delivered += 1
        else:
            self.failed += 1
        if event_id is None:
            return
        try:
            await self.store.record_delivery(event_id, delivery, done)
        except DB_ERRORS as exc:
            log.warning("alert delivery not recorded in the history: %s", one_line(exc))

    async def _webhook(self, alert: AlertFired, rule: AlertRule, event_id: int | None) -> None:
        assert rule.webhook_url is not None and self._http is not None
        body = body_of(alert, rule, event_id)
        headers = {"Content-Type": "application/json", "User-Agent": "quasar-alerts"}
        if rule.signed:
            try:
                secret = await self.store.webhook_secret(rule.id)
            except Exception as exc:  # a secret that no longer decrypts: say so, send nothing
                await self._note(event_id, Delivery("webhook", 1, False, one_line(exc)))
                return
            if secret:
                headers[SIGNATURE_HEADER] = signature(secret, body)
        backoff = self.backoff()
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            retry, detail = await self._post(rule.webhook_url, body, headers)
            ok = detail is None
            last = ok or not retry or attempt == WEBHOOK_ATTEMPTS
            await self._note(event_id, Delivery("webhook", attempt, ok, detail), last)
            if ok:
                return
            if last:
                log.warning("alert webhook of rule %d failed for good: %s", rule.id, detail)
                return
            await self.sleep(backoff.next())

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[bool, str | None]:
        """(worth retrying, what went wrong or None)."""
        assert self._http is not None
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return True, one_line(exc) or type(exc).__name__
        if response.is_success:
            return False, None
        retry = response.status_code == 429 or response.status_code >= 500
        return retry, f"HTTP {response.status_code}"

    async def _command(self, alert: AlertFired, rule: AlertRule, event_id: int | None) -> None:
        assert rule.command is not None
        try:
            argv = shlex.split(rule.command)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=command_environment(os.environ),
            )
        except (OSError, ValueError) as exc:
            await self._note(event_id, Delivery("command", 1, False, one_line(exc)))
            return
        try:
            _out, err = await asyncio.wait_for(
                proc.communicate(body_of(alert, rule, event_id)), rule.command_timeout_s
            )
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            detail = f"killed after {rule.command_timeout_s} s"
            await self._note(event_id, Delivery("command", 1, False, detail))
            return
        if proc.returncode == 0:
            await self._note(event_id, Delivery("command", 1, True))
            return
        lines = err.decode("utf-8", "replace").strip().splitlines() if err else []
        said = printable(lines[-1])[:_OUTPUT_KEPT] if lines else ""
        detail = f"exit status {proc.returncode}" + (f": {said}" if said else "")
        await self._note(event_id, Delivery("command", 1, False, detail))


def command_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """What a rule's command runs with: `parent` without what reaches the database or the
    secrets (the command is the user's, but it may log or pass on its environment)."""
    return {k: v for k, v in parent.items() if not k.startswith(_WITHHELD)}


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
