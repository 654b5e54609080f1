"""DSNs: every password masked wherever one is shown, and a malformed one is one line, exit 2."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import psutil
import pytest
from helpers import until

from quasar_tui.store.server import ServerInfo, redact_dsn


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:hunter2@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?sslmode=require&password=hunter2",
            "postgresql://u@h/db?sslmode=require&password=***",
        ),
        ("postgresql://u@h/db?PassWord=hunter2", "postgresql://u@h/db?PassWord=***"),
        ("postgresql://u@h/db?pass%77ord=hunter2", "postgresql://u@h/db?pass%77ord=***"),
        (
            "postgresql://u@/db?host=/run/x&passfile=/d/pgpass",
            "postgresql://u@/db?host=/run/x&passfile=/d/pgpass",
        ),
        ("postgresql://u:p@[::1/x", "***"),
    ],
)
def test_passwords_are_masked(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown
    assert ServerInfo(dsn, embedded=False).describe() == f"external PostgreSQL at {shown}"


@pytest.mark.parametrize(
    ("dsn", "says"),
    [
        ("not a dsn", "must start with postgresql://"),
        ("mysql://root:hunter2@db/app", "must start with postgresql://"),
        ("postgresql://u:hunter2@[::1/x", "malformed"),
        ("postgresql://u:hunter2@h:99999/x", "malformed"),
        ("postgresql://u:hunter2@h:port/x", "malformed"),
        ("", "empty"),
    ],
)
def test_a_malformed_dsn_is_one_line_and_exit_2(run_quasar, dsn: str, says: str) -> None:
    for args in (("db", "info", "--dsn", dsn), ("--dsn", dsn, "status")):
        result = run_quasar(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
        assert "hunter2" not in result.stderr


def test_a_query_password_is_masked_in_the_error(run_quasar) -> None:
    result = run_quasar("db", "info", "--dsn", "postgresql://u@127.0.0.1:9/x?password=hunter2")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "password=***" in result.stderr and "hunter2" not in result.stderr


@pytest.mark.parametrize(
    "command", [("--daemon",), ("provider", "secret", "EODHD", "api_token=hunter2")]
)
async def test_a_password_given_as_an_argument_is_hidden_from_ps(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Every user of the machine reads a process's arguments (`ps`, /proc/PID/cmdline): the
    password in --dsn, and a provider secret given as KEY=VALUE, show as asterisks while the
    command runs (here: waiting on a server that takes the connection and never answers)."""
    accepted = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUASAR_")}
    dsn = f"postgresql://u:hunter2@127.0.0.1:{port}/x"
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "quasar_tui", "--dsn", dsn, *command),
        env={**env, "QUASAR_DATA_DIR": str(tmp_path / "data")},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await until(accepted.is_set, "the command connecting to the server")
        shown = psutil.Process(proc.pid).cmdline()  # what `ps` shows every user
    finally:
        proc.kill()
        await proc.wait()
        server.close()
    assert not any("hunter2" in argument for argument in shown), shown
    assert dsn.replace("hunter2", "*******") in shown
    assert ("api_token=*******" in shown) == ("secret" in command)
