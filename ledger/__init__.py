"""Tierflow's contract-agnostic ledger layer.

Everything here talks to an EVM chain through standard JSON-RPC and knows nothing about the
business contracts themselves:

- :mod:`ledger.paths` finds the repository root and the build/data directories;
- :mod:`ledger.compiler` and :mod:`ledger.artifacts` compile ``contracts/src`` through the
  solc standard-JSON shim and load the resulting artifacts;
- :mod:`ledger.abi_snapshot` keeps ``contracts/abi`` in step with the compiled ABIs;
- :mod:`ledger.errors` holds the exception hierarchy (root: :class:`LedgerError`) and the
  revert decoder;
- :mod:`ledger.chain` builds an ``AsyncWeb3`` suitable for anvil and Besu QBFT;
- :mod:`ledger.nonces` and :mod:`ledger.sender` sign and send transactions without nonce
  collisions, across tasks and processes;
- :mod:`ledger.anvil` runs the local development node.
"""

from ledger.errors import LedgerError

__all__ = ["LedgerError"]
