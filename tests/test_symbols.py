"""Symbol normalisation: the spellings providers use for one instrument compare equal."""

from __future__ import annotations

import pytest

from quasar_tui.core.symbols import key, parse, validate_common


@pytest.mark.parametrize(
    "spelling",
    ["BTC/USD", "XBT/USD", "XBTUSD", "BTC-USD.CC", "X:BTCUSD", "XXBTZUSD", "btc/usd", "BTCUSD"],
)
def test_every_spelling_of_bitcoin_in_dollars_shares_one_key(spelling: str) -> None:
    parts = parse(spelling)
    assert (parts.base, parts.quote) == ("BTC", "USD")
    assert parts.key == "BTCUSD"
    assert parts.common == "BTC/USD"


@pytest.mark.parametrize(
    ("symbol", "base", "quote", "common"),
    [
        ("XDG/EUR", "DOGE", "EUR", "DOGE/EUR"),
        ("EURUSD.FOREX", "EUR", "USD", "EUR/USD"),
        ("ETHUSDT", "ETH", "USDT", "ETH/USDT"),
        ("ETHXBT", "ETH", "BTC", "ETH/BTC"),
        ("AAPL.US", "AAPL", None, "AAPL"),
        ("AAPL", "AAPL", None, "AAPL"),
        ("GBTC", "GBTC", None, "GBTC"),
        ("BRK.B", "BRK.B", None, "BRK.B"),
    ],
)
def test_parse_splits_pairs_and_leaves_tickers_whole(
    symbol: str, base: str, quote: str | None, common: str
) -> None:
    parts = parse(symbol)
    assert (parts.base, parts.quote) == (base, quote)
    assert parts.common == common


def test_exchange_suffix_other_than_us_stays_part_of_the_identity() -> None:
    assert key("AAPL.US") == key("AAPL") == "AAPL"
    assert key("VOD.LSE") == "VOD.LSE" != key("VOD")
    assert parse("VOD.LSE").common == "VOD.LSE"


def test_share_class_spellings_compare_equal() -> None:
    assert key("BRK-B.US") == key("BRK.B")


def test_provider_fields_win_over_the_text_and_equities_are_not_split() -> None:
    kraken = parse("XXBTZUSD", base="XXBT", quote="ZUSD")
    assert (kraken.base, kraken.quote) == ("BTC", "USD")
    assert parse("ABCUSD", asset_class="Common Stock").quote is None
    assert parse("ABCUSD").quote == "USD"


def test_common_symbols_are_upper_cased_and_checked() -> None:
    assert validate_common(" btc/usd ") == "BTC/USD"
    for bad, words in [("", "empty"), ("BTC USD", "whitespace"), ("X" * 33, "limit is 32")]:
        with pytest.raises(ValueError, match=words):
            validate_common(bad)
