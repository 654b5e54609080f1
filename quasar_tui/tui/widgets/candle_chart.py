"""Candles with a volume pane, drawn by plotext into text the widget shows.

plotext keeps one global figure, so drawing happens only here, on the app's thread, and only
when the bars or the widget's size change (the text is cached in between). It is imported on
the first drawing: importing it costs a noticeable part of the console's start-up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from itertools import pairwise
from typing import Protocol

from rich.text import Text
from textual.app import RenderResult
from textual.events import Click
from textual.message import Message
from textual.widget import Widget

_BACKGROUND = re.compile(r"\x1b\[48;5;\d+m")
VOLUME_MIN_HEIGHT = 18
X_LABEL_SPACING = 22
MIN_SLOTS = 30
"""A series with fewer bars keeps candles this narrow (a first bar is not a wall)."""


class Candle(Protocol):
    """What a candle needs of a bar (stored bars and bars read back both have it)."""

    @property
    def ts(self) -> datetime: ...
    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...


@dataclass(frozen=True)
class Drawing:
    """How to draw the candles: lines over them (one value or None per bar), the bar under
    the cursor (marked by a vertical line), and the zone the time axis is labelled in."""

    overlays: tuple[Sequence[float | None], ...] = ()
    cursor: int | None = None
    zone: tzinfo = field(default=UTC)


def _tick_label(ts: datetime, intraday: bool, zone: tzinfo) -> str:
    return ts.astimezone(zone).strftime("%m-%d %H:%M" if intraday else "%Y-%m-%d")


def _y_ticks(low: float, high: float, count: int) -> list[float]:
    step = (high - low) / max(count - 1, 1)
    return [low + i * step for i in range(count)]


def _fmt_axis(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{value / 1e9:.1f}B"
    if magnitude >= 1e6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.0f}k"
    if magnitude >= 100:
        return f"{value:.1f}"
    return f"{value:.4g}"


def render_candles(
    bars: Sequence[Candle],
    width: int,
    height: int,
    intraday: bool,
    drawing: Drawing = Drawing(),
) -> str:
    """ANSI text of candles (and volume when there is room) exactly `width` x `height`."""
    n = len(bars)
    x = list(range(n))
    low = min(b.low for b in bars)
    high = max(b.high for b in bars)
    if high <= low:
        pad = abs(high) * 0.01 or 1.0
        low, high = low - pad, high + pad
    with_volume = height >= VOLUME_MIN_HEIGHT
    price_height = height - max(6, height // 4) if with_volume else height
    price_ticks = _y_ticks(low, high, max(2, min(6, price_height // 4)))
    volume_top = max(b.volume for b in bars) or 1.0
    volume_ticks = [0.0, volume_top / 2, volume_top]
    labels = [_fmt_axis(v) for v in (*price_ticks, *volume_ticks)]
    label_width = max(len(s) for s in labels)

    def padded(values: list[float]) -> list[str]:
        return [_fmt_axis(v).rjust(label_width) for v in values]

    count = max(2, min(n, width // X_LABEL_SPACING))
    x_positions = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)})
    x_labels = [_tick_label(bars[i].ts, intraday, drawing.zone) for i in x_positions]

    import plotext  # here, not at the top: see the module docstring

    plotext.terminal.limit(False, False)
    figure = plotext.figure
    figure.clear()
    figure.plot_size(width, height)
    if with_volume:
        figure.subplots(2, 1)
    figure.theme("dark")
    # plotext has no 1x1 grid of subplots (it fails): without volume, draw on the figure
    price = figure.subplot(1, 1) if with_volume else figure
    data = {
        "date": x,
        "open": [b.open for b in bars],
        "close": [b.close for b in bars],
        "high": [b.high for b in bars],
        "low": [b.low for b in bars],
    }
    price.draw(price.candlestick(data, style="candle"))
    for line in drawing.overlays:
        points = [(i, v) for i, v in enumerate(line) if v is not None]
        for (x0, y0), (x1, y1) in pairwise(points):
            price.draw(price.segment([x0, x1], [y0, y1], marker="braille"))
    if drawing.cursor is not None:
        price.line(drawing.cursor, orientation=1)
    x_limits = (-0.5, max(n, MIN_SLOTS) - 0.5)
    price.ruler("x").lim(*x_limits)
    price.ruler("y").lim(low, high)
    price.ruler("y").ticks(price_ticks, padded(price_ticks))
    if with_volume:
        price.plot_size(None, price_height)
        price.ruler("x").ticks([], [])
        volume = figure.subplot(2, 1)
        volume.draw(volume.bar(x, [b.volume for b in bars], width=0.4))
        volume.ruler("x").lim(*x_limits)
        volume.ruler("y").ticks(volume_ticks, padded(volume_ticks))
        volume.ruler("x").ticks(x_positions, x_labels)
    else:
        price.ruler("x").ticks(x_positions, x_labels)
    return _BACKGROUND.sub("", figure.build().string())


class CandleChart(Widget):
    """Shows `bars`; redraws only when they or the size change."""

    DEFAULT_CSS = """
    CandleChart { height: 1fr; width: 1fr; }
    CandleChart > .candle-chart--empty { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"candle-chart--empty"}

    class Picked(Message):
        """A click on the candles: `index` is the bar under it."""

        def __init__(self, index: int) -> None:
            self.index = index
            super().__init__()

    def __init__(
        self,
        empty_text: str = "no bars",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.empty_text = empty_text
        self.bars: Sequence[Candle] = []
        self.intraday = True
        self.drawing = Drawing()
        self._version = 0
        self._cache: tuple[tuple[int, int, int], Text] | None = None

    def show(
        self,
        bars: Sequence[Candle],
        *,
        intraday: bool,
        empty_text: str | None = None,
        drawing: Drawing | None = None,
    ) -> None:
        self.bars = bars
        self.intraday = intraday
        self.drawing = drawing or Drawing()
        if empty_text is not None:
            self.empty_text = empty_text
        self._version += 1
        self.refresh()

    def render(self) -> RenderResult:
        if not self.bars:
            return Text(self.empty_text, style=self.get_component_rich_style("candle-chart--empty"))
        width, height = self.content_size
        key = (self._version, width, height)
        if self._cache is None or self._cache[0] != key:
            ansi = render_candles(
                self.bars, max(width, 20), max(height, 6), self.intraday, self.drawing
            )
            self._cache = (key, Text.from_ansi(ansi, no_wrap=True, end=""))
        return self._cache[1]

    def on_click(self, event: Click) -> None:
        """The bar under the mouse, found from the price frame's corners as drawn."""
        if not self.bars or self._cache is None:
            return
        top = self._cache[1].plain.split("\n", 1)[0]
        left, right = top.find("┌"), top.find("┐")
        if left < 0 or right <= left + 1 or not left < event.x < right:
            return
        slots = max(len(self.bars), MIN_SLOTS)
        index = (event.x - left - 1) * slots // (right - left - 1)
        if index < len(self.bars):
            self.post_message(self.Picked(index))
