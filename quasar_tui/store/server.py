"""Where the database is: an embedded PostgreSQL in the data dir, or a server given by DSN."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import platformdirs

from quasar_tui.core.errors import DatabaseUnavailableError
from quasar_tui.store.embedded import EmbeddedServer

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


#: root's data dir: root's home is normally closed (0700) to every other account, the embedded
#: server's own included (PostgreSQL refuses to run as root), and Quasar never opens it up.
ROOT_DATA_DIR = Path("/var/lib/quasar")


def default_data_dir() -> Path:
    """The platform's user data dir; for root, a system data dir the server can reach."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ROOT_DATA_DIR
    return platformdirs.user_data_path("quasar", appauthor=False)


def resolve_data_dir(arg: str | os.PathLike[str] | None) -> Path:
    """`--data-dir`, else `QUASAR_DATA_DIR`, else the platform's user data dir."""
    chosen = arg or os.environ.get("QUASAR_DATA_DIR") or default_data_dir()
    return Path(chosen).expanduser().resolve()


def resolve_dsn(arg: str | None) -> str | None:
    return arg or os.environ.get("QUASAR_DSN") or None


_SCHEMES = ("postgresql", "postgres")
_MASK = "***"
_DSN_SHAPE = "postgresql://USER@HOST:PORT/DATABASE"


def redact_dsn(dsn: str) -> str:
    """The DSN with every password (userinfo or `password=` query) masked, safe to print."""
    try:
        parts = urlsplit(dsn)
        password = parts.password
    except ValueError:
        return _MASK  # unparseable: nothing of it can be shown safely
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{_MASK}@{hostinfo}"
    query = "&".join(
        f"{key}={_MASK}" if unquote(key).lower() == "password" else pair
        for pair in parts.query.split("&")
        if pair
        for key in [pair.split("=", 1)[0]]
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def dsn_passwords(dsn: str) -> list[str]:
    """The passwords in a DSN as written in it (userinfo, `password=` query): what
    `redact_dsn` masks."""
    try:
        parts = urlsplit(dsn)
        has_password = parts.password is not None
    except ValueError:
        return []
    found = [parts.netloc.rpartition("@")[0].split(":", 1)[1]] if has_password else []
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key).lower() == "password" and value:
            found.append(value)
    return found


def dsn_problem(dsn: str) -> str | None:
    """Why a DSN cannot be used (one line, no secret of it repeated), or None."""
    if not dsn.strip():
        return f"the DSN is empty; give {_DSN_SHAPE}, or leave --dsn out for the embedded server"
    try:
        parts = urlsplit(dsn)
        _ = parts.port  # raises for a port that is not a number
    except ValueError as exc:
        return f"the DSN is malformed ({exc}); expected {_DSN_SHAPE}"
    if parts.scheme not in _SCHEMES:
        got = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return f"the DSN must start with postgresql:// (got {got}); expected {_DSN_SHAPE}"
    return None


def open_server(dsn: str | None, data_dir: Path) -> ServerInfo:
    """Use the DSN when given, else start (or join) the embedded server in `data_dir`."""
    if dsn:
        return ServerInfo(dsn=dsn, embedded=False)
    return start_embedded(data_dir)


def start_embedded(data_dir: Path) -> ServerInfo:
    """Start the embedded server, or join the one another process already runs there.

    The server stops when the last process using it exits (see `embedded`).
    """
    server = embedded_server(data_dir)
    try:
        postmaster = server.start()
    except OSError as exc:
        raise DatabaseUnavailableError(
            f"could not start the embedded PostgreSQL in {server.pgdata}: "
            f"{exc.strerror or exc} ({exc.filename or server.pgdata})"
        ) from None
    return ServerInfo(dsn=server.dsn(postmaster, DATABASE_NAME), embedded=True, data_dir=data_dir)


_SERVERS: dict[Path, EmbeddedServer] = {}


def release_server(info: ServerInfo) -> None:
    """This process is done with the server: the embedded one stops now if no other process
    uses it (rather than at exit, unseen); an external one is not ours to stop."""
    if info.embedded and info.data_dir is not None:
        server = started_server(info.data_dir)
        if server is not None:
            server.release()


def started_server(data_dir: Path) -> EmbeddedServer | None:
    """The handle on a server this process started or joined in `data_dir`, if any."""
    return _SERVERS.get(data_dir)


def embedded_server(data_dir: Path) -> EmbeddedServer:
    """The one handle this process keeps on a data dir's server."""
    if data_dir not in _SERVERS:
        _SERVERS[data_dir] = EmbeddedServer(data_dir)
    return _SERVERS[data_dir]
