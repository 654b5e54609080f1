"""Who is asking: the API key of a request, its scopes and its rate.

Keys are looked up once and kept in memory until the `api_keys` table changes (a NOTIFY from
its trigger clears them) or `KEY_TTL` passes. Uses are counted in memory and written in one
statement about once a second, so checking a key costs no database round trip.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiolimiter import AsyncLimiter

from quasar_tui.registry.apikeys import ApiKey, ApiKeyStore, KeyUse, StoredKey, key_id_of
from quasar_tui.serve.problems import Problem

log = logging.getLogger("quasar.serve")

KEY_TTL = 30.0
MAX_CACHED_KEYS = 10_000
_DUMMY = bytes(32)


@dataclass(frozen=True)
class Caller:
    """The key a request came with (its name is what the logs show, never the key)."""

    key: ApiKey


def presented_key(headers: Mapping[str, str]) -> str | None:
    """`X-API-Key: K` or `Authorization: Bearer K`."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class KeyGuard:
    """Checks keys, scopes and per-key rates for the server."""

    def __init__(self, store: ApiKeyStore) -> None:
        self.store = store
        self._keys: dict[str, tuple[StoredKey | None, float]] = {}
        self._limiters: dict[str, AsyncLimiter] = {}
        self._uses: dict[str, KeyUse] = {}
        self.rate_limited = 0

    def forget(self) -> None:
        """Keys changed in the database: look them up again."""
        self._keys.clear()

    async def _lookup(self, key_id: str) -> StoredKey | None:
        cached = self._keys.get(key_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        stored = await self.store.find(key_id)
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys[key_id] = (stored, time.monotonic() + KEY_TTL)
        return stored

    async def check(self, headers: Mapping[str, str], scope: str) -> Caller:
        """The caller, or a Problem: 401 without a valid key, 403 outside its scope, 429."""
        presented = presented_key(headers)
        if presented is None:
            raise Problem(
                401,
                "an API key is required: send it as X-API-Key or Authorization: Bearer "
                "(create one with `quasar apikey create NAME`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key_id = key_id_of(presented)
        stored = await self._lookup(key_id) if key_id else None
        if stored is None or not self.store.matches(presented, stored):
            if stored is None:  # the same work as a real comparison
                hmac.compare_digest(self.store.digest(presented), _DUMMY)
            raise Problem(401, "the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
        return await self._admit(stored.key, scope)

    async def check_ticket(self, key_id: str, scope: str) -> Caller:
        """The caller a stream ticket was issued to, checked again as when it was issued: a
        key revoked or expired since opens nothing."""
        stored = await self._lookup(key_id)
        if stored is None:
            raise Problem(401, "the API key this ticket was issued to has been revoked")
        return await self._admit(stored.key, scope)

    async def _admit(self, key: ApiKey, scope: str) -> Caller:
        """Expiry, scope and rate of a key already proven; the use is counted."""
        now = datetime.now(UTC)
        if key.expired(now):
            raise Problem(
                401,
                f"the API key {key.name} expired at {key.expires_at:%Y-%m-%d %H:%M} UTC",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in key.scopes:
            raise Problem(
                403,
                f"the API key {key.name} has scopes {','.join(key.scopes)}; this needs {scope}",
            )
        await self._limit(key)
        use = self._uses.get(key.name)
        self._uses[key.name] = KeyUse(key.name, (use.count if use else 0) + 1, now)
        return Caller(key)

    async def _limit(self, key: ApiKey) -> None:
        limiter = self._limiters.get(key.name)
        if limiter is None or limiter.max_rate != key.rate:
            limiter = self._limiters[key.name] = AsyncLimiter(key.rate, 1.0)
        if not limiter.has_capacity():
            self.rate_limited += 1
            wait = max(1, math.ceil(1.0 / key.rate))
            raise Problem(
                429,
                f"the API key {key.name} is limited to {key.rate} requests a second; "
                f"retry after {wait}s",
                headers={"Retry-After": str(wait)},
            )
        await limiter.acquire()  # there is capacity: this returns without waiting

    async def flush_uses(self) -> None:
        uses, self._uses = list(self._uses.values()), {}
        try:
            await self.store.note_uses(uses)
        except Exception as exc:
            log.warning("cannot record API key uses (kept for the next try): %s", exc)
            for use in uses:
                newer = self._uses.get(use.name)
                self._uses[use.name] = (
                    use if newer is None else KeyUse(use.name, use.count + newer.count, newer.last)
                )

    async def run(self, period: float = 1.0) -> None:
        while True:
            await asyncio.sleep(period)
            await self.flush_uses()
