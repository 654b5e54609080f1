"""Numbers for people: prices and volumes without binary float noise."""

from __future__ import annotations


def plain(value: float | None) -> str:
    """`48.03550999999999` -> `48.03551`: twelve significant digits, trailing zeros dropped.

    Twelve keeps every digit a price or volume was given with while hiding the error summing
    floats leaves in the last places."""
    if value is None:
        return "-"
    text = f"{value:.12g}"
    return "0" if text == "-0" else text
