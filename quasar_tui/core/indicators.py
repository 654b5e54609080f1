"""Moving averages of a price series, for chart overlays: None where there is not yet a full
period of values to average."""

from __future__ import annotations

from collections.abc import Sequence


def sma(values: Sequence[float], period: int) -> list[float | None]:
    """Simple moving average: the mean of the last `period` values."""
    out: list[float | None] = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= period:
            total -= values[i - period]
        out.append(total / period if i >= period - 1 else None)
    return out


def ema(values: Sequence[float], period: int) -> list[float | None]:
    """Exponential moving average, seeded with the SMA of the first `period` values and
    weighting each later value by 2 / (period + 1)."""
    out: list[float | None] = [None] * min(len(values), period - 1)
    if len(values) < period:
        return out
    alpha = 2 / (period + 1)
    current = sum(values[:period]) / period
    out.append(current)
    for value in values[period:]:
        current += alpha * (value - current)
        out.append(current)
    return out


def bollinger(
    values: Sequence[float], period: int, width: float = 2.0
) -> tuple[list[float | None], list[float | None]]:
    """Bollinger bands: the SMA plus and minus `width` population standard deviations of the
    last `period` values (upper band, lower band)."""
    upper: list[float | None] = []
    lower: list[float | None] = []
    for i, mean in enumerate(sma(values, period)):
        if mean is None:
            upper.append(None)
            lower.append(None)
            continue
        window = values[i - period + 1 : i + 1]
        spread = width * (sum((v - mean) ** 2 for v in window) / period) ** 0.5
        upper.append(mean + spread)
        lower.append(mean - spread)
    return upper, lower


def vwap(prices: Sequence[float], volumes: Sequence[float]) -> list[float | None]:
    """Volume-weighted average price from the first value on (None until volume trades)."""
    out: list[float | None] = []
    weighted = traded = 0.0
    for price, volume in zip(prices, volumes, strict=True):
        weighted += price * volume
        traded += volume
        out.append(weighted / traded if traded else None)
    return out
