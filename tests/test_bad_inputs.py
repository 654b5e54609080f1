"""Over a hundred bad inputs, tried as a careless user would: each gets exactly one line on
stderr, no traceback, the documented exit status (2 usage, 1 failed operation) and no stored
change. Most run in-process through the CLI's `main(argv)` (the same parser, handlers and
exit-status mapping as the installed command); a representative set runs as real `quasar`
processes, and so do the cases only a process can show (a closed pipe, a full disk)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from quasar_tui.cli import main

EVIL_NAME = "\x1b]0;pwn\x07\x1b[2J"
USAGE, FAILED = 2, 1
EXPORT_1D = ("export", "SIMULATED", "SIM/BTC", "-i", "1d")
LONG_URL = "https://" + "x" * 100_000


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    status: int
    says: str = ""
    stdin: str = ""


def usage(*argv: str, says: str = "") -> Case:
    return Case(argv, USAGE, says)


def failed(*argv: str, says: str = "", stdin: str = "") -> Case:
    return Case(argv, FAILED, says, stdin)


def _file_cases(files: dict[str, Path]) -> list[Case]:
    cases = []
    for verb in ("add", "validate"):
        cases += [
            failed("provider", verb, "/dev/zero", says="not a regular file"),
            failed("provider", verb, "/dev/null", says="not a regular file"),
            failed("provider", verb, str(files["fifo"]), says="not a regular file"),
            failed("provider", verb, str(files["dir"]), says="is a directory"),
            failed("provider", verb, str(files["big"]), says="under 1 MiB"),
            failed("provider", verb, str(files["dir"] / "missing.py"), says="No such file"),
            failed("provider", verb, str(files["syntax"])),
            failed("provider", verb, str(files["empty"])),
        ]
    return cases


def _alert_cases(files: dict[str, Path]) -> list[Case]:
    add = ("alert", "add")
    hook = ("--webhook", "http://127.0.0.1:9/hook")
    return [
        usage(*add, "sideways", "BTC/USD", says="invalid choice"),
        usage(*add, "above", "BTC/USD", says="needs --level"),
        usage(*add, "above", "--all", "--level", "1", says="one series"),
        usage(*add, "above", "BTC/USD", "--level", "nan", says="finite"),
        usage(*add, "above", "BTC/USD", "--level", "-5", says="above 0"),
        usage(*add, "above", "BTC/USD", "--level", "1", "--hysteresis", "100", says="hysteresis"),
        usage(*add, "change", "BTC/USD", "--percent", "2", says="needs --window"),
        usage(*add, "change", "BTC/USD", "--percent", "2", "--window", "0", says="expected"),
        usage(*add, "volume", "BTC/USD", "--factor", "3", "--interval", "7min"),
        usage(*add, "stale", says="or --all"),
        usage(*add, "stale", "BTC/USD", "--all", "--seconds", "5", says="or --all"),
        usage(*add, "gap", "--all", "--cooldown", "-1", says="expected"),
        usage(*add, "gap", "--all", "--webhook", "ftp://x", "--unsigned", says="http"),
        usage(*add, "gap", "--all", "--unsigned", says="go with --webhook"),
        usage(*add, "gap", "--all", *hook, "--unsigned", "--secret-file", "x", says="contradict"),
        failed(*add, "gap", "--all", *hook, stdin="", says="no webhook secret"),
        failed(*add, "gap", "--all", *hook, stdin="a\nb\n", says="one line"),
        failed(*add, "gap", "--all", *hook, "--secret-file", str(files["dir"] / "nope")),
        failed(*add, "above", "NOSUCH/COIN", "--level", "1", says="NOSUCH/COIN"),
        failed(*add, "provider", "NOPE", says="no provider named"),
        usage("alert", "pause", "0", says="expected"),
        usage("alert", "remove", "abc", says="expected"),
        failed("alert", "pause", "42", says="no alert rule 42"),
        failed("alert", "resume", "42", says="no alert rule 42"),
        failed("alert", "remove", "9223372036854775807", says="no alert rule"),
        failed("alert", "history", "42", says="no alert rule 42"),
        usage("alert", "history", "--limit", "0", says="expected"),
        usage("alert"),
    ]


def _cases(files: dict[str, Path]) -> list[Case]:
    export = ("export", "SIMULATED", "SIM/BTC", "-i", "1d")
    empty = ("export", "SIMULATED", "SIM/ETH", "-i", "1d")
    sub = ("subscribe", "SIMULATED", "SIM/BTC", "-i", "1min")
    setp = ("provider", "set", "SIMULATED")
    return [
        # ids beyond int64 and other impossible ids
        *(
            usage(*verb, value, says="expected")
            for verb in (("unsubscribe", "--id"), ("pause",), ("resume",))
            for value in ("99999999999999999999", "9223372036854775808", "0", "-1", "abc", "1e3")
        ),
        failed("unsubscribe", "--id", "9223372036854775807", says="9223372036854775807"),
        usage("pause"),
        usage("--standby", "status", says="goes with --daemon"),
        usage("unsubscribe", "SIMULATED", "SIM/BTC", "--id", "1", says="not both"),
        usage("unsubscribe", "SIMULATED", says="name the subscriptions"),
        # limits and scores
        *(
            usage(*cmd, "--limit", value, says="expected")
            for cmd in (("assets", "list", "SIMULATED"), ("map", "suggest", "SIMULATED"))
            for value in ("99999999999999999999", "0", "-1", "ten")
        ),
        *(
            usage("map", "suggest", "SIMULATED", "--min-score", value, says="0 to 1")
            for value in ("nan", "inf", "-0.1", "2", "high")
        ),
        # lookbacks
        *(
            usage(*sub, "--lookback-days", value, says="expected")
            for value in ("99999999", "36501", "0", "-3", "1e9", "")
        ),
        # intervals: a usage error, everywhere
        usage("subscribe", "SIMULATED", "SIM/BTC", "-i", "7min", says="unknown interval"),
        usage("subscribe", "SIMULATED", "SIM/BTC", "-i", "", says="unknown interval"),
        usage("subscribe", "SIMULATED", "SIM/BTC", "-i", "1y", says="unknown interval"),
        usage("export", "SIMULATED", "SIM/BTC", "-i", "2h", says="unknown interval"),
        usage("unsubscribe", "SIMULATED", "SIM/BTC", "-i", "3d", says="unknown interval"),
        usage("subscribe", "SIMULATED", "SIM/BTC", says="--interval"),
        # dates
        failed(*empty, "--from", "0001-01-01", "--to", "9999-12-31", says="no historical"),
        failed(*empty, "--to", "9999-12-31", says="no historical"),
        failed(*export, "--from", "9999-12-31", says="no historical"),
        usage(*export, "--from", "yesterday", says="not a date"),
        usage(*export, "--from", "2024-13-01", says="not a date"),
        usage(*export, "--to", "2024-02-30", says="not a date"),
        usage(*export, "--from", "10000-01-01", says="not a date"),
        usage(*export, "--from", "0001-01-01T00:00+05:00", says="not a date"),
        usage(*export, "--from", "2024-01-05", "--to", "2024-01-01", says="later than"),
        usage(*export, "--format", "parquet", says="give -o FILE"),
        usage(*export, "--format", "xlsx", says="invalid choice"),
        # the data dir and global options
        usage("--data-dir", "", "provider", "list", says="must not be empty"),
        usage("provider", "list", "--data-dir", "", says="must not be empty"),
        usage("--data-dir", "   ", "status", says="must not be empty"),
        usage("--fps", "0", "status", says="expected"),
        usage("--fps", "fast", "status", says="expected"),
        # commands and arguments that do not exist
        usage("frobnicate", says="invalid choice"),
        usage("provider", says="required"),
        usage("provider", "frob", says="invalid choice"),
        usage("assets"),
        usage("map"),
        usage("map", "BTC", "SIMULATED"),
        usage("export"),
        usage("status", "--bogus", says="unrecognized"),
        usage("subscriptions", "--provider"),
        usage(*setp),
        usage(*setp, "novalue", says="KEY=VALUE"),
        usage(*setp, "=5", says="KEY=VALUE"),
        # preferences out of their bounds
        *(
            failed(*setp, f"ticks_per_second={value}", says="ticks_per_second")
            for value in ("inf", "nan", "0", "-1", "-inf", "1e400", "abc", "1e9")
        ),
        *(
            failed(*setp, f"symbol_count={value}", says="symbol_count")
            for value in ("1e23", "1" + "0" * 23, "-1", "9999999999", "1.5", "9" * 5000)
        ),
        failed(*setp, "seed=99999999999999999999999", says="seed"),
        failed(*setp, "seed=1.5", says="seed"),
        failed(*setp, "seed=7", "ticks_per_second=nan", says="ticks_per_second"),
        failed("provider", "set", "EODHD", f"base_url={LONG_URL}", says="at most 512"),
        failed("provider", "set", "POLYGON", f"base_url={LONG_URL}", says="at most 512"),
        failed("provider", "set", "KRAKEN", f"ws_url={LONG_URL[:600]}", says="at most 512"),
        failed("provider", "set", "KRAKEN", "channels=" + "trade," * 20, says="at most 64"),
        failed("provider", "set", "POLYGON", "market=bonds", says="must be one of"),
        failed(*setp, "nokey=1", says="unknown preference"),
        failed(*setp, "symbols=SIM/BTC\x1b[2J", says="control characters"),
        failed(*setp, "symbols=A\nB", says="control characters"),
        failed("provider", "set", "NOPE", "x=1", says="no provider named"),
        # secrets
        failed("provider", "secret", "NOPE", "api_token=x", says="no provider named"),
        failed("provider", "secret", "EODHD", "bogus=x", says="no secret"),
        failed("provider", "secret", "EODHD", "bad key=x", says="not a valid secret name"),
        failed("provider", "secret", "EODHD", stdin="garbage\n", says="not KEY=VALUE"),
        failed("provider", "secret", "EODHD", stdin="", says="no secrets given"),
        failed("provider", "secret", "EODHD", stdin="# only\n\n", says="no secrets given"),
        # provider files: regular files under the cap only
        *_file_cases(files),
        # alert rules
        *_alert_cases(files),
        # things that do not exist
        failed("provider", "show", "NOPE", says="no provider named"),
        failed("provider", "remove", "NOPE", "--yes", says="no provider named"),
        failed("provider", "remove", "SIMULATED", says="--yes"),
        failed("provider", "enable", "NOPE", says="no provider named"),
        failed("provider", "disable", "NOPE", says="no provider named"),
        failed("assets", "list", "NOPE", says="no provider named"),
        failed("assets", "refresh", "NOPE", says="no provider named"),
        failed("map", "suggest", "NOPE", says="no provider named"),
        failed("map", "BTC", "NOPE", "X", says="NOPE"),
        failed("map", "BTC/USD", "SIMULATED", "NOSUCH", says="NOSUCH"),
        failed("map", "delete", "SIMULATED", "NOSUCH", says="NOSUCH"),
        failed("map", "rename", "NOPE", "NEW", says="NOPE"),
        failed("subscribe", "SIMULATED", "NOSUCH", "-i", "1min", "--live", says="NOSUCH"),
        failed("subscribe", "NOPE", "X", "-i", "1d", says="NOPE"),
        failed("unsubscribe", "SIMULATED", "SIM/ETH", "-i", "1d", says="not subscribed"),
        failed("export", "NOPE", "X", "-i", "1d", says="no historical"),
        # export targets
        failed(*export, "-o", str(files["dir"]), says="is a directory"),
        failed(*export, "-o", str(files["link"]), says="symbolic link"),
        failed(*export, "-o", str(files["dir"] / "no" / "such" / "x.csv"), says="cannot write"),
        failed(*export, "-o", "/dev/full", says="No space left"),
    ]


@pytest.fixture
def cli_env(test_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("QUASAR_DSN", test_dsn)
    monkeypatch.setenv("QUASAR_DATA_DIR", str(tmp_path / "data"))
    return test_dsn


def run_main(argv: tuple[str, ...], stdin: str, capsys: pytest.CaptureFixture[str]):
    """`quasar ARGV` in this process: (status, stdout, stderr)."""
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's own exits
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = saved
    out, err = capsys.readouterr()
    return status, out, err


async def _dump(dsn: str) -> dict[str, list[tuple]]:
    conn = await asyncpg.connect(dsn)
    try:
        queries = {
            "providers": "SELECT name, sha256, preferences::text, secrets, secret_names, "
            "enabled, status, status_detail FROM providers ORDER BY name",
            "assets": "SELECT provider, symbol, name, active FROM assets ORDER BY 1, 2",
            "common_symbols": "SELECT * FROM common_symbols ORDER BY 1",
            "asset_mappings": "SELECT provider, symbol, common_symbol FROM asset_mappings "
            "ORDER BY 1, 2",
            "subscriptions": "SELECT id, provider, symbol, interval, mode, enabled, "
            "lookback_days FROM subscriptions ORDER BY id",
            "historical_data": "SELECT count(*) FROM historical_data",
            "alert_rules": "SELECT count(*) FROM alert_rules",
        }
        return {name: [tuple(r) for r in await conn.fetch(q)] for name, q in queries.items()}
    finally:
        await conn.close()


def dump(dsn: str) -> dict[str, list[tuple]]:
    return asyncio.run(_dump(dsn))


async def _seed_rows(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO providers (name, kind, class_name, source, sha256, capabilities) "
            "VALUES ('EVIL', 'historical', 'Evil', '', md5('EVIL'), '{}')"
        )
        await conn.execute(
            "INSERT INTO assets (provider, symbol, name, asset_class) VALUES ($1, $2, $3, $4)",
            "EVIL",
            "EV" + EVIL_NAME,
            "Evil " + EVIL_NAME,
            "crypto\x1b[31m",
        )
        await conn.execute(
            "INSERT INTO historical_data (provider, symbol, interval, ts, open, high, low, "
            "close) SELECT 'SIMULATED', 'SIM/BTC', '1d', d, 1, 2, 0.5, 1.5 "
            "FROM generate_series('2024-01-01'::timestamptz, '2024-01-10', '1 day') AS d"
        )
    finally:
        await conn.close()


@pytest.fixture
def seeded(cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Bundled providers, SIMULATED's assets, a subscription, a mapping, stored bars, and a
    provider whose asset names carry terminal escape sequences."""
    for argv in (
        ("provider", "list"),
        ("assets", "refresh", "SIMULATED"),
        ("subscribe", "SIMULATED", "SIM/BTC", "-i", "1min", "--live"),
        ("map", "BTC/USD", "SIMULATED", "SIM/BTC"),
    ):
        status, _, err = run_main(argv, "", capsys)
        assert status == 0, err
    asyncio.run(_seed_rows(cli_env))
    return cli_env


@pytest.fixture
def files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    folder = tmp_path / "files"
    folder.mkdir()
    fifo = folder / "provider.fifo"
    os.mkfifo(fifo)
    big = folder / "big.py"
    big.write_bytes(b"#" * (6 * 1024 * 1024))
    syntax = folder / "syntax.py"
    syntax.write_text("def broken(:\n")
    empty = folder / "empty.py"
    empty.write_text("")
    link = folder / "out.csv"
    link.symlink_to(folder / "target.csv")
    yield {
        "fifo": fifo,
        "dir": folder,
        "big": big,
        "syntax": syntax,
        "empty": empty,
        "link": link,
    }


def _check(case: Case, status: int, out: str, err: str) -> str | None:
    """What is wrong with how a bad input ended, or None."""
    lines = err.splitlines()
    if "Traceback" in err or len(lines) != 1:
        return f"{case.argv[:6]}: stderr is {len(lines)} lines: {err[:300]!r}"
    if status != case.status:
        return f"{case.argv[:6]}: exit {status}, want {case.status}: {lines[0]}"
    if case.says and case.says not in lines[0]:
        return f"{case.argv[:6]}: {lines[0]!r} does not say {case.says!r}"
    if "\x1b" in err or len(lines[0]) > 400:
        return f"{case.argv[:6]}: the line is not fit for a terminal: {lines[0][:100]!r}"
    return None


def test_every_bad_input_is_one_line_with_its_status_and_changes_nothing(
    seeded: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _cases(files)
    assert len(cases) > 100
    before = dump(seeded)
    problems = []
    for case in cases:
        status, out, err = run_main(case.argv, case.stdin, capsys)
        problem = _check(case, status, out, err)
        if problem:
            problems.append(problem)
    assert not problems, "\n".join(problems)
    assert dump(seeded) == before
    assert not (files["dir"] / "target.csv").exists()
    assert Path("/dev/full").is_char_device()


REPRESENTATIVE = [
    usage("pause", "99999999999999999999", says="expected"),
    usage("assets", "list", "SIMULATED", "--limit", "99999999999999999999"),
    usage("subscribe", "SIMULATED", "SIM/BTC", "-i", "7min", says="unknown interval"),
    usage("subscribe", "SIMULATED", "SIM/BTC", "-i", "1min", "--lookback-days", "99999999"),
    usage("--data-dir", "", "status", says="must not be empty"),
    usage("frobnicate"),
    failed(
        "export", "SIMULATED", "SIM/ETH", "-i", "1d", "--from", "0001-01-01", "--to", "9999-12-31"
    ),
    failed("provider", "set", "SIMULATED", "ticks_per_second=inf", says="finite"),
    failed("provider", "set", "SIMULATED", "symbol_count=1" + "0" * 23, says="symbol_count"),
    failed("provider", "add", "/dev/zero", says="not a regular file"),
    failed("provider", "secret", "EODHD", stdin="garbage\n", says="not KEY=VALUE"),
    failed("export", "SIMULATED", "SIM/BTC", "-i", "1d", "-o", "/dev/full", says="No space"),
]


def test_representative_bad_inputs_as_real_processes(seeded: str, run_quasar) -> None:
    before = dump(seeded)
    for case in REPRESENTATIVE:
        result = run_quasar(*case.argv, input=case.stdin)
        assert _check(case, result.returncode, result.stdout, result.stderr) is None
    assert dump(seeded) == before
    assert Path("/dev/full").is_char_device()


def test_a_full_disk_on_stdout_is_one_line_and_exit_1(seeded: str, quasar_env) -> None:
    for argv in (("provider", "list"), ("export", "SIMULATED", "SIM/BTC", "-i", "1d")):
        with open("/dev/full", "w") as full:
            result = subprocess.run(
                [sys.executable, "-m", "quasar_tui", *argv],
                env=quasar_env,
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
            )
        assert result.returncode == 1
        assert result.stderr == "quasar: error: cannot write the output: No space left on device\n"


def test_a_closed_pipe_ends_quietly(seeded: str, quasar_env) -> None:
    """`quasar ... | head -1`: the reader goes away after one line; no traceback, no noise."""
    script = (
        f"{sys.executable} -m quasar_tui provider set SIMULATED symbol_count=5000 >/dev/null && "
        f"{sys.executable} -m quasar_tui assets refresh SIMULATED >/dev/null && "
        f"{sys.executable} -m quasar_tui assets list SIMULATED --limit 5000 | head -1"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        env=quasar_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.split() == [
        "SYMBOL",
        "NAME",
        "ASSET",
        "CLASS",
        "EXCHANGE",
        "COMMON",
        "SYMBOL",
        "ACTIVE",
    ]
    assert result.stderr == ""
    assert result.returncode == 141  # what a shell reports for a reader gone, as for `cat`


def test_escape_sequences_from_a_provider_are_shown_escaped(seeded: str, run_quasar) -> None:
    table = run_quasar("assets", "list", "EVIL")
    assert table.returncode == 0 and "\x1b" not in table.stdout and "\x07" not in table.stdout
    assert "Evil \\x1b]0;pwn\\x07\\x1b[2J" in table.stdout
    as_json = run_quasar("assets", "list", "EVIL", "--json")
    assert "\x1b" not in as_json.stdout and "\\u001b]0;pwn" in as_json.stdout
    missing = run_quasar("subscribe", "EVIL", "EV\x1b[2J", "-i", "1d")
    assert missing.returncode == 1 and "\x1b" not in missing.stderr


def test_export_writes_atomically_over_a_file_and_through_a_fifo(
    seeded: str, run_quasar, quasar_env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "bars.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    done = run_quasar(*EXPORT_1D, "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_text().splitlines()[0] == "ts,open,high,low,close,volume"
    assert len(target.read_text().splitlines()) == 11
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bars")] == []

    fifo = tmp_path / "bars.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "quasar_tui", *EXPORT_1D, "-o", str(fifo)],
        env=quasar_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    with open(fifo) as reader:
        lines = reader.read().splitlines()
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    assert len(lines) == 11 and fifo.is_fifo()


def test_wording_says_what_is_missing(seeded: str, run_quasar) -> None:
    no_token = run_quasar("assets", "refresh", "EODHD")
    assert no_token.returncode == 1
    assert "EODHD needs an API token: set it with `quasar provider secret EODHD`" in (
        no_token.stderr
    )
    assert "rejected" not in no_token.stderr
    no_assets = run_quasar("map", "suggest", "KRAKEN", "--accept")
    assert no_assets.returncode == 0
    assert no_assets.stdout == (
        "KRAKEN has no assets yet; run `quasar assets refresh KRAKEN` first\n"
    )
