"""Where the API listens, and whether that exposes it: light enough for the CLI to import."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8400


@dataclass(frozen=True)
class Bind:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def exposure_warning(bind: Bind) -> str | None:
    """One line when keys and data would cross a network in clear text."""
    if bind.loopback or bind.tls:
        return None
    return (
        f"quasar serve: warning: listening on {bind.host}:{bind.port} without TLS; API keys and "
        "data cross the network in clear text (give --tls-cert and --tls-key, or bind 127.0.0.1)"
    )
