"""Checking a Besu QBFT network's configuration as Besu would read it
(see :mod:`ledger.network.besu`)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.network.besu.files import _existing_node_indexes
from ledger.network.besu.qbft import (
    _ENODE,
    _NODE_ID,
    BFT_MIX_HASH,
    RPC_HTTP_APIS,
    _load_private_key,
    _node_id,
    address_from_node_id,
    decode_qbft_extra_data,
    enode_url,
)


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        problems.append(f"{path}: missing")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML ({exc})")
    return None


def _str_list(value: object) -> list[str]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return []


def verify_network(root: Path) -> None:
    """Check a network directory for consistency, raising :class:`ValueError` listing problems.

    Checked: the genesis file (QBFT settings, chain id, free gas, extra data decoding to the
    validators derived from ``node-N/data/key.pub``, and from ``key`` where present), every node's
    ``config.toml`` (paths, zero gas price, permissioning on, bootnodes allowed) and every
    allow-list (all validators' enodes; all allocated accounts).
    """
    root = Path(root)
    problems: list[str] = []
    try:
        genesis = json.loads((root / "genesis.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{root / 'genesis.json'}: cannot read genesis ({exc})") from exc
    config = genesis.get("config") if isinstance(genesis, dict) else None
    if not isinstance(config, dict):
        raise ValueError("genesis.json: no config object")
    qbft = config.get("qbft")
    if not isinstance(qbft, dict):
        problems.append("genesis.json: config.qbft is missing")
    else:
        for item in ("blockperiodseconds", "epochlength", "requesttimeoutseconds"):
            value = qbft.get(item)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"genesis.json: config.qbft.{item} must be a positive integer")
    chain_id = config.get("chainId")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id < 1:
        problems.append("genesis.json: config.chainId must be a positive integer")
    if "londonBlock" in config:
        if config.get("zeroBaseFee") is not True:
            problems.append("genesis.json: London is on but zeroBaseFee is not true")
        if genesis.get("baseFeePerGas") != "0x0":
            problems.append("genesis.json: London is on but baseFeePerGas is not 0x0")
    if genesis.get("mixHash") != BFT_MIX_HASH:
        problems.append("genesis.json: mixHash is not the BFT mix hash")

    extra_validators: tuple[str, ...] = ()
    try:
        extra = decode_qbft_extra_data(str(genesis.get("extraData", "")))
        extra_validators = extra.validators
        if extra.vote is not None or extra.round != 0 or extra.seals:
            problems.append("genesis.json: extraData must have no vote, round 0 and no seals")
    except ValueError as exc:
        problems.append(f"genesis.json: {exc}")

    alloc = genesis.get("alloc")
    alloc_accounts = {
        "0x" + key.lower().removeprefix("0x") for key in (alloc if isinstance(alloc, dict) else {})
    }

    indexes = _existing_node_indexes(root)
    if indexes != list(range(1, len(indexes) + 1)):
        problems.append(f"node directories are not numbered 1..N: {indexes}")
    node_ids: dict[int, str] = {}
    for index in indexes:
        data = root / f"node-{index}" / "data"
        pub_id: str | None = None
        try:
            text = (data / "key.pub").read_text(encoding="utf-8").strip().lower()
            candidate = text.removeprefix("0x")
            if _NODE_ID.match(candidate):
                pub_id = candidate
            else:
                problems.append(f"{data / 'key.pub'}: not a 64-byte public key")
        except FileNotFoundError:
            pass
        key_id: str | None = None
        if (data / "key").exists():
            try:
                key_id = _node_id(
                    _load_private_key(
                        (data / "key").read_text(encoding="utf-8"), source=str(data / "key")
                    )
                )
            except ValueError as exc:
                problems.append(str(exc))
        if key_id and pub_id and key_id != pub_id:
            problems.append(f"node-{index}: key.pub does not match key")
        if key_id or pub_id:
            node_ids[index] = key_id or pub_id or ""
        else:
            problems.append(f"node-{index}: neither data/key nor data/key.pub is present")

    derived = [address_from_node_id(node_ids[i]) for i in sorted(node_ids)]
    if list(extra_validators) != derived:
        problems.append(
            "genesis.json: extraData validators "
            f"{list(extra_validators)} do not match the node keys {derived}"
        )

    def check_permissions(path: Path, expected_enodes: Sequence[str]) -> None:
        data = _read_toml(path, problems)
        if data is None:
            return
        nodes_allow = set(_str_list(data.get("nodes-allowlist")))
        accounts_allow = {a.lower() for a in _str_list(data.get("accounts-allowlist"))}
        problems.extend(
            f"{path}: {enode} is not in nodes-allowlist"
            for enode in expected_enodes
            if enode not in nodes_allow
        )
        problems.extend(
            f"{path}: allocated account {account} is not in accounts-allowlist"
            for account in sorted(alloc_accounts)
            if account not in accounts_allow
        )
        if not accounts_allow:
            problems.append(f"{path}: accounts-allowlist is empty, no one could transact")
        for enode in nodes_allow:
            if not _ENODE.match(enode):
                problems.append(f"{path}: {enode!r} is not an enode URL")

    enodes: dict[int, str] = {}
    configs: dict[int, dict[str, Any]] = {}
    for index in indexes:
        config_path = root / f"node-{index}" / "config.toml"
        node_config = _read_toml(config_path, problems)
        if node_config is None or index not in node_ids:
            continue
        configs[index] = node_config
        try:
            host = str(node_config.get("p2p-host", ""))
            port = node_config.get("p2p-port")
            if not isinstance(port, int):
                raise ValueError("p2p-port is missing")
            enodes[index] = enode_url(node_ids[index], host, port)
        except ValueError as exc:
            problems.append(f"{config_path}: {exc}")

    expected = [enodes[i] for i in sorted(enodes)]
    check_permissions(root / "permissions_config.toml", expected)
    used_ports: dict[tuple[str, int], str] = {}
    for index, node_config in sorted(configs.items()):
        config_path = root / f"node-{index}" / "config.toml"
        wanted: dict[str, object] = {
            "genesis-file": "genesis.json",
            "data-path": f"node-{index}/data",
            "min-gas-price": 0,
            "sync-mode": "FULL",
            "rpc-http-enabled": True,
            "revert-reason-enabled": True,
            "permissions-nodes-config-file-enabled": True,
            "permissions-accounts-config-file-enabled": True,
        }
        for option, value in wanted.items():
            if node_config.get(option) != value:
                problems.append(f"{config_path}: {option} must be {value!r}")
        apis = set(_str_list(node_config.get("rpc-http-api")))
        missing_apis = [api for api in RPC_HTTP_APIS if api not in apis]
        if missing_apis:
            problems.append(f"{config_path}: rpc-http-api lacks {', '.join(missing_apis)}")
        key_path = node_config.get("node-private-key-file", f"node-{index}/data/key")
        if key_path != f"node-{index}/data/key":
            problems.append(f"{config_path}: node-private-key-file must be node-{index}/data/key")
        for option in ("permissions-nodes-config-file", "permissions-accounts-config-file"):
            value = node_config.get(option)
            if not isinstance(value, str):
                problems.append(f"{config_path}: {option} is missing")
            else:
                check_permissions(root / value, expected)
        for bootnode in _str_list(node_config.get("bootnodes")):
            if bootnode not in expected:
                problems.append(f"{config_path}: bootnode {bootnode} is not a known validator")
        host = str(node_config.get("p2p-host", ""))
        for option in ("p2p-port", "rpc-http-port", "metrics-port"):
            port = node_config.get(option)
            if isinstance(port, int):
                owner = used_ports.setdefault((host, port), f"node-{index} {option}")
                if owner != f"node-{index} {option}":
                    problems.append(f"{config_path}: {option} {port} clashes with {owner}")
    if problems:
        raise ValueError("Besu network check failed:\n  - " + "\n  - ".join(problems))
