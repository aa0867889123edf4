"""Rate limits held in this process's memory: one token bucket per key (or per sign-in
address). Several processes each keep their own, so the limit is per process."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from echelon.access.rules import Bucket, take

_MAX_BUCKETS = 100_000


class RateLimiter:
    """``allow(who, per_minute, burst)`` is 0.0 when ``who`` may go on, else the
    seconds to wait (Retry-After). Thread-safe; the least recently used buckets are
    forgotten beyond ``max_buckets`` (a forgotten bucket starts full again)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = _MAX_BUCKETS,
    ) -> None:
        self._clock = clock
        self._max = max_buckets
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, who: str, *, per_minute: int, burst: int) -> float:
        with self._lock:
            bucket, wait = take(
                self._buckets.get(who),
                now=self._clock(),
                rate_per_second=per_minute / 60,
                burst=burst,
            )
            self._buckets[who] = bucket
            self._buckets.move_to_end(who)
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return wait
