"""`quasar alert add | list | pause | resume | remove | history`: rules the engine evaluates.

A running engine (daemon or console) picks up a change within a second. A webhook is signed:
its secret is read from `--secret-file`, from standard input, or prompted for without echo,
never taken from the command line, and stored encrypted.
"""

from __future__ import annotations

import argparse
import getpass
import math
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from quasar_tui.cli.common import bounded_int, interval, leaf, positive_int
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import echo, print_json, print_table
from quasar_tui.core.errors import InvalidInputError, QuasarError, UsageError
from quasar_tui.registry.alerts import KINDS, AlertRule, AlertStore, HistoryEntry, NewRule
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.store.database import Database
from quasar_tui.store.series import resolve
from quasar_tui.store.server import resolve_data_dir

_DAY = 86_400
_SECRET_MAX = 4096
_LIST_COLUMNS = ["id", "kind", "target", "condition", "cooldown", "delivery", "state", "last"]
_HISTORY_COLUMNS = ["id", "fired_at", "rule", "key", "message", "delivery"]


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text[:40]!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, not {text[:40]!r}")
    return value


seconds = bounded_int(1, 365 * _DAY)
cooldown = bounded_int(0, 365 * _DAY)


def register(sub: argparse._SubParsersAction) -> None:
    alert = sub.add_parser(
        "alert",
        help="alerts: price levels, moves, volume, stale feeds, gaps, provider trouble",
        description="Rules the engine evaluates on what it collects; alerts go to the log, "
        "consoles, a signed webhook and/or a command.",
    )
    asub = alert.add_subparsers(dest="alert_command", metavar="COMMAND", required=True)
    add = leaf(
        asub,
        "add",
        "add a rule",
        description="Add a rule. KIND is above / below (price crosses --level), change "
        "(moves --percent either way within --window seconds), volume (a bar's volume over "
        "--factor x the average of the --bars before it), stale (no trade for --seconds while "
        "the market is open), gap (a new gap recorded), provider (SERIES is a provider name: "
        "it goes bad - error, crashed, parked - or comes back), backfill (a backfill wrote "
        "bars). SERIES is a common symbol or PROVIDER:SYMBOL; --all watches every series.",
    )
    add.add_argument("kind", choices=KINDS, metavar="KIND", help=" | ".join(KINDS))
    add.add_argument("target", nargs="?", metavar="SERIES", help="common symbol or PROVIDER:SYMBOL")
    add.add_argument("--all", action="store_true", help="watch every series (or provider)")
    add.add_argument("--level", type=_number, metavar="PRICE", help="above / below: the level")
    add.add_argument(
        "--hysteresis",
        type=_number,
        default=0.0,
        metavar="PCT",
        help="above / below: re-arm only once the price is this percent back (default 0)",
    )
    add.add_argument("--percent", type=_number, metavar="PCT", help="change: the move")
    add.add_argument("--window", type=seconds, metavar="SECONDS", help="change: within")
    add.add_argument("--factor", type=_number, metavar="N", help="volume: times the average")
    add.add_argument(
        "--bars", type=bounded_int(1, 1000), default=20, metavar="N", help="volume (default 20)"
    )
    add.add_argument(
        "--interval", type=interval, default=None, metavar="I", help="volume: bars (default 1min)"
    )
    add.add_argument("--seconds", type=seconds, metavar="N", help="stale: silence that alerts")
    add.add_argument(
        "--cooldown",
        type=cooldown,
        default=300,
        metavar="SECONDS",
        help="at most one alert per series in this time (default 300)",
    )
    add.add_argument("--webhook", metavar="URL", help="POST each alert as JSON here")
    add.add_argument(
        "--secret-file",
        type=Path,
        metavar="FILE",
        help="the webhook's HMAC secret (else read from stdin, or prompted for without echo)",
    )
    add.add_argument("--unsigned", action="store_true", help="send the webhook without a signature")
    add.add_argument(
        "--command",
        metavar="CMD",
        help="run CMD (no shell) with the alert as JSON on stdin",
    )
    add.add_argument(
        "--timeout",
        type=bounded_int(1, 3600),
        default=10,
        metavar="SECONDS",
        help="the command is killed after this (default 10)",
    )
    add.set_defaults(handler=add_rule)
    listing = leaf(asub, "list", "list rules")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_rules)
    for verb, summary, handler in (
        ("pause", "stop evaluating a rule (its state is kept)", pause_rule),
        ("resume", "evaluate a paused rule again", resume_rule),
        ("remove", "remove a rule (its history is kept)", remove_rule),
    ):
        one = leaf(asub, verb, summary)
        one.add_argument("rule_id", type=positive_int, metavar="ID")
        one.set_defaults(handler=handler)
    history = leaf(asub, "history", "alerts fired and how each delivery went")
    history.add_argument("rule_id", type=positive_int, nargs="?", metavar="ID")
    history.add_argument("--failed", action="store_true", help="only alerts a delivery failed")
    history.add_argument(
        "--limit", type=bounded_int(1, 10_000), default=50, metavar="N", help="default 50"
    )
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(handler=show_history)


def _store(args: argparse.Namespace, db: Database) -> AlertStore:
    return AlertStore(db, Keyring.load_or_create(resolve_data_dir(args.data_dir)))


def _new_rule(args: argparse.Namespace) -> NewRule:
    """The rule asked for, or UsageError (exit 2) saying what is missing or wrong."""
    if args.all == (args.target is not None):
        raise UsageError(f"give a {'provider' if args.kind == 'provider' else 'series'} or --all")
    if args.kind in ("above", "below") and args.all:
        raise UsageError(f"a {args.kind} alert watches one series: name it instead of --all")
    if args.unsigned and args.secret_file is not None:
        raise UsageError("--unsigned and --secret-file contradict each other")
    if (args.unsigned or args.secret_file is not None) and args.webhook is None:
        raise UsageError("--unsigned and --secret-file go with --webhook")
    rule = NewRule(
        args.kind,
        args.target,
        level=args.level,
        percent=args.percent,
        window_s=args.window,
        factor=args.factor,
        bars=args.bars if args.kind == "volume" else None,
        interval=(args.interval.value if args.interval else "1min")
        if args.kind == "volume"
        else None,
        stale_s=args.seconds,
        hysteresis=args.hysteresis,
        cooldown_s=args.cooldown,
        webhook_url=args.webhook,
        command=args.command,
        command_timeout_s=args.timeout,
    )
    try:
        rule.check()
    except InvalidInputError as exc:
        raise UsageError(str(exc)) from None
    return rule


def _webhook_secret(args: argparse.Namespace) -> str | None:
    if args.webhook is None or args.unsigned:
        return None
    if args.secret_file is not None:
        try:
            text = args.secret_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise QuasarError(f"cannot read the secret file {args.secret_file}: {exc}") from None
    elif sys.stdin.isatty():
        text = getpass.getpass("webhook HMAC secret (not shown): ")
    else:
        text = sys.stdin.read(_SECRET_MAX + 1)
    secret = text.strip()
    if not secret:
        raise InvalidInputError(
            "no webhook secret given: give it on stdin or in --secret-file, or pass --unsigned"
        )
    if len(secret) > _SECRET_MAX or "\n" in secret:
        raise InvalidInputError(f"the webhook secret must be one line of at most {_SECRET_MAX}")
    return secret


async def _check_target(db: Database, keyring: Keyring, rule: NewRule) -> None:
    """The series or provider must exist now (NotFoundError otherwise: exit 1)."""
    if rule.target is None:
        return
    if rule.kind == "provider":
        await ProviderRegistry(db, keyring).get(rule.target)
    else:
        await resolve(db, rule.target)


async def add_rule(args: argparse.Namespace) -> int:
    rule = _new_rule(args)
    secret = _webhook_secret(args)
    async with database_from_args(args) as db:
        store = _store(args, db)
        await _check_target(db, store.keyring, rule)
        added = await store.add(rule, secret)
    echo(f"alert rule {added.id}: {_target(added)} {added.condition} -> {_delivery(added)}")
    return 0


def _target(rule: AlertRule) -> str:
    return rule.target if rule.target is not None else "all"


def _delivery(rule: AlertRule) -> str:
    parts = ["log", "console"]
    if rule.webhook_url:
        signed = "signed" if rule.signed else "unsigned"
        parts.append(f"webhook {_shown_url(rule.webhook_url)} ({signed})")
    if rule.command:
        parts.append("command")
    return ", ".join(parts)


def _row(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "kind": rule.kind,
        "target": _target(rule),
        "condition": rule.condition,
        "cooldown": f"{rule.cooldown_s} s",
        "delivery": _delivery(rule),
        "state": "active" if rule.enabled else "paused",
        "last": rule.last_fired,
    }


def _json_rule(rule: AlertRule) -> dict[str, Any]:
    return {
        **rule.__dict__,
        "webhook_url": _shown_url(rule.webhook_url),
        "condition": rule.condition,
    }


def _shown_url(url: str | None) -> str | None:
    """Scheme and host only: many webhook URLs carry a token in their path."""
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."


async def list_rules(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        rules = await _store(args, db).rules()
    if args.json:
        print_json([_json_rule(r) for r in rules])
        return 0
    if not rules:
        print("no alert rules; add one with `quasar alert add KIND SERIES ...`")
        return 0
    print_table([_row(r) for r in rules], _LIST_COLUMNS)
    return 0


async def _toggle(args: argparse.Namespace, enabled: bool) -> int:
    async with database_from_args(args) as db:
        changed = await _store(args, db).set_enabled(args.rule_id, enabled)
    word = "resumed" if enabled else "paused"
    echo(f"alert rule {args.rule_id} {word}" + ("" if changed else " already"))
    return 0


async def pause_rule(args: argparse.Namespace) -> int:
    return await _toggle(args, False)


async def resume_rule(args: argparse.Namespace) -> int:
    return await _toggle(args, True)


async def remove_rule(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        await _store(args, db).remove(args.rule_id)
    echo(f"removed alert rule {args.rule_id}")
    return 0


def _outcome(entry: HistoryEntry) -> str:
    """Per channel beyond log and console: ok, pending (not tried yet, or retrying), or
    failed with the last reason and tries; log and console only while pending."""
    parts = [f"{c} pending" for c in ("log", "console") if c in entry.pending]
    for channel in ("webhook", "command"):
        tries = [d for d in entry.deliveries if d["channel"] == channel]
        waiting = channel in entry.pending
        if any(d["ok"] for d in tries):
            parts.append(f"{channel} ok" + (f" (try {len(tries)})" if len(tries) > 1 else ""))
        elif tries:
            state = "retrying" if waiting else "FAILED"
            parts.append(f"{channel} {state} x{len(tries)}: {tries[-1]['detail']}")
        elif waiting:
            parts.append(f"{channel} pending")
    return "; ".join(parts) or "log, console"


async def show_history(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        store = _store(args, db)
        if args.rule_id is not None:
            await store.get(args.rule_id)
        entries = await store.history(args.rule_id, failed_only=args.failed, limit=args.limit)
    if args.json:
        print_json([{**e.__dict__, "failed": e.failed_for_good} for e in entries])
        return 0
    if not entries:
        print("no alerts" + (" with a failed delivery" if args.failed else "") + " yet")
        return 0
    rows = [
        {
            "id": e.id,
            "fired_at": e.fired_at,
            "rule": e.rule_id if e.rule_id is not None else "(removed)",
            "key": e.key,
            "message": e.message,
            "delivery": _outcome(e),
        }
        for e in entries
    ]
    print_table(rows, _HISTORY_COLUMNS)
    return 0
