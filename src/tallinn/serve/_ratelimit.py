"""Per-client token buckets: `rate` requests per second on average, `burst` at once."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from tallinn.serve._config import RateLimit

MAX_CLIENTS = 10_000


class RateLimiter:
    """`take(client)` returns 0 when the request may pass, else the seconds to wait.

    >>> limiter = RateLimiter(RateLimit(rate=1, burst=2))
    >>> [limiter.take("ip:10.0.0.1") for _ in range(3)]   # the third waits about a second
    [0.0, 0.0, 0.999...]
    """

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def take(self, client: str) -> float:
        rate, burst = self.limit.rate, self.limit.burst
        now = self._clock()
        tokens, at = self._buckets.get(client, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens >= 1:
            self._buckets[client] = (tokens - 1, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._forget_idle(now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1 - tokens) / rate

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose buckets are full again: they are indistinguishable from new ones."""
        rate, burst = self.limit.rate, self.limit.burst
        for client, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * rate >= burst:
                del self._buckets[client]


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
