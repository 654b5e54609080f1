"""Announcing written bars to other processes: one NOTIFY per committed batch.

The writer calls `announce_written` after a batch commits (or inside its transaction, which
delivers the notification at commit); `quasar serve` listens on `CHANNEL` to drop cached answers
of those series and to stream the new bars. A payload is small JSON, far below NOTIFY's limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from quasar_tui.store.database import Database

CHANNEL = "quasar_bars"

_NOTIFY = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"


class Written(msgspec.Struct, frozen=True):
    """Rows of one series committed in one batch: bars of `interval`, first to last start."""

    table: str
    provider: str
    symbol: str
    interval: str
    count: int
    last_ts: datetime
    first_ts: datetime | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Written)


def encode(written: Written) -> str:
    return _encoder.encode(written).decode("utf-8")


def decode(payload: str) -> Written:
    """A payload as `announce_written` sent it; msgspec.ValidationError for anything else."""
    return _decoder.decode(payload)


async def announce_written(conn: asyncpg.Connection | Database, batches: Sequence[Written]) -> None:
    """Notify listeners of committed bars, all series of a batch in one round trip."""
    if batches:
        await conn.execute(_NOTIFY, CHANNEL, [encode(b) for b in batches])
