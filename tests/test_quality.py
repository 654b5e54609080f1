"""Quality flags on crafted bars, found by the pass and reported by `quasar quality`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from registry_rows import add_provider
from serve_rig import running_api
from test_read import mapped, random_bars, store

import quasar_tui
from quasar_tui.core.bar_quality import Flag, score
from quasar_tui.core.intervals import Interval
from quasar_tui.quality.flags import flag_series, judging_reader
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database
from quasar_tui.store.series import Series

START = datetime(2026, 11, 2, tzinfo=UTC)
SERIES = Series("KRAKEN", "XBT/USD")


async def flags_of(db: Database) -> dict[datetime, Flag]:
    rows = await db.fetch("SELECT ts, flags FROM bar_flags ORDER BY ts")
    return {r["ts"]: Flag(r["flags"]) for r in rows}


async def test_each_flag_on_crafted_bars(db: Database) -> None:
    bars = [list(b) for b in random_bars(START, 100, timedelta(minutes=1), 1)]
    bars[10][3] = bars[10][2] + 1  # low above high
    bars[20][4] = -1.0  # a negative close
    bars[21][1] = bars[20][4]
    bars[40][4] = bars[40][1] * 3  # a spike: +200 %
    bars[40][2] = bars[40][4]
    bars[41][1] = bars[40][4]
    bars[60] = [bars[60][0], *bars[59][1:]]  # the bar before, repeated
    bars[80][0] = bars[80][0] + timedelta(seconds=30)  # off the minute grid
    bars[90][5] = 0.0  # zero volume: normal for crypto, flagged on an exchange
    rows = [tuple(b) for b in bars]
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", rows)

    result = await flag_series(db, SERIES, Interval.M1, "24/7")
    found = await flags_of(db)
    assert found[rows[10][0]] & Flag.OHLC
    assert found[rows[20][0]] & Flag.NON_POSITIVE
    assert found[rows[40][0]] & Flag.SPIKE
    assert found[rows[60][0]] == Flag.REPEATED
    assert found[rows[80][0]] == Flag.OFF_GRID
    assert rows[90][0] not in found
    assert result.checked == 100 and result.flagged == len(found)
    # Nothing but the crafted bars (and the return back from the spike) is flagged.
    expected = {rows[i][0] for i in (10, 20, 21, 40, 41, 60, 80)}
    assert set(found) <= expected | {rows[22][0]}

    # The same bars on an exchange calendar: zero volume in a session is flagged.
    await flag_series(db, SERIES, Interval.M1, "XNYS", full=True)
    assert (await flags_of(db))[rows[90][0]] == Flag.ZERO_VOLUME


async def test_a_pass_only_reads_what_is_new_and_keeps_flags(db: Database) -> None:
    bars = random_bars(START, 60, timedelta(minutes=1), 2)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", bars)
    assert (await flag_series(db, SERIES, Interval.M1, "24/7")).checked == 60
    later = [
        list(b) for b in random_bars(START + timedelta(minutes=60), 10, timedelta(minutes=1), 3)
    ]
    later[5][4] = 0.0  # a zero close
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", [tuple(b) for b in later])
    second = await flag_series(db, SERIES, Interval.M1, "24/7")
    assert second.checked == 11  # the last bar checked, then the new ones
    assert (await flags_of(db))[later[5][0]] & Flag.NON_POSITIVE


async def test_quality_report_from_the_command_line(db: Database, run_quasar) -> None:
    await add_provider(
        db,
        "KRAKEN",
        assets=[
            SymbolInfo(s, exchange="KRAKEN", asset_class="crypto") for s in ("XBT/USD", "ETH/USD")
        ],
    )
    await SubscriptionStore(db).add("KRAKEN", ["XBT/USD"], "1h", "historical")
    hours = [list(b) for b in random_bars(START, 48, timedelta(hours=1), 4)]
    hours[30][3] = hours[30][2] + 5  # low above high on day 2
    kept = [tuple(b) for i, b in enumerate(hours) if i not in (3, 4)]  # two hours missing
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1h", kept)

    shown = run_quasar("quality", "--json")
    assert shown.returncode == 0, shown.stderr
    (report,) = json.loads(shown.stdout)
    assert (report["bars"], report["missing"]) == (46, 2)
    assert report["coverage"] == round(46 / 48, 6)
    assert report["flags"] == {"ohlc": 1}
    assert (
        report["worst_days"][0]["day"] == "2026-11-03" and report["worst_days"][0]["flagged"] == 1
    )
    table = run_quasar("quality", "KRAKEN:XBT/USD")
    assert "95.83%" in table.stdout and "1 ohlc" in table.stdout

    await SubscriptionStore(db).add("KRAKEN", ["ETH/USD"], "1h", "historical")
    [waiting] = [line for line in run_quasar("quality").stdout.splitlines() if "ETH/USD" in line]
    assert "no bars yet" in waiting and "%" not in waiting  # not complete, not 0 % either


def crafted_minutes() -> list[tuple]:
    """Two hours of minutes with a low above the high, a spike and a repeated bar."""
    bars = [list(b) for b in random_bars(START, 120, timedelta(minutes=1), 5)]
    bars[10][3] = bars[10][2] + 1  # low above high
    bars[70][2] = bars[70][1] * 3  # a spike of the high and close
    bars[70][4] = bars[70][2]
    bars[71][1] = bars[70][4]
    bars[100] = [bars[100][0], *bars[99][1:]]  # repeated
    return [tuple(b) for b in bars]


async def test_readers_leave_out_bars_below_the_minimum_quality(db: Database) -> None:
    rows = crafted_minutes()
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", rows)
    reader = judging_reader(db)

    everything = await reader.bars("KRAKEN:XBT/USD", "1min")
    assert len(everything.bars) == 120  # no filter: no pass, nothing left out
    clean = await reader.bars("KRAKEN:XBT/USD", "1min", min_quality=1)
    flags = await flags_of(db)  # the filtered read ran the pass first
    assert {rows[10][0], rows[70][0], rows[100][0]} <= set(flags)
    assert [b.ts for b in clean.bars] == [r[0] for r in rows if r[0] not in flags]
    # 0.5 drops the impossible and the spikes, keeps the stale feed's repeated bar.
    lenient = await reader.bars("KRAKEN:XBT/USD", "1min", min_quality=0.5)
    kept = {b.ts for b in lenient.bars}
    assert rows[100][0] in kept and rows[10][0] not in kept and rows[70][0] not in kept
    assert len(kept) == 120 - sum(1 for f in flags.values() if score(f) < 0.5)

    # A derived hour is built from the source minutes that pass: the spike is not its high.
    hours = await reader.bars("KRAKEN:XBT/USD", "1h", min_quality=0.5)
    second = hours.bars[1]
    assert second.high == max(r[2] for r in rows[60:] if r[0] in kept) < rows[70][2]
    async with reader.stream("KRAKEN:XBT/USD", "1h", min_quality=0.5) as stream:
        streamed = [bar async for batch in stream.batches for bar in batch]
    assert streamed == hours.bars


async def test_bars_and_export_take_min_quality(db: Database, run_quasar) -> None:
    rows = crafted_minutes()
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", rows)
    shown = run_quasar("bars", "KRAKEN:XBT/USD", "-i", "1min", "-n", "500", "--json")
    assert len(json.loads(shown.stdout)["bars"]) == 120
    shown = run_quasar(
        "bars", "KRAKEN:XBT/USD", "-i", "1min", "-n", "500", "--min-quality", "1", "--json"
    )
    assert shown.returncode == 0, shown.stderr
    got = json.loads(shown.stdout)
    flags = await flags_of(db)
    assert got["min_quality"] == 1 and len(got["bars"]) == 120 - len(flags)
    exported = run_quasar("export", "KRAKEN:XBT/USD", "-i", "1min", "--min-quality", "0.5")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.strip().splitlines()
    assert len(lines) - 1 == 120 - sum(1 for f in flags.values() if score(f) < 0.5)
    assert rows[10][0].strftime("%Y-%m-%dT%H:%M") not in exported.stdout

    bad = run_quasar("bars", "KRAKEN:XBT/USD", "-i", "1min", "--min-quality", "2")
    assert bad.returncode == 2 and "quality from 0 to 1" in bad.stderr
    assert "Traceback" not in bad.stderr


async def test_the_python_and_http_apis_filter_as_the_read_layer(
    db: Database, test_dsn: str
) -> None:
    rows = crafted_minutes()
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"))
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", rows)
    want = await judging_reader(db).bars("BTC/USD", "5min", min_quality=0.5)
    async with await quasar_tui.open_async(dsn=test_dsn) as q:
        records = await q.bars("BTC/USD", "5min", quality=0.5, as_="records")
        everything = await q.bars("BTC/USD", "5min", as_="records")
    assert records == want.bars and records != everything
    async with running_api(db) as api:
        params = {"series": "BTC/USD", "interval": "5min", "min_quality": "0.5"}
        got = (await api.http.get("/v1/bars", params=params, headers=api.auth())).json()
        bad = await api.http.get(
            "/v1/bars", params={**params, "min_quality": "2"}, headers=api.auth()
        )
    assert [(b["high"], b["volume"]) for b in got["bars"]] == [
        (b.high, b.volume) for b in want.bars
    ]
    assert bad.status_code == 422 and "min_quality" in bad.text


async def test_recheck_finds_a_bar_changed_behind_the_last_pass(db: Database, run_quasar) -> None:
    await add_provider(
        db,
        "KRAKEN",
        assets=[
            SymbolInfo(s, exchange="KRAKEN", asset_class="crypto") for s in ("XBT/USD", "ETH/USD")
        ],
    )
    await SubscriptionStore(db).add("KRAKEN", ["XBT/USD"], "1h", "historical")
    hours = random_bars(START, 48, timedelta(hours=1), 6)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1h", hours)
    assert json.loads(run_quasar("quality", "--json").stdout)[0]["flags"] == {}
    await db.execute("UPDATE historical_data SET low = high + 1 WHERE ts = $1", hours[5][0])
    # The pass reads what was stored since the last one; a bar changed by hand needs --recheck.
    assert json.loads(run_quasar("quality", "--json").stdout)[0]["flags"] == {}
    again = json.loads(run_quasar("quality", "--recheck", "--json").stdout)
    assert again[0]["flags"] == {"ohlc": 1}
