"""Settings from TIERFLOW_* and the local chain configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.config import ApiSettings
from ledger.anvil import ANVIL_FIRST_KEY, AnvilConfig, AnvilProcess, dev_private_keys, rpc_call
from ledger.errors import ConfigurationError


def test_settings_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RPC_URL", "DATA_DIR", "DATABASE_URL", "API_PORT", "DEPLOYER_PRIVATE_KEY"):
        monkeypatch.delenv(f"TIERFLOW_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    s = ApiSettings()
    assert s.rpc_url == "http://127.0.0.1:8545"
    assert s.data_dir == tmp_path / "data"
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/tierflow.db"
    assert s.api_port == 8000
    assert s.operator_api_key is None
    key = s.deployer_key(31337)
    assert key is not None
    assert key.get_secret_value() == ANVIL_FIRST_KEY
    assert s.deployer_key(1337) is None


def test_settings_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERFLOW_RPC_URL", "http://node:8545")
    monkeypatch.setenv("TIERFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TIERFLOW_DATABASE_URL", "postgresql+asyncpg://localhost/test")
    monkeypatch.setenv("TIERFLOW_API_PORT", "9000")
    monkeypatch.setenv("TIERFLOW_OPERATOR_API_KEY", "sekret")
    monkeypatch.setenv("TIERFLOW_DEPLOYER_PRIVATE_KEY", "0x" + "11" * 32)
    s = ApiSettings()
    assert (s.rpc_url, s.data_dir, s.api_port) == ("http://node:8545", tmp_path, 9000)
    assert s.database_url == "postgresql+asyncpg://localhost/test"
    assert s.operator_api_key is not None
    assert s.operator_api_key.get_secret_value() == "sekret"
    assert "sekret" not in repr(s)
    key = s.deployer_key(1337)
    assert key is not None
    assert key.get_secret_value() == "0x" + "11" * 32


def test_anvil_json_is_loaded_and_turned_into_flags() -> None:
    config = AnvilConfig.load()
    assert config.chain_id == 31337
    assert config.port == 8545
    assert config.accounts == 20
    assert config.gas_limit == 60_000_000
    assert config.block_time is None  # automine
    args = config.args()
    assert args[args.index("--hardfork") + 1] in ("cancun", "prague")
    assert "--block-time" not in args
    node = AnvilProcess(config, state_path=Path("/tmp/x/anvil-state.json"))
    cmd = node.command()
    assert cmd[cmd.index("--state") + 1] == "/tmp/x/anvil-state.json"
    assert "--state-interval" in cmd
    assert cmd[cmd.index("--max-persisted-states") + 1] == "32"
    assert cmd[cmd.index("--cache-path") + 1] == "/tmp/x/anvil-cache"
    assert dev_private_keys(config, 1) == [ANVIL_FIRST_KEY]


def test_anvil_history_stays_in_a_bounded_directory_of_its_own(tmp_path: Path) -> None:
    """anvil moves historical states out of memory to disk, by default under
    ~/.foundry/anvil/tmp with no bound and never cleaned (a day of benchmarks filled the
    disk). Here at most ``maxPersistedStates`` of them, beside the state file, removed at
    stop; a directory left by a killed node is emptied by the next start."""
    config = AnvilConfig.load().replace(max_persisted_states=4)
    cache = tmp_path / "chain" / "anvil-cache"
    cache.mkdir(parents=True)
    (cache / "left-by-a-killed-node").mkdir()
    node = AnvilProcess.ephemeral(config, state_path=tmp_path / "chain" / "anvil-state.json")
    with node:
        assert not (cache / "left-by-a-killed-node").exists()
        for _ in range(3):
            rpc_call(node.url, "anvil_mine", ["0x190"])
        kept = [f for f in cache.rglob("*") if f.is_file()]
        assert 0 < len(kept) <= 4, kept
    assert not cache.exists()
    bare = AnvilProcess.ephemeral(config)
    with bare:
        own = Path(bare.command()[bare.command().index("--cache-path") + 1])
        assert own.is_dir()
    assert not own.exists()


def test_anvil_json_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "anvil.json"
    path.write_text(json.dumps({"chainId": 1, "blokTime": 2}))
    with pytest.raises(ConfigurationError, match="blokTime"):
        AnvilConfig.load(path)
