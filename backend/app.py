"""The FastAPI application: ``create_app(settings)`` builds it, ``tierflow serve`` runs it.

Routes are thin (one module per resource under :mod:`backend.api.routes`); the use cases are
in :mod:`backend.services`; reads come from the SQL mirror, writes go through
:class:`backend.gateway.Gateway` (the :class:`~backend.ports.LedgerPort` the services
are given). OpenAPI is served at ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from backend import audit_anchors, audit_log
from backend.api import openapi, problems
from backend.api.headers import RateLimitHeaders
from backend.api.middleware import GuardMiddleware
from backend.api.routes import (
    approvals,
    audit,
    claims,
    console,
    console_session,
    dev,
    financiers,
    financing,
    intents,
    invoices,
    members,
    payables,
    system,
    webhooks,
)
from backend.config import ApiSettings
from backend.console import STATIC_DIR
from backend.context import open_context
from backend.services import auto_approval
from ledger import logs

DESCRIPTION = """
Supply-chain finance on a permissioned ledger: core enterprises confirm payables, suppliers
split and pass the claims down their own supply chain or sell them for cash, financiers
decide, auditors trace every piece back to its invoice.

Authenticate with `Authorization: Bearer <api key>`. Every POST takes an `Idempotency-Key`.
Errors are RFC 9457 problem details with a stable `code`.
"""


def _engine_of(app: Any) -> Any:
    ctx = getattr(app.state, "context", None)
    return None if ctx is None else ctx.engine


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """``router``'s routes onto the app's own router, as they are, in order.

    ``app.include_router`` (FastAPI 0.165) keeps each router as a branch: a request is matched
    against every branch before the right one (each route's match setting and restoring a
    key of the scope) and then matched again inside it: about 0.4 ms of a piece's 3.6 ms
    (docs/performance.md, change 44). Our routers take nothing from their inclusion (no
    prefix, dependencies, tags or responses given to ``include_router``: each router declares
    its own, which its routes already carry), so their routes are the app's routes as they
    are: one pass of plain path matches, the same OpenAPI document. What an inclusion would
    bring does not apply to them: ``app.dependency_overrides`` (nothing here overrides a
    dependency) and a default response class (the app has none of its own).
    """
    app.router.routes.extend(router.routes)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    if not logs.configured:  # a worker process uvicorn spawned (--workers > 1)
        fmt = settings.log_format
        logs.configure_logging(settings.log_level, None if fmt is None else fmt == "json")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            open_context(settings) as ctx,
            auto_approval.running(ctx.ports, ctx.idempotency),
            audit_log.sweeping(ctx.engine, settings.api_audit_sweep_after_s),
            audit_anchors.anchoring(
                ctx.engine,
                audit_anchors.anchoring_sender(ctx, settings),
                audit_anchors.anchor_contract(ctx.w3, ctx.deployment),
                settings.api_anchor_interval_s,
            ),
        ):
            app.state.context = ctx
            # Everything built at start-up (modules, the ABI codecs, the app, the pool) lives
            # as long as the worker: out of the collector's way, a full collection no longer
            # walks it (one read in three of a 10,000-piece tree took 200-300 ms more, at load 5).
            gc.freeze()
            try:
                yield
            finally:
                app.state.context = None

    # Swagger UI's assets are served from the package, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="Tierflow",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        static_url="/docs-assets",
        swagger_ui_parameters={"persistAuthorization": False},
    )
    problems.install(app)
    openapi.install(app, settings.api_rate_limit, settings.api_max_body)
    app.add_middleware(
        GuardMiddleware,
        max_body=settings.api_max_body,
        engine_of=_engine_of,
        anonymous_per_minute=settings.api_keyless_limit,
    )
    # Outermost, so the Guard's own refusals (413, the unauthenticated limit) carry it too.
    app.add_middleware(RateLimitHeaders, per_minute=settings.api_rate_limit)
    # The console (issue 12): server-rendered pages over the same services, and their
    # committed CSS and JS, after the API's routes.
    for module in (
        system,
        members,
        invoices,
        payables,
        claims,
        financing,
        financiers,
        audit,
        dev,
        webhooks,
        approvals,
        intents,
        console_session,
        console,
    ):
        _add_routes(app, module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    return app
