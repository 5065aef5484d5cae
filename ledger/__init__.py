"""The Python side of the chain: below the indexer and the API, knowing neither.

Everything here talks to an EVM chain through standard JSON-RPC; the business knowledge it
holds is the contracts' own (their ABIs, views and functions):

- :mod:`ledger.paths` finds the repository root and the build/data directories;
- :mod:`ledger.compiler` and :mod:`ledger.artifacts` compile ``contracts/src`` through the
  solc standard-JSON shim and load the resulting artifacts;
- :mod:`ledger.abi_snapshot` keeps ``contracts/abi`` in step with the compiled ABIs;
- :mod:`ledger.errors` holds the exception hierarchy (root: :class:`LedgerError`) and the
  revert decoder;
- :mod:`ledger.node` builds an ``AsyncWeb3`` suitable for anvil and Besu QBFT (the node
  connection); :mod:`ledger.jsonrpc` is the lean JSON-RPC client (batches, retries);
- :mod:`ledger.bindings` binds the deployed suite (typed views, the contracts' enums);
  :mod:`ledger.calls` builds typed contract calls; :mod:`ledger.codec` decodes logs;
- :mod:`ledger.deploy` deploys the suite; :mod:`ledger.network.besu` generates a QBFT network;
- :mod:`ledger.config` holds the node's settings, :mod:`ledger.logs` structured logging;
- :mod:`ledger.nonces` and :mod:`ledger.sender` sign and send transactions without nonce
  collisions, across tasks and processes;
- :mod:`ledger.anvil` runs the local development node.
"""

from ledger.errors import LedgerError

__all__ = ["LedgerError"]
