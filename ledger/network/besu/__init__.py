"""Generate and check the configuration of a permissioned Hyperledger Besu QBFT network.

SPEC §5: production runs on a Besu network with QBFT consensus (4 or more validators, immediate
finality), a zero gas price and node and account allow-lists. Besu cannot be installed on the build
machines, so this module writes the whole network configuration and checks it structurally:

* one secp256k1 node key per validator, in Besu's own file format (``node-N/data/key``, never
  committed) and its public key (``node-N/data/key.pub``); the node id in the enode URL is the
  uncompressed public key without the ``04`` prefix and the validator address is the last 20 bytes
  of its keccak-256 hash;
* ``genesis.json`` with the ``qbft`` settings, a zero base fee, every EVM milestone at genesis and
  ``extraData`` encoded exactly as Besu's ``QbftExtraDataCodec`` (``besu rlp encode
  --type=QBFT_EXTRA_DATA``) encodes it: ``RLP([32-byte vanity, [validators], [] (no vote),
  0 (round), [] (no seals)])``;
* ``permissions_config.toml`` with the nodes and accounts allow-lists, plus one copy per node,
  because Besu writes runtime allow-list changes (``perm_add*``) back into the file it started with;
* ``node-N/config.toml`` for each validator, with paths relative to the network directory (start
  Besu from there);
* ``network.json``, a machine-readable summary (enodes, validator addresses, RPC URLs);
* a ``.gitignore`` that keeps private keys and Besu's runtime data out of version control.

Modules: :mod:`~ledger.network.besu.qbft` (keys, ids, extra data, defaults),
:mod:`~ledger.network.besu.files` (layout and file contents),
:mod:`~ledger.network.besu.generate` (:func:`generate_network`) and
:mod:`~ledger.network.besu.checks`: :func:`verify_network` re-reads a network directory and
cross-checks all of the above. The command is ``tierflow besu-config`` (:mod:`tierflow.besu`).
"""

from __future__ import annotations

from ledger.network.besu.checks import verify_network
from ledger.network.besu.files import NetworkLayout, ValidatorNode
from ledger.network.besu.generate import generate_network
from ledger.network.besu.qbft import (
    BFT_MIX_HASH,
    DEFAULT_ACCOUNT_BALANCE_WEI,
    DEFAULT_GAS_LIMIT,
    MAX_CONTRACT_SIZE,
    RPC_HTTP_APIS,
    EvmFork,
    QbftExtraData,
    address_from_node_id,
    decode_qbft_extra_data,
    encode_qbft_extra_data,
    enode_url,
    node_id_from_private_key,
    normalize_accounts,
)

__all__ = [
    "BFT_MIX_HASH",
    "DEFAULT_ACCOUNT_BALANCE_WEI",
    "DEFAULT_GAS_LIMIT",
    "MAX_CONTRACT_SIZE",
    "RPC_HTTP_APIS",
    "EvmFork",
    "NetworkLayout",
    "QbftExtraData",
    "ValidatorNode",
    "address_from_node_id",
    "decode_qbft_extra_data",
    "encode_qbft_extra_data",
    "enode_url",
    "generate_network",
    "node_id_from_private_key",
    "normalize_accounts",
    "verify_network",
]
