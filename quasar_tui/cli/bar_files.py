"""Bars as files: CSV, JSON lines or Parquet, written batch by batch so an export of millions
of bars never holds them all.

Text formats write numbers as twelve significant digits (`denoised`): a live volume summed to
`48.03550999999999` is written `48.03551`. Times are bar starts in UTC.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from quasar_tui.cli.target import target
from quasar_tui.core.errors import QuasarError, UsageError
from quasar_tui.core.numbers import denoised
from quasar_tui.store.read import ReadBar

FORMATS = ("csv", "jsonl", "parquet")
COLUMNS = ("ts", "open", "high", "low", "close", "volume", "trades", "complete")
_PRICES = ("open", "high", "low", "close", "volume")


class MissingExtraError(QuasarError):
    """An optional dependency is not installed."""


def pyarrow_module() -> Any:
    """pyarrow with its Parquet writer, or one line saying how to install it."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingExtraError(
            "Parquet export needs pyarrow: pip install quasar-tui[parquet] (or use --format csv)"
        ) from None
    return pyarrow


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _values(bar: ReadBar, columns: tuple[str, ...]) -> dict[str, Any]:
    """The text formats' values: ISO times, denoised numbers, trades None when not given."""
    row: dict[str, Any] = {
        "ts": _iso(bar.ts),
        **{name: denoised(getattr(bar, name)) for name in _PRICES},
        "trades": bar.trades,
        "complete": bar.complete,
    }
    return {name: row[name] for name in columns}


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


async def write(
    fmt: str,
    path: Path | None,
    columns: tuple[str, ...],
    first: list[ReadBar],
    rest: AsyncIterator[list[ReadBar]],
) -> None:
    """Write `first` and every later batch of `rest` to `path` (stdout when None)."""
    if fmt == "parquet":
        if path is None:
            raise UsageError("Parquet is binary: give -o FILE (or use --format csv)")
        await _parquet(path, columns, first, rest)
        return
    with target(path, binary=False) as out:
        line = _csv_writer(out, columns) if fmt == "csv" else _jsonl_writer(out, columns)
        for bar in first:
            line(bar)
        async for batch in rest:
            for bar in batch:
                line(bar)


def _csv_writer(out: TextIO, columns: tuple[str, ...]) -> Callable[[ReadBar], object]:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    return lambda bar: writer.writerow(_csv_cell(v) for v in _values(bar, columns).values())


def _jsonl_writer(out: TextIO, columns: tuple[str, ...]) -> Callable[[ReadBar], object]:
    return lambda bar: out.write(json.dumps(_values(bar, columns)) + "\n")


async def _parquet(
    path: Path,
    columns: tuple[str, ...],
    first: list[ReadBar],
    rest: AsyncIterator[list[ReadBar]],
) -> None:
    pyarrow = pyarrow_module()
    types = {
        "ts": pyarrow.timestamp("us", tz="UTC"),
        "trades": pyarrow.int64(),
        "complete": pyarrow.bool_(),
    }
    schema = pyarrow.schema([(name, types.get(name, pyarrow.float64())) for name in columns])

    def table(batch: list[ReadBar]) -> Any:
        arrays = [
            pyarrow.array([getattr(bar, name) for bar in batch], type=schema.field(name).type)
            for name in columns
        ]
        return pyarrow.Table.from_arrays(arrays, schema=schema)

    with target(path, binary=True) as out, pyarrow.parquet.ParquetWriter(out, schema) as writer:
        writer.write_table(table(first))
        async for batch in rest:
            writer.write_table(table(batch))
