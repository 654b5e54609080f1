"""`quasar provider ...`: register provider code, inspect it, configure it, remove it."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from pathlib import Path
from typing import Any

from quasar_tui.cli import provider_run
from quasar_tui.cli.common import leaf
from quasar_tui.cli.context import registry_from_args
from quasar_tui.cli.hidden_args import hide_in_arguments
from quasar_tui.cli.output import echo, print_json, print_table
from quasar_tui.cli.spinner import waiting
from quasar_tui.core.errors import InvalidInputError, QuasarError
from quasar_tui.registry.records import ProviderRecord, ValidationReport
from quasar_tui.registry.validation import validate_file


def _pair(text: str) -> tuple[str, str]:
    """KEY=VALUE; the error never repeats the argument, which may be a secret."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError("expected KEY=VALUE (an argument has no '=' or no key)")
    return key.strip(), value


def register(sub: argparse._SubParsersAction) -> None:
    provider = sub.add_parser(
        "provider",
        help="register, inspect and configure data providers",
        description="Register provider code (validated in a child process), inspect it, set "
        "its preferences and secrets, enable, disable or remove it.",
    )
    psub = provider.add_subparsers(dest="provider_command", metavar="COMMAND", required=True)

    add = leaf(
        psub,
        "add",
        "validate a provider file and register its code",
        description="Validate FILE in a child process (10 s and 1 GiB limits), then store its "
        "code and sha256. The provider's name comes from the class's `name`.",
    )
    add.add_argument("file", metavar="FILE", type=Path, help="Python file defining one provider")
    add.add_argument(
        "--replace",
        action="store_true",
        help="replace the code of the provider with the same name; changed code "
        "drops its secrets, which must then be set again",
    )
    add.set_defaults(handler=add_provider)

    validate = leaf(
        psub,
        "validate",
        "check a provider file without registering it",
        description="Validate FILE in a child process exactly as `add` would, and print what "
        "was found. Nothing is stored.",
    )
    validate.add_argument("file", metavar="FILE", type=Path, help="Python file to check")
    validate.add_argument("--json", action="store_true", help="print JSON")
    validate.set_defaults(handler=validate_provider)

    listing = leaf(psub, "list", "registered providers with their state and asset counts")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_providers)

    show = leaf(
        psub,
        "show",
        "one provider: code hash, status, preferences, secret names",
        description="Show a provider: kind, class, sha256, status, capabilities, preferences "
        "with their help and defaults, and the NAMES of its secrets (never their values).",
    )
    show.add_argument("name", metavar="NAME", help="provider name")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=show_provider)

    remove = leaf(
        psub,
        "remove",
        "remove a provider with its assets, mappings and subscriptions",
        description="Remove a provider; its assets, mappings and subscriptions go with it. "
        "Stored bars and ticks are kept (they come back if the provider is added again) "
        "unless --purge-data. Asks for confirmation on a terminal; elsewhere needs --yes.",
    )
    remove.add_argument("name", metavar="NAME", help="provider name")
    remove.add_argument(
        "--purge-data",
        action="store_true",
        help="also delete its stored bars, ticks, quotes, gaps and runs",
    )
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=remove_provider)

    setp = leaf(
        psub,
        "set",
        "set preferences (checked against the provider's CONFIGURABLE)",
        description="Set preferences, e.g. `quasar provider set kraken ws_url=wss://...`. "
        "`quasar provider show NAME` lists the keys a provider accepts.",
    )
    setp.add_argument("name", metavar="NAME", help="provider name")
    setp.add_argument("pairs", metavar="KEY=VALUE", nargs="+", type=_pair, help="preference")
    setp.set_defaults(handler=set_preferences)

    secret = leaf(
        psub,
        "secret",
        "set secrets (encrypted; read from stdin when no KEY=VALUE is given)",
        description="Store secrets encrypted for this provider's code. With no KEY=VALUE "
        "arguments, KEY=VALUE lines are read from stdin so values stay out of shell history. "
        "An empty value (KEY=) deletes that secret. Values are never printed.",
    )
    secret.add_argument("name", metavar="NAME", help="provider name")
    secret.add_argument("pairs", metavar="KEY=VALUE", nargs="*", type=_pair, help="secret")
    secret.set_defaults(handler=set_secrets)

    provider_run.register(psub)

    for verb, enabled in (("enable", True), ("disable", False)):
        toggle = leaf(psub, verb, f"{verb} a provider's collection")
        toggle.add_argument("name", metavar="NAME", help="provider name")
        toggle.set_defaults(handler=toggle_provider, enabled=enabled)


async def add_provider(args: argparse.Namespace) -> int:
    async with (
        registry_from_args(args) as registry,
        waiting(f"validating {args.file} in a child process"),
    ):
        record = await registry.add(args.file, replace=args.replace)
    verb = "replaced" if record.updated_at > record.created_at else "added"
    echo(
        f"{verb} {record.kind} provider {record.name} "
        f"(class {record.class_name}, sha256 {record.sha256[:12]})"
    )
    _print_notices(record)
    return 0


async def validate_provider(args: argparse.Namespace) -> int:
    async with waiting(f"validating {args.file} in a child process"):
        report = await validate_file(args.file)
    if args.json:
        print_json(dataclasses.asdict(report))
        return 0
    caps = report.capabilities
    echo(f"{args.file}: valid {report.kind} provider {report.name} (class {report.class_name})")
    echo(f"intervals:   {' '.join(caps['intervals'])}")
    echo(f"history:     {'yes' if caps['has_history'] else 'no'}")
    echo(f"secrets:     {', '.join(caps['secrets']) or '-'}")
    echo(f"preferences: {', '.join(caps['configurable']) or '-'}")
    return 0


async def list_providers(args: argparse.Namespace) -> int:
    async with registry_from_args(args) as registry:
        records = await registry.list()
    if args.json:
        print_json([_record_json(r) for r in records])
        return 0
    if not records:
        echo("no providers registered; add one with `quasar provider add FILE`")
        return 0
    rows = [
        {
            "name": r.name,
            "kind": r.kind,
            "enabled": r.enabled,
            "status": r.status,
            "assets": r.asset_count,
            "secrets": ", ".join(r.secret_names) or None,
            "bundled": r.bundled,
        }
        for r in records
    ]
    print_table(rows, ["name", "kind", "enabled", "status", "assets", "secrets", "bundled"])
    return 0


async def show_provider(args: argparse.Namespace) -> int:
    async with registry_from_args(args) as registry:
        record = await registry.get(args.name)
    if args.json:
        print_json(_record_json(record))
        return 0
    caps = record.capabilities
    status = record.status + (f" ({record.status_detail})" if record.status_detail else "")
    calls, seconds = caps.get("rate_limit", ["?", "?"])
    echo(f"name:        {record.name}")
    echo(f"kind:        {record.kind} (class {record.class_name})")
    echo(f"sha256:      {record.sha256}")
    echo(f"enabled:     {'yes' if record.enabled else 'no'}")
    echo(f"status:      {status}")
    echo(f"bundled:     {'yes' if record.bundled else 'no'}")
    echo(f"assets:      {record.asset_count}")
    echo(f"intervals:   {' '.join(caps.get('intervals', []))}")
    echo(f"history:     {'yes' if caps.get('has_history') else 'no'}")
    echo(f"rate limit:  {calls} calls per {seconds} s, {caps.get('concurrency', '?')} at once")
    echo(f"secrets:     {_secret_summary(record)}")
    echo("preferences:" + ("" if caps.get("configurable") else " -"))
    for key, spec in sorted(caps.get("configurable", {}).items()):
        _print_preference(key, spec, record.preferences)
    return 0


async def remove_provider(args: argparse.Namespace) -> int:
    async with registry_from_args(args) as registry:
        record = await registry.get(args.name)
        if not args.yes and not _confirm_removal(record, args.purge_data):
            print("quasar: nothing removed", file=sys.stderr)
            return 1
        counts = await registry.remove(args.name, purge_data=args.purge_data)
    echo(f"removed provider {args.name} with {_counted(counts['removed'])}")
    if any(counts["kept"].values()):
        echo(
            f"kept {_counted(counts['kept'])} (they return if the provider is added again; "
            "--purge-data deletes them)"
        )
    return 0


async def set_preferences(args: argparse.Namespace) -> int:
    async with registry_from_args(args) as registry:
        record = await registry.set_preferences(args.name, dict(args.pairs))
    for key, _ in args.pairs:
        echo(f"{record.name}: {key} = {record.preferences[key]!r}")
    return 0


async def set_secrets(args: argparse.Namespace) -> int:
    for key, value in args.pairs:
        hide_in_arguments(f"{key}={value}", [value])
    async with registry_from_args(args) as registry:
        if args.pairs:
            pairs = dict(args.pairs)
        elif sys.stdin.isatty():
            record = await registry.get(args.name)
            pairs = _prompt_secrets(record)
        else:
            pairs = _read_secret_lines()
        record = await registry.set_secrets(args.name, pairs)
    _print_notices(record)
    deleted = sorted(k for k, v in pairs.items() if v == "")
    stored = sorted(k for k, v in pairs.items() if v != "")
    if stored:
        echo(f"stored secrets of {record.name}: {', '.join(stored)}")
    if deleted:
        echo(f"deleted secrets of {record.name}: {', '.join(deleted)}")
    if stored and args.pairs:
        print(
            "quasar: warning: a secret on the command line is visible in `ps` and shell "
            f"history; run `quasar provider secret {record.name}` to be prompted instead",
            file=sys.stderr,
        )
    return 0


async def toggle_provider(args: argparse.Namespace) -> int:
    async with registry_from_args(args) as registry:
        record = await registry.set_enabled(args.name, args.enabled)
    echo(f"{record.name} {'enabled' if record.enabled else 'disabled'}")
    return 0


def _record_json(record: ProviderRecord | ValidationReport) -> dict[str, Any]:
    out = dataclasses.asdict(record)
    out.pop("notices", None)
    return out


def _print_notices(record: ProviderRecord) -> None:
    for notice in record.notices:
        echo(f"note: {notice}")


def _secret_summary(record: ProviderRecord) -> str:
    declared = record.capabilities.get("secrets", [])
    names = sorted(set(declared) | set(record.secret_names))
    if not names:
        return "-"
    return ", ".join(f"{n} ({'set' if n in record.secret_names else 'not set'})" for n in names)


def _print_preference(key: str, spec: dict[str, Any], values: dict[str, Any]) -> None:
    value = values.get(key, spec.get("default"))
    origin = "" if key in values else " (default)"
    choices = f" one of {', '.join(map(str, spec['choices']))};" if spec.get("choices") else ""
    echo(f"  {key} = {value!r}{origin}")
    echo(f"      {spec.get('type', 'str')};{choices} {spec.get('help') or ''}".rstrip())


_LABELS = {
    "assets": ("asset", "assets"),
    "mappings": ("mapping", "mappings"),
    "subscriptions": ("subscription", "subscriptions"),
    "historical_data": ("historical bar", "historical bars"),
    "live_data": ("live bar", "live bars"),
    "live_ticks": ("tick", "ticks"),
    "live_quotes": ("quote", "quotes"),
    "gaps": ("gap record", "gap records"),
    "collection_runs": ("collection run", "collection runs"),
}


def _counted(counts: dict[str, int]) -> str:
    """`{"assets": 1, "live_ticks": 3}` -> "1 asset, 3 ticks"."""
    return ", ".join(
        f"{n} {_LABELS.get(table, (table, table))[n != 1]}" for table, n in counts.items()
    )


def _confirm_removal(record: ProviderRecord, purge: bool) -> bool:
    if not sys.stdin.isatty():
        raise QuasarError(f"not removing {record.name} without confirmation: run again with --yes")
    what = " and ALL its stored bars and ticks" if purge else ""
    answer = input(
        f"remove provider {record.name} with its {record.asset_count} assets, their mappings "
        f"and subscriptions{what}? [y/N] "
    )
    return answer.strip().lower() in ("y", "yes")


def _prompt_secrets(record: ProviderRecord) -> dict[str, str]:
    """Ask for each secret the provider declares, without echo; an empty answer keeps it."""
    names = sorted(set(record.capabilities.get("secrets", [])) | set(record.secret_names))
    if not names:
        raise InvalidInputError(
            f"{record.name} declares no secrets; give KEY=VALUE lines on stdin to set others"
        )
    pairs: dict[str, str] = {}
    for name in names:
        state = "set; Enter keeps it" if name in record.secret_names else "not set"
        value = getpass.getpass(f"{record.name} {name} ({state}): ")
        if value:
            pairs[name] = value
    if not pairs:
        raise InvalidInputError("nothing entered: no secret changed")
    return pairs


def _read_secret_lines() -> dict[str, str]:
    """KEY=VALUE lines from stdin; blank lines and # comments are skipped."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(sys.stdin.read().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            key, value = _pair(line)
        except argparse.ArgumentTypeError:
            raise InvalidInputError(f"stdin line {number} is not KEY=VALUE") from None
        pairs[key] = value
    if not pairs:
        raise InvalidInputError("no secrets given: pass KEY=VALUE arguments or lines on stdin")
    return pairs
