"""Served against stored, row by row: the figures every fault drill reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Key = tuple
Row = tuple[Key, tuple]

COLUMNS = ("served", "stored", "missing", "extra", "wrong", "dups", "gaps")


@dataclass(frozen=True)
class Tally:
    """One kind of row of one drill.

    served: distinct rows the fakes served; stored: rows in the table; missing: served, not
    stored; extra: stored, never served; wrong: stored with other values than served; dups: rows
    stored more than once under one key; gaps: runs of consecutive missing rows along the
    series' timeline (a hole of five bars is one gap).
    """

    what: str
    served: int
    stored: int
    missing: int
    extra: int
    wrong: int
    dups: int
    gaps: int
    first_missing: tuple[Key, ...] = ()  # a few missing keys, to start looking from

    @property
    def clean(self) -> bool:
        return self.served == self.stored and not (
            self.missing or self.extra or self.wrong or self.dups or self.gaps
        )

    def figures(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k in COLUMNS}


def tally(
    what: str,
    served: dict[Key, tuple],
    stored_rows: Iterable[Row],
    timeline: Sequence[Key] | None = None,
) -> Tally:
    """Compare stored rows with served ones; keys start with the series (all but the last
    field) and sort along it. `timeline` is every key the series should hold, in order (by
    default the served keys): a run of absent keys on it is one gap."""
    stored: dict[Key, tuple] = {}
    count = dups = 0
    for key, values in stored_rows:
        count += 1
        if key in stored:
            dups += 1
        stored[key] = values
    missing = sorted(key for key in served if key not in stored)
    extra = sum(1 for key in stored if key not in served)
    wrong = sum(1 for key, values in stored.items() if key in served and served[key] != values)
    return Tally(
        what,
        len(served),
        count,
        len(missing),
        extra,
        wrong,
        dups,
        gaps(sorted(served) if timeline is None else timeline, stored),
        tuple(missing[:3]),
    )


def gaps(timeline: Sequence[Key], stored: dict[Key, Any]) -> int:
    runs = 0
    previous_absent: Key | None = None
    for key in timeline:
        if key in stored:
            previous_absent = None
            continue
        if previous_absent is None or previous_absent[:-1] != key[:-1]:
            runs += 1
        previous_absent = key
    return runs


def print_table(results: Sequence[tuple[str, Sequence[Tally]]]) -> None:
    """One line per tally, the drill's title on its first line."""
    width = max([len(title) for title, _ in results] + [5])
    what_width = max([len(t.what) for _, tallies in results for t in tallies] + [4])
    print(
        f"{'drill':<{width}}  {'rows':<{what_width}}" + "".join(f"{c:>9}" for c in COLUMNS) + "  ok"
    )
    for title, tallies in results:
        for i, t in enumerate(tallies):
            label = title if i == 0 else ""
            print(
                f"{label:<{width}}  {t.what:<{what_width}}"
                + "".join(f"{v:>9}" for v in t.figures().values())
                + ("  yes" if t.clean else "  NO")
            )
            if t.first_missing:
                shown = "; ".join(" ".join(map(str, key)) for key in t.first_missing)
                print(f"{'':<{width}}  {'':<{what_width}}  first missing: {shown}")
