"""Counters of the server and the engine's published stats, in Prometheus text format 0.0.4."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from quasar_tui.engine.publisher import EngineStatus

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


@dataclass
class ServerMetrics:
    """What the server counts itself; the stream and cache report their own figures here."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)
    stream_messages: int = 0
    stream_ticks: int = 0
    stream_dropped: int = 0
    rate_limited: int = 0

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        hist = self.latency.get(route)
        if hist is None:
            hist = self.latency[route] = Histogram()
        hist.observe(seconds)


def _label(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _labels(**labels: object) -> str:
    return "{" + ",".join(f"{k}={_label(v)}" for k, v in labels.items()) + "}"


def _family(name: str, kind: str, text: str) -> Iterator[str]:
    yield f"# HELP {name} {text}"
    yield f"# TYPE {name} {kind}"


def render(
    metrics: ServerMetrics,
    *,
    cache: Mapping[str, float],
    stream_clients: int,
    engine: EngineStatus | None,
) -> str:
    """The whole exposition; `engine` is None when the database could not be read."""
    lines: list[str] = []
    lines += _family("quasar_api_requests_total", "counter", "HTTP requests by route and status")
    for (route, status), n in sorted(metrics.requests.items()):
        lines.append(f"quasar_api_requests_total{_labels(route=route, status=status)} {n}")
    lines += _family("quasar_api_request_duration_seconds", "histogram", "time to answer, by route")
    for route, hist in sorted(metrics.latency.items()):
        running = 0
        for bound, n in zip((*BUCKETS, "+Inf"), hist.counts, strict=True):
            running += n
            le = _labels(route=route, le=bound)
            lines.append(f"quasar_api_request_duration_seconds_bucket{le} {running}")
        lines.append(f"quasar_api_request_duration_seconds_sum{_labels(route=route)} {hist.total}")
        lines.append(f"quasar_api_request_duration_seconds_count{_labels(route=route)} {running}")
    for name, value in sorted(cache.items()):
        kind = "gauge" if name in ("entries", "bytes") else "counter"
        suffix = "" if kind == "gauge" else "_total"
        lines += _family(f"quasar_api_cache_{name}{suffix}", kind, f"answer cache {name}")
        lines.append(f"quasar_api_cache_{name}{suffix} {value}")
    lines += _family("quasar_api_rate_limited_total", "counter", "requests refused with 429")
    lines.append(f"quasar_api_rate_limited_total {metrics.rate_limited}")
    lines += _family("quasar_stream_clients", "gauge", "connected stream clients")
    lines.append(f"quasar_stream_clients {stream_clients}")
    for name, value, text in (
        ("messages", metrics.stream_messages, "messages queued to stream clients"),
        ("ticks", metrics.stream_ticks, "conflated ticks fanned out to stream clients"),
        ("dropped_clients", metrics.stream_dropped, "stream clients dropped as too slow"),
    ):
        lines += _family(f"quasar_stream_{name}_total", "counter", text)
        lines.append(f"quasar_stream_{name}_total {value}")
    if engine is not None:
        lines += list(_engine_lines(engine))
    return "\n".join(lines) + "\n"


def _engine_lines(engine: EngineStatus) -> Iterator[str]:
    """Writer queues and lag, and provider states, as the engine last published them."""
    yield from _family("quasar_engine_running", "gauge", "1 while an engine holds the lock")
    yield f"quasar_engine_running {int(engine.running)}"
    stats: dict[str, Any] = engine.stats if engine.running else {}
    writers: dict[str, dict[str, Any]] = stats.get("writers") or {}
    for key, text in (
        ("queue_depth", "rows waiting in the writer's queue"),
        ("lag_seconds", "age of the oldest row not yet written"),
        ("rows_per_second", "rows written per second"),
        ("rows_written", "rows written since the engine started"),
    ):
        yield from _family(f"quasar_writer_{key}", "gauge", text)
        for table, figures in sorted(writers.items()):
            if key in figures:
                yield f"quasar_writer_{key}{_labels(table=table)} {figures[key]}"
    providers: dict[str, Any] = stats.get("providers") or {}
    yield from _family("quasar_provider_state", "gauge", "1 for each provider's current state")
    for name, state in sorted(providers.items()):
        label = state.get("state") if isinstance(state, dict) else state
        yield f"quasar_provider_state{_labels(provider=name, state=label)} 1"
