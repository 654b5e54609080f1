"""A lean WebSocket client for live feeds: `await connect(url)` where a provider's `_connect`
would call `websockets.connect(url)`.

Why: on a feed of one trade a message, the general `websockets` client spends about 5 µs a
message in its per-frame machinery (a generator parser, an assembler queue, a coroutine per
message), more than the provider's own parsing. This one parses every frame a socket read
brought in one loop and hands the messages over from a deque; and on a busy stream it reads the
socket at most every `read_every` seconds (5 ms), so one read brings tens of messages rather
than one: a feed sending messages one by one otherwise wakes the event loop, and decrypts, once
a message. A read after a quiet spell happens at once, so pacing adds at most `read_every` to a
message's way. TLS is done here (`tls.py`) so that pausing reads pauses the socket itself.

It does what a market-data stream needs: ws:// and wss:// (the system's, or the user's
SSL_CERT_FILE, trust), extra handshake headers, text messages as str and binary as bytes
(fragmented ones joined), pings answered, the closing handshake, a message size limit
(`max_size`), and backpressure: it stops reading while `max_queue` messages wait, so a reader
that cannot keep up leaves the rest in the socket. No extensions (compression), no proxies, no
pings of its own (the feed loop's idle watchdog notices a silent stream).

Iterating over it (`async for message in conn`) ends when the server closes normally (codes
1000 and 1001) and raises `WebSocketError` when the connection ends any other way.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import cast
from urllib.parse import urlsplit

from quasar_tui.sdk.tls import TlsSession

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 64 * 1024  # bytes of handshake response at most
CLOSE_TIMEOUT = 2.0  # seconds the closing handshake may take before the socket is dropped
_TEXT, _BINARY, _CLOSE, _PING, _PONG = 1, 2, 8, 9, 10
_NORMAL = (1000, 1001)
READ_EVERY = 0.005  # seconds between socket reads on a busy stream
BIG_READ = 64 * 1024  # a read this large means the socket holds plenty: read on without a rest


class WebSocketError(ConnectionError):
    """The handshake was refused, the server broke the protocol, or the connection ended
    without a normal close."""


async def connect(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_size: int = 2**20,
    max_queue: int = 64,
    ssl_context: ssl.SSLContext | None = None,
    open_timeout: float = 15.0,
    read_every: float = READ_EVERY,
) -> WebSocket:
    """Open a WebSocket to `url` (ws:// or wss://) and complete the handshake; `read_every=0`
    reads whenever data arrives."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise WebSocketError(f"not a WebSocket address: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port is not None:
        host = f"{host}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    request = _request(target, host, key, headers or {})
    loop = asyncio.get_running_loop()
    hostname = parts.hostname
    tls = TlsSession(ssl_context or ssl.create_default_context(), hostname) if secure else None
    async with asyncio.timeout(open_timeout):
        transport, conn = await loop.create_connection(
            lambda: WebSocket(request, key, max_size, max_queue, tls, read_every), hostname, port
        )
        try:
            await asyncio.shield(conn.opened)
        except BaseException:
            transport.abort()
            raise
    return conn


def _request(target: str, host: str, key: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: final, masked (RFC 6455 5.3)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    if not size:
        return head + mask
    pad = (mask * (size // 4 + 1))[:size]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(pad, "big")
    return head + mask + masked.to_bytes(size, "big")


class WebSocket(asyncio.Protocol):
    """One client connection; made by `connect`."""

    def __init__(
        self,
        request: bytes,
        key: bytes,
        max_size: int,
        max_queue: int,
        tls: TlsSession | None,
        read_every: float,
    ) -> None:
        self._request = request
        self._tls = tls
        self._read_every = read_every
        self._accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        self._max_size = max_size
        self._max_queue = max_queue
        self._loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = self._loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._open = False
        self._messages: deque[str | bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._reading_paused = False  # `max_queue` messages wait for the reader
        self._resting = False  # between paced reads
        self._writable: asyncio.Future[None] | None = None
        self._close_sent = False
        self._ended: WebSocketError | None = None  # why the stream ended, if not normally
        self._lost: asyncio.Future[None] = self._loop.create_future()

    # -- what a provider uses ----------------------------------------------------------------

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        messages, take = self._messages, self._take
        while True:
            while messages:
                yield take()
            if not await self._more():
                return

    async def recv(self) -> str | bytes:
        """The next message (iterating is cheaper for a stream)."""
        while not self._messages:
            if not await self._more():
                raise WebSocketError("the connection is closed")
        return self._take()

    def _take(self) -> str | bytes:
        message = self._messages.popleft()
        if self._reading_paused and len(self._messages) <= self._max_queue // 4:
            self._reading_paused = False
            self._set_reading()
        return message

    async def _more(self) -> bool:
        """Wait for more messages; False at the end of a normally closed stream (and
        `WebSocketError` at the end of any other)."""
        if self._lost.done() or (self._close_sent and not self._open):
            if self._ended is not None:
                raise self._ended
            return False
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        return True

    async def send(self, message: str | bytes) -> None:
        """Send one message: str as text, bytes as binary."""
        if not self._open or self._close_sent or self._transport is None:
            raise self._ended or WebSocketError("the connection is closed")
        if isinstance(message, str):
            self._write(_frame(_TEXT, message.encode()))
        else:
            self._write(_frame(_BINARY, bytes(message)))
        if self._writable is not None:
            await asyncio.shield(self._writable)

    async def close(self, code: int = 1000) -> None:
        """The closing handshake (dropping the socket if the server does not answer)."""
        transport = self._transport
        if transport is None or self._lost.done():
            return
        if self._open and not self._close_sent:
            self._close_sent = True
            self._write(_frame(_CLOSE, code.to_bytes(2, "big")))
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), CLOSE_TIMEOUT)
        except TimeoutError:
            transport.abort()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not always an asyncio.Transport subclass (uvloop's).
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request if self._tls is None else self._tls.start())

    def data_received(self, data: bytes) -> None:
        if self._open and len(data) < BIG_READ:
            self._rest()  # a busy stream's next read waits; the handshake's never does
        if self._tls is not None:
            data = self._decrypt(data)
            if not data:
                return
        buffer = self._buffer + data if self._buffer else data
        if self.opened.done() and not self._open:
            return  # closing: nothing more is read
        if not self._open:
            head, found, buffer = buffer.partition(b"\r\n\r\n")
            if not found:
                self._buffer = head
                if len(head) > MAX_HEAD:
                    self._fail_handshake(f"a handshake answer longer than {MAX_HEAD} bytes")
                return
            if not self._handshake(head):
                return
        self._buffer = self._frames(buffer)
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self._messages or not self._open):
            waiter.set_result(None)
        if not self._reading_paused and len(self._messages) >= self._max_queue:
            self._reading_paused = True
            self._set_reading()

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        if self._ended is None and not self._close_sent:
            why = f": {exc}" if exc else ""
            self._ended = WebSocketError(f"the connection dropped without a close{why}")
        if not self.opened.done():
            self.opened.set_exception(self._ended or WebSocketError("the connection closed"))
        if not self._lost.done():
            self._lost.set_result(None)
        for future in (self._waiter, self._writable):
            if future is not None and not future.done():
                future.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # -- the socket ----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._transport is None:
            return
        self._transport.write(data if self._tls is None else self._tls.send(data))

    def _close_transport(self) -> None:
        if self._transport is None:
            return
        if self._tls is not None and self._tls.established:
            self._transport.write(self._tls.close())
        self._transport.close()

    def _decrypt(self, data: bytes) -> bytes:
        """Plaintext from socket bytes; the HTTP upgrade goes out once TLS is established."""
        tls = self._tls
        assert tls is not None and self._transport is not None
        was_established = tls.established
        try:
            plain, reply = tls.receive(data)
        except ssl.SSLError as exc:
            if not self.opened.done():
                self.opened.set_exception(exc)  # as asyncio's own TLS would raise it
            else:
                self._ended = WebSocketError(f"the connection's TLS failed: {exc}")
                self._open = False
            self._transport.abort()
            return b""
        if reply:
            self._transport.write(reply)
        if tls.established and not was_established:
            self._write(self._request)
        return plain

    def _rest(self) -> None:
        """Pause the socket for `read_every` after a read: what arrives meanwhile is taken in
        one read then."""
        if self._read_every > 0 and not self._resting:
            self._resting = True
            self._set_reading()
            self._loop.call_later(self._read_every, self._rested)

    def _rested(self) -> None:
        self._resting = False
        self._set_reading()

    def _set_reading(self) -> None:
        """Read while neither resting nor full (pausing and resuming are idempotent)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._resting or self._reading_paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # -- the protocol --------------------------------------------------------------------------

    def _handshake(self, head: bytes) -> bool:
        status, *lines = head.decode("latin-1").split("\r\n")
        parts = status.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            self._fail_handshake(f"the server refused the WebSocket upgrade: {status}")
            return False
        fields: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if fields.get("upgrade", "").lower() != "websocket":
            self._fail_handshake("the server's answer does not upgrade to WebSocket")
        elif fields.get("sec-websocket-accept") != self._accept:
            self._fail_handshake("the server's Sec-WebSocket-Accept does not match the key")
        elif fields.get("sec-websocket-extensions"):
            self._fail_handshake("the server chose an extension that was not offered")
        else:
            self._open = True
            self.opened.set_result(None)
            return True
        return False

    def _fail_handshake(self, reason: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(WebSocketError(reason))
        if self._transport is not None:
            self._transport.abort()

    def _frames(self, buffer: bytes) -> bytes:
        """Take every whole frame in `buffer`; return what is left of it."""
        pos, end, size_limit = 0, len(buffer), self._max_size
        deliver = self._messages.append
        while end - pos >= 2 and self._open:
            first, second = buffer[pos], buffer[pos + 1]
            size, start = second & 0x7F, pos + 2
            if size == 126:
                if end - pos < 4:
                    break
                size, start = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), pos + 4
            elif size == 127:
                if end - pos < 10:
                    break
                size, start = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), pos + 10
            if second & 0x80 or first & 0x70:
                return self._fail(1002, "a masked frame or reserved bits from the server")
            if size > size_limit:
                return self._fail(1009, f"a frame over the {size_limit} byte limit")
            if start + size > end:
                break
            payload = buffer[start : start + size]
            pos = start + size
            opcode = first & 0x0F
            if first & 0x80 and opcode == _TEXT and not self._fragments:
                try:
                    deliver(payload.decode())
                except UnicodeDecodeError:
                    return self._fail(1007, "a text message that is not UTF-8")
            elif opcode in (_TEXT, _BINARY, 0):
                if not self._fragment(opcode, payload, bool(first & 0x80)):
                    return b""
            else:
                self._control(opcode, payload)
        return buffer[pos:]

    def _fragment(self, opcode: int, payload: bytes, final: bool) -> bool:
        """A data frame other than a whole text message; False when the stream failed."""
        if (opcode == 0) != bool(self._fragments or self._fragment_opcode):
            self._fail(1002, "a continuation frame out of place")
            return False
        if opcode:
            self._fragment_opcode = opcode
        self._fragments.append(payload)
        if sum(map(len, self._fragments)) > self._max_size:
            self._fail(1009, f"a message over the {self._max_size} byte limit")
            return False
        if not final:
            return True
        data, kind = b"".join(self._fragments), self._fragment_opcode
        self._fragments, self._fragment_opcode = [], 0
        if kind == _BINARY:
            self._messages.append(data)
            return True
        try:
            self._messages.append(data.decode())
        except UnicodeDecodeError:
            self._fail(1007, "a text message that is not UTF-8")
            return False
        return True

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == _PING:
            if not self._close_sent:
                self._write(_frame(_PONG, payload))
        elif opcode == _CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if code not in _NORMAL:
                reason = payload[2:].decode("utf-8", "replace")
                detail = f"{code} {reason}".strip() if code != 1005 else "no code"
                self._ended = WebSocketError(f"the server closed the connection ({detail})")
            if not self._close_sent:
                self._close_sent = True
                self._write(_frame(_CLOSE, payload[:2]))
            self._open = False
            self._close_transport()
        elif opcode != _PONG:
            self._fail(1002, f"a frame of unknown opcode {opcode}")

    def _fail(self, code: int, reason: str) -> bytes:
        """The server broke the protocol: say why, close, and take nothing more."""
        self._ended = WebSocketError(f"the server sent {reason}")
        if self._transport is not None and not self._close_sent:
            self._close_sent = True
            self._write(_frame(_CLOSE, code.to_bytes(2, "big")))
            self._close_transport()
        self._open = False
        return b""
