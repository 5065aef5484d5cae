"""Requests per minute per member: a token bucket for each member, in the worker's memory.

Each member (all its API keys together: minting keys does not multiply its rate) may make
``per_minute`` requests a minute with bursts up to a tenth of that (at least 10). Over the
limit the request is refused with 429 and ``Retry-After`` (whole seconds until a token is
back); other members are unaffected. Unauthenticated write attempts are limited the same way
per client address (``TIERFLOW_API_KEYLESS_LIMIT``), before anything is read. With
several workers each keeps its own buckets, so the platform-wide limit is per worker times
the workers behind the balancer (documented in the README).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(10, per_minute // 10))
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None) -> int:
        """0 when the request may go ahead, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
