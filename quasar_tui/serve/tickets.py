"""Stream tickets: how a browser, which cannot set headers on a WebSocket, opens the stream.

A client with a key asks `POST /v1/stream/tickets` (scope `stream`) for a ticket, then offers
it as a WebSocket subprotocol, `quasar.ticket.<ticket>`, beside `quasar.v1`, which the server
selects:

    new WebSocket(url, ["quasar.v1", "quasar.ticket." + ticket])

So neither the key nor the ticket is ever part of a URL (which proxies and browsers log). A
ticket opens one connection, within `TICKET_SECONDS` of being issued, as the key it was issued
to; the key is checked again then, so a key revoked meanwhile opens nothing. Tickets live in
this server's memory only, at most `MAX_TICKETS` at a time.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quasar_tui.serve.problems import Problem

TICKET_SECONDS = 30.0
MAX_TICKETS = 10_000
APP_PROTOCOL = "quasar.v1"
TICKET_PROTOCOL = "quasar.ticket."


@dataclass(frozen=True)
class Ticket:
    key_id: str
    expires: float  # on the book's clock


@dataclass(frozen=True)
class Offered:
    """What a handshake offered: the ticket, and the subprotocol to select in the answer."""

    ticket: str
    protocol: str


def offered(protocols: Sequence[str]) -> Offered | None:
    """The ticket among the offered subprotocols, if any; `quasar.v1` is selected when offered
    (a browser fails a handshake whose answer selects none of its subprotocols)."""
    for protocol in protocols:
        if protocol.startswith(TICKET_PROTOCOL):
            chosen = APP_PROTOCOL if APP_PROTOCOL in protocols else protocol
            return Offered(protocol.removeprefix(TICKET_PROTOCOL), chosen)
    return None


class TicketBook:
    """Issued tickets until used or expired."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tickets: dict[str, Ticket] = {}

    def issue(self, key_id: str) -> str:
        now = self.clock()
        if len(self._tickets) >= MAX_TICKETS:
            self._tickets = {t: v for t, v in self._tickets.items() if v.expires > now}
        if len(self._tickets) >= MAX_TICKETS:
            raise Problem(
                503,
                f"{MAX_TICKETS} stream tickets are waiting to be used; retry in a few seconds",
                headers={"Retry-After": str(int(TICKET_SECONDS))},
            )
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = Ticket(key_id, now + TICKET_SECONDS)
        return ticket

    def redeem(self, ticket: str) -> str:
        """The key id a ticket was issued to; it cannot be used again. A Problem (401) for a
        ticket that is unknown, used or expired."""
        found = self._tickets.pop(ticket, None)
        if found is None or found.expires <= self.clock():
            raise Problem(
                401,
                "the stream ticket is not valid: tickets open one connection within "
                f"{int(TICKET_SECONDS)}s; ask POST /v1/stream/tickets for a new one",
            )
        return found.key_id
