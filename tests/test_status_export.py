"""`quasar status` and `quasar export` as a user runs them, against the test database."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from registry_rows import add_provider

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.engine import Engine
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.database import Database

INSERT_BAR = """
INSERT INTO historical_data (provider, symbol, interval, ts, open, high, low, close, volume)
VALUES ('EOD', $1, $2, $3, $4::float8, $4 + 1, $4 - 1, $4 + 0.5, 1000)
"""
INSERT_LIVE_BAR = """
INSERT INTO live_data (provider, symbol, interval, ts, open, high, low, close, volume, trades)
VALUES ('EOD', 'AAPL', '1min', $1, 1.5, 2.5, 0.5, 2.0, 3.25, 7)
"""
INSERT_GAP = """
INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason)
VALUES ('EOD', 'MSFT', '1h', $1, $2, 'chunk failed')
"""
DAYS = [datetime(2024, 1, d, tzinfo=UTC) for d in (2, 3, 4, 5)]


@pytest.fixture
async def series(db: Database) -> None:
    """AAPL daily bars (fresh, mapped to APPLE), MSFT hourly bars (stale, one open gap), IBM
    with no bars."""
    await add_provider(db, "EOD", assets=["AAPL", "MSFT", "IBM"])
    await MappingStore(db).map("APPLE", "EOD", "AAPL")
    store = SubscriptionStore(db)
    await store.add("EOD", ["AAPL"], "1d", "historical")
    await store.add("EOD", ["MSFT"], "1h", "historical")
    await store.add("EOD", ["IBM"], "1d", "historical")
    now = datetime.now(UTC)
    for i, day in enumerate(DAYS):
        await db.execute(INSERT_BAR, "AAPL", "1d", day, 100.0 + i)
    await db.execute(INSERT_BAR, "AAPL", "1d", Interval.D1.floor(now) - timedelta(days=1), 110.0)
    await db.execute(INSERT_BAR, "MSFT", "1h", Interval.H1.floor(now) - timedelta(days=2), 50.0)
    await db.execute(INSERT_GAP, now - timedelta(days=3), now - timedelta(days=2, hours=12))


def test_status_without_engine_shows_freshness_gaps_and_states(series: None, run_quasar) -> None:
    result = run_quasar("status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "engine: no engine running"
    rows = {line.split()[2]: line for line in lines[3:]}
    assert "fresh" in rows["AAPL"] and "stale" in rows["MSFT"] and "no data" in rows["IBM"]
    assert rows["AAPL"].split()[3] == "APPLE" and rows["IBM"].split()[3] == "-"

    data = json.loads(run_quasar("status", "--json").stdout)
    assert data["engine"] == {"running": False, "owner": None, "stats": {}}
    by_symbol = {s["symbol"]: s for s in data["subscriptions"]}
    assert by_symbol["MSFT"]["open_gaps"] == 1 and by_symbol["AAPL"]["open_gaps"] == 0
    assert by_symbol["MSFT"]["age_seconds"] > 86_400
    assert by_symbol["AAPL"]["common"] == "APPLE" and by_symbol["MSFT"]["common"] is None
    assert by_symbol["IBM"]["last_bar_ts"] is None and by_symbol["IBM"]["freshness"] == "no data"


async def test_status_names_the_running_engine(db: Database, run_quasar, tmp_path: Path) -> None:
    registry = ProviderRegistry(db, Keyring.load_or_create(tmp_path))
    engine = Engine(db, registry, SubscriptionStore(db), data_dir=tmp_path, mode="daemon")
    await engine.start()
    try:
        text = run_quasar("status")
        data = json.loads(run_quasar("status", "--json").stdout)
    finally:
        await engine.stop()

    assert text.stdout.startswith(f"engine: daemon on {socket.gethostname()}:{os.getpid()}, up ")
    assert data["engine"]["running"] is True
    assert data["engine"]["owner"]["pid"] == os.getpid()
    assert set(data["engine"]["stats"]["writers"]) == {"historical_data", "live_data", "live_ticks"}
    after = run_quasar("status")
    assert after.stdout.splitlines()[0] == "engine: no engine running"


def test_export_csv_to_stdout_with_an_inclusive_date_range(series: None, run_quasar) -> None:
    result = run_quasar(
        "export", "EOD", "AAPL", "--interval", "1d", "--from", "2024-01-03", "--to", "2024-01-04"
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [
        ["ts", "open", "high", "low", "close", "volume"],
        ["2024-01-03T00:00:00Z", "101.0", "102.0", "100.0", "101.5", "1000.0"],
        ["2024-01-04T00:00:00Z", "102.0", "103.0", "101.0", "102.5", "1000.0"],
    ]


async def test_export_live_bars_to_a_file(
    series: None, db: Database, run_quasar, tmp_path: Path
) -> None:
    await db.execute(INSERT_LIVE_BAR, datetime(2024, 1, 2, 9, 30, tzinfo=UTC))
    out = tmp_path / "aapl.csv"
    result = run_quasar("export", "EOD", "AAPL", "-i", "1m", "--live", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert out.read_text().splitlines() == [
        "ts,open,high,low,close,volume,trades",
        "2024-01-02T09:30:00Z,1.5,2.5,0.5,2.0,3.25,7",
    ]
    assert not (tmp_path / ".aapl.csv.partial").exists()


def test_export_mistakes_are_one_line_and_write_nothing(series: None, run_quasar) -> None:
    cases = [
        (("EOD", "AAPL", "-i", "1d", "--from", "2030-01-01"), "no historical 1d bars", 1),
        (("EOD", "AAPL", "-i", "7min"), "unknown interval", 2),
        (
            ("EOD", "AAPL", "-i", "1d", "--from", "2024-01-05", "--to", "2024-01-01"),
            "--to must be later",
            2,
        ),
        (("EOD", "AAPL", "-i", "1d", "--format", "parquet"), "give -o FILE", 2),
    ]
    for args, message, status in cases:
        result = run_quasar("export", *args)
        assert result.returncode == status, args
        assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr
    bad_date = run_quasar("export", "EOD", "AAPL", "-i", "1d", "--from", "yesterday")
    assert bad_date.returncode == 2 and "not a date" in bad_date.stderr


def test_export_parquet_writes_a_table_or_says_how_to_get_pyarrow(
    series: None, run_quasar, quasar_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "aapl.parquet"
    args = ["export", "EOD", "AAPL", "-i", "1d", "--format", "parquet", "-o", str(out)]
    shadow = tmp_path / "shadow" / "pyarrow"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named pyarrow')\n")
    env = {**quasar_env, "PYTHONPATH": str(shadow.parent)}
    without = subprocess.run(
        [sys.executable, "-m", "quasar_tui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert without.returncode == 1
    assert "pip install quasar-tui[parquet]" in without.stderr
    assert without.stderr.count("\n") == 1 and not out.exists()

    pq = pytest.importorskip("pyarrow.parquet")
    result = run_quasar(*args)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.column_names == ["ts", "open", "high", "low", "close", "volume"]
    assert table.column("open").to_pylist()[:2] == [100.0, 101.0]
    assert table.column("ts").to_pylist()[0] == DAYS[0]
