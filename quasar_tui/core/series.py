"""Series names as users type them: a common symbol (`BTC/USD`) or `PROVIDER:SYMBOL`.

The provider part ends at the first colon, so a provider symbol may itself hold colons
(`POLYGON:X:BTCUSD`); common symbols never do, which keeps the two forms apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from quasar_tui.core.errors import InvalidInputError


@dataclass(frozen=True)
class SeriesName:
    """What a user named: a provider's own symbol, or a common symbol to resolve."""

    symbol: str
    provider: str | None = None

    @property
    def is_common(self) -> bool:
        return self.provider is None

    def __str__(self) -> str:
        return self.symbol if self.provider is None else f"{self.provider}:{self.symbol}"


def parse_series(text: str) -> SeriesName:
    """`BTC/USD` -> common symbol; `KRAKEN:BTC/USD` -> provider and its symbol."""
    name = text.strip()
    provider, colon, symbol = name.partition(":")
    if not colon:
        if not name:
            raise InvalidInputError(
                "a series name cannot be empty: give a common symbol (BTC/USD) "
                "or PROVIDER:SYMBOL (KRAKEN:BTC/USD)"
            )
        return SeriesName(symbol=name.upper())
    if not provider or not symbol:
        raise InvalidInputError(
            f"series {text!r} is incomplete: write PROVIDER:SYMBOL, e.g. KRAKEN:BTC/USD"
        )
    return SeriesName(symbol=symbol, provider=provider)
