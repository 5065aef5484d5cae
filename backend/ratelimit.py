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
SQLite alike, so two workers cannot both take the last token. A worker takes a busy
bucket's tokens a few at a time (a lease, :data:`LEASE_SHARE`) and spends them itself.
Only a refused request reads the row again (for its ``Retry-After``). Buckets idle long
enough to be full again are deleted now and then. If the database cannot be reached the
request goes ahead (it will get its 503 from the database's next use).
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
#: A worker takes a busy bucket's tokens a tenth of its burst at a time (at most LEASE_MAX)
#: and spends them itself for up to LEASE_MS: most requests of a busy member then cost no
#: write (the upsert was a read's largest database cost). Never more than the limit: a lease
#: is taken whole or not at all, from what the bucket holds (else one token, as before). Its
#: price: while one worker holds unspent tokens another may be refused up to that many
#: early, and tokens unspent after LEASE_MS are lost. Bursts under 20 take one at a time.
LEASE_SHARE = 10
LEASE_MAX = 32
LEASE_MS = 1000

#: Take ``:n`` tokens (one, or a worker's lease) if the bucket holds that many.
_TAKE = {
    "postgresql": text(
        "INSERT INTO rate_buckets (key, tokens, at_ms) "
        "VALUES (:key, CAST(:capacity AS DOUBLE PRECISION) - CAST(:n AS DOUBLE PRECISION), "
        "CAST(:now AS BIGINT)) "
        "ON CONFLICT (key) DO UPDATE SET "
        "tokens = LEAST(CAST(:capacity AS DOUBLE PRECISION), rate_buckets.tokens "
        "+ GREATEST(0, CAST(:now AS BIGINT) - rate_buckets.at_ms) "
        "* CAST(:rate AS DOUBLE PRECISION)) - CAST(:n AS DOUBLE PRECISION), "
        "at_ms = CAST(:now AS BIGINT) "
        "WHERE LEAST(CAST(:capacity AS DOUBLE PRECISION), rate_buckets.tokens "
        "+ GREATEST(0, CAST(:now AS BIGINT) - rate_buckets.at_ms) "
        "* CAST(:rate AS DOUBLE PRECISION)) >= CAST(:n AS DOUBLE PRECISION) "
        "RETURNING tokens"
    ),
    "sqlite": text(
        "INSERT INTO rate_buckets (key, tokens, at_ms) VALUES (:key, :capacity - :n, :now) "
        "ON CONFLICT (key) DO UPDATE SET "
        "tokens = MIN(:capacity, rate_buckets.tokens "
        "+ MAX(0, :now - rate_buckets.at_ms) * :rate) - :n, at_ms = :now "
        "WHERE MIN(:capacity, rate_buckets.tokens "
        "+ MAX(0, :now - rate_buckets.at_ms) * :rate) >= :n "
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
        #: Tokens taken from a bucket at once and spent by this worker without the database.
        self.lease = max(1, min(LEASE_MAX, int(self.capacity) // LEASE_SHARE))
        self._leased: dict[str, tuple[int, int]] = {}  # key → (tokens left, until ms)

    async def take(self, key: str, now: int | None = None) -> int:
        """0 when the request may go ahead, else the seconds to wait."""
        key = f"{self.scope}{key}"[:KEY_LENGTH]
        now = now_ms() if now is None else now
        held = self._leased.get(key)
        if held is not None:
            spare, until = held
            if spare > 0 and now < until:
                self._leased[key] = (spare - 1, until)
                return 0
            del self._leased[key]
        params = {"key": key, "capacity": self.capacity, "rate": self.rate_ms, "now": now, "n": 1}
        try:
            # One statement, atomic by itself: no BEGIN/COMMIT round trips around it.
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                statement = _TAKE.get(conn.dialect.name, _TAKE["sqlite"])
                left = None
                if self.lease > 1:
                    lease = {**params, "n": self.lease}
                    left = (await conn.execute(statement, lease)).first()
                    if left is not None:
                        self._leased[key] = (self.lease - 1, now + LEASE_MS)
                if left is None:
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
