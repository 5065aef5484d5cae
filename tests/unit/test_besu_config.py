"""Tests for the Besu QBFT network generator (``ledger.network.besu``; SPEC §5).

Besu itself cannot run here, so the generated network is checked structurally: keys, enodes,
validator addresses and extra data are re-derived independently (eth-keys / eth-account rather
than the generator's own coincurve path) and compared with what was written; the RLP encoder is
pinned to an ``extraData`` published in Besu's QBFT documentation.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import rlp
import typer
from eth_account import Account
from eth_keys.datatypes import PrivateKey
from typer.testing import CliRunner

from ledger.network.besu import (
    BFT_MIX_HASH,
    RPC_HTTP_APIS,
    EvmFork,
    NetworkLayout,
    address_from_node_id,
    decode_qbft_extra_data,
    encode_qbft_extra_data,
    enode_url,
    generate_network,
    node_id_from_private_key,
    normalize_accounts,
    verify_network,
)
from tierflow.besu import besu_command

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_NETWORK = REPO_ROOT / "chain" / "besu" / "network"

# The QBFT genesis example in Besu's documentation (private-networks/how-to/configure/consensus/
# qbft.md, "Block header validator selection"), produced by Besu's QbftExtraDataCodec.
BESU_DOCS_EXTRA_DATA = (
    "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f85494"
    "64a702e6263b7297a96638cac6ae65e6541f416994"
    "3923390ad55e90c237593b3b0e401f3b08a0318594"
    "aefdb9a738c9f433e5b6b212a6d62f6370c2f69294"
    "c7eeb9a4e00ce683cf93039b212648e01c6c6b78c080c0"
)
BESU_DOCS_VALIDATORS = [
    "0x64a702e6263b7297a96638cac6ae65e6541f4169",
    "0x3923390ad55e90c237593b3b0e401f3b08a03185",
    "0xaefdb9a738c9f433e5b6b212a6d62f6370c2f692",
    "0xc7eeb9a4e00ce683cf93039b212648e01c6c6b78",
]
# Same page, "Contract validator selection": no validators in the header.
BESU_DOCS_EMPTY_EXTRA_DATA = "0xe5a0" + "00" * 32 + "c0c080c0"

ACCOUNT_A = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55 test vector
ACCOUNT_B = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"  # EIP-55 test vector, lower-cased
ACCOUNT_B_CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def _private_key(path: Path) -> bytes:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("0x")
    assert "\n" not in text  # Besu reads exactly one line
    return bytes.fromhex(text[2:])


def _toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _genesis(layout: NetworkLayout) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(layout.genesis_file.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def network(tmp_path: Path) -> NetworkLayout:
    return generate_network(tmp_path / "net", extra_accounts=[ACCOUNT_A, ACCOUNT_B])


# ---------------------------------------------------------------------------- extra data


def test_extra_data_matches_besu_documentation() -> None:
    assert encode_qbft_extra_data(BESU_DOCS_VALIDATORS) == BESU_DOCS_EXTRA_DATA
    assert encode_qbft_extra_data([]) == BESU_DOCS_EMPTY_EXTRA_DATA
    decoded = decode_qbft_extra_data(BESU_DOCS_EXTRA_DATA)
    assert [a.lower() for a in decoded.validators] == BESU_DOCS_VALIDATORS
    assert decoded.vanity == b"\x00" * 32
    assert decoded.vote is None
    assert decoded.round == 0
    assert decoded.seals == ()


def test_extra_data_is_rlp_of_vanity_validators_vote_round_seals() -> None:
    raw = bytes.fromhex(encode_qbft_extra_data(BESU_DOCS_VALIDATORS)[2:])
    vanity, validators, vote, round_, seals = rlp.decode(raw)
    assert vanity == b"\x00" * 32
    assert [v.hex() for v in validators] == [a[2:] for a in BESU_DOCS_VALIDATORS]
    assert vote == []
    assert round_ == b""  # scalar 0
    assert seals == []


@pytest.mark.parametrize(
    "extra_data",
    ["0x", "0xzz", "0xc0", "0x" + "00" * 32, "0xe4a0" + "00" * 32 + "c0c080"],
)
def test_decode_rejects_malformed_extra_data(extra_data: str) -> None:
    with pytest.raises(ValueError, match="extraData"):
        decode_qbft_extra_data(extra_data)


def test_encode_rejects_bad_validator_address() -> None:
    with pytest.raises(ValueError, match="validator"):
        encode_qbft_extra_data(["0x1234"])


# ---------------------------------------------------------------------------- keys


def test_node_id_and_address_derivation() -> None:
    key = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    expected_id = PrivateKey(key).public_key.to_hex()[2:]
    assert node_id_from_private_key(key) == expected_id
    assert node_id_from_private_key("0x" + key.hex()) == expected_id
    assert address_from_node_id(expected_id) == Account.from_key(key).address
    with pytest.raises(ValueError, match="128 hex"):
        address_from_node_id("abcd")
    with pytest.raises(ValueError, match="private key"):
        node_id_from_private_key(b"\x00" * 32)


def test_enode_url_formats_ipv4_and_ipv6() -> None:
    node_id = "ab" * 64
    assert enode_url(node_id, "10.0.0.1", 30303) == f"enode://{node_id}@10.0.0.1:30303"
    assert enode_url(node_id, "::1", 30303) == f"enode://{node_id}@[::1]:30303"


# ---------------------------------------------------------------------------- the network


def test_generated_files(network: NetworkLayout) -> None:
    root = network.root
    for name in ("genesis.json", "permissions_config.toml", "network.json", ".gitignore"):
        assert (root / name).is_file()
    for i in range(1, 5):
        for name in ("config.toml", "permissions_config.toml", "data/key", "data/key.pub"):
            assert (root / f"node-{i}" / name).is_file()
    assert sorted(p.name for p in root.glob("node-*")) == ["node-1", "node-2", "node-3", "node-4"]
    assert network.fault_tolerance == 1
    verify_network(root)


def test_genesis_settings(network: NetworkLayout) -> None:
    genesis = _genesis(network)
    config = genesis["config"]
    assert config["chainId"] == 1337
    assert config["qbft"] == {
        "blockperiodseconds": 2,
        "epochlength": 30000,
        "requesttimeoutseconds": 4,
    }
    assert config["zeroBaseFee"] is True
    assert config["londonBlock"] == 0
    assert config["shanghaiTime"] == 0
    assert config["cancunTime"] == 0
    assert config["berlinBlock"] == 0
    assert config["contractSizeLimit"] == 2_147_483_647
    assert "ibft2" not in config
    assert "clique" not in config
    assert genesis["baseFeePerGas"] == "0x0"
    assert int(genesis["gasLimit"], 16) == 0x3B9ACA00
    assert genesis["difficulty"] == "0x1"
    assert genesis["mixHash"] == BFT_MIX_HASH


def test_extra_data_lists_validators_derived_from_node_keys(network: NetworkLayout) -> None:
    genesis = _genesis(network)
    assert genesis["extraData"] == network.extra_data
    decoded = decode_qbft_extra_data(genesis["extraData"])
    expected = [
        Account.from_key(_private_key(network.root / f"node-{i}" / "data" / "key")).address
        for i in range(1, 5)
    ]
    assert list(decoded.validators) == expected
    assert [node.address for node in network.validators] == expected
    assert decoded.vote is None
    assert decoded.round == 0
    assert decoded.seals == ()


def test_node_keys_and_enodes(network: NetworkLayout) -> None:
    for node in network.validators:
        key = _private_key(node.key_file)
        node_id = PrivateKey(key).public_key.to_hex()[2:]
        assert len(node_id) == 128
        assert node.node_id == node_id
        assert node.public_key_file.read_text(encoding="utf-8") == "0x" + node_id
        assert node.enode == f"enode://{node_id}@127.0.0.1:{30303 + node.index - 1}"
        assert stat.S_IMODE(node.key_file.stat().st_mode) == 0o600
    assert len({node.node_id for node in network.validators}) == 4


def test_allowlists_contain_every_node_and_account(network: NetworkLayout) -> None:
    enodes = set(network.enodes)
    deployer = network.deployer_address
    assert deployer is not None
    accounts = {ACCOUNT_A.lower(), ACCOUNT_B.lower(), deployer.lower()}
    files = [network.permissions_file] + [node.permissions_file for node in network.validators]
    for path in files:
        permissions = _toml(path)
        assert set(permissions["nodes-allowlist"]) == enodes
        assert set(permissions["accounts-allowlist"]) == accounts
    alloc = _genesis(network)["alloc"]
    assert {"0x" + address for address in alloc} == accounts
    assert all(int(entry["balance"], 16) > 0 for entry in alloc.values())


def test_node_configs(network: NetworkLayout) -> None:
    seen_ports: set[int] = set()
    for node in network.validators:
        config = _toml(node.config_file)
        assert config["genesis-file"] == "genesis.json"
        assert config["data-path"] == f"node-{node.index}/data"
        assert config["node-private-key-file"] == f"node-{node.index}/data/key"
        assert (network.root / config["data-path"] / "key").is_file()
        assert config["rpc-http-enabled"] is True
        assert config["rpc-http-api"] == list(RPC_HTTP_APIS)
        assert "127.0.0.1" in config["host-allowlist"]
        assert config["min-gas-price"] == 0
        assert config["permissions-nodes-config-file-enabled"] is True
        assert config["permissions-accounts-config-file-enabled"] is True
        assert (
            config["permissions-nodes-config-file"] == f"node-{node.index}/permissions_config.toml"
        )
        assert config["sync-mode"] == "FULL"
        assert config["revert-reason-enabled"] is True
        assert config["tx-pool"] == "layered"
        assert config["tx-pool-max-future-by-sender"] >= 1000
        assert config["p2p-port"] == node.p2p_port
        assert config["rpc-http-port"] == node.rpc_http_port
        assert set(config["bootnodes"]) == set(network.enodes) - {node.enode}
        ports = {config["p2p-port"], config["rpc-http-port"], config["metrics-port"]}
        assert len(ports) == 3
        assert not ports & seen_ports
        seen_ports |= ports
    assert network.rpc_urls[0] == "http://127.0.0.1:8545"


def test_summary_and_deployer(network: NetworkLayout) -> None:
    summary = json.loads(network.summary_file.read_text(encoding="utf-8"))
    assert summary["chainId"] == 1337
    assert [v["enode"] for v in summary["validators"]] == network.enodes
    assert [v["address"] for v in summary["validators"]] == [n.address for n in network.validators]
    assert network.deployer_key_file is not None
    deployer = Account.from_key(_private_key(network.deployer_key_file)).address
    assert deployer == network.deployer_address == summary["deployer"]
    assert (network.root / "deployer" / "address").read_text(encoding="utf-8").strip() == deployer
    expected = [deployer, ACCOUNT_A, ACCOUNT_B_CHECKSUMMED]
    assert summary["accounts"] == expected == list(network.accounts)


def test_seven_validators(tmp_path: Path) -> None:
    layout = generate_network(tmp_path, validators=7, chain_id=4242, block_period_seconds=5)
    assert len(layout.validators) == 7
    assert layout.fault_tolerance == 2
    genesis = _genesis(layout)
    assert genesis["config"]["chainId"] == 4242
    assert genesis["config"]["qbft"]["blockperiodseconds"] == 5
    assert genesis["config"]["qbft"]["requesttimeoutseconds"] == 10
    decoded = decode_qbft_extra_data(genesis["extraData"])
    assert list(decoded.validators) == [
        Account.from_key(_private_key(node.key_file)).address for node in layout.validators
    ]
    assert [node.p2p_port for node in layout.validators] == list(range(30303, 30310))
    assert set(_toml(layout.permissions_file)["nodes-allowlist"]) == set(layout.enodes)
    verify_network(tmp_path)


def test_one_host_per_validator(tmp_path: Path) -> None:
    hosts = ["10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"]
    layout = generate_network(tmp_path, hosts=hosts, rpc_allowed_hosts=["besu.internal"])
    for node, host in zip(layout.validators, hosts, strict=True):
        assert node.enode.endswith(f"@{host}:{node.p2p_port}")
        config = _toml(node.config_file)
        assert config["p2p-host"] == host
        assert config["rpc-http-host"] == host
        assert {host, "besu.internal"} <= set(config["host-allowlist"])
    verify_network(tmp_path)


def test_berlin_fork_has_no_fee_market(tmp_path: Path) -> None:
    layout = generate_network(tmp_path, evm_fork="berlin")
    genesis = _genesis(layout)
    assert genesis["config"]["berlinBlock"] == 0
    for key in ("londonBlock", "shanghaiTime", "cancunTime", "zeroBaseFee"):
        assert key not in genesis["config"]
    assert "baseFeePerGas" not in genesis
    assert layout.evm_fork is EvmFork.BERLIN
    verify_network(tmp_path)


def test_london_fork_without_timestamp_forks(tmp_path: Path) -> None:
    genesis = _genesis(generate_network(tmp_path, evm_fork=EvmFork.LONDON))
    assert genesis["config"]["londonBlock"] == 0
    assert genesis["config"]["zeroBaseFee"] is True
    assert "shanghaiTime" not in genesis["config"]


def test_existing_keys_are_never_overwritten(tmp_path: Path) -> None:
    first = generate_network(tmp_path)
    key_before = first.validators[0].key_file.read_bytes()
    with pytest.raises(FileExistsError, match="reuse_keys"):
        generate_network(tmp_path)
    assert first.validators[0].key_file.read_bytes() == key_before
    again = generate_network(tmp_path, extra_accounts=[ACCOUNT_A], reuse_keys=True)
    assert again.enodes == first.enodes
    assert again.extra_data == first.extra_data
    assert again.deployer_address == first.deployer_address
    assert ACCOUNT_A.lower() in _toml(again.permissions_file)["accounts-allowlist"]
    verify_network(tmp_path)


def test_refuses_leftovers_of_a_larger_network(tmp_path: Path) -> None:
    generate_network(tmp_path, validators=5)
    with pytest.raises(ValueError, match="node-5"):
        generate_network(tmp_path, validators=4, reuse_keys=True)


def test_without_deployer(tmp_path: Path) -> None:
    layout = generate_network(tmp_path, extra_accounts=[ACCOUNT_A], with_deployer=False)
    assert layout.deployer_address is None
    assert not (tmp_path / "deployer").exists()
    assert layout.accounts == (ACCOUNT_A,)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"validators": 0}, "validators must be"),
        ({"validators": -3}, "validators must be"),
        ({"validators": True}, "validators must be an integer"),
        ({"chain_id": 0}, "chain_id"),
        ({"block_period_seconds": 0}, "block_period_seconds"),
        ({"block_period_seconds": 4, "request_timeout_seconds": 4}, "must exceed"),
        ({"extra_accounts": [ACCOUNT_A, ACCOUNT_A.lower()]}, "duplicate account"),
        ({"extra_accounts": [ACCOUNT_B, ACCOUNT_B]}, "duplicate account"),
        ({"extra_accounts": ["0x1234"]}, "not a valid address"),
        ({"extra_accounts": [ACCOUNT_A[2:]]}, "not a valid address"),
        ({"extra_accounts": ["0x" + "g" * 40]}, "not a valid address"),
        ({"extra_accounts": [ACCOUNT_A.replace("E", "e", 1)]}, "EIP-55 checksum"),
        ({"extra_accounts": ["0x" + "0" * 40]}, "zero address"),
        ({"extra_accounts": [], "with_deployer": False}, "no account"),
        ({"evm_fork": "prague"}, "evm_fork"),
        ({"hosts": ["besu-1.example.com"]}, "not an IP address"),
        ({"hosts": ["10.0.0.1", "10.0.0.2"]}, "one per validator"),
        ({"base_p2p_port": 65534}, "port"),
        ({"base_p2p_port": 8545, "base_rpc_http_port": 8546}, "both 8546"),
    ],
)
def test_bad_input_raises_value_error(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    out = tmp_path / "net"
    with pytest.raises(ValueError, match=message):
        generate_network(out, **kwargs)
    assert not out.exists()  # validated before anything is written


def test_normalize_accounts() -> None:
    assert normalize_accounts([ACCOUNT_B, ACCOUNT_A.lower()]) == [
        ACCOUNT_B_CHECKSUMMED,
        ACCOUNT_A,
    ]
    with pytest.raises(ValueError, match="not a single string"):
        normalize_accounts(ACCOUNT_A)


# ---------------------------------------------------------------------------- verification


def test_verify_detects_tampering(network: NetworkLayout) -> None:
    genesis_path = network.genesis_file
    genesis = _genesis(network)
    addresses = [node.address for node in network.validators]
    genesis["extraData"] = encode_qbft_extra_data(addresses[:3])
    genesis_path.write_text(json.dumps(genesis), encoding="utf-8")
    with pytest.raises(ValueError, match="do not match the node keys"):
        verify_network(network.root)

    genesis["extraData"] = network.extra_data
    genesis_path.write_text(json.dumps(genesis), encoding="utf-8")
    node = network.validators[2]
    permissions = node.permissions_file.read_text(encoding="utf-8")
    node.permissions_file.write_text(permissions.replace(node.enode, "x"), encoding="utf-8")
    with pytest.raises(ValueError, match="not in nodes-allowlist"):
        verify_network(network.root)


def test_verify_detects_nonzero_gas_price(network: NetworkLayout) -> None:
    config = network.validators[0].config_file
    config.write_text(
        config.read_text(encoding="utf-8").replace("min-gas-price=0", "min-gas-price=1000"),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="min-gas-price"):
        verify_network(network.root)


def test_verify_works_from_public_keys_only(network: NetworkLayout) -> None:
    for node in network.validators:
        node.key_file.unlink()
    verify_network(network.root)
    network.validators[1].public_key_file.write_text("0x" + "ab" * 64, encoding="utf-8")
    with pytest.raises(ValueError, match="do not match"):
        verify_network(network.root)


# ---------------------------------------------------------------------------- committed example


def test_committed_example_network_is_consistent_and_keyless() -> None:
    assert EXAMPLE_NETWORK.is_dir()
    verify_network(EXAMPLE_NETWORK)
    summary = json.loads((EXAMPLE_NETWORK / "network.json").read_text(encoding="utf-8"))
    assert len(summary["validators"]) == 4


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="needs a git checkout"
)
def test_private_keys_are_git_ignored() -> None:
    def ignored(path: str) -> bool:
        result = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "check-ignore", "-q", "--no-index", path],
            check=False,
        )
        return result.returncode == 0

    for path in ("node-1/data/key", "node-4/data/key", "deployer/key", "node-2/data/database"):
        assert ignored(f"chain/besu/network/{path}"), path
    for path in ("node-1/data/key.pub", "genesis.json", "node-1/config.toml", "deployer/address"):
        assert not ignored(f"chain/besu/network/{path}"), path
    tracked = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "chain/besu/network"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert not [p for p in tracked if p.endswith("/key")]


# ---------------------------------------------------------------------------- command line


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("besu-config")(besu_command)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "besu-config" a real subcommand
        pass

    return app


def test_cli_generates_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "net"
    result = runner.invoke(
        _cli(),
        ["besu-config", "--out", str(out), "--validators", "4", "--account", ACCOUNT_A],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "TIERFLOW_RPC_URL=http://127.0.0.1:8545" in result.output
    assert ACCOUNT_A.lower() in _toml(out / "permissions_config.toml")["accounts-allowlist"]
    result = runner.invoke(_cli(), ["besu-config", "--check", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "consistent" in result.output


def test_cli_reports_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        _cli(), ["besu-config", "--out", str(tmp_path / "n"), "--validators", "0"]
    )
    assert result.exit_code == 2
    assert "validators must be" in result.output
    result = runner.invoke(
        _cli(),
        ["besu-config", "--out", str(tmp_path / "n"), "-a", ACCOUNT_A, "-a", ACCOUNT_A],
    )
    assert result.exit_code == 2
    assert "duplicate account" in result.output


def test_key_files_are_private_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        layout = generate_network(tmp_path)
    finally:
        os.umask(old)
    assert layout.deployer_key_file is not None
    for path in [layout.deployer_key_file, *(node.key_file for node in layout.validators)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
