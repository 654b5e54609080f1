"""`quasar provider ...` as a user runs it: real process, real database, one-line errors."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from quasar_tui.cli import main
from quasar_tui.store.database import Database

FILES = Path(__file__).parent / "provider_files"
TOKEN = "cli-S3cret-token-4471"
SUBCOMMANDS = ["add", "validate", "list", "show", "remove", "set", "secret", "enable", "disable"]


def _one_line_error(result, status: int = 1) -> str:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_every_subcommand_has_help(run_quasar, capsys: pytest.CaptureFixture[str]) -> None:
    top = run_quasar("provider", "--help")
    assert top.returncode == 0
    for name in SUBCOMMANDS:
        assert name in top.stdout
        with pytest.raises(SystemExit) as done:
            main(["provider", name, "--help"])
        assert done.value.code == 0
        shown = capsys.readouterr().out
        assert f"usage: quasar provider {name}" in shown
        assert "--data-dir" in shown


def _own_providers(run_quasar) -> list[dict]:
    """Listed providers that are not bundled with Quasar."""
    listed = run_quasar("provider", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [p for p in json.loads(listed.stdout) if not p["bundled"]]


def test_bundled_providers_are_listed_from_the_first_command(run_quasar) -> None:
    listed = json.loads(run_quasar("provider", "list", "--json").stdout)
    assert {(p["name"], p["kind"]) for p in listed} == {
        ("EODHD", "historical"),
        ("KRAKEN", "live"),
        ("POLYGON", "historical"),
        ("SIMULATED", "live"),
    }
    assert all(p["bundled"] for p in listed)
    removed = run_quasar("provider", "remove", "POLYGON", "--yes")
    assert removed.returncode == 0, removed.stderr
    names = {p["name"] for p in json.loads(run_quasar("provider", "list", "--json").stdout)}
    assert "POLYGON" not in names


def test_validate_reports_what_it_found_and_stores_nothing(run_quasar) -> None:
    result = run_quasar("provider", "validate", str(FILES / "original_style_live.py"))
    assert result.returncode == 0, result.stderr
    assert "valid live provider wsdemo (class WsDemo)" in result.stdout
    assert "secrets:     api_token" in result.stdout
    assert _own_providers(run_quasar) == []


def test_a_hostile_file_is_one_line_and_nothing_is_stored(run_quasar) -> None:
    err = _one_line_error(run_quasar("provider", "add", str(FILES / "two_classes.py")))
    assert err == (
        "quasar: error: two_classes.py: 2 provider classes (A, B): a file must define exactly one\n"
    )
    assert _own_providers(run_quasar) == []
    err = _one_line_error(run_quasar("provider", "validate", str(FILES / "missing_import.py")))
    assert "import failed: No module named 'nope'" in err
    err = _one_line_error(run_quasar("provider", "add", str(FILES / "absent.py")))
    assert "cannot read" in err and "absent.py" in err


def test_add_list_show_and_conflict(run_quasar, quasar_env) -> None:
    path = str(FILES / "good_historical.py")
    added = run_quasar("provider", "add", path)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added historical provider synthetic (class Synthetic")
    key_file = Path(quasar_env["QUASAR_DATA_DIR"]) / "master.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    err = _one_line_error(run_quasar("provider", "add", path))
    assert f"run `quasar provider add {path} --replace`" in err

    assert [(p["name"], p["kind"], p["asset_count"]) for p in _own_providers(run_quasar)] == [
        ("synthetic", "historical", 0)
    ]
    table = run_quasar("provider", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "KIND", "ENABLED", "STATUS", "ASSETS", "SECRETS", "BUNDLED"]
    assert ["synthetic", "historical", "yes", "ok", "0", "-", "no"] in [
        line.split() for line in table[1:]
    ]

    shown = run_quasar("provider", "show", "synthetic").stdout
    assert "intervals:   1h 1d" in shown
    assert "secrets:     api_key (not set)" in shown
    assert "  venue = 'XNYS' (default)" in shown
    assert "str; one of XNYS, XNAS; exchange code" in shown
    err = _one_line_error(run_quasar("provider", "show", "nobody"))
    assert "no provider named 'nobody'" in err


def test_preferences(run_quasar) -> None:
    run_quasar("provider", "add", str(FILES / "good_historical.py"), check=True)
    result = run_quasar("provider", "set", "synthetic", "base_price=12.5", "adjusted=no")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "synthetic: base_price = 12.5",
        "synthetic: adjusted = False",
    ]
    shown = json.loads(run_quasar("provider", "show", "synthetic", "--json").stdout)
    assert shown["preferences"] == {"base_price": 12.5, "adjusted": False}
    err = _one_line_error(run_quasar("provider", "set", "synthetic", "base_price=cheap"))
    assert "base_price must be float, got 'cheap'" in err
    usage = run_quasar("provider", "set", "synthetic", "base_price")
    assert usage.returncode == 2
    assert "expected KEY=VALUE" in usage.stderr


async def test_secrets_from_stdin_are_stored_but_never_shown(run_quasar, db: Database) -> None:
    run_quasar("provider", "add", str(FILES / "original_style_live.py"), check=True)
    result = run_quasar("provider", "secret", "wsdemo", input=f"# token\napi_token={TOKEN}\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "stored secrets of wsdemo: api_token\n"
    shown = run_quasar("provider", "show", "wsdemo")
    as_json = run_quasar("provider", "show", "wsdemo", "--json")
    assert "api_token (set)" in shown.stdout
    for output in (result, shown, as_json):
        assert TOKEN not in output.stdout + output.stderr
    row = await db.fetchval("SELECT to_jsonb(p)::text FROM providers p WHERE name = 'wsdemo'")
    assert "api_token" in row
    assert TOKEN not in row

    err = _one_line_error(run_quasar("provider", "secret", "wsdemo", input=f"{TOKEN}\n"))
    assert err == "quasar: error: stdin line 1 is not KEY=VALUE\n"
    usage = run_quasar("provider", "secret", "wsdemo", TOKEN)
    assert usage.returncode == 2
    assert TOKEN not in usage.stderr


def test_replace_with_changed_code_tells_to_set_secrets_again(run_quasar, tmp_path) -> None:
    run_quasar("provider", "add", str(FILES / "original_style_live.py"), check=True)
    run_quasar("provider", "secret", "wsdemo", f"api_token={TOKEN}", check=True)
    changed = tmp_path / "wsdemo.py"
    changed.write_text((FILES / "original_style_live.py").read_text() + "# v2\n")
    result = run_quasar("provider", "add", str(changed), "--replace")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("replaced live provider wsdemo")
    assert "note: the code changed, so the secrets of wsdemo (api_token) were dropped" in (
        result.stdout
    )


async def test_remove_needs_confirmation_and_keeps_bars(run_quasar, db: Database) -> None:
    run_quasar("provider", "add", str(FILES / "good_historical.py"), check=True)
    await db.execute("INSERT INTO assets (provider, symbol) VALUES ('synthetic', 'AAA')")
    await db.execute(
        "INSERT INTO historical_data (provider, symbol, interval, ts, open, high, low, close) "
        "VALUES ('synthetic', 'AAA', '1d', now(), 1, 1, 1, 1)"
    )
    err = _one_line_error(run_quasar("provider", "remove", "synthetic", input=""))
    assert "not removing synthetic without confirmation: run again with --yes" in err

    result = run_quasar("provider", "remove", "synthetic", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "removed provider synthetic with 1 asset, 0 mappings, 0 subscriptions"
    )
    assert result.stdout.splitlines()[1].startswith(
        "kept 1 historical bar, 0 live bars, 0 ticks (they return if the provider is added"
    )
    assert await db.fetchval("SELECT count(*) FROM historical_data") == 1
    assert await db.fetchval("SELECT count(*) FROM providers WHERE NOT bundled") == 0


@pytest.mark.parametrize(("verb", "shown"), [("disable", "no"), ("enable", "yes")])
def test_enable_and_disable(run_quasar, verb: str, shown: str) -> None:
    run_quasar("provider", "add", str(FILES / "good_historical.py"), check=True)
    result = run_quasar("provider", verb, "synthetic")
    assert result.stdout == f"synthetic {verb}d\n"
    assert f"enabled:     {shown}" in run_quasar("provider", "show", "synthetic").stdout
    err = _one_line_error(run_quasar("provider", verb, "nobody"))
    assert "no provider named 'nobody'" in err


def _run_on_terminal(env: dict[str, str], *args: str, typed: str = "") -> tuple[int, str]:
    """`quasar ARGS` with a pseudo-terminal as its controlling terminal; `typed` (if any) is
    written once the first prompt shows. Returns the exit status and what the terminal showed."""
    master, slave = pty.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "quasar_tui", *args],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_terminal,  # the child needs the pty as its controlling terminal
    )
    os.close(slave)
    shown = b""
    if typed:
        while b": " not in shown:
            shown += os.read(master, 1024)
        os.write(master, typed.encode())
    while True:
        try:
            chunk = os.read(master, 1024)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(timeout=60), shown.decode(errors="replace")


async def test_secrets_are_prompted_without_echo_and_argv_values_warn(
    run_quasar, quasar_env: dict[str, str], db: Database
) -> None:
    run_quasar("provider", "add", str(FILES / "original_style_live.py"), check=True)
    status, shown = _run_on_terminal(quasar_env, "provider", "secret", "wsdemo", typed=f"{TOKEN}\n")
    assert status == 0, shown
    assert "wsdemo api_token (not set): " in shown
    assert "stored secrets of wsdemo: api_token" in shown
    assert TOKEN not in shown
    assert "api_token" in await db.fetchval(
        "SELECT secret_names FROM providers WHERE name = 'wsdemo'"
    )

    on_argv = run_quasar("provider", "secret", "wsdemo", f"api_token={TOKEN}")
    assert on_argv.returncode == 0
    assert on_argv.stderr.count("\n") == 1 and "visible in `ps` and shell history" in on_argv.stderr
    assert TOKEN not in on_argv.stdout + on_argv.stderr


SLOW_TO_IMPORT = (
    (FILES / "good_historical.py")
    .read_text()
    .replace("from quasar_tui.sdk", "import time\n\ntime.sleep(1)\nfrom quasar_tui.sdk", 1)
)


def test_a_long_wait_shows_a_spinner_on_a_terminal_and_nothing_when_piped(
    run_quasar, quasar_env: dict[str, str], tmp_path: Path
) -> None:
    slow = tmp_path / "slow.py"
    slow.write_text(SLOW_TO_IMPORT)  # validation imports it: a wait of a second at least
    status, shown = _run_on_terminal(quasar_env, "provider", "validate", str(slow))
    assert status == 0, shown
    assert f"validating {slow} in a child process..." in shown
    assert "\r\x1b[K" in shown  # the spinner line is erased before the result is printed
    assert "valid historical provider synthetic" in shown
    piped = run_quasar("provider", "validate", str(slow))
    assert piped.returncode == 0 and piped.stderr == ""
