"""Numbers for people: prices and volumes without binary float noise."""

from __future__ import annotations

# Twelve keeps every digit a price or volume was given with while hiding the error summing
# floats leaves in the last places.
_DIGITS = 12


def plain(value: float | None) -> str:
    """`48.03550999999999` -> `48.03551`: twelve significant digits, trailing zeros dropped."""
    if value is None:
        return "-"
    text = f"{value:.{_DIGITS}g}"
    return "0" if text == "-0" else text


def denoised(value: float) -> float:
    """The float written with twelve significant digits: what a file should hold, so that
    `48.03550999999999` is written `48.03551` (and `101.0` stays `101.0`)."""
    return float(f"{value:.{_DIGITS}g}")
