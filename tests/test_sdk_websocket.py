"""The SDK's lean WebSocket client against a real WebSocket server (the `websockets` library's)
on loopback: what a provider's feed gets from it, and how each way a connection can end is
told apart."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvloop
from fakes.binance import loopback_certificate
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from quasar_tui.sdk.websocket import WebSocketError, connect

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(
    handler: Handler, tls: ssl.SSLContext | None = None, **options: object
) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, ssl=tls, compression=None, **options) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"{'wss' if tls else 'ws'}://127.0.0.1:{port}"


async def test_messages_arrive_in_order_as_sent_over_tls(tmp_path: Path) -> None:
    await _exchange_over_tls(tmp_path)


def test_the_client_runs_on_uvloop_too(tmp_path: Path) -> None:
    """Provider code may run on uvloop (its transports are not asyncio.Transport's)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_exchange_over_tls(tmp_path))


async def _exchange_over_tls(tmp_path: Path) -> None:
    tls, trust = _server_tls(tmp_path)
    heard: list[str] = []

    async def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        heard.append(f"{conn.request.path} {conn.request.headers['X-Token']}")
        heard.append(str(await conn.recv()))
        for n in range(2000):
            await conn.send(f'{{"n":{n}}}')
        await conn.send(b"\x00\x01binary")
        await conn.send(["frag", "mented ", "text"])  # one message in three frames
        await conn.send("x" * 70_000)  # a 64-bit length
        await conn.close()

    async with server(handler, tls) as url:
        ws = await connect(f"{url}/ws?a=1", headers={"X-Token": "t1"}, ssl_context=trust)
        await ws.send('{"method":"SUBSCRIBE"}')
        got = [message async for message in ws]

    assert heard == ["/ws?a=1 t1", '{"method":"SUBSCRIBE"}']
    assert got[:2000] == [f'{{"n":{n}}}' for n in range(2000)]
    assert got[2000:] == [b"\x00\x01binary", "fragmented text", "x" * 70_000]


async def test_pings_are_answered_and_a_close_by_the_client_is_a_normal_one() -> None:
    closed: list[int | None] = []

    async def handler(conn: ServerConnection) -> None:
        pong = await conn.ping(b"are you there")
        await asyncio.wait_for(pong, 10)
        await conn.send("pong came")
        await conn.wait_closed()
        closed.append(conn.close_code)

    async with server(handler) as url:
        ws = await connect(url)
        assert await ws.recv() == "pong came"
        await ws.close()
        for _ in range(100):
            if closed:
                break
            await asyncio.sleep(0.05)
    assert closed == [1000]


@pytest.mark.parametrize(
    ("ending", "error"),
    [
        ("close 1011", "the server closed the connection (1011 overloaded)"),
        ("drop", "the connection dropped without a close"),
        ("oversize", "the server sent a frame over the 1000 byte limit"),
    ],
)
async def test_each_abnormal_end_is_an_error_after_the_messages_before_it(
    ending: str, error: str
) -> None:
    async def handler(conn: ServerConnection) -> None:
        await conn.send("first")
        if ending == "close 1011":
            await conn.close(1011, "overloaded")
        elif ending == "drop":
            conn.transport.abort()
        else:
            await conn.send("y" * 1001)
        await conn.wait_closed()

    got: list[str | bytes] = []
    async with server(handler) as url:
        ws = await connect(url, max_size=1000)
        with pytest.raises(WebSocketError) as caught:
            async for message in ws:
                got.append(message)
        await ws.close()
    assert got == ["first"]
    assert str(caught.value).startswith(error)


async def test_a_refused_upgrade_fails_the_connect_in_one_line() -> None:
    def refuse(_conn: ServerConnection, _request: Request) -> Response:
        return Response(404, "Not Found", Headers(), b"no such stream\n")

    async def handler(conn: ServerConnection) -> None:
        raise AssertionError("not reached")

    async with server(handler, process_request=refuse) as url:
        with pytest.raises(WebSocketError) as caught:
            await connect(f"{url}/nope")
    assert str(caught.value) == "the server refused the WebSocket upgrade: HTTP/1.1 404 Not Found"


def _server_tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(the server's context, a client context trusting it)."""
    cert, key = loopback_certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    return tls, ssl.create_default_context(cafile=cert)


async def test_a_busy_stream_is_read_in_few_socket_reads(tmp_path: Path) -> None:
    """Messages sent one by one, a millisecond apart, are taken a few reads at a time
    (one every `read_every`), not one read (one wakeup, one decryption) each."""
    total = 300

    async def handler(conn: ServerConnection) -> None:
        await conn.recv()
        for n in range(total):
            await conn.send(str(n))
            await asyncio.sleep(0.001)
        await conn.close()

    tls, trust = _server_tls(tmp_path)
    async with server(handler, tls) as url:
        ws = await connect(url, ssl_context=trust, read_every=0.02)
        reads = [0]
        received = ws.data_received

        def counted(data: bytes) -> None:
            reads[0] += 1
            received(data)

        ws.data_received = counted  # type: ignore[method-assign]
        await ws.send("go")
        got = [message async for message in ws]
    assert got == [str(n) for n in range(total)]
    assert reads[0] <= total // 5, reads[0]


async def test_an_untrusted_certificate_fails_the_connect(tmp_path: Path) -> None:
    async def handler(conn: ServerConnection) -> None:
        await conn.close()

    tls, _ = _server_tls(tmp_path)
    async with server(handler, tls) as url:
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            await connect(url)


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_a_reader_that_falls_behind_leaves_the_rest_in_the_socket(
    secure: bool, tmp_path: Path
) -> None:
    """Backpressure: while the reader takes nothing, the client stops reading at `max_queue`
    messages, so the server's sends wait once the sockets' buffers are full; once read,
    every message is there in order."""
    total, sent = 5_000, [0]

    async def handler(conn: ServerConnection) -> None:
        for n in range(total):
            await conn.send(f"{n:06d}" + "z" * 10_000)
            sent[0] += 1
        await conn.close()

    tls, trust = _server_tls(tmp_path) if secure else (None, None)
    async with server(handler, tls, write_limit=1024) as url:
        ws = await connect(url, max_queue=16, ssl_context=trust)
        held = await _until_stalled(sent)
        got = [message async for message in ws]
    assert held < total / 2  # the 50 MB did not all pile up in the reader's memory
    assert [int(str(m)[:6]) for m in got] == list(range(total))


async def _until_stalled(counter: list[int]) -> int:
    """The counter's value once it stopped moving for half a second."""
    last, still = -1, 0
    while still < 5:
        await asyncio.sleep(0.1)
        still = still + 1 if counter[0] == last else 0
        last = counter[0]
    return last


async def test_a_bad_address_is_refused_before_connecting() -> None:
    with pytest.raises(WebSocketError, match="not a WebSocket address: 'https://x'"):
        await connect("https://x")
