"""The indexer's errors: one root, :class:`IndexerError`.

::

    IndexerError
    ├── InconsistentChain      logs and headers disagree (a reorg under our feet): retry
    ├── NodeBehind             the node has not reached our checkpoint yet: wait
    ├── ReorgTooDeep           the common ancestor is older than the kept window: stop
    ├── WriterLockHeld         another indexer writes to this database
    ├── CheckpointMoved        the checkpoint changed under us (a second writer): stop
    └── MirrorError            the mirror cannot apply an event (a bug or a foreign DB)

The node's own faults are the JSON-RPC client's (:mod:`ledger.jsonrpc`, under
:class:`ledger.errors.LedgerError`): ``NodeUnavailable`` (retries used up), ``RpcError`` and
its ``RangeTooLarge`` (the fetcher splits the range); a log the codec cannot decode is
``UndecodableLog``. The transient ones (``NodeUnavailable``, ``InconsistentChain``,
``NodeBehind``) are retried by the pipeline with backoff; it never advances past what it has
verified. The others stop the indexer with the message shown to the operator.
"""

from __future__ import annotations


class IndexerError(Exception):
    """Root of the indexer's errors."""


class InconsistentChain(IndexerError):
    """Logs and block headers fetched for one range disagree; the range is fetched again."""


class NodeBehind(IndexerError):
    """The node's head is below the indexer's checkpoint (a lagging or resyncing node)."""


class ReorgTooDeep(IndexerError):
    """A reorganisation reaches below the kept window of block headers."""

    def __init__(self, checkpoint: int, oldest_kept: int | None) -> None:
        self.checkpoint = checkpoint
        self.oldest_kept = oldest_kept
        super().__init__(
            f"reorganisation deeper than the kept window: no block from {oldest_kept} to "
            f"{checkpoint} is still on the node's chain; rebuild the mirror from genesis "
            "(drop the database) or raise the window"
        )


class WriterLockHeld(IndexerError):
    """Another indexer holds the single-writer lock of this database."""


class CheckpointMoved(IndexerError):
    """The checkpoint is not where this indexer left it: another writer touched the mirror."""


class MirrorError(IndexerError):
    """An event cannot be applied to the mirror (it references an unknown object)."""
