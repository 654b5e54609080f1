"""Scored mapping suggestions for a provider's unmapped assets.

Each unmapped asset is scored against the existing common symbols, through the assets
already mapped to them: the same FIGI is near certain, the same normalised symbol or the same
base/quote strong, a similar name weaker (pg_trgm in SQL when the server has it, difflib
otherwise). With nothing to match, a new common symbol is proposed from the normalised
symbol. A common symbol the provider already uses is never suggested: it would conflict.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from quasar_tui.core.symbols import SymbolParts, parse, validate_common
from quasar_tui.registry.assets import has_trigram, provider_row
from quasar_tui.registry.mappings import MappingStore, Triple
from quasar_tui.store.database import Database

SAME_FIGI = 1.0
SAME_SYMBOL = 0.9
SAME_PAIR = 0.8
NAME_WEIGHT = 0.6  # times the similarity, so at most 0.6
NEW_SYMBOL = 0.3
NAME_THRESHOLD = 0.5

# $2: only these symbols (NULL: all unmapped ones).
UNMAPPED = """
SELECT a.symbol, a.name, a.figi, a.base, a.quote, a.asset_class
FROM assets a
WHERE a.provider = $1 AND a.active
  AND ($2::text[] IS NULL OR a.symbol = ANY($2))
  AND NOT EXISTS (SELECT 1 FROM asset_mappings m
                  WHERE m.provider = a.provider AND m.symbol = a.symbol)
ORDER BY a.symbol
"""

MAPPED = """
SELECT m.common_symbol, a.provider, a.symbol, a.name, a.figi, a.base, a.quote, a.asset_class
FROM asset_mappings m
JOIN assets a ON a.provider = m.provider AND a.symbol = m.symbol
"""

COMMONS = "SELECT symbol FROM common_symbols"

SET_NAME_THRESHOLD = "SELECT set_config('pg_trgm.similarity_threshold', $1, true)"

# Names are compared by their telling words (see `name_words`). The mapped names of other
# providers, numbered as in `_Index.mapped`, go to a temporary table, indexed when many names
# are looked up, so each unmapped name costs one trigram look-up.
CREATE_NAME_TABLE = "CREATE TEMP TABLE suggest_names (n integer, words text) ON COMMIT DROP"
INDEX_NAME_TABLE = "CREATE INDEX ON suggest_names USING gin (words gin_trgm_ops)"
ANALYZE_NAME_TABLE = "ANALYZE suggest_names"

# For each (symbol, words) given, the numbers of its $3 most similar mapped names.
NAME_MATCHES = """
SELECT u.symbol, c.n, c.sim
FROM unnest($1::text[], $2::text[]) AS u(symbol, words)
CROSS JOIN LATERAL (
    SELECT s.n, similarity(s.words, u.words) AS sim
    FROM suggest_names s
    WHERE s.words % u.words
    ORDER BY sim DESC, s.n
    LIMIT $3
) c
"""

# Legal forms and filler: without them "Meta Platforms, Inc." and "Meta Platforms Inc" are
# equal, and "X Holdings Inc" stops resembling "Y Holdings Inc".
NOISE_WORDS = (
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "co",
    "company",
    "ltd",
    "limited",
    "plc",
    "llc",
    "lp",
    "sa",
    "ag",
    "nv",
    "se",
    "the",
    "and",
    "of",
    "class",
    "group",
    "holdings",
    "holding",
    "trust",
    "fund",
    "etf",
    "shares",
    "common",
    "stock",
    "usd",
    "eur",
)
_NOISE = re.compile(r"\b(?:" + "|".join(NOISE_WORDS) + r")\b|[^a-z0-9 ]+")
NAME_CANDIDATES = 3
# Below this many names to look up, scanning the mapped names beats indexing them first.
INDEX_WORTH_IT = 50


@functools.lru_cache(maxsize=65_536)
def name_words(name: str) -> str:
    """The words of a name that tell instruments apart: "Meta Platforms, Inc." -> "meta
    platforms"."""
    return " ".join(_NOISE.sub(" ", name.lower()).split())


@dataclass(frozen=True)
class Suggestion:
    """Map provider:symbol to `common_symbol`; `is_new` when that common symbol is new."""

    provider: str
    symbol: str
    name: str | None
    common_symbol: str
    score: float
    reason: str
    is_new: bool = False


@dataclass(frozen=True)
class _Asset:
    label: str
    name: str | None
    figi: str | None
    parts: SymbolParts


def _asset(row: asyncpg.Record, provider: str | None = None) -> _Asset:
    label = f"{provider or row['provider']}:{row['symbol']}"
    parts = parse(
        row["symbol"], base=row["base"], quote=row["quote"], asset_class=row["asset_class"]
    )
    return _Asset(label, row["name"], row["figi"], parts)


def _pair(parts: SymbolParts) -> tuple[str, str] | None:
    return (parts.base, parts.quote) if parts.quote is not None else None


def _contradicts(a: _Asset, b: _Asset) -> bool:
    """Similar names mean nothing when the symbols or FIGIs say the instruments differ."""
    if a.figi and b.figi and a.figi != b.figi:
        return True
    pa, pb = _pair(a.parts), _pair(b.parts)
    return pa is not None and pb is not None and pa != pb


@dataclass
class _Index:
    """The mapped side: what each common symbol is known by."""

    commons: set[str]
    taken: set[str]
    by_figi: dict[str, list[tuple[str, _Asset]]]
    by_key: dict[str, list[tuple[str, str]]]
    by_pair: dict[tuple[str, str], list[tuple[str, _Asset]]]
    mapped: list[tuple[str, _Asset]]

    @classmethod
    def build(
        cls, provider: str, commons: Iterable[str], mapped: Iterable[asyncpg.Record]
    ) -> _Index:
        index = cls(
            set(commons), set(), defaultdict(list), defaultdict(list), defaultdict(list), []
        )
        for common in index.commons:
            index.by_key[parse(common).key].append((common, common))
        for row in mapped:
            common = row["common_symbol"]
            if row["provider"] == provider:
                index.taken.add(common)
                continue
            asset = _asset(row)
            index.mapped.append((common, asset))
            if asset.figi:
                index.by_figi[asset.figi].append((common, asset))
            index.by_key[asset.parts.key].append((common, asset.label))
            pair = _pair(asset.parts)
            if pair:
                index.by_pair[pair].append((common, asset))
        return index


class _Candidates:
    """The best score per common symbol for one unmapped asset."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.best: dict[str, tuple[float, str, bool]] = {}

    def offer(self, common: str, score: float, reason: str, is_new: bool = False) -> None:
        if common in self.taken:
            return
        if common not in self.best or score > self.best[common][0]:
            self.best[common] = (score, reason, is_new)

    @property
    def top(self) -> float:
        return max((score for score, _, _ in self.best.values()), default=0.0)

    def ranked(self, provider: str, symbol: str, name: str | None) -> list[Suggestion]:
        items = sorted(self.best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [
            Suggestion(provider, symbol, name, common, round(score, 3), reason, is_new)
            for common, (score, reason, is_new) in items
        ]


NameMatch = tuple[str, float, _Asset]
"""(common symbol, similarity 0..1, the mapped asset whose name matched)"""


class MappingSuggester:
    """Suggest mappings for a provider's unmapped assets, and accept them in bulk."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def suggest(
        self, provider: str, *, limit: int | None = None, min_score: float = 0.0
    ) -> list[Suggestion]:
        """The best suggestion per unmapped asset, best first."""
        ranked = await self._score(provider, None, NAME_CANDIDATES)
        best = [options[0] for options in ranked.values() if options]
        best = [s for s in best if s.score >= min_score]
        best.sort(key=lambda s: (-s.score, s.symbol))
        return best[:limit] if limit is not None else best

    async def alternatives(self, provider: str, symbol: str, n: int = 5) -> list[Suggestion]:
        """The top `n` suggestions for one unmapped asset (empty when it is mapped already)."""
        ranked = await self._score(provider, [symbol], n)
        return ranked.get(symbol, [])[:n]

    async def accept(
        self,
        suggestions: Sequence[Suggestion],
        on_skip: Callable[[Suggestion, str], None] | None = None,
    ) -> int:
        """Create the suggested mappings in one transaction; returns how many were created.

        Ones that now conflict (mapped meanwhile, or two suggestions for one common symbol)
        are skipped and reported to `on_skip` with the reason.
        """
        by_key = {(s.provider, s.symbol): s for s in suggestions}
        triples = [(s.common_symbol, s.provider, s.symbol) for s in by_key.values()]

        def skipped(triple: Triple, reason: str) -> None:
            if on_skip:
                on_skip(by_key[(triple[1], triple[2])], reason)

        return await MappingStore(self.db).map_many(triples, on_skip=skipped)

    async def _score(
        self, provider: str, only: list[str] | None, name_limit: int
    ) -> dict[str, list[Suggestion]]:
        """Suggestions per unmapped asset (all of them, or `only` these), best first.

        Names are compared for the assets `only` names, or else for those with no symbol or
        FIGI match: a name match scores below those, so it could not come first anyway.
        """
        async with self.db.pool.acquire() as conn, conn.transaction():
            await provider_row(conn, provider)
            unmapped = await conn.fetch(UNMAPPED, provider, only)
            index = _Index.build(
                provider,
                (r["symbol"] for r in await conn.fetch(COMMONS)),
                await conn.fetch(MAPPED),
            )
            scored: dict[str, tuple[_Asset, _Candidates]] = {}
            for row in unmapped:
                asset = _asset(row, provider)
                candidates = _Candidates(index.taken)
                self._offer_symbol_matches(candidates, asset, index)
                self._offer_new(candidates, asset, index)
                scored[row["symbol"]] = (asset, candidates)
            named = [
                (symbol, asset.name)
                for symbol, (asset, candidates) in scored.items()
                if asset.name and (only is not None or candidates.top < SAME_PAIR)
            ]
            names = await self._name_matches(conn, named, index, name_limit)
        result: dict[str, list[Suggestion]] = {}
        for symbol, (asset, candidates) in scored.items():
            for common, sim, other in names.get(symbol, []):
                if not _contradicts(asset, other):
                    candidates.offer(common, NAME_WEIGHT * sim, f"name similar to {other.name}")
            result[symbol] = candidates.ranked(provider, symbol, asset.name)
        return result

    @staticmethod
    def _offer_symbol_matches(candidates: _Candidates, asset: _Asset, index: _Index) -> None:
        if asset.figi:
            for common, other in index.by_figi.get(asset.figi, []):
                candidates.offer(common, SAME_FIGI, f"same FIGI as {other.label}")
        what = "base/quote" if asset.parts.is_pair else "normalised symbol"
        for common, label in index.by_key.get(asset.parts.key, []):
            candidates.offer(common, SAME_SYMBOL, f"same {what} as {label}")
        pair = _pair(asset.parts)
        for common, other in index.by_pair.get(pair, []) if pair else []:
            candidates.offer(common, SAME_PAIR, f"same base/quote as {other.label}")

    @staticmethod
    def _offer_new(candidates: _Candidates, asset: _Asset, index: _Index) -> None:
        try:
            proposal = validate_common(asset.parts.common)
        except ValueError:
            return
        if proposal not in index.commons:
            candidates.offer(proposal, NEW_SYMBOL, "new: normalised symbol", is_new=True)

    @staticmethod
    async def _name_matches(
        conn: asyncpg.Connection,
        named: list[tuple[str, str]],
        index: _Index,
        limit: int,
    ) -> dict[str, list[NameMatch]]:
        """Up to `limit` similar mapped names per (symbol, name): pg_trgm, else difflib."""
        if not named:
            return {}
        if not await has_trigram(conn):
            return _difflib_matches(named, index, limit)
        await conn.execute(SET_NAME_THRESHOLD, str(NAME_THRESHOLD))
        await conn.execute(CREATE_NAME_TABLE)
        await conn.copy_records_to_table(
            "suggest_names",
            records=[
                (n, name_words(other.name))
                for n, (_, other) in enumerate(index.mapped)
                if other.name
            ],
        )
        if len(named) > INDEX_WORTH_IT:
            await conn.execute(INDEX_NAME_TABLE)
            await conn.execute(ANALYZE_NAME_TABLE)
        rows = await conn.fetch(
            NAME_MATCHES, [s for s, _ in named], [name_words(n) for _, n in named], limit
        )
        found: dict[str, list[NameMatch]] = defaultdict(list)
        for r in rows:
            common, other = index.mapped[r["n"]]
            found[r["symbol"]].append((common, float(r["sim"]), other))
        return found


def _blocking_words(words: str) -> set[str]:
    return {w for w in words.split() if len(w) >= 3}


def _difflib_matches(
    named: list[tuple[str, str]], index: _Index, limit: int
) -> dict[str, list[NameMatch]]:
    """The same without pg_trgm: difflib over the mapped names that share a word."""
    by_word: dict[str, list[tuple[str, str, _Asset]]] = defaultdict(list)
    for common, other in index.mapped:
        words = name_words(other.name or "")
        for word in _blocking_words(words):
            by_word[word].append((words, common, other))
    found: dict[str, list[NameMatch]] = {}
    for symbol, name in named:
        words = name_words(name)
        seen: set[str] = set()
        matches: list[NameMatch] = []
        for word in _blocking_words(words):
            for other_words, common, other in by_word.get(word, []):
                if other.label in seen:
                    continue
                seen.add(other.label)
                matcher = difflib.SequenceMatcher(None, words, other_words)
                if matcher.quick_ratio() >= NAME_THRESHOLD:
                    sim = matcher.ratio()
                    if sim >= NAME_THRESHOLD:
                        matches.append((common, sim, other))
        matches.sort(key=lambda m: (-m[1], m[0]))
        found[symbol] = matches[:limit]
    return found
