"""Rules indexed by series, evaluated on what the engine publishes; what fires goes to `sink`.

The per-trade cost is what matters. A message of trades of one series costs a pass for its
lowest and highest price, a dictionary lookup and two comparisons with the precomputed band
within which no price rule of that series can change (see `_SeriesWatch.low`/`high`); only
trades outside the band run the rules. Move-within-a-window rules see each message's lowest
and highest price (see `_changes`). Everything else (bars, gaps, provider states, finished
runs, silence) arrives at event rates, not trade rates.

Cooldown: a rule fires at most once per `cooldown_s` per series (or provider); an event within
it is noted (the side of a level moves on) but not alerted. States that change are collected
in `dirty` for the service to write, so a restart neither repeats nor forgets a crossing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from quasar_tui.engine.alerts.watches import INF, Change, Cross, Stale, provider_turn
from quasar_tui.engine.events import AlertFired, JobRun, TradesRead
from quasar_tui.registry.alerts import AlertRule, GapRecord, RuleState
from quasar_tui.sdk.models import Tick

_PRICE = attrgetter("price")
StateKey = tuple[int, str]  # rule id, key
GAP_KEY = "*"  # gap rules keep the newest gap id they saw under this key


def series_key(provider: str, symbol: str) -> str:
    return f"{provider}:{symbol}"


@dataclass
class _SeriesWatch:
    """The price rules of one series, and the band of prices that changes none of them."""

    key: str
    crosses: list[Cross] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    low: float = INF
    high: float = -INF
    traded: bool = False  # since the last stale check, which turns it into `last_trade`
    last_trade: float = -INF  # epoch seconds of the engine's clock, for stale rules

    def rebound(self) -> None:
        low, high = -INF, INF
        for cross in self.crosses:
            lo, hi = cross.bounds()
            low, high = max(low, lo), min(high, hi)
        self.low, self.high = low, high


@dataclass(frozen=True)
class Target:
    """Which series (or provider) a rule watches: None for all."""

    key: str | None


class Evaluator:
    """Holds the compiled rules; `on_*` methods hand what fires to `sink` (the service,
    which records it and has it delivered)."""

    def __init__(
        self,
        rules: Iterable[tuple[AlertRule, Target]],
        states: dict[StateKey, RuleState],
        clock: Callable[[], datetime],
        sink: Callable[[AlertFired], None],
    ) -> None:
        self.clock = clock
        self.sink = sink
        self.states = states
        self.dirty: set[StateKey] = set()
        self.rules: dict[int, AlertRule] = {}
        self._targets: dict[int, str | None] = {}
        self._series: dict[str, dict[str, _SeriesWatch]] = {}  # provider -> symbol -> watch
        self._by_kind: dict[str, list[AlertRule]] = {}
        self.stale: list[tuple[_SeriesWatch, Stale]] = []  # filled by add_stale
        rules = list(rules)
        # Moves on every series apply to each watch, made before or after the rules of one.
        self._change_all = [r for r, t in rules if r.kind == "change" and t.key is None]
        for rule, target in rules:
            self.rules[rule.id] = rule
            self._targets[rule.id] = target.key
            self._by_kind.setdefault(rule.kind, []).append(rule)
            if rule.kind in ("above", "below") and target.key is not None:
                watch = self._watch(target.key)
                watch.crosses.append(Cross.of(rule, self.state(rule.id, target.key)))
            elif rule.kind == "change" and target.key is not None:
                watch = self._watch(target.key)
                watch.changes.append(Change.of(rule, self.state(rule.id, target.key)))
        for by_symbol in self._series.values():
            for watch in by_symbol.values():
                watch.rebound()

    @property
    def wants_trades(self) -> bool:
        return bool(self._series or self._change_all or self.stale)

    def rules_of(self, kind: str) -> list[AlertRule]:
        return self._by_kind.get(kind, [])

    def matches(self, rule: AlertRule, key: str) -> bool:
        target = self._targets[rule.id]
        return target is None or target == key

    def state(self, rule_id: int, key: str) -> RuleState:
        found = self.states.get((rule_id, key))
        if found is None:
            found = self.states[(rule_id, key)] = RuleState()
        return found

    def _watch(self, key: str) -> _SeriesWatch:
        provider, _, symbol = key.partition(":")
        by_symbol = self._series.setdefault(provider, {})
        watch = by_symbol.get(symbol)
        if watch is None:
            watch = by_symbol[symbol] = _SeriesWatch(key)
            watch.changes.extend(Change.of(r, self.state(r.id, key)) for r in self._change_all)
            watch.rebound()
        return watch

    def add_stale(self, rule: AlertRule, key: str, now: float) -> Stale:
        """A stale rule on one series: its watch notes the last trade's time."""
        watch = self._watch(key)
        if watch.last_trade == -INF:
            watch.last_trade = now
        stale = Stale(rule, self.state(rule.id, key), float(rule.stale_s or 0), now)
        self.stale.append((watch, stale))
        return stale

    # -- trades: the hot path --------------------------------------------------------------

    def on_trades(self, event: TradesRead) -> None:
        """One message's trades (a bus listener: called inside `publish`)."""
        ticks = event.ticks
        by_symbol = self._series.get(event.provider)
        if (by_symbol is None and not self._change_all) or not ticks:
            return
        first = ticks[0]
        symbol = first.symbol
        low = high = first.price
        for tick in ticks:
            if tick.symbol != symbol:
                self._mixed(event.provider, by_symbol, ticks)
                return
            price = tick.price
            if price < low:
                low = price
            elif price > high:
                high = price
        watch = by_symbol.get(symbol) if by_symbol is not None else None
        if watch is None:
            if not self._change_all:
                return
            watch = self._watch(series_key(event.provider, symbol))
        watch.traded = True
        if low > watch.low and high < watch.high and not watch.changes:
            return
        self._judge(watch, ticks, low, high)

    def _mixed(
        self, provider: str, by_symbol: dict[str, _SeriesWatch] | None, ticks: list[Tick]
    ) -> None:
        """A message of several series: each series' trades in their order."""
        groups: dict[str, list[Tick]] = {}
        for tick in ticks:
            groups.setdefault(tick.symbol, []).append(tick)
        for symbol, group in groups.items():
            watch = by_symbol.get(symbol) if by_symbol is not None else None
            if watch is None:
                if not self._change_all:
                    continue
                watch = self._watch(series_key(provider, symbol))
            watch.traded = True
            prices = list(map(_PRICE, group))
            self._judge(watch, group, min(prices), max(prices))

    def _judge(self, watch: _SeriesWatch, ticks: list[Tick], low: float, high: float) -> None:
        if low <= watch.low or high >= watch.high:
            for tick in ticks:
                if tick.price <= watch.low or tick.price >= watch.high:
                    self._crossings(watch, tick)
        if watch.changes:
            self._changes(watch, ticks[-1], low, high)

    def _crossings(self, watch: _SeriesWatch, tick: Tick) -> None:
        for cross in watch.crosses:
            before = cross.state.side
            crossed = cross.see(tick.price)
            if cross.state.side != before:
                self.dirty.add((cross.rule.id, watch.key))
            if crossed:
                details = {"price": tick.price, "level": cross.level, "tick_ts": tick.ts}
                word = "above" if cross.up else "below"
                message = f"{watch.key} crossed {word} {cross.level:g} at {tick.price:g}"
                self._fire(cross.rule, watch.key, message, details)
        watch.rebound()

    def _changes(self, watch: _SeriesWatch, last: Tick, low: float, high: float) -> None:
        """A message (milliseconds of trades) counts as its lowest and highest price at the
        time of its last trade: low then high when it ended up, high then low when down."""
        t = last.ts.timestamp()
        prices = (low, high) if last.price >= (low + high) / 2 else (high, low)
        for change in watch.changes:
            for price in prices if low != high else (low,):
                start = change.see(t, price)
                if start is None:
                    continue
                pct = (price - start) / start * 100.0
                details = {"price": price, "from": start, "percent": pct, "tick_ts": last.ts}
                message = f"{watch.key} moved {pct:+.2f} % to {price:g} within {change.window:g} s"
                self._fire(change.rule, watch.key, message, details)

    # -- event-rate inputs -----------------------------------------------------------------

    def on_stale_check(self, open_now: Callable[[str], bool]) -> None:
        """Run every second or so; `open_now(key)` says whether that series' market is open."""
        now = self.clock().timestamp()
        for watch, _ in self.stale:
            if watch.traded:  # silence is measured from the check that saw the last trade
                watch.traded = False
                watch.last_trade = now
        for watch, stale in self.stale:
            key = watch.key
            before = stale.state.side
            if stale.check(now, open_now(key), watch.last_trade):
                silent = now - max(stale.last_trade, stale.closed_seen)
                message = f"{key}: no trade for {silent:.0f} s while its market is open"
                self._fire(stale.rule, key, message, {"silent_s": round(silent, 1)})
            if stale.state.side != before:
                self.dirty.add((stale.rule.id, key))

    def on_provider_state(self, provider: str, state: str, detail: str | None) -> None:
        for rule in self.rules_of("provider"):
            if not self.matches(rule, provider):
                continue
            rule_state = self.state(rule.id, provider)
            turn = provider_turn(rule_state, state)
            self.dirty.add((rule.id, provider))
            if turn is None:
                continue
            what = f"is {state}" + (f": {detail}" if detail else "") if turn == "bad" else "is back"
            details = {"state": state, "detail": detail, "turn": turn}
            self._fire(rule, provider, f"provider {provider} {what}", details)

    def on_job_run(self, run: JobRun) -> None:
        """A finished backfill that wrote bars (routine runs that found nothing new are
        silent: they happen every bar)."""
        if run.rows <= 0:
            return
        key = series_key(run.provider, run.symbol)
        for rule in self.rules_of("backfill"):
            if self.matches(rule, key):
                message = f"{key} {run.interval}: backfill {run.status}, {run.rows} rows"
                details = {"interval": run.interval, "status": run.status, "rows": run.rows}
                if run.error:
                    details["error"] = run.error
                self._fire(rule, key, message, details)

    def on_gaps(self, gaps: list[GapRecord]) -> None:
        for rule in self.rules_of("gap"):
            mark = self.state(rule.id, GAP_KEY)
            for gap in gaps:
                if mark.mark is not None and gap.id <= mark.mark:
                    continue
                key = series_key(gap.provider, gap.symbol)
                if self.matches(rule, key):
                    message = (
                        f"{key} {gap.interval}: {gap.mode} gap {gap.start_ts:%Y-%m-%d %H:%M} "
                        f"to {gap.end_ts:%Y-%m-%d %H:%M} UTC ({gap.reason})"
                    )
                    details = {
                        "gap_id": gap.id,
                        "interval": gap.interval,
                        "start": gap.start_ts,
                        "end": gap.end_ts,
                        "reason": gap.reason,
                    }
                    self._fire(rule, key, message, details)
                mark.mark = gap.id
                self.dirty.add((rule.id, GAP_KEY))

    def volume_rules(self, provider: str, symbol: str, interval: str | None) -> list[AlertRule]:
        key = series_key(provider, symbol)
        return [
            r for r in self.rules_of("volume") if r.interval == interval and self.matches(r, key)
        ]

    def on_volume(
        self, rule: AlertRule, key: str, bar_ts: datetime, volume: float, average: float
    ) -> None:
        """A written bar of a volume rule's series, with the average of the bars before it."""
        state = self.state(rule.id, key)
        stamp = int(bar_ts.timestamp())
        if state.mark is not None and stamp <= state.mark:
            return  # that bar was judged already (a correction rewrote it)
        state.mark = stamp
        self.dirty.add((rule.id, key))
        if average > 0 and volume > float(rule.factor or 0.0) * average:
            message = (
                f"{key} {rule.interval} bar at {bar_ts:%H:%M} UTC: volume {volume:g} is "
                f"{volume / average:.1f} x the last {rule.bars} bars' average"
            )
            details = {"bar_ts": bar_ts, "volume": volume, "average": average}
            self._fire(rule, key, message, details)

    # -- firing ----------------------------------------------------------------------------

    def _fire(
        self,
        rule: AlertRule,
        key: str,
        message: str,
        details: dict[str, Any],
    ) -> None:
        now = self.clock()
        state = self.state(rule.id, key)
        if state.last_fired is not None and now < state.last_fired + timedelta(
            seconds=rule.cooldown_s
        ):
            return
        state.last_fired = now
        self.dirty.add((rule.id, key))
        ready = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in details.items()}
        self.sink(AlertFired(rule.id, rule.kind, key, message, now, ready))

    def adopt(self, changed: dict[StateKey, RuleState]) -> None:
        """States another evaluator changed after this one read them (a reload while trades
        kept coming): taken over in place, since watches hold them, and written later."""
        for key, state in changed.items():
            mine = self.states.get(key)
            if mine is not None:
                mine.side, mine.last_fired, mine.mark = state.side, state.last_fired, state.mark
                self.dirty.add(key)
        for by_symbol in self._series.values():
            for watch in by_symbol.values():
                watch.rebound()

    def carry_windows(self, old: Evaluator) -> None:
        """Keep the prices `old` saw for move rules whose series and terms a reload left as
        they were: editing one rule or mapping must not restart every other rule's window."""
        for by_symbol in old._series.values():
            for before in by_symbol.values():
                if not before.changes:
                    continue
                provider, _, symbol = before.key.partition(":")
                watch = self._series.get(provider, {}).get(symbol)
                if watch is None and self._change_all:
                    watch = self._watch(before.key)
                if watch is None:
                    continue
                seen = {(c.rule.id, c.ratio, c.window): c for c in before.changes}
                for change in watch.changes:
                    prior = seen.get((change.rule.id, change.ratio, change.window))
                    if prior is not None:
                        change.lows, change.highs = prior.lows, prior.highs

    def take_dirty(self) -> dict[StateKey, RuleState]:
        taken = {k: self.states[k] for k in self.dirty if k in self.states}
        self.dirty.clear()
        return taken
