"""Requests per minute per member: a token bucket for each member, kept in the database so
the limit holds across every API worker (and every host behind the balancer).

Each member (all its API keys together: minting keys does not multiply its rate, and a member
holds at most 20 keys anyway) may make ``per_minute`` requests a minute with bursts up to a
tenth of that (at least 10). Over the limit the request is refused with 429 and
``Retry-After`` (whole seconds until a token is back); other members are unaffected.
Unauthenticated write attempts are limited the same way per client address
(``TIERFLOW_API_KEYLESS_LIMIT``), before anything is read.

A bucket is one ``rate_buckets`` row: its tokens at ``at_ms``. :meth:`RateLimiter.take` is one
statement on the request's path, an upsert that refills the bucket from the time passed,
takes a token only if there is one and returns what is left — atomic in PostgreSQL and in
SQLite alike, so two workers cannot both take the last token. Only a refused request reads
the row again (for its ``Retry-After``). Buckets idle long enough to be full again are
deleted now and then. If the database cannot be reached the request goes ahead (it will get
its 503 from the database's next use).
"""

from __future__ import annotations

import logging
import math
import random

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import now_ms

log = logging.getLogger("tierflow.api")

#: One take in this many also deletes the buckets idle for more than :data:`IDLE_MS`.
PRUNE_ONE_IN = 2000
IDLE_MS = 15 * 60_000
#: Longest key kept (the column's width).
KEY_LENGTH = 120

_TAKE = {
    "postgresql": text(
        "INSERT INTO rate_buckets (key, tokens, at_ms) "
        "VALUES (:key, CAST(:capacity AS DOUBLE PRECISION) - 1, CAST(:now AS BIGINT)) "
        "ON CONFLICT (key) DO UPDATE SET "
        "tokens = LEAST(CAST(:capacity AS DOUBLE PRECISION), rate_buckets.tokens "
        "+ GREATEST(0, CAST(:now AS BIGINT) - rate_buckets.at_ms) "
        "* CAST(:rate AS DOUBLE PRECISION)) - 1, at_ms = CAST(:now AS BIGINT) "
        "WHERE LEAST(CAST(:capacity AS DOUBLE PRECISION), rate_buckets.tokens "
        "+ GREATEST(0, CAST(:now AS BIGINT) - rate_buckets.at_ms) "
        "* CAST(:rate AS DOUBLE PRECISION)) >= 1 "
        "RETURNING tokens"
    ),
    "sqlite": text(
        "INSERT INTO rate_buckets (key, tokens, at_ms) VALUES (:key, :capacity - 1, :now) "
        "ON CONFLICT (key) DO UPDATE SET "
        "tokens = MIN(:capacity, rate_buckets.tokens "
        "+ MAX(0, :now - rate_buckets.at_ms) * :rate) - 1, at_ms = :now "
        "WHERE MIN(:capacity, rate_buckets.tokens "
        "+ MAX(0, :now - rate_buckets.at_ms) * :rate) >= 1 "
        "RETURNING tokens"
    ),
}
_READ = text("SELECT tokens, at_ms FROM rate_buckets WHERE key = :key")
_PRUNE = text("DELETE FROM rate_buckets WHERE at_ms < CAST(:before AS BIGINT)")


class RateLimiter:
    """Token buckets of ``per_minute`` requests a minute (bursts of ``burst``) in
    ``engine``'s ``rate_buckets``, one per key; ``scope`` keeps two limiters' keys apart."""

    def __init__(
        self, engine: AsyncEngine, per_minute: int, burst: int | None = None, scope: str = ""
    ) -> None:
        self.engine = engine
        self.per_minute = per_minute
        self.rate_ms = per_minute / 60_000.0  # tokens per millisecond
        self.capacity = float(burst if burst is not None else max(10, per_minute // 10))
        self.scope = scope

    async def take(self, key: str, now: int | None = None) -> int:
        """0 when the request may go ahead, else the seconds to wait."""
        key = f"{self.scope}{key}"[:KEY_LENGTH]
        now = now_ms() if now is None else now
        params = {"key": key, "capacity": self.capacity, "rate": self.rate_ms, "now": now}
        try:
            # One statement, atomic by itself: no BEGIN/COMMIT round trips around it.
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                statement = _TAKE.get(conn.dialect.name, _TAKE["sqlite"])
                left = (await conn.execute(statement, params)).first()
                if left is None:
                    row = (await conn.execute(_READ, {"key": key})).first()
                if random.randrange(PRUNE_ONE_IN) == 0:
                    await conn.execute(_PRUNE, {"before": now - IDLE_MS})
        except Exception:
            log.warning("rate limit not checked: the database did not answer", exc_info=True)
            return 0
        if left is not None:
            return 0
        tokens = 0.0
        if row is not None:
            tokens = min(self.capacity, row.tokens + max(0, now - row.at_ms) * self.rate_ms)
        return max(1, math.ceil((1.0 - tokens) / self.rate_ms / 1000.0))
