"""The HTTP client providers use: the provider's rate limit, and 429/5xx retried with backoff."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from quasar_tui.core.clock import utc_now
from quasar_tui.core.errors import QuasarError
from quasar_tui.core.messages import one_line
from quasar_tui.sdk.models import RateBudget

log = logging.getLogger("quasar.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ProviderHTTPError(QuasarError):
    """A request that failed for good (after retries, or with a status not worth retrying);
    its message is worded for the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utc_now()).total_seconds())


class HttpClient:
    """httpx.AsyncClient behind an AsyncLimiter, with bounded retries.

    Each retry waits `Retry-After` when the server gives one, else an exponential backoff with
    jitter capped at `max_backoff`; URLs are logged and put in errors without their query (it
    may hold a token).
    """

    def __init__(
        self,
        rate_limit: tuple[int, float] = (10, 1.0),
        concurrency: int = 4,
        retries: int = 5,
        base_backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        calls, period = rate_limit
        self.calls, self.period = max(1, calls), max(0.001, period)
        self.limiter = AsyncLimiter(self.calls, self.period)
        self.clock = clock
        self._sent: deque[float] = deque(maxlen=self.calls)  # when the last requests went out
        self.semaphore = asyncio.Semaphore(max(1, concurrency))
        self.retries = retries
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    async def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return await self.request("GET", url, params=params)

    async def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        return (await self.get(url, params)).json()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries. `params` are added to any query the URL already has (a paginated
        API's `next_url`), where plain httpx would replace it."""
        params = kwargs.pop("params", None)
        if params:
            url = str(httpx.URL(url).copy_merge_params(params))
        attempt = 0
        while True:
            attempt += 1
            async with self.semaphore:
                await self.limiter.acquire()
                self._sent.append(self.clock())
                try:
                    response = await self._client.request(method, url, **kwargs)
                except httpx.TransportError as exc:
                    if attempt > self.retries:
                        host = httpx.URL(url).host
                        raise ProviderHTTPError(one_line(exc, host)) from exc
                    await asyncio.sleep(self._backoff(attempt))
                    continue
            if response.status_code < 400:
                return response
            if response.status_code not in RETRY_STATUSES or attempt > self.retries:
                raise ProviderHTTPError(
                    f"{_safe(url)}: HTTP {response.status_code}", response.status_code
                )
            wait = retry_after_seconds(response)
            if wait is None:
                wait = self._backoff(attempt)
            log.info(
                "HTTP %s from %s, retry %d in %.2fs",
                response.status_code,
                _safe(url),
                attempt,
                wait,
            )
            await asyncio.sleep(min(wait, self.max_backoff * 4))

    def budget(self) -> RateBudget:
        """The rate limit and the requests it still allows in the period ending now."""
        since = self.clock() - self.period
        used = sum(1 for sent in self._sent if sent > since)
        return RateBudget(self.calls, self.period, self.calls - used)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.base_backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def aclose(self) -> None:
        await self._client.aclose()


def _safe(url: str) -> str:
    """The URL without its query string, which may carry an API token."""
    return url.split("?", 1)[0]


class _RedactQueries(logging.Filter):
    """httpx logs every request URL at INFO, query (and so API token) included: cut it off."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _safe(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_RedactQueries())
