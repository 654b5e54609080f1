"""API keys of the HTTP API: created once, stored only as a keyed hash, checked in constant time.

A key reads `qk_<id>_<secret>`. The id is public and finds the row; the secret is never stored:
the row holds HMAC-SHA256 of the whole key under a pepper derived from the master key (HKDF),
so a copy of the database alone cannot test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from quasar_tui.core.errors import ConflictError, InvalidInputError, NotFoundError
from quasar_tui.registry.secrets import Keyring
from quasar_tui.store.database import Database

SCOPES = ("read", "stream")
DEFAULT_RATE = 50
PEPPER_PURPOSE = b"quasar api keys v1"
CHANGES_CHANNEL = "quasar_api_keys"
_PREFIX = "qk"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY = re.compile(r"^qk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")

_INSERT = """
    INSERT INTO api_keys (name, key_id, digest, scopes, rate, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING name, key_id, scopes, rate, created_at, expires_at, last_used, uses
"""
_COLUMNS = "name, key_id, scopes, rate, created_at, expires_at, last_used, uses"
_LIST = f"SELECT {_COLUMNS} FROM api_keys ORDER BY name"
_BY_ID = f"SELECT {_COLUMNS}, digest FROM api_keys WHERE key_id = $1"
_DELETE = "DELETE FROM api_keys WHERE name = $1"
_NOTE_USES = """
    UPDATE api_keys k SET uses = k.uses + u.n, last_used = greatest(k.last_used, u.at)
      FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u(name, n, at)
     WHERE k.name = u.name
"""


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: everything but the secret."""

    name: str
    key_id: str
    scopes: list[str]
    rate: int
    created_at: datetime
    expires_at: datetime | None
    last_used: datetime | None
    uses: int

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True)
class StoredKey:
    """A key's row with its digest, what the server compares a presented key against."""

    key: ApiKey
    digest: bytes


@dataclass(frozen=True)
class KeyUse:
    name: str
    count: int
    last: datetime


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidInputError(
            f"unknown scope {', '.join(unknown) or '(none)'}: use read, stream or read,stream"
        )
    return sorted(set(scopes))


def key_id_of(presented: str) -> str | None:
    """The public id of a well-formed key; None for anything else."""
    match = _KEY.match(presented)
    return match.group(1) if match else None


class ApiKeyStore:
    """Create, list, revoke and look up keys; `digest` needs the master key's pepper."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self._pepper = keyring.derive(PEPPER_PURPOSE)

    def digest(self, presented: str) -> bytes:
        return hmac.new(self._pepper, presented.encode("utf-8"), hashlib.sha256).digest()

    def matches(self, presented: str, stored: StoredKey) -> bool:
        return hmac.compare_digest(self.digest(presented), stored.digest)

    async def create(
        self,
        name: str,
        scopes: list[str],
        *,
        expires_at: datetime | None = None,
        rate: int = DEFAULT_RATE,
        now: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """The new key's record and its secret text, which is shown once and never again."""
        if not _NAME.match(name):
            raise InvalidInputError(
                f"key name {name!r} is not valid: letters, digits, '.', '_' or '-', "
                "at most 64, starting with a letter or digit"
            )
        if rate < 1:
            raise InvalidInputError(f"rate {rate} is not valid: give requests per second, >= 1")
        if expires_at is not None and now is not None and expires_at <= now:
            raise InvalidInputError("--expires is in the past: give a later date")
        key_id = secrets.token_hex(6)
        text = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        try:
            row = await self.db.fetchrow(
                _INSERT, name, key_id, self.digest(text), check_scopes(scopes), rate, expires_at
            )
        except asyncpg.UniqueViolationError:
            raise ConflictError(
                f"an API key named {name!r} exists: revoke it first "
                f"(`quasar apikey revoke {name}`) or choose another name"
            ) from None
        assert row is not None
        return ApiKey(**dict(row)), text

    async def list(self) -> list[ApiKey]:
        return [ApiKey(**dict(r)) for r in await self.db.fetch(_LIST)]

    async def revoke(self, name: str) -> None:
        if await self.db.execute(_DELETE, name) == "DELETE 0":
            raise NotFoundError(f"no API key named {name!r}; see `quasar apikey list`")

    async def find(self, key_id: str) -> StoredKey | None:
        row = await self.db.fetchrow(_BY_ID, key_id)
        if row is None:
            return None
        fields = dict(row)
        digest = fields.pop("digest")
        return StoredKey(ApiKey(**fields), digest)

    async def note_uses(self, uses: Sequence[KeyUse]) -> None:
        """Add counted uses and the latest use time, in one statement for many keys."""
        if uses:
            await self.db.execute(
                _NOTE_USES,
                [u.name for u in uses],
                [u.count for u in uses],
                [u.last for u in uses],
            )
