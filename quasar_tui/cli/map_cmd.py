"""`quasar map ...`: map provider symbols to common symbols, by hand or from suggestions.

`quasar map COMMON NAME SYMBOL` is short for `quasar map add COMMON NAME SYMBOL`: any first
word that is not a verb is taken as a common symbol.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from quasar_tui.cli.common import leaf, positive_int
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import echo, print_json, print_table
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.mappings import MappingStore, common_symbol
from quasar_tui.registry.suggestions import MappingSuggester, Suggestion

DEFAULT_VERB = "add"

USAGE = """%(prog)s COMMON NAME SYMBOL
       %(prog)s list [--provider NAME] [--common COMMON] [--json]
       %(prog)s suggest NAME [--accept] [--min-score X] [--limit N] [--symbol SYMBOL] [--json]
       %(prog)s rename OLD NEW
       %(prog)s delete NAME SYMBOL
       %(prog)s priority COMMON NAME... | priority --default NAME..."""


class _AnyWord(Mapping[str, argparse.ArgumentParser]):
    """The verbs, for help and look-up; claims every word so argparse lets a COMMON through."""

    def __init__(self, verbs: dict[str, argparse.ArgumentParser]) -> None:
        self._verbs = verbs

    def __getitem__(self, word: str) -> argparse.ArgumentParser:
        return self._verbs[word]

    def __iter__(self) -> Iterator[str]:
        return iter(self._verbs)

    def __len__(self) -> int:
        return len(self._verbs)

    def __contains__(self, word: object) -> bool:
        return True


class _VerbOrCommon(argparse._SubParsersAction):
    """Sub-verbs, with `add` taken when the first word is none of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse only iterates `choices` and asks `in`; typeshed types it as the dict it
        # makes by default, which cannot claim every word.
        self.choices = _AnyWord(self._name_parser_map)  # type: ignore[assignment]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values and values[0] not in self._name_parser_map:
            values = [DEFAULT_VERB, *values]
        super().__call__(parser, namespace, values, option_string)


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, not {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, not {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    mapping = sub.add_parser(
        "map",
        help="map provider symbols to common symbols",
        usage=USAGE,
        description="Map a provider's symbol to a common symbol (created when new), so one "
        "instrument has one name across providers. A provider symbol has one common symbol, "
        "and a common symbol has at most one symbol per provider. `quasar map COMMON NAME "
        "SYMBOL` is short for `quasar map add COMMON NAME SYMBOL`.",
    )
    msub = mapping.add_subparsers(
        dest="map_command",
        metavar="COMMAND",
        required=True,
        action=_VerbOrCommon,
        prog=mapping.prog,
    )

    add = leaf(
        msub,
        DEFAULT_VERB,
        "map NAME's SYMBOL to COMMON (also: quasar map COMMON NAME SYMBOL)",
        description="Map the provider NAME's SYMBOL to the common symbol COMMON, creating "
        "COMMON if it is new. Common symbols are upper-cased, at most 32 characters, with no "
        "spaces.",
    )
    add.add_argument("common", metavar="COMMON", help="common symbol, e.g. BTC/USD or AAPL")
    add.add_argument("name", metavar="NAME", help="provider name")
    add.add_argument("symbol", metavar="SYMBOL", help="the provider's symbol, e.g. XBT/USD")
    add.set_defaults(handler=add_mapping)

    listing = leaf(msub, "list", "mappings, by common symbol")
    listing.add_argument("--provider", metavar="NAME", help="only this provider's mappings")
    listing.add_argument("--common", metavar="COMMON", help="only this common symbol")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_mappings)

    suggest = leaf(
        msub,
        "suggest",
        "scored suggestions for a provider's unmapped assets",
        description="Score each unmapped asset of NAME against the existing common symbols: "
        "same FIGI (1.0), same normalised symbol or pair (0.9), same base/quote on another "
        "venue (0.8), similar name (up to 0.6); with no match, a new common symbol from the "
        "normalised symbol (0.3). Shows the best suggestion per asset, best first; --accept "
        "maps them all in one transaction, skipping (and naming) any that would now conflict.",
    )
    suggest.add_argument("name", metavar="NAME", help="provider name")
    suggest.add_argument("--accept", action="store_true", help="create the mappings shown")
    suggest.add_argument(
        "--min-score",
        metavar="X",
        type=_score,
        default=0.0,
        help="only suggestions scoring at least X (0 to 1), e.g. 0.8 for "
        "symbol and FIGI matches only",
    )
    suggest.add_argument("--limit", metavar="N", type=positive_int, help="at most N suggestions")
    suggest.add_argument(
        "--symbol", metavar="SYMBOL", help="show the alternatives for this one asset instead"
    )
    suggest.add_argument("--json", action="store_true", help="print JSON")
    suggest.set_defaults(handler=suggest_mappings)

    rename = leaf(
        msub,
        "rename",
        "rename a common symbol; its mappings follow",
        description="Rename the common symbol OLD to NEW; every mapping to OLD moves to NEW. "
        "NEW must not exist yet.",
    )
    rename.add_argument("old", metavar="OLD", help="current common symbol")
    rename.add_argument("new", metavar="NEW", help="new common symbol")
    rename.set_defaults(handler=rename_common)

    delete = leaf(
        msub,
        "delete",
        "remove the mapping of NAME's SYMBOL",
        description="Remove the mapping of the provider NAME's SYMBOL. A common symbol left "
        "with no mapping is removed too. Assets, subscriptions and bars are not touched.",
    )
    delete.add_argument("name", metavar="NAME", help="provider name")
    delete.add_argument("symbol", metavar="SYMBOL", help="the provider's symbol")
    delete.set_defaults(handler=delete_mapping)

    priority = leaf(
        msub,
        "priority",
        "the order in which providers serve a common symbol",
        description="Set which provider serves COMMON first when it is read by its common "
        "symbol (`quasar bars BTC/USD`, the console, exports): NAME... best first; providers "
        "left out follow in the default order. With --default, set the default order for "
        "every common symbol. Without NAME, clear the order.",
    )
    priority.add_argument(
        "--default", action="store_true", help="set the default order for every common symbol"
    )
    priority.add_argument(
        "words", metavar="COMMON NAME", nargs="*", help="common symbol, then providers best first"
    )
    priority.set_defaults(handler=set_priority, usage_error=priority.error)


async def add_mapping(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        record = await MappingStore(db).map(args.common, args.name, args.symbol)
    echo(f"{record.provider}:{record.symbol} -> {record.common_symbol}")
    return 0


async def list_mappings(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        rows = await MappingStore(db).list(common=args.common, provider=args.provider)
    if args.json:
        print_json([dataclasses.asdict(m) for m in rows])
    elif rows:
        print_table(
            [dataclasses.asdict(m) for m in rows],
            ["common_symbol", "provider", "symbol", "name", "active"],
        )
    else:
        echo("no mappings; see `quasar map suggest NAME`")
    return 0


def _suggestion_rows(suggestions: Sequence[Suggestion]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(s) for s in suggestions]


async def suggest_mappings(args: argparse.Namespace) -> int:
    skipped: list[tuple[Suggestion, str]] = []
    async with database_from_args(args) as db:
        suggester = MappingSuggester(db)
        if args.symbol:
            options = await suggester.alternatives(args.name, args.symbol, n=args.limit or 5)
            shown = [s for s in options if s.score >= args.min_score][: 1 if args.accept else None]
        else:
            shown = await suggester.suggest(args.name, limit=args.limit, min_score=args.min_score)
        created = (
            await suggester.accept(shown, lambda s, why: skipped.append((s, why)))
            if args.accept
            else 0
        )
        asset_count = await AssetStore(db).count(args.name) if not shown else None
    if args.json:
        result: dict[str, Any] = {"suggestions": _suggestion_rows(shown)}
        if args.accept:
            result["accepted"] = created
            result["skipped"] = [{"symbol": s.symbol, "reason": why} for s, why in skipped]
        print_json(result)
        return 0
    if asset_count == 0:
        echo(f"{args.name} has no assets yet; run `quasar assets refresh {args.name}` first")
        return 0
    if not shown:
        echo(
            f"no suggestions for {args.name}: every active asset is mapped, or none scores "
            f"{args.min_score} or more"
        )
        return 0
    print_table(
        [
            {**row, "common_symbol": row["common_symbol"] + (" (new)" if row["is_new"] else "")}
            for row in _suggestion_rows(shown)
        ],
        ["symbol", "name", "common_symbol", "score", "reason"],
    )
    if args.accept:
        echo(f"mapped {created} of {len(shown)} symbols of {args.name}")
        for suggestion, why in skipped:
            echo(f"skipped {suggestion.symbol}: {why}")
    return 0


async def rename_common(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        moved = await MappingStore(db).rename(args.old, args.new)
    echo(f"renamed {common_symbol(args.old)} to {common_symbol(args.new)} ({moved} mappings)")
    return 0


async def delete_mapping(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        common = await MappingStore(db).delete(args.name, args.symbol)
    echo(f"{args.name}:{args.symbol} is no longer mapped to {common}")
    return 0


async def set_priority(args: argparse.Namespace) -> int:
    if args.default:
        common, names = None, args.words
    elif args.words:
        common, names = args.words[0], args.words[1:]
    else:
        args.usage_error("give COMMON and providers, or --default and providers")
    async with database_from_args(args) as db:
        await MappingStore(db).set_priority(common, names)
    what = "every common symbol" if common is None else common_symbol(common)
    order = " > ".join(names) if names else "cleared"
    print(f"provider order for {what}: {order}")
    return 0
