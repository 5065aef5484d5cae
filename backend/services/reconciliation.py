"""Reconciliation (IX-5, for auditors): every mirrored object against the contracts' views
at the mirror's checkpoint. No FastAPI in here."""

from __future__ import annotations

from typing import Any

from eth_abi.exceptions import DecodingError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.errors import Unavailable
from indexer.errors import IndexerError
from indexer.reconcile import reconcile
from ledger.jsonrpc import NodeUnavailable, RetryPolicy, RpcClient, RpcError

#: The reconciliation's node calls: each batch of 400 views gets 30 s and three tries.
RECONCILE_RETRY = RetryPolicy(attempts=3, initial_s=0.1, max_s=1.0)


async def reconciliation(engine: AsyncEngine, rpc_url: str, limit: int) -> dict[str, Any]:
    """IX-5 against the node at the mirror's checkpoint; the first ``limit`` differences."""
    try:
        # A client waits on this answer: a few quick retries, not the indexer's patient eight
        # (a node that hangs would hold the request for minutes).
        async with RpcClient(rpc_url, timeout_s=30.0, retry=RECONCILE_RETRY) as rpc:
            report = await reconcile(engine, rpc)
    except NodeUnavailable as exc:
        raise Unavailable(
            "the ledger node is unavailable; retry later", code="chain_unavailable"
        ) from exc
    except (RpcError, DecodingError) as exc:
        # The node answered but not with the views at that block (pruned state, a node of
        # another chain): nothing a retry by the client fixes at once, yet not a client error.
        raise Unavailable(
            "the node could not answer the contracts' views at the mirror's checkpoint",
            code="reconciliation_unavailable",
        ) from exc
    except IndexerError as exc:
        raise Unavailable(
            "the mirror holds no checkpoint yet: the indexer has not run", code="mirror_empty"
        ) from exc
    body = report.as_dict()
    return {
        **body,
        "ok": report.ok,
        "differences": body["differences"][:limit],
        "differences_total": len(report.differences),
    }
