"""The files of a Besu QBFT network: the layout of its validators and the TOML and JSON
they are configured with (see :mod:`ledger.network.besu`)."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve

from ledger.network.besu.qbft import (
    _BLOCK_MILESTONES,
    _FORK_ORDER,
    _NODE_DIR,
    _ZERO_ADDRESS,
    BFT_MIX_HASH,
    DEFAULT_HOST,
    RPC_HTTP_APIS,
    TX_POOL_MAX_FUTURE_BY_SENDER,
    TX_POOL_MAX_PRIORITIZED,
    EvmFork,
    enode_url,
)


def _check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_hosts(hosts: Sequence[str] | None, validators: int) -> list[str]:
    if isinstance(hosts, str):
        hosts = [hosts]
    if hosts is None or len(hosts) == 0:
        return [DEFAULT_HOST] * validators
    if len(hosts) not in (1, validators):
        raise ValueError(
            f"give one host for all validators or one per validator ({validators}), "
            f"got {len(hosts)}"
        )
    checked: list[str] = []
    for host in hosts:
        try:
            checked.append(str(ipaddress.ip_address(host)))
        except ValueError:
            raise ValueError(
                f"host {host!r} is not an IP address: Besu's nodes allow-list matches enode URLs "
                "by IP (domain names need the early-access --Xdns-enabled option)"
            ) from None
    return checked * validators if len(checked) == 1 else checked


@dataclass(frozen=True)
class ValidatorNode:
    """One generated validator node."""

    index: int
    node_id: str
    address: str
    host: str
    p2p_port: int
    rpc_http_port: int
    metrics_port: int
    directory: Path
    key_file: Path
    public_key_file: Path
    config_file: Path
    permissions_file: Path

    @property
    def name(self) -> str:
        """Directory name, ``node-N``."""
        return f"node-{self.index}"

    @property
    def enode(self) -> str:
        """The node's enode URL."""
        return enode_url(self.node_id, self.host, self.p2p_port)

    @property
    def rpc_url(self) -> str:
        """The node's JSON-RPC HTTP endpoint (a value for ``TIERFLOW_RPC_URL``)."""
        address = ipaddress.ip_address(self.host)
        shown = f"[{address}]" if address.version == 6 else str(address)
        return f"http://{shown}:{self.rpc_http_port}"


@dataclass(frozen=True)
class NetworkLayout:
    """What :func:`generate_network` wrote."""

    root: Path
    chain_id: int
    evm_fork: EvmFork
    validators: tuple[ValidatorNode, ...]
    accounts: tuple[str, ...]
    deployer_address: str | None
    deployer_key_file: Path | None
    genesis_file: Path
    permissions_file: Path
    summary_file: Path
    extra_data: str

    @property
    def enodes(self) -> list[str]:
        """Enode URLs of all validators, in node order."""
        return [node.enode for node in self.validators]

    @property
    def rpc_urls(self) -> list[str]:
        """JSON-RPC HTTP endpoints of all validators, in node order."""
        return [node.rpc_url for node in self.validators]

    @property
    def fault_tolerance(self) -> int:
        """How many validators may fail while QBFT keeps finalising blocks: ``(n - 1) // 3``."""
        return (len(self.validators) - 1) // 3


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        items = [_toml_value(item) for item in value]
        if sum(len(item) for item in items) <= 80:
            return "[" + ", ".join(items) + "]"
        return "[\n" + ",\n".join(f"  {item}" for item in items) + "\n]"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def _toml(sections: Sequence[tuple[str, Sequence[tuple[str, object]]]], header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for comment, entries in sections:
        lines.append("")
        lines.append(f"# {comment}")
        lines.extend(f"{key}={_toml_value(value)}" for key, value in entries)
    return "\n".join(lines) + "\n"


def _genesis(
    *,
    chain_id: int,
    evm_fork: EvmFork,
    block_period_seconds: int,
    request_timeout_seconds: int,
    epoch_length: int,
    gas_limit: int,
    contract_size_limit: int,
    extra_data: str,
    alloc: Mapping[str, int],
) -> dict[str, Any]:
    config: dict[str, Any] = {"chainId": chain_id}
    config.update(dict.fromkeys(_BLOCK_MILESTONES, 0))
    fork_level = _FORK_ORDER.index(evm_fork)
    if fork_level >= _FORK_ORDER.index(EvmFork.LONDON):
        config["londonBlock"] = 0
    if fork_level >= _FORK_ORDER.index(EvmFork.SHANGHAI):
        config["shanghaiTime"] = 0
    if fork_level >= _FORK_ORDER.index(EvmFork.CANCUN):
        config["cancunTime"] = 0
    if evm_fork.has_london:
        # Free gas under EIP-1559: every block after genesis carries a base fee of 0.
        config["zeroBaseFee"] = True
    config["contractSizeLimit"] = contract_size_limit
    config["qbft"] = {
        "blockperiodseconds": block_period_seconds,
        "epochlength": epoch_length,
        "requesttimeoutseconds": request_timeout_seconds,
    }
    genesis: dict[str, Any] = {
        "config": config,
        "nonce": "0x0",
        "timestamp": "0x0",
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "mixHash": BFT_MIX_HASH,
        "coinbase": _ZERO_ADDRESS,
    }
    if evm_fork.has_london:
        # Without it Besu gives the genesis block a 1 gwei base fee, and clients that price
        # transactions from the latest block would ask for fees until block 1 exists.
        genesis["baseFeePerGas"] = "0x0"
    genesis["extraData"] = extra_data
    genesis["alloc"] = {
        account[2:].lower(): {"balance": hex(balance)} for account, balance in alloc.items()
    }
    return genesis


def _permissions_toml(enodes: Sequence[str], accounts: Sequence[str]) -> str:
    return _toml(
        [
            (
                "Only these accounts may send transactions (checked on submission and by the "
                "block proposer).",
                [("accounts-allowlist", [a.lower() for a in accounts])],
            ),
            (
                "Only these nodes may connect (validators must be listed, bootnodes included).",
                [("nodes-allowlist", list(enodes))],
            ),
        ],
        header=(
            "Besu local permissioning (nodes and accounts allow-lists), generated by\n"
            "tierflow.besu. Keep every node's copy identical: add accounts at runtime with\n"
            "perm_addAccountsToAllowlist on every node (Besu writes the change back here)."
        ),
    )


def _node_config_toml(
    node: ValidatorNode,
    *,
    root: Path,
    bootnodes: Sequence[str],
    rpc_allowed_hosts: Sequence[str],
) -> str:
    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    allowed = list(dict.fromkeys(["localhost", "127.0.0.1", node.host, *rpc_allowed_hosts]))
    return _toml(
        [
            (
                "Chain and storage",
                [
                    ("genesis-file", "genesis.json"),
                    ("data-path", rel(node.directory / "data")),
                    ("node-private-key-file", rel(node.key_file)),
                    ("sync-mode", "FULL"),
                    ("data-storage-format", "BONSAI"),
                    # Required with sync-mode FULL on Bonsai (Besu refuses to start otherwise).
                    ("bonsai-limit-trie-logs-enabled", False),
                ],
            ),
            (
                "Peer-to-peer",
                [
                    ("p2p-host", node.host),
                    ("p2p-port", node.p2p_port),
                    ("discovery-enabled", True),
                    ("bootnodes", list(bootnodes)),
                ],
            ),
            (
                "Permissioning: local allow-lists for nodes and accounts",
                [
                    ("permissions-nodes-config-file-enabled", True),
                    ("permissions-nodes-config-file", rel(node.permissions_file)),
                    ("permissions-accounts-config-file-enabled", True),
                    ("permissions-accounts-config-file", rel(node.permissions_file)),
                ],
            ),
            (
                "JSON-RPC over HTTP (ADMIN and PERM are operator APIs: firewall this port)",
                [
                    ("rpc-http-enabled", True),
                    ("rpc-http-host", node.host),
                    ("rpc-http-port", node.rpc_http_port),
                    ("rpc-http-api", list(RPC_HTTP_APIS)),
                    ("host-allowlist", allowed),
                    ("revert-reason-enabled", True),
                ],
            ),
            (
                "Free gas: accept and mine transactions priced at zero",
                [
                    ("min-gas-price", 0),
                ],
            ),
            (
                "Transaction pool (layered). Concurrent API workers signing for one member can "
                "leave short nonce gaps",
                [
                    ("tx-pool", "layered"),
                    ("tx-pool-max-future-by-sender", TX_POOL_MAX_FUTURE_BY_SENDER),
                    ("tx-pool-max-prioritized", TX_POOL_MAX_PRIORITIZED),
                ],
            ),
            (
                "Metrics (Prometheus)",
                [
                    ("metrics-enabled", True),
                    ("metrics-host", node.host),
                    ("metrics-port", node.metrics_port),
                ],
            ),
        ],
        header=(
            f"Besu configuration for validator {node.name} ({node.address}), generated by\n"
            "tierflow.besu. Paths are relative to the network directory: start Besu from there,\n"
            f"  besu --config-file={rel(node.config_file)}"
        ),
    )


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _write_secret(path: Path, text: str) -> None:
    """Write a private key readable by its owner only, replacing any previous file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _key_file_text(key: coincurve.PrivateKey) -> str:
    # Besu's KeyPairUtil writes the private key as 0x-prefixed hex on one line.
    return "0x" + key.secret.hex()


def _existing_node_indexes(out_dir: Path) -> list[int]:
    if not out_dir.is_dir():
        return []
    found = []
    for child in out_dir.iterdir():
        match = _NODE_DIR.match(child.name)
        if match and child.is_dir():
            found.append(int(match["index"]))
    return sorted(found)
