"""The assets, map and subscription commands as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from registry_rows import add_provider

from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database

PROVIDER_FILE = """
from quasar_tui.sdk import HistoricalDataProvider, SymbolInfo


class {cls}(HistoricalDataProvider):
    name = "{name}"

    async def fetch_available_symbols(self):
        if {fail}:
            raise ConnectionError("exchange down")
        return [
            SymbolInfo("BTC-USD.CC", name="Bitcoin USD", asset_class="crypto"),
            SymbolInfo("AAPL.US", name="Apple Inc", asset_class="Common Stock"),
            SymbolInfo("AAPLW.US", name="Apple warrants", asset_class="Common Stock"),
        ]

    async def get_history(self, sym, start, end, interval):
        return
        yield
"""


def failed(result: subprocess.CompletedProcess[str], text: str) -> bool:
    """Exit 1 with exactly one line on stderr that says `text`, and no traceback."""
    lines = result.stderr.splitlines()
    return (
        result.returncode == 1
        and len(lines) == 1
        and text in lines[0]
        and lines[0].startswith("quasar: error: ")
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_assets_refresh_and_list(run_quasar, tmp_path: Path) -> None:
    for name, fail in [("LISTING", False), ("BROKEN", True)]:
        path = tmp_path / f"{name.lower()}.py"
        path.write_text(PROVIDER_FILE.format(cls=name.title(), name=name, fail=fail))
        ok(run_quasar("provider", "add", str(path)))

    assert "has no assets yet" in ok(run_quasar("assets", "list", "LISTING"))
    out = ok(run_quasar("assets", "refresh", "LISTING"))
    assert out.strip() == "LISTING: 3 assets listed (3 new, 0 updated, 0 no longer listed)"
    found = json.loads(ok(run_quasar("assets", "list", "LISTING", "--search", "aapl", "--json")))
    assert [a["symbol"] for a in found] == ["AAPL.US", "AAPLW.US"]
    table = ok(run_quasar("assets", "list", "LISTING", "--unmapped", "--limit", "1"))
    assert table.splitlines()[0].split()[:2] == ["SYMBOL", "NAME"]
    assert len(table.splitlines()) == 2

    assert failed(
        run_quasar("assets", "refresh", "BROKEN"),
        "BROKEN: fetching symbols failed (ConnectionError: exchange down); stored assets unchanged",
    )
    assert failed(run_quasar("assets", "refresh", "NOPE"), "no provider named 'NOPE'")
    assert failed(run_quasar("assets", "list", "NOPE"), "no provider named 'NOPE'")
    assert run_quasar("assets", "list", "LISTING", "--limit", "0").returncode == 2


async def test_map_commands(run_quasar, db: Database) -> None:
    await add_provider(
        db, "KRAKEN", "live", assets=[SymbolInfo("XBT/USD", name="Bitcoin / US Dollar"), "XBTUSD.M"]
    )
    await add_provider(
        db,
        "EODHD",
        assets=[
            SymbolInfo("BTC-USD.CC", name="Bitcoin USD"),
            SymbolInfo("ZZZ.US", name="Zzz Corp"),
        ],
    )

    assert ok(run_quasar("map", "btcusd", "KRAKEN", "XBT/USD")).strip() == (
        "KRAKEN:XBT/USD -> BTCUSD"
    )
    assert failed(
        run_quasar("map", "BTC", "KRAKEN", "XBT/USD"),
        "KRAKEN:XBT/USD is already mapped to BTCUSD; "
        "delete it first with `quasar map delete KRAKEN XBT/USD`",
    )
    assert failed(
        run_quasar("map", "BTCUSD", "KRAKEN", "XBTUSD.M"), "BTCUSD already has KRAKEN:XBT/USD"
    )
    assert failed(run_quasar("map", "BTC USD", "KRAKEN", "XBTUSD.M"), "contains whitespace")
    assert failed(run_quasar("map", "X", "KRAKEN", "BTC/USD"), "did you mean XBT/USD")
    ok(run_quasar("map", "rename", "BTCUSD", "BTC/USD"))

    shown = json.loads(ok(run_quasar("map", "suggest", "EODHD", "--json")))["suggestions"]
    assert [(s["symbol"], s["common_symbol"]) for s in shown] == [
        ("BTC-USD.CC", "BTC/USD"),
        ("ZZZ.US", "ZZZ"),
    ]
    table = ok(run_quasar("map", "suggest", "EODHD", "--min-score", "0.8", "--accept"))
    assert "mapped 1 of 1 symbols of EODHD" in table
    mapped = json.loads(ok(run_quasar("map", "list", "--json")))
    assert [(m["common_symbol"], m["provider"], m["symbol"]) for m in mapped] == [
        ("BTC/USD", "EODHD", "BTC-USD.CC"),
        ("BTC/USD", "KRAKEN", "XBT/USD"),
    ]
    alternatives = ok(run_quasar("map", "suggest", "EODHD", "--symbol", "ZZZ.US"))
    assert "ZZZ (new)" in alternatives

    ok(run_quasar("map", "delete", "EODHD", "BTC-USD.CC"))
    assert failed(
        run_quasar("map", "delete", "EODHD", "BTC-USD.CC"), "EODHD:BTC-USD.CC is not mapped"
    )
    assert failed(run_quasar("map", "rename", "NOPE", "X"), "no common symbol NOPE")
    assert run_quasar("map", "suggest", "EODHD", "--min-score", "2").returncode == 2
    assert run_quasar("map", "BTC", "KRAKEN").returncode == 2
    assert run_quasar("map").returncode == 2


def test_map_help_shows_both_forms(run_quasar) -> None:
    usage = ok(run_quasar("map", "--help"))
    assert "quasar map COMMON NAME SYMBOL" in usage
    for verb in ("list", "suggest NAME", "rename OLD NEW", "delete NAME SYMBOL"):
        assert f"quasar map {verb}" in usage


async def test_subscription_commands(run_quasar, db: Database) -> None:
    await add_provider(
        db, "KRAKEN", "live", intervals=["1min", "1h"], assets=["XBT/USD", "ETH/USD"]
    )

    out = ok(run_quasar("subscribe", "KRAKEN", "XBT/USD", "ETH/USD", "--interval", "1h", "--live"))
    assert out.splitlines()[0].startswith("subscribed KRAKEN XBT/USD 1h live (id ")
    ok(run_quasar("subscribe", "KRAKEN", "XBT/USD", "-i", "1min", "--lookback-days", "7"))
    assert failed(
        run_quasar("subscribe", "KRAKEN", "XBT/USD", "--interval", "1h", "--live"),
        "already subscribed to 1h live bars of KRAKEN: XBT/USD",
    )
    assert failed(
        run_quasar("subscribe", "KRAKEN", "XBT/USD", "DOGE/USD", "-i", "1h"),
        "KRAKEN has no asset 'DOGE/USD'",
    )
    assert failed(
        run_quasar("subscribe", "KRAKEN", "XBT/USD", "-i", "1d"),
        "KRAKEN does not offer 1d bars; it offers: 1min 1h",
    )
    assert run_quasar("subscribe", "KRAKEN", "XBT/USD").returncode == 2

    subs = json.loads(ok(run_quasar("subscriptions", "--json")))
    assert [(s["symbol"], s["interval"], s["mode"], s["lookback_days"]) for s in subs] == [
        ("ETH/USD", "1h", "live", 365),
        ("XBT/USD", "1h", "live", 365),
        ("XBT/USD", "1min", "historical", 7),
    ]
    eth, xbt_live, xbt_hist = (s["id"] for s in subs)

    assert ok(run_quasar("pause", str(eth), str(xbt_live))).strip() == "paused 2 of 2 subscriptions"
    assert failed(run_quasar("resume", str(eth), "999999"), "no subscription with id 999999")
    table = ok(run_quasar("subscriptions")).splitlines()
    assert table[0].split()[:4] == ["ID", "PROVIDER", "SYMBOL", "INTERVAL"]
    assert [line.split()[5] for line in table[1:]] == ["no", "no", "yes"]

    assert failed(
        run_quasar("unsubscribe", "KRAKEN", "XBT/USD", "-i", "1h"),
        "not subscribed to KRAKEN XBT/USD 1h historical",
    )
    unnamed = run_quasar("unsubscribe", "KRAKEN")
    assert unnamed.returncode == 2 and "name the subscriptions" in unnamed.stderr
    ok(run_quasar("unsubscribe", "KRAKEN", "XBT/USD", "ETH/USD", "-i", "1h", "--live"))
    assert "its stored bars are kept" in ok(run_quasar("unsubscribe", "--id", str(xbt_hist)))
    assert "no subscriptions" in ok(run_quasar("subscriptions"))
