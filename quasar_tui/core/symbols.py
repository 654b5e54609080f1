"""Provider symbols in their many spellings, reduced to something comparable.

Providers spell one instrument differently: Kraken "XBT/USD" (v1 names, XBT for BTC),
"XBTUSD", EODHD "BTC-USD.CC", "EURUSD.FOREX", "AAPL.US", Polygon "X:BTCUSD" or plain "AAPL".
`parse` splits a symbol into base, quote and venue; its `key` is a string two spellings of
one instrument share, and its `common` a readable common symbol for a new mapping.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Kraken's v1 asset names and their usual codes.
ALIASES: dict[str, str] = {"XBT": "BTC", "XDG": "DOGE"}

# Kraken's four-letter v1 codes (XXBT, ZUSD): an X or Z prefix before a known code.
_LEGACY_CODES = frozenset(
    {
        "XBT",
        "XDG",
        "ETH",
        "ETC",
        "LTC",
        "XRP",
        "XLM",
        "XMR",
        "ZEC",
        "REP",
        "MLN",
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CAD",
        "CHF",
        "AUD",
    }
)

# Currencies a pair may be quoted in.
QUOTES = frozenset(
    {
        "USD",
        "USDT",
        "USDC",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "CAD",
        "AUD",
        "NZD",
        "CNY",
        "HKD",
        "SGD",
        "KRW",
        "TRY",
        "BRL",
        "MXN",
        "ZAR",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "BTC",
        "XBT",
        "ETH",
        "DAI",
        "BUSD",
        "TUSD",
        "PYUSD",
    }
)
_QUOTE_LENGTHS = sorted({len(q) for q in QUOTES}, reverse=True)

_KNOWN_CODES = QUOTES | frozenset(ALIASES) | _LEGACY_CODES

# Venue suffixes that mark a kind of instrument rather than an exchange; a symbol keeps
# comparing equal across providers without them. Other suffixes (".LSE") stay in the key.
GENERIC_VENUES = frozenset({"US", "CC", "FOREX", "INDX", "CRYPTO"})
PAIR_VENUES = frozenset({"CC", "FOREX", "CRYPTO"})
# Polygon-style class prefixes: X: crypto, C: currencies, I: indices.
_PREFIXES = {"X": "CRYPTO", "C": "FOREX", "I": "INDX"}
_EQUITY_CLASSES = frozenset({"equity", "stock", "stocks", "etf", "fund", "share", "common stock"})

_SUFFIX = re.compile(r"^(?P<body>.+)\.(?P<venue>[A-Z][A-Z0-9]{1,7})$")
_PREFIX = re.compile(r"^(?P<cls>[A-Z]):(?P<body>.+)$")
_CODE = re.compile(r"^[A-Z0-9]{2,10}$")
_NON_ALNUM = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True)
class SymbolParts:
    """A symbol split up: `quote` is None for anything that is not a currency pair."""

    base: str
    quote: str | None = None
    venue: str | None = None

    @property
    def is_pair(self) -> bool:
        return self.quote is not None

    @functools.cached_property
    def key(self) -> str:
        """What two spellings of one instrument share: "XBT/USD", "BTC-USD.CC" -> "BTCUSD"."""
        core = _NON_ALNUM.sub("", self.base + (self.quote or ""))
        return f"{core}.{self.venue}" if self._venue_matters else core

    @functools.cached_property
    def common(self) -> str:
        """A readable common symbol: "BTC/USD" for pairs, "AAPL" for "AAPL.US", "VOD.LSE"."""
        text = f"{self.base}/{self.quote}" if self.is_pair else self.base
        text = "".join(text.split())
        return f"{text}.{self.venue}" if self._venue_matters else text

    @property
    def _venue_matters(self) -> bool:
        return self.venue is not None and self.venue not in GENERIC_VENUES


def _is_legacy(code: str) -> bool:
    return len(code) == 4 and code[0] in "XZ" and code[1:] in _LEGACY_CODES


def canonical_code(code: str) -> str:
    """One currency or asset code in its usual spelling ("XXBT" -> "BTC", "ZUSD" -> "USD")."""
    code = code.strip().upper()
    if _is_legacy(code):
        code = code[1:]
    return ALIASES.get(code, code)


@functools.lru_cache(maxsize=65_536)  # suggestions parse every mapped symbol on each call
def parse(
    symbol: str,
    *,
    base: str | None = None,
    quote: str | None = None,
    asset_class: str | None = None,
) -> SymbolParts:
    """Split `symbol`; a provider's own `base`/`quote` win over what the text suggests.

    Run-together symbols ("XBTUSD") are split only when they end in a known quote currency
    and are not declared equities, so "GBTC" or an equity named "ABCUSD" stay whole.
    """
    text = symbol.strip().upper()
    venue: str | None = None
    prefix = _PREFIX.match(text)
    if prefix and prefix["cls"] in _PREFIXES:
        venue, text = _PREFIXES[prefix["cls"]], prefix["body"]
    suffix = _SUFFIX.match(text)
    if suffix:
        venue, text = suffix["venue"], suffix["body"]
    if base and quote:
        return SymbolParts(canonical_code(base), canonical_code(quote), venue)
    equity = (asset_class or "").strip().lower() in _EQUITY_CLASSES
    pair = _split_pair(text, venue, equity)
    if pair is None:
        return SymbolParts(text, None, venue)
    return SymbolParts(canonical_code(pair[0]), canonical_code(pair[1]), venue)


def _split_pair(text: str, venue: str | None, equity: bool) -> tuple[str, str] | None:
    if "/" in text:
        left, _, right = text.partition("/")
        if _CODE.match(left) and _CODE.match(right):
            return left, right
        return None
    if equity:
        return None
    if "-" in text:
        left, _, right = text.partition("-")
        if _CODE.match(left) and (right in QUOTES or venue in PAIR_VENUES) and _CODE.match(right):
            return left, right
        return None
    if not text.isalnum():
        return None
    if len(text) == 8 and _is_legacy(text[:4]) and _is_legacy(text[4:]):
        return text[:4], text[4:]
    splits = [
        (text[:-n], text[-n:])
        for n in _QUOTE_LENGTHS
        if text[-n:] in QUOTES and 2 <= len(text) - n <= 6 and text[:-n].isalpha()
    ]
    # "XBTUSD" ends in both USD and TUSD: a known base wins, then a three-letter one.
    return max(
        splits,
        key=lambda s: (s[0] in _KNOWN_CODES, len(s[0]) == 3, len(s[1])),
        default=None,
    )


def key(symbol: str) -> str:
    """`parse(symbol).key`, for a bare symbol or a common symbol."""
    return parse(symbol).key


MAX_COMMON_LENGTH = 32


def validate_common(symbol: str) -> str:
    """The common symbol as stored (upper case), or ValueError saying what is wrong."""
    text = symbol.strip().upper()
    if not text:
        raise ValueError("a common symbol cannot be empty")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"common symbol {symbol.strip()!r} contains whitespace")
    if ":" in text:
        raise ValueError(
            f"common symbol {symbol.strip()!r} contains ':', which separates a provider from "
            "its symbol in series names (KRAKEN:BTC/USD); use another character"
        )
    if len(text) > MAX_COMMON_LENGTH:
        raise ValueError(
            f"common symbol {text!r} is {len(text)} characters long; "
            f"the limit is {MAX_COMMON_LENGTH}"
        )
    return text
