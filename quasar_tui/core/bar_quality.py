"""What a bar's quality flags mean for a reader: each kind of flag has a score, a bar scores
the lowest of its flags' (1 with none), and `min_quality` keeps the bars scoring at least it.

The scores rank how likely the bar's numbers are wrong: an inconsistent OHLC or a price at or
below zero cannot be right (0); a spike is most likely a bad print (0.25); a repeated bar (a
stale feed) or one off the interval's grid holds prices that may be real but misplaced in time
(0.5); zero volume in a session is often just a quiet market (0.75). So `min_quality` 1 keeps
unflagged bars only, 0.5 drops the impossible and the spikes, 0 keeps everything.
"""

from __future__ import annotations

from enum import IntFlag

from quasar_tui.core.errors import InvalidInputError


class Flag(IntFlag):
    OHLC = 1  # low above open/close, high below them, or low above high
    NON_POSITIVE = 2
    SPIKE = 4
    ZERO_VOLUME = 8  # in a session of an exchange-traded asset
    REPEATED = 16  # the same OHLCV as the bar before: a stale feed
    OFF_GRID = 32  # not at the start of an interval

    @property
    def label(self) -> str:
        return (self.name or "").lower().replace("_", " ")


SCORES: dict[Flag, float] = {
    Flag.OHLC: 0.0,
    Flag.NON_POSITIVE: 0.0,
    Flag.SPIKE: 0.25,
    Flag.REPEATED: 0.5,
    Flag.OFF_GRID: 0.5,
    Flag.ZERO_VOLUME: 0.75,
}


def score(flags: int) -> float:
    """A bar's score: the lowest of its flags' scores, 1 for a bar with none."""
    return min((s for f, s in SCORES.items() if flags & f), default=1.0)


def failing(min_quality: float) -> Flag:
    """The flags any one of which puts a bar below `min_quality` (none for 0)."""
    check_min_quality(min_quality)
    mask = Flag(0)
    for flag, flag_score in SCORES.items():
        if flag_score < min_quality:
            mask |= flag
    return mask


def check_min_quality(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(
            f"minimum quality {value:g} is out of range: give 0 to 1 (1 keeps unflagged bars only)"
        )
    return value


def score_sql(column: str) -> str:
    """The SQL of `score` over an integer column of flags."""
    cases = ", ".join(
        f"CASE WHEN {column} & {int(f)} <> 0 THEN {s} ELSE 1 END" for f, s in SCORES.items()
    )
    return f"least({cases})"
