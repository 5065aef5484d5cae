"""``tierflow signer``'s policy file: which decoded actions the member's own signer signs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.intents import DecodedAction
from tierflow.signer import policy_from_file

BANK = "0x" + "11" * 20
CORE = "0x" + "22" * 20


def action(function: str, **args: object) -> DecodedAction:
    inputs = tuple(
        {"name": k, "type": "address" if isinstance(v, str) else "uint256"} for k, v in args.items()
    )
    return DecodedAction(
        intent_id="int_0",
        kind="typed_data",
        signer=BANK,
        chain_id=31337,
        contract="FinancingDesk",
        contract_address=CORE,
        function=function,
        signature=f"{function}()",
        args=dict(args),
        digest=b"\x00" * 32,
        expires_at=datetime.now(UTC),
        inputs=inputs,
    )


def test_the_policy_file_decides(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps({"functions": ["approveFinancing"], "max_value": 1000, "counterparties": [CORE]})
    )
    decide = policy_from_file(path)
    assert decide(action("approveFinancing", financingId=7, amount=1000))
    assert not decide(action("approveFinancing", financingId=7, amount=1001))
    assert not decide(action("rejectFinancing", financingId=7))
    assert decide(action("approveFinancing", obligor=CORE))
    assert not decide(action("approveFinancing", obligor=BANK))


def test_a_policy_must_name_functions(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"max_value": 5}))
    with pytest.raises(ValueError, match="functions"):
        policy_from_file(path)
