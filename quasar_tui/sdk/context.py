"""What a provider instance is given: its secrets, preferences and HTTP client."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from quasar_tui.sdk.http import HttpClient
from quasar_tui.sdk.models import RateBudget


class ProviderContext:
    """Read-only view of a provider's secrets and preferences.

    `get` reads a secret (the original interface's `context.get("api_token")`); `pref` reads a
    preference with the schema's default. Secrets are never part of `repr`.
    """

    def __init__(
        self,
        secrets: Mapping[str, str] | None = None,
        preferences: Mapping[str, Any] | None = None,
        http: HttpClient | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._secrets = dict(secrets or {})
        self.preferences = dict(preferences or {})
        self._http = http
        self.log = logger or logging.getLogger("quasar.provider")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._secrets.get(key, default)

    def secret_names(self) -> list[str]:
        return sorted(self._secrets)

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient()
        return self._http

    def rate_budget(self) -> RateBudget | None:
        """What the rate limit still allows; None before the first request."""
        return self._http.budget() if self._http is not None else None

    def __repr__(self) -> str:
        return f"ProviderContext(secrets={self.secret_names()}, preferences={self.preferences})"
