"""What one rule remembers of one series between trades, and when that makes it fire.

Pure logic, no I/O: a watch is given prices (or states, bars, the clock) and answers with a
message when its rule fires. Cooldown is applied by the caller (engine/alerts/evaluator.py),
which owns the persisted state; a watch only decides that an event happened.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from quasar_tui.registry.alerts import AlertRule, RuleState

INF = float("inf")


@dataclass
class Cross:
    """Price crosses above (or below) a level; re-armed once it is back beyond the hysteresis
    band, so a price trading around the level does not fire on every tick.

    `state.side` is the side it was last seen on: 'above' or 'below' (None before the first
    price: the first price only tells the side, it is not a crossing)."""

    rule: AlertRule
    state: RuleState
    level: float
    rearm: float
    up: bool

    @classmethod
    def of(cls, rule: AlertRule, state: RuleState) -> Cross:
        level = float(rule.level or 0.0)
        band = rule.hysteresis / 100.0
        up = rule.kind == "above"
        return cls(rule, state, level, level * (1 - band) if up else level * (1 + band), up)

    def bounds(self) -> tuple[float, float]:
        """(low, high): prices strictly between them cannot change this watch."""
        side = self.state.side
        if side is None:
            return INF, -INF
        if self.up:
            return (self.rearm, INF) if side == "above" else (-INF, self.level)
        return (self.level, INF) if side == "above" else (-INF, self.rearm)

    def see(self, price: float) -> bool:
        """Whether this price is a crossing of the level in the rule's direction."""
        side = self.state.side
        if self.up:
            if side == "below" and price >= self.level:
                self.state.side = "above"
                return True
            if side is None or (side == "above" and price < self.rearm):
                self.state.side = "above" if price >= self.level else "below"
            return False
        if side == "above" and price <= self.level:
            self.state.side = "below"
            return True
        if side is None or (side == "below" and price > self.rearm):
            self.state.side = "below" if price <= self.level else "above"
        return False


@dataclass
class Change:
    """A move of `percent` either way within `window` seconds of feed time: the lowest and
    highest prices of the window are kept in monotonic queues (amortised O(1) a trade)."""

    rule: AlertRule
    state: RuleState
    ratio: float
    window: float

    def __post_init__(self) -> None:
        self.lows: deque[tuple[float, float]] = deque()
        self.highs: deque[tuple[float, float]] = deque()

    @classmethod
    def of(cls, rule: AlertRule, state: RuleState) -> Change:
        return cls(rule, state, float(rule.percent or 0.0) / 100.0, float(rule.window_s or 0))

    def see(self, t: float, price: float) -> float | None:
        """The window's price it moved from (its low or high) when the move reaches the
        ratio either way; None otherwise."""
        lows, highs = self.lows, self.highs
        horizon = t - self.window
        while lows and lows[0][0] < horizon:
            lows.popleft()
        while highs and highs[0][0] < horizon:
            highs.popleft()
        while lows and lows[-1][1] >= price:
            lows.pop()
        while highs and highs[-1][1] <= price:
            highs.pop()
        lows.append((t, price))
        highs.append((t, price))
        low, high = lows[0][1], highs[0][1]
        start = None
        if low > 0 and price >= low * (1 + self.ratio):
            start = low
        elif high > 0 and price <= high * (1 - self.ratio):
            start = high
        if start is not None:  # the next alert needs a move of its own
            lows.clear()
            highs.clear()
            lows.append((t, price))
            highs.append((t, price))
        return start


@dataclass
class Stale:
    """No trade for `seconds` while the market is open. Time the market was closed does not
    count: the silence is measured from the later of the last trade and the last moment the
    market was seen closed. Fires once per silence (`state.side` 'stale' until a trade)."""

    rule: AlertRule
    state: RuleState
    seconds: float
    last_trade: float
    closed_seen: float = -INF

    def check(self, now: float, open_now: bool, traded: float) -> bool:
        """`traded`: when the series last traded (its watch's note), epoch seconds."""
        if traded > self.last_trade:
            self.last_trade = traded
            if self.state.side == "stale":
                self.state.side = "fresh"
        if not open_now:
            self.closed_seen = now
            return False
        if self.state.side == "stale":
            return False
        if now - max(self.last_trade, self.closed_seen) >= self.seconds:
            self.state.side = "stale"
            return True
        return False


BAD_STATES = ("error", "crashed", "parked")


def provider_turn(state: RuleState, provider_state: str) -> str | None:
    """'bad' or 'back' when a provider's state turns bad or comes back from bad."""
    bad = provider_state.split(":", 1)[0].strip() in BAD_STATES
    if bad and state.side != "bad":
        state.side = "bad"
        return "bad"
    if provider_state == "connected" and state.side != "good":
        was_bad = state.side == "bad"
        state.side = "good"
        return "back" if was_bad else None
    return None
