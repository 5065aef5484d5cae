"""Writing a Besu QBFT network's configuration (see :mod:`ledger.network.besu`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import coincurve

from ledger.network.besu.files import (
    NetworkLayout,
    ValidatorNode,
    _check_hosts,
    _check_int,
    _existing_node_indexes,
    _genesis,
    _key_file_text,
    _node_config_toml,
    _permissions_toml,
    _write_secret,
    _write_text,
)
from ledger.network.besu.qbft import (
    _GITIGNORE,
    DEFAULT_ACCOUNT_BALANCE_WEI,
    DEFAULT_CHAIN_ID,
    DEFAULT_EPOCH_LENGTH,
    DEFAULT_GAS_LIMIT,
    DEFAULT_METRICS_PORT,
    DEFAULT_P2P_PORT,
    DEFAULT_RPC_HTTP_PORT,
    MAX_CONTRACT_SIZE,
    EvmFork,
    _load_private_key,
    _node_id,
    address_from_node_id,
    encode_qbft_extra_data,
    normalize_accounts,
)


def generate_network(
    out_dir: Path,
    validators: int = 4,
    chain_id: int = DEFAULT_CHAIN_ID,
    block_period_seconds: int = 2,
    extra_accounts: list[str] | None = None,
    *,
    request_timeout_seconds: int | None = None,
    epoch_length: int = DEFAULT_EPOCH_LENGTH,
    evm_fork: EvmFork | str = EvmFork.CANCUN,
    gas_limit: int = DEFAULT_GAS_LIMIT,
    contract_size_limit: int = MAX_CONTRACT_SIZE,
    hosts: Sequence[str] | None = None,
    base_p2p_port: int = DEFAULT_P2P_PORT,
    base_rpc_http_port: int = DEFAULT_RPC_HTTP_PORT,
    base_metrics_port: int = DEFAULT_METRICS_PORT,
    rpc_allowed_hosts: Sequence[str] = (),
    with_deployer: bool = True,
    account_balance_wei: int = DEFAULT_ACCOUNT_BALANCE_WEI,
    reuse_keys: bool = False,
) -> NetworkLayout:
    """Write a complete Besu QBFT network configuration into ``out_dir``.

    ``validators`` nodes are written as ``node-1`` … ``node-N``; node ``i`` (0-based) listens on
    ``base_*_port + i`` so that all nodes can share one host. ``hosts`` gives the IP address of each
    node (or one for all; default ``127.0.0.1``). ``extra_accounts`` are allowed to transact and
    get a balance; with ``with_deployer`` a fresh deployer key is also written to
    ``deployer/key`` (its address to ``deployer/address``) and allowed likewise.

    Existing private keys are never overwritten: with ``reuse_keys`` they are kept (the validator
    set and enodes stay the same), otherwise :class:`FileExistsError` is raised. Invalid input
    raises :class:`ValueError` before anything is written.
    """
    # ---- validate everything before touching the filesystem
    count = _check_int("validators", validators, minimum=1, maximum=1000)
    _check_int("chain_id", chain_id, minimum=1, maximum=2**53 - 1)
    _check_int("block_period_seconds", block_period_seconds, minimum=1)
    timeout = (
        2 * block_period_seconds if request_timeout_seconds is None else request_timeout_seconds
    )
    _check_int("request_timeout_seconds", timeout, minimum=1)
    if timeout <= block_period_seconds:
        raise ValueError(
            f"request_timeout_seconds ({timeout}) must exceed block_period_seconds "
            f"({block_period_seconds}), or every round times out before its block is due"
        )
    _check_int("epoch_length", epoch_length, minimum=1)
    _check_int("gas_limit", gas_limit, minimum=21000, maximum=2**63 - 1)
    _check_int("contract_size_limit", contract_size_limit, minimum=1, maximum=MAX_CONTRACT_SIZE)
    _check_int("account_balance_wei", account_balance_wei, minimum=0)
    try:
        fork = EvmFork(evm_fork.lower() if isinstance(evm_fork, str) else evm_fork)
    except ValueError:
        choices = ", ".join(f.value for f in EvmFork)
        raise ValueError(f"evm_fork must be one of {choices}, got {evm_fork!r}") from None
    accounts = normalize_accounts(extra_accounts or [])
    if not accounts and not with_deployer:
        raise ValueError(
            "no account would be allowed to transact: pass extra_accounts or keep with_deployer"
        )
    node_hosts = _check_hosts(hosts, count)
    if isinstance(rpc_allowed_hosts, str):
        rpc_allowed_hosts = [rpc_allowed_hosts]
    for allowed in rpc_allowed_hosts:
        if not isinstance(allowed, str) or not allowed or any(c in allowed for c in " \t\"'"):
            raise ValueError(f"rpc_allowed_hosts: {allowed!r} is not a host name")
    ports: dict[tuple[str, int], str] = {}
    for i in range(count):
        for kind, base in (
            ("p2p", base_p2p_port),
            ("rpc", base_rpc_http_port),
            ("metrics", base_metrics_port),
        ):
            port = _check_int(f"{kind} port of node-{i + 1}", base + i, minimum=1, maximum=65535)
            owner = ports.setdefault((node_hosts[i], port), f"{kind} port of node-{i + 1}")
            if owner != f"{kind} port of node-{i + 1}":
                raise ValueError(f"{owner} and {kind} port of node-{i + 1} are both {port}")

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a directory")
    stale = [i for i in _existing_node_indexes(out_dir) if i > count]
    if stale:
        raise ValueError(
            f"{out_dir} already holds node-{stale[0]} from a larger network; "
            "generate into an empty directory"
        )
    key_files = [out_dir / f"node-{i}" / "data" / "key" for i in range(1, count + 1)]
    deployer_key_file = out_dir / "deployer" / "key"
    existing = [p for p in [*key_files, deployer_key_file] if p.exists()]
    if existing and not reuse_keys:
        shown = ", ".join(str(p) for p in existing)
        raise FileExistsError(
            f"private keys already exist ({shown}); pass reuse_keys to keep them, or generate "
            "into an empty directory (keys are never overwritten)"
        )

    # ---- keys
    node_keys = [
        _load_private_key(path.read_text(encoding="utf-8"), source=str(path))
        if path.exists()
        else coincurve.PrivateKey()
        for path in key_files
    ]
    deployer_key: coincurve.PrivateKey | None = None
    if with_deployer:
        deployer_key = (
            _load_private_key(
                deployer_key_file.read_text(encoding="utf-8"), source=str(deployer_key_file)
            )
            if deployer_key_file.exists()
            else coincurve.PrivateKey()
        )
    deployer_address = (
        address_from_node_id(_node_id(deployer_key)) if deployer_key is not None else None
    )
    allowed_accounts = [deployer_address] if deployer_address else []
    allowed_accounts += [
        a for a in accounts if a.lower() not in {d.lower() for d in allowed_accounts}
    ]

    nodes: list[ValidatorNode] = []
    for i, key in enumerate(node_keys):
        directory = out_dir / f"node-{i + 1}"
        node_id = _node_id(key)
        nodes.append(
            ValidatorNode(
                index=i + 1,
                node_id=node_id,
                address=address_from_node_id(node_id),
                host=node_hosts[i],
                p2p_port=base_p2p_port + i,
                rpc_http_port=base_rpc_http_port + i,
                metrics_port=base_metrics_port + i,
                directory=directory,
                key_file=directory / "data" / "key",
                public_key_file=directory / "data" / "key.pub",
                config_file=directory / "config.toml",
                permissions_file=directory / "permissions_config.toml",
            )
        )
    if len({node.node_id for node in nodes}) != len(nodes):
        raise ValueError("two validators share a node key; every node needs its own key")

    extra_data = encode_qbft_extra_data([node.address for node in nodes])
    genesis = _genesis(
        chain_id=chain_id,
        evm_fork=fork,
        block_period_seconds=block_period_seconds,
        request_timeout_seconds=timeout,
        epoch_length=epoch_length,
        gas_limit=gas_limit,
        contract_size_limit=contract_size_limit,
        extra_data=extra_data,
        alloc=dict.fromkeys(allowed_accounts, account_balance_wei),
    )
    enodes = [node.enode for node in nodes]
    permissions = _permissions_toml(enodes, allowed_accounts)

    # ---- write
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / ".gitignore", _GITIGNORE)
    genesis_file = out_dir / "genesis.json"
    _write_text(genesis_file, json.dumps(genesis, indent=2) + "\n")
    permissions_file = out_dir / "permissions_config.toml"
    _write_text(permissions_file, permissions)
    for node, key in zip(nodes, node_keys, strict=True):
        if not node.key_file.exists():
            _write_secret(node.key_file, _key_file_text(key))
        _write_text(node.public_key_file, "0x" + node.node_id)
        _write_text(node.permissions_file, permissions)
        bootnodes = [enode for enode in enodes if enode != node.enode]
        _write_text(
            node.config_file,
            _node_config_toml(
                node, root=out_dir, bootnodes=bootnodes, rpc_allowed_hosts=rpc_allowed_hosts
            ),
        )
    layout_deployer_key: Path | None = None
    if deployer_key is not None and deployer_address is not None:
        if not deployer_key_file.exists():
            _write_secret(deployer_key_file, _key_file_text(deployer_key))
        _write_text(out_dir / "deployer" / "address", deployer_address + "\n")
        layout_deployer_key = deployer_key_file

    summary_file = out_dir / "network.json"
    summary = {
        "chainId": chain_id,
        "consensus": "qbft",
        "evmFork": fork.value,
        "blockPeriodSeconds": block_period_seconds,
        "faultTolerance": (count - 1) // 3,
        "validators": [
            {
                "name": node.name,
                "address": node.address,
                "nodeId": node.node_id,
                "enode": node.enode,
                "rpcUrl": node.rpc_url,
                "config": node.config_file.relative_to(out_dir).as_posix(),
            }
            for node in nodes
        ],
        "accounts": allowed_accounts,
        "deployer": deployer_address,
    }
    _write_text(summary_file, json.dumps(summary, indent=2) + "\n")

    return NetworkLayout(
        root=out_dir,
        chain_id=chain_id,
        evm_fork=fork,
        validators=tuple(nodes),
        accounts=tuple(allowed_accounts),
        deployer_address=deployer_address,
        deployer_key_file=layout_deployer_key,
        genesis_file=genesis_file,
        permissions_file=permissions_file,
        summary_file=summary_file,
        extra_data=extra_data,
    )
