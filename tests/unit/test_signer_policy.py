"""``tierflow signer``'s policy file: which decoded actions the member's own signer signs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from client.commands import honouring_commitments
from client.intents import DecodedAction
from client.models import Financing
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


class _Requests:
    """``client.financing`` answering one request's committed terms."""

    def __init__(self, min_advance: int, recourse: bool) -> None:
        self.committed = Financing.model_validate(
            {
                "id": 7,
                "claim_id": 1,
                "applicant": CORE,
                "financier": BANK,
                "obligor": CORE,
                "amount": 1_000,
                "status": "applied",
                "expires_at": "2030-01-01T00:00:00Z",
                "min_advance": min_advance,
                "recourse": recourse,
            }
        )

    async def get(self, financing_id: int) -> Financing:
        assert financing_id == 7
        return self.committed


async def test_the_signer_never_signs_below_the_committed_terms() -> None:
    """The approval's advance at least the applicant's min_advance, its recourse the committed
    one; then the member's own policy decides."""
    client = SimpleNamespace(financing=_Requests(min_advance=990, recourse=True))
    decide = honouring_commitments(client, lambda a: a.args["financingId"] == 7)  # type: ignore[arg-type]

    def approval(advance: int, recourse: bool) -> DecodedAction:
        terms = {"advance": advance, "discount": 1_000 - advance, "recourse": recourse}
        return action("approveFinancing", financingId=7, terms=terms)

    assert await decide(approval(990, True))
    assert not await decide(approval(989, True))
    assert not await decide(approval(995, False))
    assert await decide(action("rejectFinancing", financingId=7))
