"""``python -m bench.perf.baseline_api CHANGE…``: ``tierflow serve`` with changes of
docs/performance.md taken back, so :mod:`bench.perf.write_path` measures before and after side
by side on one stack:

- ``bookkeeping`` (change 8): six database transactions per hosted keyed write: the journal's
  record and the audit citation committed one after the other before the broadcast, the
  answer and the audit record one after the other after it;
- ``web3-stack`` (change 9): the gateway's senders broadcast, read nonces and wait for
  receipts through web3.py's request stack (:class:`bench.perf.baseline.Web3StackSender`);
- ``relayer-estimate`` (change 10): the relayer asks ``eth_estimateGas`` for every relay.
"""

from __future__ import annotations

import sys
from typing import Any

from backend import gateway
from backend.api import deps
from backend.ports import TxJournal, WriteContext
from bench.perf.baseline import Web3StackSender
from ledger.sender import TransactionSender

CHANGES = ("bookkeeping", "web3-stack", "relayer-estimate")


def install(changes: list[str]) -> None:
    """Take ``changes`` back in this process."""
    unknown = set(changes) - set(CHANGES)
    if unknown:
        raise SystemExit(f"unknown changes {sorted(unknown)}; known: {', '.join(CHANGES)}")
    if "bookkeeping" in changes:

        async def record(self: WriteContext, journal: TxJournal, tx_hash: str) -> None:
            await journal.persist(journal)
            await self.cite(tx_hash)

        def no_finishing(_request: Any) -> None:
            return None

        WriteContext.record = record  # type: ignore[method-assign]
        deps._finishing = no_finishing  # type: ignore[assignment]
    if "web3-stack" in changes:
        vars(gateway)["TransactionSender"] = Web3StackSender  # the gateway's senders
    if "relayer-estimate" in changes:

        def relayer_sender(self: gateway.Gateway) -> Any:
            return TransactionSender(
                self.w3,
                self.relayer,
                self.nonces,
                receipt_timeout_s=self.receipt_timeout_s,
                unavailable_timeout_s=self.unavailable_s,
            )

        gateway.Gateway.relayer_sender = relayer_sender  # type: ignore[method-assign]


def serve() -> None:
    """``tierflow serve`` in this process (one worker: the changes taken back live here; a
    spawned worker would import the API afresh). bench sits below the command line in the
    layers, so it runs uvicorn itself rather than through ``tierflow.cli``."""
    import uvicorn

    from backend.app import create_app
    from backend.config import ApiSettings

    settings = ApiSettings()
    uvicorn.run(
        create_app,
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level,
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    install(sys.argv[1:])
    serve()
