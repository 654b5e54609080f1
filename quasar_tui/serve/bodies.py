"""Read-layer results as response bodies: JSON, CSV or an Arrow IPC stream.

JSON carries the series and interval around the rows; CSV and Arrow are the bare table with a
`provider` column, as `quasar_tui.open().bars(..., as_="arrow")` returns it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from quasar_tui.frames import fields, table
from quasar_tui.serve.cache import Answer
from quasar_tui.store.read import BarsRead, OpenGap, ReadBar, ReadTick, TicksRead
from quasar_tui.store.series import Series

Format = Literal["json", "csv", "arrow"]
JSON = "application/json"
CSV = "text/csv; charset=utf-8"
ARROW = "application/vnd.apache.arrow.stream"

_encoder = msgspec.json.Encoder()
_BAR_COLUMNS = fields(ReadBar)
_TICK_COLUMNS = fields(ReadTick)


def json_answer(value: Any) -> Answer:
    return Answer(_encoder.encode(value), JSON)


def _series(series: Series) -> dict[str, Any]:
    return {"series": series.key, "common": series.common, "provider": series.provider}


def bars_answer(read: BarsRead, fmt: Format) -> Answer:
    if fmt == "json":
        return json_answer(
            {
                **_series(read.series),
                "interval": read.interval.value,
                "derived_from": read.source_interval.value if read.derived else None,
                "bars": read.bars,
            }
        )
    return _table(read.bars, _BAR_COLUMNS, read.series.provider, fmt)


def ticks_answer(read: TicksRead, fmt: Format) -> Answer:
    if fmt == "json":
        return json_answer({**_series(read.series), "ticks": read.ticks})
    return _table(read.ticks, _TICK_COLUMNS, read.series.provider, fmt)


def gaps_answer(gaps: list[OpenGap]) -> Answer:
    return json_answer({"gaps": gaps})


def symbols_answer(series: list[Series]) -> Answer:
    """Common symbols with their providers in priority order, then unmapped series."""
    common: dict[str, list[dict[str, str]]] = {}
    unmapped: list[dict[str, str]] = []
    for s in series:
        entry = {"provider": s.provider, "symbol": s.symbol, "series": s.key}
        if s.common is None:
            unmapped.append(entry)
        else:
            common.setdefault(s.common, []).append(entry)
    return json_answer(
        {
            "symbols": [{"common": c, "providers": p} for c, p in common.items()],
            "unmapped": unmapped,
        }
    )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else value


def _table(records: Sequence[Any], columns: list[str], provider: str, fmt: Format) -> Answer:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*columns, "provider"])
        for record in records:
            row = dataclasses.astuple(record)
            writer.writerow([*(_cell(v) for v in row), provider])
        return Answer(out.getvalue().encode("utf-8"), CSV)
    arrow = table(records, columns, "arrow", extra={"provider": provider})
    import pyarrow  # present: table() above needed it

    sink = io.BytesIO()
    with pyarrow.ipc.new_stream(sink, arrow.schema) as stream:
        stream.write_table(arrow)
    return Answer(sink.getvalue(), ARROW)
