"""The messages between the engine and a provider host, and their framing.

Each frame is a 4-byte big-endian length and a msgpack-encoded tagged struct. Requests carry an
`id`; everything the host sends about a request carries the same `id`. Live records and state
changes are not tied to a request.
"""

from __future__ import annotations

import asyncio
import struct
from datetime import datetime
from typing import Any

import msgspec

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk.models import Bar, Quote, RateBudget, SubscriptionRefused, SymbolInfo, Tick

MAX_FRAME = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")


class Msg(msgspec.Struct, tag=True, tag_field="t", array_like=True, omit_defaults=True):
    """Base of every message."""


# -- engine to host ----------------------------------------------------------------------------


class Start(Msg):
    """The first frame: the provider's code and what it is given. Never in argv or environment."""

    source: str
    filename: str
    preferences: dict[str, Any]
    secrets: dict[str, str]


class ListSymbols(Msg):
    id: int


class History(Msg):
    id: int
    symbol: str
    start: datetime
    end: datetime
    interval: Interval


class Trades(Msg):
    id: int
    symbol: str
    since: datetime


class Subscribe(Msg):
    """The whole live subscription set: symbol -> intervals (replaces the previous set)."""

    subs: dict[str, list[Interval]]


class Observing(Msg):
    """The engine has marked where its series are observed from: the feed may subscribe."""


class Cancel(Msg):
    id: int


class Ping(Msg):
    id: int


class Stop(Msg):
    pass


# -- host to engine ----------------------------------------------------------------------------


class Profile(msgspec.Struct, array_like=True, omit_defaults=True):
    """What the engine needs to know of the running instance to plan for it (class
    attributes and which optional methods it has), since it never sees the instance."""

    kind: str
    has_history: bool = False
    has_trades: bool = False
    fills_trades: bool = False
    bars_have_close_flag: bool = False
    intervals: list[Interval] | None = None
    max_range: dict[Interval, float] = {}  # interval -> seconds


class Ready(Msg):
    name: str
    kind: str
    class_name: str
    isolation: str
    capabilities: dict[str, Any]
    profile: Profile


class Symbols(Msg):
    id: int
    items: list[SymbolInfo]


class Bars(Msg):
    id: int
    items: list[Bar]
    budget: RateBudget | None = None  # what the provider's rate limit still allows


class TickBatch(Msg):
    id: int
    items: list[Tick]


class Done(Msg):
    id: int
    budget: RateBudget | None = None


class Failed(Msg):
    """A request failed (id) or the host cannot go on (id 0); `error` is one line."""

    id: int
    error: str


class Pong(Msg):
    id: int


class Live(Msg):
    """Records of the live feed, each kind in the order it was parsed, and how many messages
    the feed read since the last batch (heartbeats and acks included)."""

    messages: int = 0
    ticks: list[Tick] = []
    quotes: list[Quote] = []
    bars: list[Bar] = []
    refused: list[SubscriptionRefused] = []


class State(Msg):
    """The live feed's state: connecting, connected, disconnected (`idle_timeout` when the
    feed went silent), error (could not connect), bad-message, idle (stopped); "exited" and
    "parked" come from the engine's side when the host is gone."""

    state: str
    detail: str | None = None
    idle_timeout: bool = False


class LogLine(Msg):
    level: int
    line: str


ToHost = Start | ListSymbols | History | Trades | Subscribe | Observing | Cancel | Ping | Stop
FromHost = Ready | Symbols | Bars | TickBatch | Done | Failed | Pong | Live | State | LogLine

_encoder = msgspec.msgpack.Encoder()


def frame(message: Msg) -> bytes:
    body = _encoder.encode(message)
    return _HEADER.pack(len(body)) + body


class ProtocolError(ConnectionError):
    """The other side sent something that is not a frame of this protocol."""


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next frame's body, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("the stream ended inside a frame header") from None
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"a frame of {size} bytes is over the {MAX_FRAME} byte limit")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ProtocolError("the stream ended inside a frame") from None


def decoder(kind: Any) -> msgspec.msgpack.Decoder:
    return msgspec.msgpack.Decoder(kind)
