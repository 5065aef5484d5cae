"""The platform fixture deploys, registers the cast and isolates tests."""

from __future__ import annotations

from ledger.bindings import ClaimStatus, PayableStatus
from bench.cast import Platform


async def test_issue_and_split_roundtrip(platform: Platform) -> None:
    payable_id, root, _due = await platform.issue(platform.core, platform.sup1, 1_000_000)
    child = await platform.split(platform.sup1, root, platform.sup2, 250_000)
    assert (await platform.suite.payable(payable_id)).status is PayableStatus.ISSUED
    c = await platform.suite.claim(child)
    assert (c.holder, c.amount, c.parent_id, c.depth, c.status) == (
        platform.sup2.address, 250_000, root, 1, ClaimStatus.ACTIVE
    )
    assert (await platform.suite.claim(root)).amount == 750_000


async def test_snapshot_isolates_tests(platform: Platform) -> None:
    assert await platform.claim_ledger.functions.payableCount().call() == 0
