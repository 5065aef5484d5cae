"""ERC-721 / ERC-3525 metadata on anvil (docs/erc3525.md): ``tokenURI``, ``slotURI`` and
``contractURI`` are on-chain JSON a wallet can show (payable, obligor, due date, amount in
currency units), and ``valueDecimals`` is the deployment's currency's, not a constant. The
standards' behaviour (approvals, receivers, interface ids) is pinned by the forge suite
contracts/test/unit/ERC3525.t.sol; the Python side here checks what forge cannot read well:
the JSON itself."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from ledger.anvil import dev_private_keys
from ledger.deployment import DeploymentParameters
from tests.support.contracts import expect_revert, finance
from bench.cast import Platform, build_platform

PREFIX = "data:application/json;base64,"
FACE = 123_456_789


def _json(uri: str) -> Any:
    assert uri.startswith(PREFIX), uri[:60]
    return json.loads(base64.b64decode(uri[len(PREFIX) :]))


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


async def test_token_slot_and_contract_metadata_describe_the_piece(platform: Platform) -> None:
    p = platform
    pid, root, due = await p.issue(p.core, p.sup1, FACE)
    child = await p.split(p.sup1, root, p.sup2, 5)
    claim_ledger = p.claim_ledger.functions
    assert await claim_ledger.name().call() == "Tierflow claim piece"
    assert await claim_ledger.symbol().call() == "TFCLAIM"
    assert await claim_ledger.valueDecimals().call() == 2

    token = _json(await claim_ledger.tokenURI(root).call())
    assert token["name"] == f"Claim piece #{root}"
    assert token["slot"] == pid
    assert token["balance"] == FACE - 5
    props = token["properties"]
    assert props["payable_id"] == pid
    assert props["obligor"] == p.core.address.lower()
    assert props["holder"] == p.sup1.address.lower()
    assert props["amount"] == "1234567.84"  # 123,456,784 fen in yuan
    assert props["currency"] == "CNY"
    assert props["due_timestamp"] == due
    assert props["due_date"] == _iso(due)
    assert props["status"] == "active"
    assert "1234567.84 CNY" in token["description"]
    assert _iso(due) in token["description"]

    small = _json(await claim_ledger.tokenURI(child).call())["properties"]
    assert (small["amount"], small["parent_id"], small["depth"]) == ("0.05", root, 1)

    slot = _json(await claim_ledger.slotURI(pid).call())
    assert slot["name"] == f"Payable #{pid}"
    assert slot["properties"]["face_value"] == "1234567.89"
    assert slot["properties"]["supplier"] == p.sup1.address.lower()
    assert slot["properties"]["status"] == "issued"

    collection = _json(await claim_ledger.contractURI().call())
    assert (collection["valueDecimals"], collection["currency"]) == (2, "CNY")
    await expect_revert(claim_ledger.slotURI(pid + 1_000).call(), "PayableNotFound")
    await expect_revert(claim_ledger.tokenURI(10**9).call(), "ClaimNotFound")


async def test_financed_piece_shows_its_status(platform: Platform) -> None:
    p = platform
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    financed = await finance(p, p.sup1, root, p.bank, 1_000_000)
    token = _json(await p.claim_ledger.functions.tokenURI(financed).call())
    assert token["properties"]["status"] == "financed"
    assert token["properties"]["holder"] == p.bank.address.lower()


async def test_value_decimals_and_currency_come_from_the_deployment(platform: Platform) -> None:
    usd = await build_platform(
        platform.w3, dev_private_keys(), DeploymentParameters(currency="USD", value_decimals=6)
    )
    claim_ledger = usd.claim_ledger.functions
    assert await claim_ledger.valueDecimals().call() == 6
    assert await claim_ledger.CURRENCY().call() == b"USD"
    _pid, root, _due = await usd.issue(usd.core, usd.sup1, 1_500_000)
    props = _json(await claim_ledger.tokenURI(root).call())["properties"]
    assert (props["amount"], props["currency"]) == ("1.500000", "USD")
