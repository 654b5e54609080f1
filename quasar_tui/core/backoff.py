"""Capped, jittered exponential backoff for anything that retries forever (sockets, databases)."""

from __future__ import annotations

import random


class Backoff:
    """Delays of `base * factor**n`, capped at `cap`, each drawn from [ceiling/2, ceiling].

    The jitter keeps many clients that failed together from reconnecting in lockstep; `reset()`
    goes back to the shortest delay once a connection has been healthy for a while.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base or factor < 1:
            raise ValueError("backoff needs 0 < base <= cap and factor >= 1")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.attempts = 0
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """The longest delay for the given 1-based attempt (the exponent is bounded: forever
        retrying must not overflow a float)."""
        return min(self.cap, self.base * self.factor ** min(max(0, attempt - 1), 64))

    def next(self) -> float:
        """The delay before the next attempt; each call counts as one failure."""
        self.attempts += 1
        ceiling = self.ceiling(self.attempts)
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
