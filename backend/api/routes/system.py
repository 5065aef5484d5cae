"""System: health, Prometheus metrics, and where the contracts are."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from backend.api.deps import ContextDep, PortsDep
from backend.context import AppContext
from backend.services import chain_clock
from backend.services import health as health_service

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(
        description="down (503): the node or the database does not answer; degraded: reads "
        "are served but the mirror or the indexer is behind (see reasons)"
    )
    chain_id: int
    head_block: int | None
    mirrored_block: int | None
    lag_blocks: int | None
    indexer_heartbeat_age_s: float | None = Field(
        description="seconds since the indexer's last heartbeat (null: never seen)"
    )
    reasons: list[str] = Field(
        description="node_unreachable, database_unreachable, indexer_not_running, "
        "indexer_stale, mirror_lagging, node_behind_mirror, mirror_empty"
    )


class ContractPublic(BaseModel):
    address: str
    start_block: int


class DeploymentPublic(BaseModel):
    chain_id: int
    contracts: dict[str, ContractPublic]
    start_block: int
    chain_time: int = Field(
        description="the latest block's timestamp (UNIX seconds): the chain's own clock, "
        "which due dates and tenors use"
    )
    local_chain: bool = Field(
        description="the local development chain (anvil): POST /v1/dev/advance-time works"
    )


@router.get("/health", response_model=Health)
async def health(ctx: ContextDep, response: Response) -> Any:
    """Is the API up, does it reach the node and the database, is the indexer alive, how far
    behind is the mirror (503 when down; promptly, whatever hangs)."""
    found = await _probe(ctx)
    if found.status == "down":
        response.status_code = 503
        response.headers["Retry-After"] = "2"
    return found.as_json()


@router.get("/metrics", response_class=Response)
async def metrics(ctx: ContextDep) -> Response:
    """Prometheus metrics of this worker, the indexer's gauges read from its heartbeat."""
    await _probe(ctx)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _probe(ctx: AppContext) -> health_service.Health:
    settings = ctx.settings
    return await health_service.probe(
        ctx.w3,
        ctx.engine,
        ctx.chain_id,
        timeout_s=min(2.0, settings.api_node_timeout_s),
        indexer_stale_s=settings.api_indexer_stale_s,
        max_lag_blocks=settings.api_max_lag_blocks,
    )


@router.get("/v1/deployment", response_model=DeploymentPublic)
async def deployment(ctx: ContextDep, ports: PortsDep) -> Any:
    """The chain id, the contracts' addresses and the block each was deployed in, the chain's
    time, and whether it is the local development chain."""
    d = ctx.deployment
    return {
        **await chain_clock.clock(ports),
        "chain_id": d.chain_id,
        "contracts": {
            n: {"address": r.address, "start_block": r.start_block} for n, r in d.contracts.items()
        },
        "start_block": d.start_block,
    }
