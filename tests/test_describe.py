"""What people read: control characters escaped, network failures in words, not reprs."""

from __future__ import annotations

import socket

import httpx
import pytest

from quasar_tui.core.errors import QuasarError
from quasar_tui.core.messages import one_line
from quasar_tui.core.text import printable
from quasar_tui.sdk.http import HttpClient, ProviderHTTPError


def test_printable_escapes_what_would_drive_the_terminal() -> None:
    assert printable("AAPL") == "AAPL"
    assert printable("Ünïcode €") == "Ünïcode €"
    assert printable("\x1b]0;pwn\x07\x1b[2J") == "\\x1b]0;pwn\\x07\\x1b[2J"
    assert printable("a\nb\tc\rd\x7f\x9b") == "a\\nb\\tc\\rd\\x7f\\x9b"
    assert printable("abc\u202edef") == "abc\\u202edef"  # right-to-left override


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_refused_connection_is_worded_for_people() -> None:
    client = HttpClient(retries=0)
    try:
        with pytest.raises(ProviderHTTPError) as raised:
            await client.get(f"http://127.0.0.1:{_free_port()}/symbols?token=secret")
    finally:
        await client.aclose()
    assert str(raised.value) == "cannot reach 127.0.0.1: connection refused"
    assert one_line(raised.value) == "cannot reach 127.0.0.1: connection refused"


def test_errors_are_one_line_without_python_reprs() -> None:
    request = httpx.Request("GET", "https://api.kraken.com/0/public/Assets")
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as cause:
            raise httpx.ConnectError(
                "[Errno -2] Name or service not known", request=request
            ) from cause
    except httpx.ConnectError as exc:
        assert one_line(exc) == "cannot reach api.kraken.com: name not resolved"
    try:
        try:
            raise TimeoutError
        except TimeoutError:
            raise ConnectionError("no message for 5 s") from None
    except ConnectionError as watchdog:
        assert one_line(watchdog) == "ConnectionError: no message for 5 s"
    assert one_line(QuasarError("KRAKEN has no asset 'X'\nsecond line")) == (
        "KRAKEN has no asset 'X'"
    )
    assert one_line(KeyError("x")) == "KeyError: 'x'"
