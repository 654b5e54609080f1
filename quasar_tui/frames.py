"""Rows as the table a notebook wants: pandas, Arrow or polars, each an optional extra.

Columns come from dataclass fields, so every reader's records turn into frames the same way.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Literal

from quasar_tui.core.errors import QuasarError

Shape = Literal["pandas", "arrow", "polars", "records"]
SHAPES: tuple[Shape, ...] = ("pandas", "arrow", "polars", "records")
_EXTRA = {"pandas": "pandas", "pyarrow": "arrow", "polars": "polars"}


class MissingExtraError(QuasarError):
    """An optional dependency is not installed."""


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingExtraError(
            f"{name} is not installed: pip install 'quasar-tui[{_EXTRA[name]}]' "
            "(or ask for as_='records')"
        ) from None


def table(
    records: Sequence[Any],
    columns: Sequence[str],
    shape: Shape,
    *,
    index: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    """`records` (dataclasses) with `columns`, plus constant `extra` columns, in `shape`.

    With `index`, pandas frames are indexed by that column (a UTC DatetimeIndex for times)."""
    if shape == "records":
        return list(records)
    data: dict[str, list[Any]] = {c: [getattr(r, c) for r in records] for c in columns}
    for name, value in (extra or {}).items():
        data[name] = [value] * len(records)
    if shape == "pandas":
        pandas = _module("pandas")
        frame = pandas.DataFrame(data, columns=list(data))
        if index is not None:
            frame[index] = pandas.to_datetime(frame[index], utc=True)
            frame = frame.set_index(index)
        return frame
    if shape == "arrow":
        return _module("pyarrow").table(data)
    if shape == "polars":
        return _module("polars").DataFrame(data)
    raise QuasarError(f"unknown result shape {shape!r}: use one of {', '.join(SHAPES)}")


def fields(record_type: type) -> list[str]:
    return [f.name for f in dataclasses.fields(record_type)]
