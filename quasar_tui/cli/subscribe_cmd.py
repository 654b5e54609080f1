"""`quasar subscribe`, `unsubscribe`, `subscriptions`, `pause`, `resume`: what to collect.

A running engine hears every change through NOTIFY and applies it within a second.
"""

from __future__ import annotations

import argparse
import dataclasses

from quasar_tui.cli.common import interval, leaf, lookback_days, positive_int
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import echo, print_json, print_table
from quasar_tui.core.errors import InvalidInputError, NotFoundError, UsageError
from quasar_tui.quality.calendars import calendar
from quasar_tui.registry.subscriptions import SubscriptionRecord, SubscriptionStore

_COLUMNS = [
    "id",
    "provider",
    "symbol",
    "interval",
    "mode",
    "enabled",
    "state",
    "last_bar_ts",
    "last_error",
]


def _add_series_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-i",
        "--interval",
        metavar="I",
        type=interval,
        required=required,
        help="bar interval: 1min 5min 15min 30min 1h 4h 1d 1w 1M",
    )
    parser.add_argument(
        "--live", action="store_true", help="the live stream (default: historical bars)"
    )


def trading_calendar(text: str) -> str:
    """argparse type: a calendar name `quality.calendars` knows, spelled as it stores it."""
    try:
        return calendar(text).name
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    subscribe = leaf(
        sub,
        "subscribe",
        "collect bars of symbols from a provider",
        description="Subscribe to SYMBOLs of provider NAME at one interval: historical bars "
        "(backfilled over --lookback-days, then kept up to date) or, with --live, the live "
        "stream. Every symbol must be one of the provider's assets and the interval one it "
        "offers; if any is not, nothing is subscribed.",
    )
    subscribe.add_argument("name", metavar="NAME", help="provider name")
    subscribe.add_argument("symbols", metavar="SYMBOL", nargs="+", help="the provider's symbols")
    _add_series_options(subscribe, required=True)
    subscribe.add_argument(
        "--lookback-days",
        metavar="N",
        type=lookback_days,
        default=365,
        help="history to backfill for a new series (default 365)",
    )
    subscribe.add_argument(
        "--calendar",
        metavar="C",
        type=trading_calendar,
        help="when the market trades, if its exchange does not say: 24/7, 24/5, weekdays or "
        "an exchange code (XNYS, XNAS, XLON...); decides what is a gap and what is stale",
    )
    subscribe.set_defaults(handler=subscribe_symbols)

    unsubscribe = leaf(
        sub,
        "unsubscribe",
        "stop collecting; stored bars are kept",
        usage="%(prog)s NAME SYMBOL... --interval I [--live]\n       %(prog)s --id ID...",
        description="Remove subscriptions, named by provider, symbols, interval and mode, or "
        "by id (see `quasar subscriptions`). The bars already stored are kept. If any is not "
        "subscribed, nothing is removed.",
    )
    unsubscribe.add_argument("name", metavar="NAME", nargs="?", help="provider name")
    unsubscribe.add_argument("symbols", metavar="SYMBOL", nargs="*", help="the provider's symbols")
    _add_series_options(unsubscribe, required=False)
    unsubscribe.add_argument(
        "--id",
        metavar="ID",
        dest="ids",
        type=positive_int,
        nargs="+",
        help="subscription ids instead of NAME SYMBOL...",
    )
    unsubscribe.set_defaults(handler=unsubscribe_symbols)

    listing = leaf(sub, "subscriptions", "subscriptions with their state and last stored bar")
    listing.add_argument("--provider", metavar="NAME", help="only this provider's")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_subscriptions)

    for verb, enabled, what in [
        ("pause", False, "stop collecting, keeping the subscription"),
        ("resume", True, "collect again after `quasar pause`"),
    ]:
        parser = leaf(sub, verb, f"{what} (by subscription id)")
        parser.add_argument(
            "ids",
            metavar="ID",
            type=positive_int,
            nargs="+",
            help="subscription ids (see `quasar subscriptions`)",
        )
        parser.set_defaults(handler=set_enabled, enabled=enabled)


def _mode(args: argparse.Namespace) -> str:
    return "live" if args.live else "historical"


def _describe(sub: SubscriptionRecord) -> str:
    return f"{sub.provider} {sub.symbol} {sub.interval} {sub.mode} (id {sub.id})"


async def subscribe_symbols(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        added = await SubscriptionStore(db).add(
            args.name,
            args.symbols,
            args.interval,
            _mode(args),
            lookback_days=args.lookback_days,
            calendar=args.calendar,
        )
    for sub in added:
        echo(f"subscribed {_describe(sub)}")
    return 0


async def _to_remove(
    store: SubscriptionStore, args: argparse.Namespace
) -> list[SubscriptionRecord]:
    """The subscriptions named (by id, or by NAME SYMBOL... --interval), each once."""
    if args.ids:
        if args.name or args.symbols:
            raise UsageError("give either --id ID... or NAME SYMBOL..., not both")
        return [await store.get(i) for i in dict.fromkeys(args.ids)]
    if not args.name or not args.symbols or not args.interval:
        raise UsageError(
            "name the subscriptions: NAME SYMBOL... --interval I [--live], or --id ID..."
        )
    found_all: dict[int, SubscriptionRecord] = {}
    for symbol in args.symbols:
        found = await store.find(args.name, symbol, args.interval, _mode(args))
        if found is None:
            raise NotFoundError(
                f"not subscribed to {args.name} {symbol} {args.interval} {_mode(args)}; "
                "see `quasar subscriptions`"
            )
        found_all.setdefault(found.id, found)
    return list(found_all.values())


async def unsubscribe_symbols(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        store = SubscriptionStore(db)
        removed = await _to_remove(store, args)
        await store.delete([sub.id for sub in removed])
    for sub in removed:
        echo(f"unsubscribed {_describe(sub)}; its stored bars are kept")
    return 0


async def list_subscriptions(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        rows = await SubscriptionStore(db).list(args.provider)
    if args.json:
        print_json([dataclasses.asdict(s) for s in rows])
    elif rows:
        print_table([dataclasses.asdict(s) for s in rows], _COLUMNS)
    else:
        echo("no subscriptions; add one with `quasar subscribe NAME SYMBOL... --interval I`")
    return 0


async def set_enabled(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        store = SubscriptionStore(db)
        changed = await store.set_enabled(args.ids, args.enabled)
    state = "resumed" if args.enabled else "paused"
    echo(f"{state} {changed} of {len(set(args.ids))} subscriptions")
    return 0
