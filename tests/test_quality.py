"""Quality flags on crafted bars, found by the pass and reported by `quasar quality`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from registry_rows import add_provider
from test_read import random_bars, store

from quasar_tui.core.intervals import Interval
from quasar_tui.quality.flags import Flag, flag_series
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
        db, "KRAKEN", assets=[SymbolInfo("XBT/USD", exchange="KRAKEN", asset_class="crypto")]
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
