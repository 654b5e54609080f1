"""TLS for the SDK's WebSocket client, done over a plain stream transport with `ssl.MemoryBIO`
(as asyncio's own SSL transport does inside). Why not asyncio's: the client paces its socket
reads on a busy feed, and pausing an SSL transport pauses only the decrypting, not the socket
reads under it; here pausing the transport pauses the socket itself, on asyncio's loop and
uvloop alike.
"""

from __future__ import annotations

import contextlib
import ssl

READ_SIZE = 64 * 1024  # bytes asked of each decrypting read (it returns a record at most)


class TlsSession:
    """One client connection's TLS state: bytes from the socket in, plaintext and bytes to
    send out. Certificate and host name checks are the context's, as with asyncio's."""

    def __init__(self, context: ssl.SSLContext, hostname: str) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=hostname)
        self.established = False

    def start(self) -> bytes:
        """The handshake's first bytes to send."""
        self._handshake()
        return self._outgoing.read()

    def receive(self, data: bytes) -> tuple[bytes, bytes]:
        """(plaintext, bytes to send back) for bytes read from the socket; `ssl.SSLError`
        when the handshake fails (an untrusted certificate) or a record is broken."""
        self._incoming.write(data)
        if not self.established:
            self._handshake()
            if not self.established:
                return b"", self._outgoing.read()
        chunks: list[bytes] = []
        read = self._tls.read
        while True:
            try:
                chunk = read(READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break  # more to come, or the server ended TLS (its TCP close follows)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), self._outgoing.read()

    def send(self, data: bytes) -> bytes:
        """`data` as records to write to the socket."""
        self._tls.write(data)
        return self._outgoing.read()

    def close(self) -> bytes:
        """The close_notify to write before closing the socket (the server's is not awaited)."""
        with contextlib.suppress(ssl.SSLError):
            self._tls.unwrap()
        return self._outgoing.read()

    def _handshake(self) -> None:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return
        self.established = True
