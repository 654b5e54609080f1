"""DSNs: every password masked wherever one is shown, and a malformed one is one line, exit 2."""

from __future__ import annotations

import pytest

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
