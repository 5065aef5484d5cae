"""The dispatcher (``tierflow webhooks``): outbox → deliveries → signed POSTs, at least once.

Stateless: everything it knows is in the database, and several may run at once.

- **Fan-out** (:mod:`backend.webhooks.fanout`) every ``TIERFLOW_WEBHOOKS_POLL_S`` (50 ms):
  new outbox entries become deliveries.
- **Claim**: due deliveries that head their queue (no earlier pending delivery of the same
  endpoint and object key: chain order per object) of active endpoints are leased to this
  dispatcher by a conditional update (``lease_until``), so no two dispatchers send one at
  once; a dispatcher that dies loses its leases when they run out.
- **Send**: concurrently (``TIERFLOW_WEBHOOKS_CONCURRENCY``), each to the address checked by
  the SSRF guard, signed ``Tierflow-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
  "<t>.<body>")>`` (with a second ``v1`` from the previous secret while a rotation overlaps).
  A 2xx is success; anything else, a timeout or a refused target is retried after
  ``backoff × 2^(attempts−1)`` (capped, with jitter) until ``TIERFLOW_WEBHOOKS_RETRY_FOR_S``
  (25 h) has passed since it was queued; then the delivery fails and its endpoint is marked
  failing with the reason (its owner sees it; a redelivery reactivates it).
- **Record**: each attempt (time, latency, status code or error) and the delivery's state,
  written in batches.
- **Prune**: every :data:`PRUNE_EVERY_S`, in a task of its own beside the loop, what is older
  than ``TIERFLOW_WEBHOOKS_RETAIN_DAYS`` (:mod:`backend.webhooks.retention`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import BigInteger, Integer, and_, bindparam, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from backend.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from backend.webhooks.config import WebhookRuntime, WebhookSettings
from backend.webhooks.fanout import fan_out
from backend.webhooks.retention import prune
from backend.webhooks.ssrf import resolve
from db.engine import now_ms
from db.types import table_of
from indexer import models as m

log = structlog.get_logger("tierflow.webhooks")

ATTEMPTS = Counter("tierflow_webhook_attempts", "Delivery attempts by outcome", ["outcome"])
LATENCY = Histogram(
    "tierflow_webhook_delivery_seconds",
    "From the event's block time to the receiver's 2xx",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
IN_FLIGHT = Gauge("tierflow_webhook_in_flight", "Attempts in flight in this dispatcher")
FAILING = Counter("tierflow_webhook_endpoints_failed", "Endpoints marked failing")

_D = table_of(WebhookDelivery)
_W = table_of(WebhookEndpoint)
_A = table_of(WebhookAttempt)
USER_AGENT = "Tierflow-Webhooks/1"
#: How often a dispatcher deletes what the retention lets go (the first time a minute after
#: it starts).
PRUNE_EVERY_S = 600.0
PRUNED = Counter("tierflow_webhook_rows_pruned", "Rows deleted past the retention", ["table"])


def _due() -> Any:
    """The deliveries due now (``:now``), oldest first (at most ``:limit``), each the first
    pending one of its object at its endpoint. Built once: a dispatcher asks every poll, and
    building it (an aliased entity adapted afresh) cost more CPU than running it."""
    earlier = aliased(WebhookDelivery)
    d = WebhookDelivery
    now = bindparam("now", type_=BigInteger)
    blocked = exists().where(
        earlier.endpoint_id == d.endpoint_id,
        earlier.object_key == d.object_key,
        earlier.status == "pending",
        earlier.seq < d.seq,
    )
    return (
        select(d.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == d.endpoint_id)
        .where(
            d.status == "pending",
            d.next_attempt_at <= now,
            d.lease_until < now,
            WebhookEndpoint.status == "active",
            ~blocked,
        )
        .order_by(d.id)
        .limit(bindparam("limit", type_=Integer))
    )


_DUE = _due()


def signature(secrets_: list[str], body: bytes, timestamp: int) -> str:
    """The ``Tierflow-Signature`` header: ``t=<unix>,v1=<hex>`` (one ``v1`` per secret)."""
    payload = str(timestamp).encode() + b"." + body
    macs = [hmac.new(s.encode(), payload, hashlib.sha256).hexdigest() for s in secrets_]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


@dataclass
class Outcome:
    delivery_id: int
    endpoint_id: str
    lease: str
    attempted_at: int
    latency_ms: int
    status_code: int | None
    error: str | None
    attempts: int
    created_at: int
    block_time: int | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher:
    """One dispatcher process's loop; see the module docstring."""

    def __init__(
        self, engine: AsyncEngine, settings: WebhookSettings, runtime: WebhookRuntime
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.runtime = runtime
        self.name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._round = 0
        self._slots = asyncio.Semaphore(settings.webhooks_concurrency)
        self._free = settings.webhooks_concurrency
        self._done: list[Outcome] = []
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._secrets: dict[tuple[str, str], str] = {}
        self._next_prune = time.monotonic() + 60.0
        self._pruning: asyncio.Task[None] | None = None
        # aiohttp rather than httpx: a fraction of the CPU per request, which is what bounds
        # a dispatcher's rate on a busy machine.
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.webhooks_timeout_s),
            connector=aiohttp.TCPConnector(limit=settings.webhooks_concurrency * 2),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )

    async def aclose(self) -> None:
        if self._pruning is not None:
            self._pruning.cancel()
            with contextlib.suppress(BaseException):
                await self._pruning
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._flush()
        await self._http.close()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Loop until ``stop`` is set; database faults are logged and waited out."""
        failures = 0
        while stop is None or not stop.is_set():
            try:
                await self.step()
                failures = 0
            except Exception as exc:  # the database restarting, a lock timeout …
                failures += 1
                log.warning("webhooks.step_failed", error=repr(exc), attempt=failures)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
            # that comes as a delivery ends (it wakes the loop), and the loop went on.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.webhooks_poll_s):
                    await self._wake.wait()

    async def step(self) -> None:
        """Record finished attempts, queue new outbox entries, start what is due."""
        await self._flush()
        while await fan_out(self.engine) >= 1000:
            pass
        if self._free > 0:
            for delivery in await self._claim(self._free):
                self._start(delivery)
        if time.monotonic() >= self._next_prune and self._pruning is None:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            self._pruning = asyncio.create_task(self.prune())

    async def prune(self) -> None:
        """Delete what the retention lets go; a failure is logged and tried next time."""
        try:
            done = await prune(self.engine, self.settings.webhooks_retain_days * 86_400, now_ms())
            for table, rows in (
                ("outbox", done.outbox),
                ("webhook_deliveries", done.deliveries),
                ("webhook_attempts", done.attempts),
            ):
                PRUNED.labels(table).inc(rows)
            if done.rows:
                log.info(
                    "webhooks.pruned",
                    outbox=done.outbox,
                    deliveries=done.deliveries,
                    attempts=done.attempts,
                )
        except Exception as exc:  # the database busy or away: the next round tries again
            log.warning("webhooks.prune_failed", error=repr(exc))
        finally:
            self._pruning = None

    # -- claim ---------------------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[Any]:
        now = now_ms()
        self._round += 1
        lease = f"{self.name}:{self._round}"
        until = now + int((self.settings.webhooks_timeout_s * 2 + 5) * 1000)
        async with self.engine.begin() as conn:
            ids = [r.id for r in await conn.execute(_DUE, {"now": now, "limit": limit})]
            if not ids:
                return []
            await conn.execute(
                update(_D)
                .where(_D.c.id.in_(ids), _D.c.status == "pending", _D.c.lease_until < now)
                .values(lease_until=until, lease_owner=lease)
            )
            return list(
                (
                    await conn.execute(
                        select(_D, _W.c.url, _W.c.secret, _W.c.previous_secret, _W.c.previous_until)
                        .join(_W, _W.c.id == _D.c.endpoint_id)
                        .where(_D.c.lease_owner == lease, _D.c.lease_until == until)
                        .order_by(_D.c.id)
                    )
                ).all()
            )

    # -- send ----------------------------------------------------------------------------------

    def _start(self, delivery: Any) -> None:
        self._free -= 1
        IN_FLIGHT.inc()
        task = asyncio.create_task(self._send(delivery))
        self._tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._free += 1
            IN_FLIGHT.dec()
            self._wake.set()

        task.add_done_callback(finished)

    def _open(self, endpoint_id: str, sealed: str) -> str:
        key = (endpoint_id, sealed)
        secret = self._secrets.get(key)
        if secret is None:
            secret = self._secrets[key] = self.runtime.sealer.open(sealed, endpoint_id)
        return secret

    async def _send(self, d: Any) -> None:
        started = time.monotonic()
        attempted_at = now_ms()
        status: int | None = None
        error: str | None = None
        try:
            target = await resolve(d.url, self.runtime.allow_loopback)
            keys = [self._open(d.endpoint_id, d.secret)]
            if d.previous_secret and (d.previous_until or 0) > time.time():
                keys.append(self._open(d.endpoint_id, d.previous_secret))
            body = d.body.encode()
            headers = {
                "Content-Type": "application/json",
                "Host": target.host_header,
                "Tierflow-Signature": signature(keys, body, int(time.time())),
                "Tierflow-Event-Id": d.event_id,
                "Tierflow-Event-Type": d.event_type,
                "Tierflow-Delivery-Id": str(d.id),
            }
            sni = target.host if target.scheme == "https" else None
            async with self._http.post(
                target.connect_url,
                data=body,
                headers=headers,
                allow_redirects=False,
                server_hostname=sni,
            ) as response:
                status = response.status
                await response.content.readany()  # the start of the answer; the rest is dropped
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TimeoutError:
            error = f"timed out after {self.settings.webhooks_timeout_s:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        except Exception as exc:  # the SSRF guard's refusal, a secret that does not open …
            error = str(getattr(exc, "detail", None) or exc)[:500] or type(exc).__name__
        outcome = Outcome(
            delivery_id=d.id,
            endpoint_id=d.endpoint_id,
            lease=d.lease_owner,
            attempted_at=attempted_at,
            latency_ms=int((time.monotonic() - started) * 1000),
            status_code=status,
            error=error,
            attempts=d.attempts + 1,
            created_at=d.created_at,
            block_time=d.block_time,
        )
        ATTEMPTS.labels(outcome="ok" if outcome.ok else "failed").inc()
        if outcome.ok and d.block_time:
            LATENCY.observe(max(0.0, time.time() - d.block_time))
        self._done.append(outcome)

    # -- record --------------------------------------------------------------------------------

    def _backoff_ms(self, attempts: int) -> int:
        s = self.settings
        delay = min(s.webhooks_max_backoff_s, s.webhooks_backoff_s * 2 ** min(attempts - 1, 30))
        return int(delay * random.uniform(0.5, 1.0) * 1000)

    async def _flush(self) -> None:
        if not self._done:
            return
        done, self._done = self._done, []
        now = now_ms()
        retry_for = int(self.settings.webhooks_retry_for_s * 1000)
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(_A),
                [
                    {
                        "delivery_id": o.delivery_id,
                        "attempted_at": o.attempted_at,
                        "latency_ms": o.latency_ms,
                        "status_code": o.status_code,
                        "error": o.error,
                        "ok": o.ok,
                    }
                    for o in done
                ],
            )
            # Successes and retries each in one executemany (one round trip to the driver's
            # thread, not one per delivery); giving up is rare and done one by one.
            mine = and_(
                _D.c.id == bindparam("d_id"),
                _D.c.lease_owner == bindparam("d_lease"),
                _D.c.status == "pending",
            )
            values = {
                "attempts": bindparam("d_attempts"),
                "lease_until": 0,
                "last_status_code": bindparam("d_code"),
                "last_error": bindparam("d_error"),
            }

            def params(o: Outcome, **extra: Any) -> dict[str, Any]:
                return {
                    "d_id": o.delivery_id,
                    "d_lease": o.lease,
                    "d_attempts": o.attempts,
                    "d_code": o.status_code,
                    "d_error": o.error,
                    **extra,
                }

            succeeded = [params(o, d_at=o.attempted_at) for o in done if o.ok]
            if succeeded:
                await conn.execute(
                    update(_D)
                    .where(mine)
                    .values(status="succeeded", delivered_at=bindparam("d_at"), **values),
                    succeeded,
                )
            failed = [o for o in done if not o.ok]
            retried = [
                params(o, d_next=now + self._backoff_ms(o.attempts))
                for o in failed
                if now - o.created_at < retry_for
            ]
            if retried:
                await conn.execute(
                    update(_D).where(mine).values(next_attempt_at=bindparam("d_next"), **values),
                    retried,
                )
            for o in failed:
                if now - o.created_at < retry_for:
                    continue
                await conn.execute(
                    update(_D).where(mine).values(status="failed", **values), [params(o)]
                )
                reason = (
                    f"delivery {o.delivery_id} failed for "
                    f"{(now - o.created_at) / 3_600_000:.1f} h ({o.attempts} attempts); "
                    f"last: {o.error}"
                )
                result = await conn.execute(
                    update(_W)
                    .where(_W.c.id == o.endpoint_id, _W.c.status == "active")
                    .values(status="failing", failing_reason=reason, failing_since=now // 1000)
                )
                if result.rowcount:
                    FAILING.inc()
                    log.warning("webhooks.endpoint_failing", endpoint=o.endpoint_id, why=reason)


async def chain_id_of_mirror(engine: AsyncEngine, wait_s: float | None = None) -> int:
    """The chain the mirror follows (its checkpoint's), waiting for the indexer's first run
    (for ``wait_s``, or as long as it takes)."""
    deadline = time.monotonic() + wait_s if wait_s is not None else float("inf")
    told = False
    while True:
        with contextlib.suppress(Exception):
            async with engine.connect() as conn:
                found = (
                    await conn.execute(select(m.Checkpoint.chain_id).where(m.Checkpoint.id == 1))
                ).first()
            if found is not None:
                return int(found.chain_id)
        if time.monotonic() > deadline:
            raise TimeoutError("no mirror yet: start the indexer (`tierflow index`) first")
        if not told:
            log.info("webhooks.waiting_for_mirror")
            told = True
        await asyncio.sleep(0.5)


async def run_dispatcher(
    settings: WebhookSettings | None = None, stop: asyncio.Event | None = None
) -> None:
    """The ``tierflow webhooks`` process: migrate, find the chain, serve metrics, loop."""
    from prometheus_client import start_http_server

    from backend.models import migrate
    from db.engine import create_engine

    settings = settings or WebhookSettings()
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        runtime = WebhookRuntime(settings, await chain_id_of_mirror(engine))
        if settings.webhooks_metrics_port:
            try:
                start_http_server(settings.webhooks_metrics_port, addr="127.0.0.1")
            except OSError as exc:  # another dispatcher (or platform) has it: deliver anyway
                log.warning(
                    "webhooks.metrics_port_busy",
                    port=settings.webhooks_metrics_port,
                    detail=str(exc),
                    hint="set TIERFLOW_WEBHOOKS_METRICS_PORT (0: off)",
                )
        dispatcher = Dispatcher(engine, settings, runtime)
        log.info(
            "webhooks.started",
            dispatcher=dispatcher.name,
            allow_loopback=runtime.allow_loopback,
            metrics_port=settings.webhooks_metrics_port,
        )
        try:
            await dispatcher.run(stop)
        finally:
            await dispatcher.aclose()
    finally:
        await engine.dispose()
