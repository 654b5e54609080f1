"""The provider code registry: validated source, preferences, encrypted secrets, state."""

from __future__ import annotations

import builtins
import dataclasses
import logging
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import asyncpg

from quasar_tui.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    QuasarError,
)
from quasar_tui.core.messages import one_line
from quasar_tui.registry.assets import AssetStore, RefreshReport
from quasar_tui.registry.records import ProviderRecord, StoredCode, ValidationReport
from quasar_tui.registry.secrets import Keyring, SecretsMismatchError
from quasar_tui.registry.validation import (
    inspect_bundled,
    read_provider_file,
    validate_file,
    validate_source,
)
from quasar_tui.sandbox import loader
from quasar_tui.sandbox.client import (
    SANDBOX_SETTINGS,
    HostError,
    HostSpec,
    ProviderHost,
    memory_mib,
)
from quasar_tui.sandbox.loader import SECRET_KEY_RE, InvalidProviderError
from quasar_tui.sdk.base import DataProvider
from quasar_tui.sdk.context import ProviderContext
from quasar_tui.sdk.http import HttpClient
from quasar_tui.sdk.settings import Setting, normalise_schema, validate_preferences
from quasar_tui.store.database import Database

log = logging.getLogger("quasar.registry")

_SELECT = """
    SELECT p.name, p.kind, p.class_name, p.sha256, p.preferences, p.capabilities,
           p.secret_names, p.enabled, p.status, p.status_detail, p.bundled,
           p.created_at, p.updated_at,
           (SELECT count(*) FROM assets a WHERE a.provider = p.name) AS asset_count
    FROM providers p"""
_LIST = _SELECT + " ORDER BY p.name"
_GET = _SELECT + " WHERE p.name = $1"
_LOCK = """
    SELECT sha256, preferences, secrets, secret_names FROM providers WHERE name = $1
       FOR UPDATE"""
_INSERT = """
    INSERT INTO providers (name, kind, class_name, source, sha256, capabilities, bundled)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (name) DO NOTHING
    RETURNING name"""
_REPLACE = """
    UPDATE providers
       SET kind = $2, class_name = $3, source = $4, sha256 = $5, capabilities = $6,
           bundled = $7, preferences = $8, secrets = $9, secret_names = $10,
           status = 'ok', status_detail = NULL, updated_at = now()
     WHERE name = $1"""
_KNOWN_CODE = "SELECT sha256 FROM providers UNION SELECT sha256 FROM dismissed_bundled"
_DISMISSED = "SELECT name FROM dismissed_bundled"
_DISMISS = """
    INSERT INTO dismissed_bundled (name, sha256) VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, dismissed_at = now()"""
_UNDISMISS = "DELETE FROM dismissed_bundled WHERE name = $1"
_SCHEMA = "SELECT capabilities FROM providers WHERE name = $1"
_MERGE_PREFERENCES = """
    UPDATE providers SET preferences = preferences || $2::jsonb, updated_at = now()
     WHERE name = $1"""
_LOCK_SECRETS = "SELECT sha256, secrets, capabilities FROM providers WHERE name = $1 FOR UPDATE"
_SET_SECRETS = """
    UPDATE providers SET secrets = $2, secret_names = $3, updated_at = now() WHERE name = $1"""
_SET_ENABLED = """
    UPDATE providers SET enabled = $2, updated_at = now() WHERE name = $1 RETURNING name"""
_SET_STATUS = """
    UPDATE providers SET status = $2, status_detail = $3 WHERE name = $1 RETURNING name"""
REFRESH_FAILED = "refresh failed"
_CLEAR_REFRESH_FAILURE = """
    UPDATE providers SET status = 'ok', status_detail = NULL
     WHERE name = $1 AND status = 'refresh failed'"""
_LOAD = "SELECT source, sha256, preferences, secrets FROM providers WHERE name = $1"
_COUNT_LINKED = """
    SELECT (SELECT count(*) FROM assets WHERE provider = $1) AS assets,
           (SELECT count(*) FROM asset_mappings WHERE provider = $1) AS mappings,
           (SELECT count(*) FROM subscriptions WHERE provider = $1) AS subscriptions"""
_COUNT_DATA = """
    SELECT (SELECT count(*) FROM historical_data WHERE provider = $1) AS historical_data,
           (SELECT count(*) FROM live_data WHERE provider = $1) AS live_data,
           (SELECT count(*) FROM live_ticks WHERE provider = $1) AS live_ticks"""
_DELETE = "DELETE FROM providers WHERE name = $1 RETURNING bundled, sha256"
_PURGE = {
    "historical_data": "DELETE FROM historical_data WHERE provider = $1",
    "live_data": "DELETE FROM live_data WHERE provider = $1",
    "live_ticks": "DELETE FROM live_ticks WHERE provider = $1",
    "live_quotes": "DELETE FROM live_quotes WHERE provider = $1",
    "gaps": "DELETE FROM gaps WHERE provider = $1",
    "collection_runs": "DELETE FROM collection_runs WHERE provider = $1",
    # last: deleting bars marks their span dirty again (db/051_rollup_triggers.plain.sql)
    "bar_rollups": "DELETE FROM bar_rollups WHERE provider = $1",
    "rollup_dirty": "DELETE FROM rollup_dirty WHERE provider = $1",
}


def _record(row: asyncpg.Record, notices: list[str] | None = None) -> ProviderRecord:
    return ProviderRecord(
        name=row["name"],
        kind=row["kind"],
        class_name=row["class_name"],
        sha256=row["sha256"],
        preferences=dict(row["preferences"]),
        capabilities=dict(row["capabilities"]),
        secret_names=list(row["secret_names"]),
        enabled=row["enabled"],
        status=row["status"],
        status_detail=row["status_detail"],
        bundled=row["bundled"],
        asset_count=row["asset_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        notices=notices or [],
    )


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(f"no provider named {name!r}; see `quasar provider list`")


def host_spec(code: StoredCode) -> HostSpec:
    """What a provider's host is given: its code, preferences and secrets, its memory limit."""
    return HostSpec(
        name=code.name,
        source=code.source,
        filename=f"<provider {code.name}>",
        preferences=code.preferences,
        secrets=code.secrets,
        memory_mib=memory_mib(code.preferences),
    )


def preference_schema(capabilities: dict[str, Any]) -> dict[str, Setting]:
    """The preferences a provider takes: its own schema, and its sandbox's (memory limit)."""
    return {**SANDBOX_SETTINGS, **normalise_schema(capabilities.get("configurable") or {})}


def bundled_dir() -> Traversable:
    """Where the provider files shipped with Quasar live: `providers/` at the repository's top
    level, installed as the package `quasar_tui.providers`."""
    return resources.files("quasar_tui.providers")


class ProviderRegistry:
    """Registered providers in the database; the one way in for the CLI, console and engine."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self.keyring = keyring

    async def validate_file(self, path: Path) -> ValidationReport:
        """Validate in a child process; nothing is written."""
        return await validate_file(Path(path))

    async def add(
        self, path: Path, *, replace: bool = False, bundled: bool = False
    ) -> ProviderRecord:
        """Validate a provider file and store its code.

        A name that exists is a ConflictError unless `replace`. Replacing with different code
        drops the secrets (they were bound to the old code) and preferences the new schema
        rejects; the record's `notices` say so.
        """
        path = Path(path)
        data = read_provider_file(path)
        report = await validate_source(data, path.name)
        hint = f"run `quasar provider add {path} --replace` to replace its code"
        return await self._store(report, data.decode("utf-8"), replace, bundled, hint=hint)

    async def list(self) -> list[ProviderRecord]:
        return [_record(row) for row in await self.db.fetch(_LIST)]

    async def get(self, name: str) -> ProviderRecord:
        row = await self.db.fetchrow(_GET, name)
        if row is None:
            raise _not_found(name)
        return _record(row)

    async def remove(self, name: str, *, purge_data: bool = False) -> dict[str, dict[str, int]]:
        """Delete a provider; its assets, mappings and subscriptions go with it (FK cascade).

        Stored bars and ticks are kept (they reappear if the provider is added again) unless
        `purge_data`. A removed bundled provider stays removed at later starts.
        Returns `{"removed": {table: rows}, "kept": {table: rows}}`.
        """
        async with self.db.pool.acquire() as conn, conn.transaction():
            linked = await conn.fetchrow(_COUNT_LINKED, name)
            deleted = await conn.fetchrow(_DELETE, name)
            if deleted is None:
                raise _not_found(name)
            if deleted["bundled"]:
                await conn.execute(_DISMISS, name, deleted["sha256"])
            removed = dict(linked)
            kept: dict[str, int] = {}
            if purge_data:
                for table, sql in _PURGE.items():
                    removed[table] = int((await conn.execute(sql, name)).split()[-1])
            else:
                kept = dict(await conn.fetchrow(_COUNT_DATA, name))
        return {"removed": removed, "kept": kept}

    async def set_preferences(self, name: str, values: dict[str, str]) -> ProviderRecord:
        """Check values against the provider's CONFIGURABLE schema and merge them in."""
        capabilities = await self.db.fetchval(_SCHEMA, name)
        if capabilities is None:
            raise _not_found(name)
        schema = preference_schema(capabilities)
        try:
            coerced = validate_preferences(schema, values)
        except ValueError as exc:
            raise InvalidInputError(f"{name}: {exc}") from None
        await self.db.execute(_MERGE_PREFERENCES, name, coerced)
        return await self.get(name)

    async def set_secrets(self, name: str, values: dict[str, str]) -> ProviderRecord:
        """Merge secrets into the provider's encrypted set; an empty value deletes that key."""
        notices: list[str] = []
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_LOCK_SECRETS, name)
            if row is None:
                raise _not_found(name)
            _check_secret_keys(name, row["capabilities"].get("secrets", []), values)
            current: dict[str, str] = {}
            if row["secrets"] is not None:
                try:
                    current = self.keyring.decrypt(name, row["sha256"], row["secrets"])
                except SecretsMismatchError:
                    notices.append(
                        f"the previous secrets of {name} could not be decrypted and were replaced"
                    )
            current.update(values)
            merged = {k: v for k, v in current.items() if v != ""}
            blob = self.keyring.encrypt(name, row["sha256"], merged) if merged else None
            await conn.execute(_SET_SECRETS, name, blob, sorted(merged))
        return dataclasses.replace(await self.get(name), notices=notices)

    async def set_enabled(self, name: str, enabled: bool) -> ProviderRecord:
        if await self.db.fetchval(_SET_ENABLED, name, enabled) is None:
            raise _not_found(name)
        return await self.get(name)

    async def set_status(self, name: str, status: str, detail: str | None = None) -> None:
        """The engine's view of the provider (ok, error, connecting, ...); not a user edit."""
        if await self.db.fetchval(_SET_STATUS, name, status, detail) is None:
            raise _not_found(name)

    async def refresh_assets(self, name: str) -> RefreshReport:
        """Ask the provider, in its sandbox, for its symbols and store them. A failure is also
        kept as the provider's status, so `provider list` and the Providers screen show it
        after the message is gone; the next successful refresh clears it."""
        try:
            host = ProviderHost(host_spec(await self.stored_code(name)))
            try:
                await host.start()
                report = await AssetStore(self.db).refresh(name, host)
            finally:
                await host.stop()
        except NotFoundError:
            raise
        except QuasarError as exc:
            cause = exc.__cause__ or exc
            reason = cause.reason if isinstance(cause, HostError) else one_line(cause)
            await self.set_status(name, REFRESH_FAILED, reason)
            raise
        await self.db.execute(_CLEAR_REFRESH_FAILURE, name)
        return report

    async def stored_code(self, name: str) -> StoredCode:
        """The code, preferences and decrypted secrets of one provider, without running it
        (for a provider host, which runs it confined)."""
        row = await self.db.fetchrow(_LOAD, name)
        if row is None:
            raise _not_found(name)
        loader.check_sha256(row["source"], row["sha256"], provider=name)
        secrets = (
            self.keyring.decrypt(name, row["sha256"], row["secrets"])
            if row["secrets"] is not None
            else {}
        )
        return StoredCode(name, row["source"], row["sha256"], dict(row["preferences"]), secrets)

    async def load(self, name: str) -> DataProvider:
        """A ready instance: code re-checked against its sha256, secrets, preferences, HTTP."""
        code = await self.stored_code(name)
        info = loader.load_class(code.source, code.sha256, provider=name)
        defaults = {key: s.default for key, s in info.cls.settings().items()}
        context = ProviderContext(
            secrets=code.secrets,
            preferences={**defaults, **code.preferences},
            http=HttpClient(info.cls.RATE_LIMIT, info.cls.CONCURRENCY),
            logger=logging.getLogger(f"quasar.provider.{name}"),
        )
        try:
            return info.cls(context)
        except Exception as exc:
            await context.http.aclose()
            raise QuasarError(
                f"provider {name} failed to start: {type(exc).__name__}: {exc}"
            ) from None

    async def ensure_bundled(
        self, source_dir: Traversable | Path | None = None
    ) -> builtins.list[str]:
        """Register the provider files shipped with Quasar; returns one line per change.

        Bundled files are checked in this process (they are ours), so this is cheap enough to
        run at every start. Files whose code is already registered are skipped. A bundled
        provider whose shipped code changed is updated and keeps its secrets (re-encrypted for
        the new code). A file that fails validation, or whose name a user's own provider already
        holds, is reported in the returned lines (and logged), never raised. One the user
        removed stays removed.
        """
        directory = source_dir if source_dir is not None else bundled_dir()
        if not directory.is_dir():
            return []
        known = {row["sha256"] for row in await self.db.fetch(_KNOWN_CODE)}
        files = sorted(
            (entry.name, entry.read_bytes())
            for entry in directory.iterdir()
            if entry.name.endswith(".py") and not entry.name.startswith("_")
        )
        pending = [(n, data) for n, data in files if loader.sha256_hex(data) not in known]
        dismissed = {row["name"] for row in await self.db.fetch(_DISMISSED)} if pending else set()
        lines: list[str] = []
        for filename, data in pending:
            try:
                report = inspect_bundled(data, filename)
            except InvalidProviderError as exc:
                lines.append(f"bundled provider {filename} skipped: {exc.reason}")
                log.warning("%s", lines[-1])
                continue
            if report.name not in dismissed:
                lines.append(await self._install_bundled(report, data.decode("utf-8"), filename))
        return lines

    async def _install_bundled(self, report: ValidationReport, source: str, filename: str) -> str:
        row = await self.db.fetchrow(_GET, report.name)
        if row is not None and not row["bundled"]:
            line = (
                f"bundled provider {filename} not installed: your own provider "
                f"{report.name} has that name"
            )
            log.warning("%s", line)
            return line
        try:
            await self._store(report, source, row is not None, True, hint="", keep_secrets=True)
        except ConflictError:
            return f"bundled provider {report.name} was registered by another process"
        return f"{'updated' if row else 'registered'} bundled provider {report.name}"

    async def _store(
        self,
        report: ValidationReport,
        source: str,
        replace: bool,
        bundled: bool,
        *,
        hint: str,
        keep_secrets: bool = False,
    ) -> ProviderRecord:
        name = report.name
        notices: list[str] = []
        async with self.db.pool.acquire() as conn, conn.transaction():
            await conn.execute(_UNDISMISS, name)
            existing = await conn.fetchrow(_LOCK, name)
            if existing is None or not replace:
                inserted = await conn.fetchval(
                    _INSERT,
                    name,
                    report.kind,
                    report.class_name,
                    source,
                    report.sha256,
                    report.capabilities,
                    bundled,
                )
                if inserted is None:
                    raise ConflictError(f"provider {name} is already registered; {hint}")
            else:
                preferences = _carry_preferences(
                    name, existing["preferences"], report.capabilities, notices
                )
                blob, names = self._carry_secrets(
                    name, existing, report.sha256, keep_secrets, notices
                )
                await conn.execute(
                    _REPLACE,
                    name,
                    report.kind,
                    report.class_name,
                    source,
                    report.sha256,
                    report.capabilities,
                    bundled,
                    preferences,
                    blob,
                    names,
                )
        return dataclasses.replace(await self.get(name), notices=notices)

    def _carry_secrets(
        self,
        name: str,
        existing: asyncpg.Record,
        sha256: str,
        keep: bool,
        notices: builtins.list[str],
    ) -> tuple[bytes | None, builtins.list[str]]:
        """The secrets blob for the new code and its key names: kept, re-encrypted or dropped."""
        blob, names = existing["secrets"], list(existing["secret_names"])
        if blob is None or existing["sha256"] == sha256:
            return blob, names
        if keep:
            try:
                values = self.keyring.decrypt(name, existing["sha256"], blob)
            except SecretsMismatchError:
                values = {}
            if values:
                return self.keyring.encrypt(name, sha256, values), sorted(values)
        notices.append(
            f"the code changed, so the secrets of {name} ({', '.join(names)}) were dropped; "
            f"set them again with `quasar provider secret {name} KEY=VALUE...`"
        )
        return None, []


def _carry_preferences(
    name: str, stored: dict[str, Any], capabilities: dict[str, Any], notices: list[str]
) -> dict[str, Any]:
    """Stored preferences the new code's schema still accepts; the others are reported."""
    schema = normalise_schema(capabilities.get("configurable", {}))
    kept: dict[str, Any] = {}
    for key, value in stored.items():
        try:
            kept.update(validate_preferences(schema, {key: value}))
        except ValueError as exc:
            notices.append(f"preference {key} of {name} was dropped: {exc}")
    return kept


def _check_secret_keys(name: str, declared: list[str], values: dict[str, str]) -> None:
    for key in values:
        if not SECRET_KEY_RE.match(key):
            raise InvalidInputError(
                f"{key!r} is not a valid secret name: use letters, digits, '_', '.' or '-'"
            )
        if declared and key not in declared:
            raise InvalidInputError(
                f"{name} has no secret {key!r} (it uses: {', '.join(declared)})"
            )
