"""Exceptions as the one line that the CLI, states, statuses, events, logs and the console
show: worded for people, never a Python repr."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

from quasar_tui.core.errors import QuasarError

_SOCKET_REASONS: dict[type[BaseException], str] = {
    socket.gaierror: "name not resolved",
    ConnectionRefusedError: "connection refused",
    ConnectionResetError: "connection reset",
    ConnectionAbortedError: "connection aborted",
    TimeoutError: "timed out",
    ssl.SSLCertVerificationError: "certificate not trusted",
    ssl.SSLError: "TLS handshake failed",
}
_ERRNO_REASONS = {
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ECONNREFUSED: "connection refused",
    errno.ETIMEDOUT: "timed out",
}
_TEXT_REASONS = (
    ("name or service not known", "name not resolved"),
    ("temporary failure in name resolution", "name not resolved"),
    ("nodename nor servname", "name not resolved"),
    ("connection refused", "connection refused"),
    ("timed out", "timed out"),
)


_NETWORK_LIBRARIES = frozenset({"httpx", "httpcore", "websockets", "aiohttp", "anyio"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from. Implicit context is followed only out of network
    libraries (they wrap that way); an error of ours raised while handling another, like a
    watchdog's, is about itself, not about the one it replaced."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        from_library = type(current).__module__.split(".")[0] in _NETWORK_LIBRARIES
        current = current.__cause__ or (current.__context__ if from_library else None)


def _host(exc: BaseException) -> str | None:
    """The host an httpx-style error was about (its `request.url.host`), if it says."""
    for link in _chain(exc):
        try:
            request = getattr(link, "request", None)
        except RuntimeError:  # httpx raises when the error carries no request
            continue
        host = getattr(getattr(request, "url", None), "host", None)
        if host:
            return str(host)
    return None


def network_reason(exc: BaseException) -> str | None:
    """'name not resolved', 'connection refused', ... when `exc` is a network failure."""
    for link in _chain(exc):
        for kind, reason in _SOCKET_REASONS.items():
            if isinstance(link, kind):
                return reason
        if isinstance(link, OSError) and link.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[link.errno]
    names = " ".join(
        type(link).__name__
        for link in _chain(exc)
        if type(link).__module__.split(".")[0] in _NETWORK_LIBRARIES
    )
    if "Timeout" in names:
        return "timed out"
    if any(word in names for word in ("ConnectError", "NetworkError", "ProtocolError")):
        text = " ".join(str(link) for link in _chain(exc)).lower()
        return next((why for clue, why in _TEXT_REASONS if clue in text), "connection failed")
    return None


def one_line(exc: BaseException, host: str | None = None) -> str:
    """An exception as one line for people: 'cannot reach api.kraken.com: name not resolved'
    for a network failure, the message of a QuasarError (already worded for the user), else the
    type and the first line of the text.

    The one describer for the CLI, the log, states, events and the console.
    """
    lines = str(exc).strip().splitlines()
    if isinstance(exc, QuasarError):
        return lines[0] if lines else type(exc).__name__
    reason = network_reason(exc)
    if reason is not None:
        where = host or _host(exc)
        return f"cannot reach {where}: {reason}" if where else f"network failure: {reason}"
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
