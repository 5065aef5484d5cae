"""The registry's default admin is an AdminTimelock, never the operator (issue 10).

``tierflow deploy`` (:func:`ledger.deploy.deploy`) deploys an ``AdminTimelock`` (OpenZeppelin
``TimelockController``) from the ``TIERFLOW_ADMIN_*`` plan and makes it the MemberRegistry's
default admin; the deployer, which is the API's operator account, holds the operator role
only. A role grant is scheduled by a proposer and executed by an executor after the delay
(0 on the local chain); the operator can neither grant nor schedule. A second deploy keeps
the timelock and the suite. A plan naming the operator, or none outside the local chain, is
refused.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from rich.console import Console
from web3 import Web3

from ledger.anvil import AnvilProcess, dev_private_keys
from ledger.artifacts import load_artifact
from ledger.bindings import Suite
from ledger.config import NodeSettings
from ledger.deploy import AdminPlan, deploy
from ledger.errors import ConfigurationError, ContractRevert
from ledger.node import close_web3, make_web3
from ledger.roles import DEFAULT_ADMIN_ROLE, Role
from ledger.sender import TransactionSender

ZERO32 = b"\x00" * 32


@pytest.fixture
def node() -> Iterator[AnvilProcess]:
    with AnvilProcess.ephemeral() as running:
        yield running


async def test_deploy_puts_role_grants_behind_the_timelock(
    node: AnvilProcess, tmp_path: Path
) -> None:
    keys = dev_private_keys(count=4)
    operator = Account.from_key(keys[0])
    local_admin = Account.from_key(keys[1])
    newcomer = Account.from_key(keys[3]).address
    quiet = Console(file=io.StringIO())
    deployment = await deploy(
        node.url, private_key=None, data_dir=tmp_path / "data", console=quiet, directory=tmp_path
    )
    again = await deploy(
        node.url, private_key=None, data_dir=tmp_path / "data", console=quiet, directory=tmp_path
    )
    assert deployment.admin_timelock is not None
    assert again.admin_timelock == deployment.admin_timelock
    assert again.contracts == deployment.contracts

    w3 = make_web3(node.url)
    try:
        members = Suite(w3, deployment).members
        timelock = w3.eth.contract(
            address=Web3.to_checksum_address(deployment.admin_timelock.address),
            abi=load_artifact("AdminTimelock").abi,
        )
        assert await members.functions.defaultAdmin().call() == deployment.admin_timelock.address
        operator_role = Role.OPERATOR.role_id
        assert await members.functions.hasRole(operator_role, operator.address).call()
        assert not await members.functions.hasRole(DEFAULT_ADMIN_ROLE, operator.address).call()
        assert await timelock.functions.getMinDelay().call() == 0

        as_operator = TransactionSender(w3, operator)
        grant = members.functions.grantRole(operator_role, newcomer)
        with pytest.raises(ContractRevert):
            await as_operator.transact(grant)
        data = grant._encode_transaction_data()
        schedule = timelock.functions.schedule(members.address, 0, data, ZERO32, ZERO32, 0)
        with pytest.raises(ContractRevert):
            await as_operator.transact(schedule)
        assert not await members.functions.hasRole(operator_role, newcomer).call()

        as_admin = TransactionSender(w3, local_admin)
        await as_admin.transact(schedule)
        await as_admin.transact(
            timelock.functions.execute(members.address, 0, data, ZERO32, ZERO32)
        )
        assert await members.functions.hasRole(operator_role, newcomer).call()
    finally:
        await close_web3(w3)


def test_a_plan_that_hands_the_operator_the_admin_power_is_refused() -> None:
    operator = Account.create().address
    other = Account.create().address
    settings = NodeSettings(_env_file=None)  # type: ignore[call-arg]
    local = AdminPlan.from_settings(settings, 31337, operator)
    assert local.min_delay_s == 0
    assert operator not in local.proposers
    with pytest.raises(ConfigurationError, match="must not propose or execute"):
        AdminPlan.from_settings(NodeSettings(admin_proposers=operator), 31337, operator)
    with pytest.raises(ConfigurationError, match="must not propose or execute"):
        AdminPlan.from_settings(
            NodeSettings(admin_proposers=other, admin_executors=operator), 1337, operator
        )
    with pytest.raises(ConfigurationError, match="TIERFLOW_ADMIN_PROPOSERS"):
        AdminPlan.from_settings(NodeSettings(), 1337, operator)
    production = AdminPlan.from_settings(NodeSettings(admin_proposers=f"{other}, "), 1337, operator)
    assert production == AdminPlan(2 * 86_400, (other,), (other,))
