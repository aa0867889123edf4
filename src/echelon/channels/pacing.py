"""Pacing primitives: a token bucket for TPS, reconnect backoff, a wait budget."""

from __future__ import annotations

import random
import time


class TokenBucket:
    """At most ``rate`` tokens a second on average, at most ``burst`` at once.

    ``reserve`` always grants a token and returns how long to wait before using it, so
    concurrent callers queue up fairly instead of spinning; ``try_take`` never waits.
    """

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now

    def reserve(self, now: float) -> float:
        """Take one token (possibly going into debt); seconds to wait before using it."""
        self._refill(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def try_take(self, now: float) -> bool:
        """Take one token if one is available now."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def backoff_delay(attempt: int, *, initial: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": in [d/2, d] for d = min(cap, initial·2^n).

    Half the delay is guaranteed so a flapping SMSC is not hammered; the random half
    spreads many workers reconnecting after the same outage.
    """
    ceiling = min(cap, initial * (2.0 ** min(attempt, 32)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class WaitBudget:
    """A total wait allowance (e.g. for a rebind during one batch), counted from the
    first time it is drawn on, so a long paced batch is not cut short by its own age."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._until: float | None = None

    def remaining(self) -> float:
        if self._until is None:
            self._until = time.monotonic() + self._seconds
        return self._until - time.monotonic()
