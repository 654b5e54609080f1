"""`quasar provider run NAME symbols|history ...`: call a provider inside its sandbox and print
what it returns, so an author can debug it exactly as the engine will run it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date, datetime

import msgspec

from quasar_tui.cli.common import leaf
from quasar_tui.cli.context import registry_from_args
from quasar_tui.cli.output import print_json, print_table
from quasar_tui.cli.times import as_time, moment
from quasar_tui.core.clock import utc_now
from quasar_tui.core.errors import InvalidInputError
from quasar_tui.core.intervals import Interval
from quasar_tui.registry.providers import host_spec
from quasar_tui.sandbox.client import ProviderHost

DEFAULT_BARS = 30  # bars asked for when --from is not given


def register(psub: argparse._SubParsersAction) -> None:
    run = leaf(
        psub,
        "run",
        "call a provider inside its sandbox and print what it returns",
        description="Start the provider in its sandbox (its own confined process, with its "
        "preferences and secrets, network allowed) and print what `fetch_available_symbols` "
        "or `get_history` returns. Errors and the provider's output and log lines are shown "
        "as the engine would log them.",
    )
    run.add_argument("provider_name", metavar="NAME", help="provider name")
    what = run.add_subparsers(dest="call", metavar="CALL", required=True)
    symbols = leaf(what, "symbols", "print fetch_available_symbols()")
    symbols.add_argument("--json", action="store_true", help="print JSON")
    history = leaf(what, "history", "print get_history(SYMBOL, --from, --to, --interval)")
    history.add_argument("symbol", metavar="SYMBOL", help="the provider's symbol")
    history.add_argument(
        "-i",
        "--interval",
        metavar="I",
        required=True,
        help="bar interval: 1min 5min 15min 30min 1h 4h 1d 1w 1M",
    )
    history.add_argument(
        "--from",
        dest="start",
        metavar="D",
        type=moment,
        help=f"first bar: a date or an ISO time, UTC (default: {DEFAULT_BARS} bars before --to)",
    )
    history.add_argument(
        "--to", dest="end", metavar="D", type=moment, help="end, exclusive (default: now)"
    )
    history.add_argument("--json", action="store_true", help="print JSON")
    run.set_defaults(handler=run_provider)


@dataclass(frozen=True)
class _HistoryCall:
    """The `get_history` call `run NAME history` makes."""

    interval: Interval
    start: datetime
    end: datetime


def _history_call(
    interval_text: str, start: date | datetime | None, end: date | datetime | None
) -> _HistoryCall:
    try:
        interval = Interval.parse(interval_text)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    high = utc_now() if end is None else as_time(end)
    low = high - interval.delta * DEFAULT_BARS if start is None else as_time(start)
    if high <= low:
        raise InvalidInputError("--to must be later than --from")
    return _HistoryCall(interval, low, high)


async def run_provider(args: argparse.Namespace) -> int:
    call = None
    if args.call == "history":
        call = _history_call(args.interval, args.start, args.end)
    async with registry_from_args(args) as registry:
        code = await registry.stored_code(args.provider_name)
    host = ProviderHost(host_spec(code))
    try:
        ready = await host.start()
        print(f"{ready.name} runs in its sandbox (isolation: {ready.isolation})", file=sys.stderr)
        if call is None:
            rows = [msgspec.structs.asdict(s) for s in await host.fetch_available_symbols()]
            columns = ["symbol", "name", "exchange", "asset_class", "base", "quote"]
        else:
            bars = host.get_history(args.symbol, call.start, call.end, call.interval)
            rows = [msgspec.structs.asdict(b) async for b in bars]
            columns = ["ts", "open", "high", "low", "close", "volume", "trades"]
    finally:
        await host.stop()
    if args.json:
        print_json(rows)
    elif not rows:
        print("the provider returned nothing")
    else:
        print_table(rows, columns)
    return 0
