"""One deployed platform for the model-based test, on its own anvil and its own event loop.

Hypothesis' state machines are synchronous, so the platform's coroutines run on a loop this
fixture owns (``env.run(coro)``), never on pytest-asyncio's. The genesis facts the model
starts from (block time, members and their KYC expiry, limits) are what ``build_platform``
set up; every Hypothesis example starts from an ``evm_snapshot`` of exactly that state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench.cast import CAST, Platform, build_platform
from ledger.anvil import AnvilProcess, dev_private_keys
from ledger.deployment import DAY
from ledger.node import close_web3, keep_alive, make_web3
from tests.support import model_rules as rules
from tests.support.model_env import ModelEnv


async def _genesis(platform: Platform) -> tuple[int, dict[str, rules.Member]]:
    members: dict[str, rules.Member] = {}
    for name, roles in CAST.items():
        view = await platform.suite.member(platform.actors[name].address)
        held = frozenset(str(r) for r in roles) | (
            {rules.OPERATOR} if name == "operator" else frozenset()
        )
        status = rules.MemberStatus.ACTIVE if roles else rules.MemberStatus.NONE
        members[name] = rules.Member(held, status, view.kyc_expires_at if roles else 0)
    return await platform.now(), members


@pytest.fixture(scope="session")
def model_env() -> Iterator[ModelEnv]:
    loop = asyncio.new_event_loop()
    node = AnvilProcess.ephemeral()
    node.start()
    # A pooled keep-alive session: web3.py's own opens a TCP connection per request (a step
    # makes dozens), which left thousands of sockets in TIME-WAIT and made every request pay
    # a connect, most dearly beside another busy worker. make_web3 already caches the answers
    # that never change (the chain id web3.py's validation asks for before every call).
    w3 = loop.run_until_complete(keep_alive(make_web3(node.url)))
    try:
        platform = loop.run_until_complete(build_platform(w3, dev_private_keys()))
        p = platform.deployment.parameters
        parameters = rules.Parameters(
            term_cap=p.term_cap_days * DAY,
            long_term_threshold=p.long_term_threshold_days * DAY,
            grace_period=p.grace_period_days * DAY,
            trade_invoice_required=p.trade_invoice_required,
            registration_required=p.registration_required,
        )
        now, members = loop.run_until_complete(_genesis(platform))
        yield ModelEnv(loop, platform, parameters, now, members)
    finally:
        loop.run_until_complete(close_web3(w3))
        loop.close()
        node.stop()
