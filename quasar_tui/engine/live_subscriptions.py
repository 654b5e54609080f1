"""The set of series a live session wants, and the symbols its provider refused."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from quasar_tui.core.intervals import Interval

Wanted = dict[str, set[Interval]]


@dataclass(frozen=True)
class SubscriptionChange:
    """What a new set means on a live connection: symbols to drop, series to add."""

    gone: list[str]
    added: list[tuple[str, Interval]]


class SubscriptionSet:
    """Symbol -> intervals wanted; a refused symbol stays wanted but inactive until it is
    added again."""

    def __init__(self) -> None:
        self.wanted: Wanted = {}
        self.refused: dict[str, str] = {}

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.wanted

    def active(self) -> Wanted:
        return {s: ivs for s, ivs in self.wanted.items() if s not in self.refused}

    def series(self) -> list[tuple[str, Interval]]:
        """Every active series, sorted (what a new connection subscribes)."""
        return sorted((s, iv) for s, ivs in self.active().items() for iv in ivs)

    def replace(self, subs: Mapping[str, Iterable[Interval | str]]) -> SubscriptionChange:
        wanted = {sym: {Interval(i) for i in ivs} for sym, ivs in subs.items()}
        wanted = {sym: ivs for sym, ivs in wanted.items() if ivs}
        before = self.active()
        self.refused = {s: r for s, r in self.refused.items() if s in wanted and s in self.wanted}
        self.wanted = wanted
        after = self.active()
        return SubscriptionChange(
            gone=sorted(s for s in before if s not in after),
            added=sorted(
                (s, iv) for s, ivs in after.items() for iv in ivs if iv not in before.get(s, ())
            ),
        )

    def refuse(self, symbol: str, reason: str) -> bool:
        """Record a refusal; False when the symbol is not wanted or refused already."""
        if symbol in self.refused or symbol not in self.wanted:
            return False
        self.refused[symbol] = reason
        return True
