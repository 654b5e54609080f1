"""`quasar export`: one stored series as CSV (stdout or a file) or Parquet (a file).

A file is written beside its final name and renamed into place, so an interrupted export never
leaves a half-written file behind.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from quasar_tui.cli.common import interval, leaf
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.spinner import waiting
from quasar_tui.cli.times import bounds, moment
from quasar_tui.core.errors import NotFoundError, QuasarError, UsageError
from quasar_tui.core.intervals import Interval
from quasar_tui.store.bars import COLUMNS, stream_bars

FORMATS = ("csv", "parquet")


class MissingExtraError(QuasarError):
    """An optional dependency is not installed."""


def register(sub: argparse._SubParsersAction) -> None:
    export = leaf(
        sub,
        "export",
        "write one stored series as CSV or Parquet",
        description="Write the stored bars of provider NAME's SYMBOL at one interval, oldest "
        "first: historical bars, or with --live the bars built from the live stream. CSV goes "
        "to stdout unless -o FILE is given; Parquet needs -o FILE and pyarrow "
        "(pip install quasar-tui[parquet]). Times are bar starts in UTC.",
    )
    export.add_argument("name", metavar="NAME", help="provider name")
    export.add_argument("symbol", metavar="SYMBOL", help="the provider's symbol")
    export.add_argument(
        "-i",
        "--interval",
        metavar="I",
        type=interval,
        required=True,
        help="bar interval: 1min 5min 15min 30min 1h 4h 1d 1w 1M",
    )
    export.add_argument(
        "--from",
        dest="start",
        metavar="D",
        type=moment,
        help="first bar: a date (YYYY-MM-DD) or an ISO time, UTC",
    )
    export.add_argument(
        "--to",
        dest="end",
        metavar="D",
        type=moment,
        help="last bar: up to and including this date, or before this time",
    )
    export.add_argument("--format", choices=FORMATS, default="csv", help="default: csv")
    export.add_argument(
        "--live", action="store_true", help="bars of the live stream (default: historical bars)"
    )
    export.add_argument(
        "-o", "--output", metavar="FILE", type=Path, help="write to FILE instead of stdout"
    )
    export.set_defaults(handler=export_series)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingExtraError(
            "Parquet export needs pyarrow: pip install quasar-tui[parquet] (or use --format csv)"
        ) from None
    return pyarrow


@contextlib.contextmanager
def _target(path: Path | None, binary: bool) -> Iterator[Any]:
    """stdout; a regular file or new path written beside its name and renamed over it only on
    success; a device or FIFO written through (renaming over it would replace the node)."""
    if path is None:
        yield sys.stdout
        return
    kind = _kind(path)
    mode, newline = ("wb", None) if binary else ("w", "")
    if kind == "special":
        try:
            with open(path, mode, newline=newline) as handle:
                yield handle
        except OSError as exc:
            raise QuasarError(f"cannot write {path}: {exc.strerror or exc}") from None
        return
    try:
        fd, partial = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    except OSError as exc:
        raise QuasarError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with open(fd, mode, newline=newline) as handle:
            yield handle
        os.chmod(partial, _final_mode(path, kind))
        os.replace(partial, path)
    except OSError as exc:
        raise QuasarError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        Path(partial).unlink(missing_ok=True)


def _kind(path: Path) -> str:
    """'new', 'regular' or 'special' (device, FIFO); a directory or symlink is refused."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "new"
    except OSError as exc:
        raise QuasarError(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(info.st_mode):
        raise QuasarError(f"{path} is a symbolic link: give the path it points to")
    if stat.S_ISDIR(info.st_mode):
        raise QuasarError(f"{path} is a directory: give a file name, e.g. {path}/bars.csv")
    return "regular" if stat.S_ISREG(info.st_mode) else "special"


def _final_mode(path: Path, kind: str) -> int:
    """An existing file keeps its permissions; a new one gets the usual 0666 less the umask."""
    if kind == "regular":
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_csv(out: TextIO, rows: list[asyncpg.Record]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([_iso(r[0]), *tuple(r)[1:]] for r in rows)


async def export_series(args: argparse.Namespace) -> int:
    interval = Interval.parse(args.interval)
    low, high = bounds(args.start, args.end)
    if args.format == "parquet":
        if args.output is None:
            raise UsageError("Parquet is binary: give -o FILE (or use --format csv)")
        pyarrow = _pyarrow()
    table = "live_data" if args.live else "historical_data"
    columns = COLUMNS[table]
    async with (
        database_from_args(args) as db,
        contextlib.aclosing(
            stream_bars(db, table, args.name, args.symbol, interval.value, low, high)
        ) as batches,
    ):
        async with waiting(f"reading {args.name} {args.symbol} {interval.value} bars"):
            first = await anext(batches, None)
        if first is None:
            mode = "live" if args.live else "historical"
            raise NotFoundError(
                f"no {mode} {interval.value} bars of {args.name} {args.symbol} stored in that "
                "range; see `quasar status`"
            )
        if args.format == "csv":
            with _target(args.output, binary=False) as out:
                csv.writer(out, lineterminator="\n").writerow(columns)
                _write_csv(out, first)
                async for batch in batches:
                    _write_csv(out, batch)
            return 0
        rows = list(first)
        async for batch in batches:
            rows.extend(batch)
    _write_parquet(pyarrow, args.output, columns, rows)
    return 0


def _write_parquet(
    pyarrow: Any, path: Path, columns: tuple[str, ...], rows: list[asyncpg.Record]
) -> None:
    types = {"ts": pyarrow.timestamp("us", tz="UTC"), "trades": pyarrow.int32()}
    arrays = [
        pyarrow.array([r[i] for r in rows], type=types.get(name, pyarrow.float64()))
        for i, name in enumerate(columns)
    ]
    table = pyarrow.Table.from_arrays(arrays, names=list(columns))
    with _target(path, binary=True) as out:
        pyarrow.parquet.write_table(table, out)
