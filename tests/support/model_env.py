"""The model-based test's environment: the deployed platform, the loop its coroutines run on
(Hypothesis' state machines are synchronous) and the model's genesis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from bench.cast import EXPOSURE_LIMIT, PROGRAM_LIMIT, Platform
from ledger.bindings import ZERO_ADDRESS
from tests.support import model_rules as rules

T = TypeVar("T")


@dataclass
class ModelEnv:
    """The deployed platform, the loop its coroutines run on and the model's genesis."""

    loop: asyncio.AbstractEventLoop
    platform: Platform
    parameters: rules.Parameters
    genesis_now: int
    genesis_members: dict[str, rules.Member]

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def address(self, name: str) -> str:
        return ZERO_ADDRESS if name == rules.ZERO else self.platform.actors[name].address

    def fresh_model(self) -> rules.Tierflow:
        """The rules' view of the freshly built platform."""
        cores = [n for n, r in self.genesis_members.items() if rules.CORE_ENTERPRISE in r.roles]
        banks = [n for n, r in self.genesis_members.items() if rules.FINANCIER in r.roles]
        return rules.Tierflow(
            self.parameters,
            self.genesis_now,
            self.genesis_members,
            program_limits=dict.fromkeys(cores, PROGRAM_LIMIT),
            exposure_limits={(b, c): EXPOSURE_LIMIT for b in banks for c in cores},
        )
