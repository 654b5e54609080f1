"""Delivery of fired alerts: the log, the console (the bus), webhooks and commands.

The evaluator only offers alerts to a bounded queue; one task of its own records each alert
and delivers it, and webhooks and commands run in tasks of their own (at most `_PARALLEL` at
once), so a slow endpoint delays neither the engine nor other alerts. Every attempt is
recorded in the history with its result.

Webhook: POST of the alert as JSON, `X-Quasar-Signature: sha256=<hex HMAC-SHA256 of the
body>` when the rule has a secret; retried on connection errors, 429 and 5xx with capped
backoff. Command: run without a shell, the alert as JSON on stdin; killed (with its process
group) after the rule's timeout.
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
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from quasar_tui.core.backoff import Backoff
from quasar_tui.core.messages import one_line
from quasar_tui.core.text import printable
from quasar_tui.engine.events import AlertFired, EventBus
from quasar_tui.engine.states import DB_ERRORS
from quasar_tui.registry.alerts import AlertRule, AlertStore, Delivery

log = logging.getLogger("quasar.alerts")

QUEUE = 1000
WEBHOOK_ATTEMPTS = 5
WEBHOOK_TIMEOUT = 5.0
SIGNATURE_HEADER = "X-Quasar-Signature"
_PARALLEL = 8
_OUTPUT_KEPT = 200  # characters of a failed command's stderr kept in the history

Sleep = Callable[[float], Awaitable[None]]


def body_of(alert: AlertFired, rule: AlertRule) -> bytes:
    """What webhooks and commands receive."""
    document: dict[str, Any] = {
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
        rules: Callable[[int], AlertRule | None],
        *,
        backoff: Callable[[], Backoff] = lambda: Backoff(base=0.5, cap=10.0),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.bus = bus
        self.rules = rules
        self.backoff = backoff
        self.sleep = sleep
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        self._queue: asyncio.Queue[AlertFired] = asyncio.Queue(maxsize=QUEUE)
        self._pending = 0  # queued or being recorded
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(_PARALLEL)
        self._http: httpx.AsyncClient | None = None

    @property
    def idle(self) -> bool:
        return self._pending == 0 and not self._jobs

    def offer(self, alert: AlertFired) -> None:
        """Queue an alert; never blocks. A full queue drops it, loudly."""
        try:
            self._queue.put_nowait(alert)
            self._pending += 1
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("alert queue full; dropped: %s", alert.message)

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="alerts:delivery")

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
            alert = await self._queue.get()
            try:
                await self._deliver(alert)
            except Exception:  # one alert's bad luck must not end delivery
                log.exception("delivering alert %d failed", alert.rule_id)
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _deliver(self, alert: AlertFired) -> None:
        rule = self.rules(alert.rule_id)
        event_id = await self._record_event(alert)
        if rule is not None and rule.webhook_url:
            self._spawn(self._webhook(alert, rule, event_id))
        if rule is not None and rule.command:
            self._spawn(self._command(alert, rule, event_id))
        log.warning("ALERT rule %d: %s", alert.rule_id, alert.message)
        self.bus.publish(alert)
        await self._note(event_id, Delivery("log", 1, True))
        await self._note(event_id, Delivery("console", 1, True))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def bounded() -> None:
            async with self._slots:
                await work

        job = asyncio.create_task(bounded())
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _record_event(self, alert: AlertFired) -> int | None:
        try:
            return await self.store.record_event(
                alert.rule_id, alert.kind, alert.key, alert.message, alert.details, alert.at
            )
        except DB_ERRORS as exc:
            log.warning("alert not recorded in the history: %s", one_line(exc))
            return None

    async def _note(self, event_id: int | None, delivery: Delivery) -> None:
        if delivery.ok:
            self.delivered += 1
        else:
            self.failed += 1
        if event_id is None:
            return
        try:
            await self.store.record_delivery(event_id, delivery)
        except DB_ERRORS as exc:
            log.warning("alert delivery not recorded in the history: %s", one_line(exc))

    async def _webhook(self, alert: AlertFired, rule: AlertRule, event_id: int | None) -> None:
        assert rule.webhook_url is not None and self._http is not None
        body = body_of(alert, rule)
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
            await self._note(event_id, Delivery("webhook", attempt, ok, detail))
            if ok:
                return
            if not retry or attempt == WEBHOOK_ATTEMPTS:
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
            )
        except (OSError, ValueError) as exc:
            await self._note(event_id, Delivery("command", 1, False, one_line(exc)))
            return
        try:
            _out, err = await asyncio.wait_for(
                proc.communicate(body_of(alert, rule)), rule.command_timeout_s
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


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
