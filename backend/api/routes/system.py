"""System: health, Prometheus metrics, and where the contracts are."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from backend.api.deps import ContextDep, PortsDep
from backend.services import chain_clock

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    chain_id: int
    head_block: int | None
    mirrored_block: int | None
    lag_blocks: int | None


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
    """Is the API up, does it reach the node, how far behind is the mirror."""
    try:
        head: int | None = int(await ctx.w3.eth.block_number)
    except Exception:
        head = None
    mirrored = await ctx.gateway.mirrored_block()
    ok = head is not None and mirrored is not None
    if not ok:
        response.status_code = 503
    return {
        "status": "ok" if ok else "degraded",
        "chain_id": ctx.chain_id,
        "head_block": head,
        "mirrored_block": mirrored,
        "lag_blocks": None if head is None or mirrored is None else max(0, head - mirrored),
    }


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus metrics of this worker."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


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
