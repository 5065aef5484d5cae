"""``tierflow audit-verify``: the audit log checked from the database and the chain alone.

It needs no API: it reads the log from ``$TIERFLOW_DATABASE_URL``, the deployment record of
the node's chain and the ``AuditAnchor`` contract's anchors from ``$TIERFLOW_RPC_URL``, walks
the hash chain and compares every anchor with the log (:func:`backend.audit_log.verify`).

Exit status: 0 the log is intact and matches every anchor; 1 it does not (a record changed,
removed, rewritten below an anchor even with the later hashes recomputed, or the log truncated
below an anchor); 2 the check could not run (node, database or deployment record missing).
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from backend import audit_anchors
from backend.config import ApiSettings
from db.engine import create_engine
from ledger.deployment import load_deployment, record_path
from ledger.errors import ConfigurationError
from ledger.node import close_web3, make_web3

OK, CHANGED, CANNOT_CHECK = 0, 1, 2


class CannotCheck(Exception):
    pass


async def _verification(settings: ApiSettings) -> dict[str, Any]:
    w3 = make_web3(settings.rpc_url, settings.api_node_timeout_s)
    engine = create_engine(settings.database_url)
    try:
        try:
            chain_id = int(await w3.eth.chain_id)
        except Exception as exc:
            raise CannotCheck(f"the node at {settings.rpc_url} does not answer: {exc}") from exc
        deployment = load_deployment(chain_id)
        if deployment is None or not deployment.complete:
            raise CannotCheck(
                f"no complete deployment of chain {chain_id} in {record_path(chain_id)}"
            )
        return await audit_anchors.verification(engine, w3, deployment, need_chain=True)
    finally:
        await engine.dispose()
        await close_web3(w3)


def run_audit_verify(settings: ApiSettings, console: Console) -> int:
    """Check, print the outcome; the exit status."""
    try:
        result = asyncio.run(_verification(settings))
    except (CannotCheck, ConfigurationError) as exc:
        console.print(f"[red]audit-verify could not check:[/red] {exc}")
        return CANNOT_CHECK
    except Exception as exc:  # the database missing or unreadable, a node error
        console.print(f"[red]audit-verify could not check:[/red] {type(exc).__name__}: {exc}")
        return CANNOT_CHECK
    table = Table(title="Audit log", show_header=False)
    table.add_row("records intact", f"{result['records']:,}")
    table.add_row("anchors on chain", str(result["anchors_checked"]))
    table.add_row("anchors matching", str(result["anchors_matched"]))
    anchored = result["anchored_seq"]
    table.add_row("last anchored record", "none yet" if anchored is None else f"#{anchored}")
    if result["anchored_at"] is not None:
        table.add_row("last anchored at", result["anchored_at"].isoformat())
    if result["anchor_tx_hash"]:
        table.add_row("last anchor transaction", result["anchor_tx_hash"])
    console.print(table)
    for bad in result["anchor_mismatches"]:
        what = "rewritten" if bad["status"] == "rewritten" else "missing from the log"
        console.print(f"  anchor {bad['index']}: record #{bad['seq']} {what}")
    if result["ok"]:
        tail = "" if anchored is None else f", anchored up to record #{anchored}"
        console.print(f"[green]✓ audit log intact[/green] ({result['records']:,} records{tail})")
        return OK
    console.print(
        f"[red]✗ audit log broken at record #{result['first_bad_seq']}:[/red] {result['reason']}"
    )
    return CHANGED
