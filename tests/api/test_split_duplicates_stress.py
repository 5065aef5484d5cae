"""Twenty duplicates of one split at once, round after round on one platform: the stress run
of docs/performance.md change 47, run only when asked for (``TIERFLOW_STRESS_ROUNDS``, and
``--runslow``).

The reproduction of the hang that withdrew changes 39 and 42: with
``TIERFLOW_API_IDEMPOTENCY_LEASE_S=1`` in the environment too (the API inherits it), a keyed
write renews its lease every 0.33 s, so renewals meet the SQLite writer gate as requests end;
before change 47 about one round in seven then had a request unanswered for 60 s::

    TIERFLOW_STRESS_ROUNDS=30 TIERFLOW_API_IDEMPOTENCY_LEASE_S=1 \\
        python -m pytest tests/api/test_split_duplicates_stress.py --runslow -q
"""

from __future__ import annotations

import os

import pytest

from bench.stack import Stack
from tests.support.api import Api
from tests.support.duplicates import concurrent_split_duplicates

ROUNDS = int(os.environ.get("TIERFLOW_STRESS_ROUNDS", "0"))


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_a_round_of_duplicate_splits(stack: Stack, api: Api, round_: int) -> None:
    await concurrent_split_duplicates(stack, api, f"stress{round_}")
