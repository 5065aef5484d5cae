"""The client's handling of intents (SPEC §4), against a fake of the API's signing flow
(tests/support/fake_signing_api.py): the API side arrives later.

A ``self`` member's write answers ``202 awaiting_signature``; the client verifies the intent
(digest recomputed from the typed data, the call decoded with the shipped ABIs and compared
with the plain fields, domain and addresses against the trusted deployment), asks
``confirm``, signs and posts the signature, and answers what the write would have answered.
Any tampering with the typed data or the plain fields is refused before anything is signed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account._utils.legacy_transactions import serializable_unsigned_transaction_from_dict
from eth_account.messages import _hash_eip191_message, encode_typed_data

from client import (
    ApprovalPending,
    DecodedAction,
    IntentRejected,
    KeyfileSigner,
    Pkcs11Signer,
    SignatureRequired,
    Signer,
    SigningDeclined,
    TierflowClient,
    TrustedDeployment,
)
from client.commands import SignerOutcome, run_signer, sign_open_intents
from client.models import FinancingWrite, TransferWrite
from client.signing import generate_pkcs11_key, recover_address
from client.softhsm import SoftHsmToken
from tests.support.fake_signing_api import FakeApi, calldata, random_address
from tests.support.hsm import key_label

ZERO32 = "0x" + "00" * 32


@pytest.fixture(params=["keyfile", "hsm"])
def signer(request: pytest.FixtureRequest, hsm: SoftHsmToken) -> Iterator[Signer]:
    if request.param == "keyfile":
        yield KeyfileSigner(Account.create().key)
        return
    label = key_label("intents")
    generate_pkcs11_key(hsm.label, hsm.pin, label, module=hsm.module)
    with Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module) as token:
        yield token


@pytest.fixture
def fake(signer: Signer) -> FakeApi:
    return FakeApi(member=signer.address)


def make_client(fake: FakeApi, signer: Signer | None, **options: Any) -> TierflowClient:
    return TierflowClient(
        "http://tierflow.test", "tf_key", signer=signer, transport=fake.transport, **options
    )


@pytest.fixture
async def tf(fake: FakeApi, signer: Signer) -> AsyncIterator[TierflowClient]:
    async with make_client(fake, signer) as client:
        yield client


def signature_posts(fake: FakeApi) -> list[Any]:
    return [r for r in fake.requests if r.url.path.endswith("/signature")]


async def test_a_self_members_transfer_is_verified_confirmed_signed_and_answered(
    fake: FakeApi, signer: Signer
) -> None:
    seen: list[DecodedAction] = []

    def confirm(action: DecodedAction) -> bool:
        seen.append(action)
        return True

    to = random_address()
    async with make_client(fake, signer, confirm=confirm) as tf:
        result = await tf.claims.transfer(7, to=to, amount=250_000)
        again = await tf.claims.transfer(7, to=to, amount=1)
    assert isinstance(result, TransferWrite)
    assert (result.kind, result.claim_id, result.to, result.amount) == ("split", 107, to, 250_000)
    assert again.amount == 1

    action = seen[0]
    assert (action.contract, action.function) == ("ClaimLedger", "split")
    assert action.signature == "split(uint256,address,uint256,bytes32)"
    assert action.args == {"fromId": 7, "to": to, "value": 250_000, "invoiceId": ZERO32}
    assert action.amounts == {"fromId": 7, "value": 250_000}
    assert action.counterparties == {"to": to}
    assert action.contract_address == fake.contracts["ClaimLedger"]
    assert action.forwarder == fake.contracts["TierflowForwarder"]
    assert (action.signer, action.chain_id) == (signer.address, fake.chain_id)
    assert "ClaimLedger.split(" in action.describe()
    assert to in action.describe()

    posts = signature_posts(fake)
    assert len(posts) == 2
    assert len(fake.signatures) == 2
    for post, body in zip(posts, fake.signatures, strict=True):
        assert post.headers["Idempotency-Key"]
        intent_id = post.url.path.split("/")[3]
        signature = bytes.fromhex(body["signature"][2:])
        assert recover_address(fake.digests[intent_id], signature) == signer.address
    assert fake.deployment_reads == 1  # read once, trusted after


async def test_a_financing_approval_with_a_terms_struct_is_decoded_and_signed(
    tf: TierflowClient, fake: FakeApi
) -> None:
    result = await tf.financing.approve(5, advance=990_000, discount=9_000, fees=1_000)
    assert isinstance(result, FinancingWrite)
    assert (result.status, result.advance) == ("approved", 990_000)
    intent = next(iter(fake.intents.values()))
    assert intent["action"]["function"] == "approveFinancing"
    assert len(fake.signatures) == 1


async def test_declined_by_the_confirm_hook_nothing_is_signed(
    fake: FakeApi, signer: Signer
) -> None:
    async def confirm(action: DecodedAction) -> bool:
        return bool(action.args["value"] < 100_000)

    async with make_client(fake, signer, confirm=confirm) as tf:
        with pytest.raises(SigningDeclined):
            await tf.claims.transfer(7, to=random_address(), amount=250_000)
        assert signature_posts(fake) == []
        assert (await tf.claims.transfer(7, to=random_address(), amount=99_999)).amount == 99_999


# -- tampering ------------------------------------------------------------------------------------


def redigest(intent: dict[str, Any]) -> None:
    """Make the digest agree with the (tampered) typed data: a server that lies consistently."""
    try:
        digest = _hash_eip191_message(encode_typed_data(full_message=intent["typed_data"]))
    except Exception:  # eth-account itself refuses it: the digest stays as it was
        return
    intent["digest"] = "0x" + bytes(digest).hex()


def on_message(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def tamper(intent: dict[str, Any]) -> None:
        change(intent["typed_data"]["message"])
        redigest(intent)

    return tamper


def on_domain(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def tamper(intent: dict[str, Any]) -> None:
        change(intent["typed_data"]["domain"])
        redigest(intent)

    return tamper


def on_typed(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def tamper(intent: dict[str, Any]) -> None:
        change(intent["typed_data"])
        redigest(intent)

    return tamper


def on_action(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def tamper(intent: dict[str, Any]) -> None:
        change(intent["action"])

    return tamper


def other_split(message: dict[str, Any]) -> None:
    """The call data re-encoded for a larger amount to another recipient."""
    data = calldata("ClaimLedger", "split", [7, random_address(), 999_999, b"\0" * 32])
    message["data"] = "0x" + data.hex()


def whole_transfer(message: dict[str, Any]) -> None:
    """Another function of the same contract with the same recipient."""
    data = calldata("ClaimLedger", "transferClaim", [7, message["from"], b"\0" * 32])
    message["data"] = "0x" + data.hex()


def arg(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(action: dict[str, Any]) -> None:
        action["args"][name] = value

    return change


def field(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d[name] = value

    return change


def type_of(name: str, kind: str) -> Callable[[dict[str, Any]], None]:
    def change(typed: dict[str, Any]) -> None:
        for entry in typed["types"]["ForwardRequest"]:
            if entry["name"] == name:
                entry["type"] = kind

    return change


def expire(intent: dict[str, Any]) -> None:
    intent["expires_at"] = datetime.fromtimestamp(time.time() - 5, UTC).isoformat()


def wrong_digest(intent: dict[str, Any]) -> None:
    intent["digest"] = "0x" + "ab" * 32


TAMPERING: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "plain amount": (on_action(arg("value", 250_001)), "value is 250000 in what would be"),
    "plain recipient": (on_action(arg("to", "0x" + "77" * 20)), "to is 0x"),
    "plain function": (on_action(field("function", "transferClaim")), "plain fields say"),
    "plain contract": (on_action(field("contract", "FinancingDesk")), "plain fields say"),
    "plain args missing": (on_action(lambda a: a["args"].pop("invoiceId")), "plain fields name"),
    "plain arg not a number": (on_action(arg("value", "lots")), "not an integer"),
    "call data for another amount and recipient": (
        on_message(other_split),
        "in what would be signed",
    ),
    "call data for another function": (on_message(whole_transfer), "calls transferClaim"),
    "call data with trailing bytes": (
        on_message(lambda m: m.update(data=m["data"] + "00" * 32)),
        "canonical",
    ),
    "unknown function": (
        on_message(lambda m: m.update(data="0xdeadbeef" + m["data"][10:])),
        "no state-changing function",
    ),
    "target another contract": (
        lambda i: on_message(field("to", i["typed_data"]["domain"]["verifyingContract"]))(i),
        "forwarder itself",
    ),
    "target unknown": (on_message(field("to", "0x" + "88" * 20)), "not a contract of the trusted"),
    "from another account": (on_message(field("from", "0x" + "99" * 20)), "is from"),
    "sends value": (on_message(field("value", 1)), "sends value"),
    "deadline passed": (on_message(field("deadline", int(time.time()) - 1)), "deadline has passed"),
    "deadline far out": (
        on_message(field("deadline", int(time.time()) + 3 * 86400)),
        "more than 86400",
    ),
    "another chain": (on_domain(field("chainId", 1)), "chain id 1 is not the trusted"),
    "another forwarder": (
        on_domain(field("verifyingContract", "0x" + "aa" * 20)),
        "not the trusted forwarder",
    ),
    "another domain name": (on_domain(field("name", "Permit2")), "the domain is 'Permit2'"),
    "another domain version": (on_domain(field("version", "2")), "version '2'"),
    "another type": (on_typed(type_of("deadline", "uint256")), "not the forwarder's type"),
    "extra type": (
        on_typed(lambda t: t["types"].update(Extra=[{"name": "x", "type": "uint8"}])),
        "other types",
    ),
    "another primary type": (
        on_typed(field("primaryType", "EIP712Domain")),
        "not a ForwardRequest",
    ),
    "digest of something else": (wrong_digest, "digest is not that of the typed data"),
    "intent expired": (expire, "expired"),
    "for another member": (field("member", "0x" + "bb" * 20), "the intent is for"),
    "nothing to sign": (lambda i: i.pop("typed_data"), "nothing to sign"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
async def test_tampering_is_refused_before_signing(
    case: str, fake: FakeApi, tf: TierflowClient
) -> None:
    tamper, reason = TAMPERING[case]
    fake.tamper = tamper
    with pytest.raises(IntentRejected, match=reason) as raised:
        await tf.claims.transfer(7, to=random_address(), amount=250_000)
    assert raised.value.intent_id in fake.intents
    assert signature_posts(fake) == []


async def test_a_client_of_another_key_refuses_the_members_intent(fake: FakeApi) -> None:
    async with make_client(fake, KeyfileSigner(Account.create().key)) as tf:
        with pytest.raises(IntentRejected, match="the intent is for"):
            await tf.claims.transfer(7, to=random_address(), amount=10)
    assert signature_posts(fake) == []


# -- deployment ---------------------------------------------------------------------------------


async def test_a_pinned_deployment_is_trusted_over_what_the_api_says(
    fake: FakeApi, signer: Signer
) -> None:
    pinned = TrustedDeployment(fake.chain_id, dict(fake.contracts))
    async with make_client(fake, signer, deployment=pinned) as tf:
        assert (await tf.claims.transfer(7, to=random_address(), amount=10)).amount == 10
    assert fake.deployment_reads == 0

    # The API moves to a forwarder of its own: a client pinned to the real one refuses.
    real = dict(fake.contracts)
    fake.contracts["TierflowForwarder"] = random_address()
    async with make_client(fake, signer, deployment=TrustedDeployment(fake.chain_id, real)) as tf:
        with pytest.raises(IntentRejected, match="not the trusted forwarder"):
            await tf.claims.transfer(7, to=random_address(), amount=10)

    record = {
        "chainId": fake.chain_id,
        "contracts": {n: {"address": a.lower(), "startBlock": 1} for n, a in real.items()},
    }
    assert TrustedDeployment.from_record(record).forwarder == real["TierflowForwarder"]


async def test_a_deployment_without_the_forwarder_signs_nothing(
    fake: FakeApi, signer: Signer
) -> None:
    del fake.contracts["TierflowForwarder"]
    fake.contracts["TierflowForwarder"] = random_address()  # the intent names one …
    pinned = {n: a for n, a in fake.contracts.items() if n != "TierflowForwarder"}
    async with make_client(fake, signer, deployment=TrustedDeployment(31337, pinned)) as tf:
        with pytest.raises(IntentRejected, match="has no TierflowForwarder"):  # … not trusted
            await tf.claims.transfer(7, to=random_address(), amount=10)


# -- without a signer, transactions, dual control, the signer loop --------------------------------


async def test_without_a_signer_the_intent_is_handed_to_the_caller(
    fake: FakeApi, signer: Signer
) -> None:
    async with make_client(fake, None) as tf:
        with pytest.raises(SignatureRequired) as raised:
            await tf.claims.transfer(7, to=random_address(), amount=10)
        intent = raised.value.intent
        assert intent.action.function == "split"
        assert [i.id async for i in tf.intents.list()] == [intent.id]
    # The key holder (another process, another client) signs it by id.
    async with make_client(fake, signer) as holder:
        answer = await holder.intents.sign(intent.id)
    assert answer["amount"] == 10
    assert fake.intents[intent.id]["status"] == "signed"


async def test_an_unsigned_transaction_intent_is_checked_and_signed_as_a_transaction(
    fake: FakeApi, tf: TierflowClient, signer: Signer
) -> None:
    fake.mode = "unsigned_tx"
    result = await tf.claims.transfer(7, to=random_address(), amount=77)
    assert result.amount == 77
    (body,) = fake.signatures
    assert Account.recover_transaction(body["signed_tx"]) == signer.address

    def other_chain(intent: dict[str, Any]) -> None:
        intent["unsigned_tx"]["chainId"] = 1
        tx = {k: v for k, v in intent["unsigned_tx"].items() if k != "from"}
        intent["digest"] = (
            "0x" + bytes(serializable_unsigned_transaction_from_dict(tx).hash()).hex()
        )

    fake.tamper = other_chain
    with pytest.raises(IntentRejected, match="chain id 1"):
        await tf.claims.transfer(7, to=random_address(), amount=77)
    fake.tamper = on_action(arg("value", 78))
    with pytest.raises(IntentRejected, match="value is 77"):
        await tf.claims.transfer(7, to=random_address(), amount=77)
    assert len(fake.signatures) == 1


async def test_dual_control_answers_a_pending_approval_to_poll(
    fake: FakeApi, tf: TierflowClient
) -> None:
    fake.dual_control = True
    with pytest.raises(ApprovalPending) as raised:
        await tf.claims.transfer(7, to=random_address(), amount=500)
    pending = raised.value.pending
    assert pending.approval_id.startswith("appr-")
    assert pending.approval["expires_at"]
    assert await pending.refresh() is None
    fake.approved = True  # a checker approved: the write now awaits the member's signature
    result = await pending.wait(timeout_s=5, interval_s=0.01)
    assert isinstance(result, TransferWrite)
    assert result.amount == 500
    keys = {r.headers["Idempotency-Key"] for r in fake.requests if r.url.path.endswith("transfers")}
    assert len(keys) == 1  # every poll asked under the write's own key


async def test_sign_open_intents_applies_the_members_policy(
    fake: FakeApi, tf: TierflowClient
) -> None:
    small = fake.transfer(1, {"to": random_address(), "amount": 100})
    large = fake.transfer(2, {"to": random_address(), "amount": 10**9})
    fake.tamper = on_action(arg("value", 5))
    lying = fake.transfer(3, {"to": random_address(), "amount": 6})
    fake.tamper = None

    outcomes = await sign_open_intents(tf, policy=lambda a: a.args["value"] <= 1_000)
    by_id = {o.intent_id: o for o in outcomes}
    assert by_id[small["id"]].outcome == "signed"
    assert by_id[small["id"]].answer is not None
    assert by_id[large["id"]].outcome == "declined"
    assert by_id[lying["id"]].outcome == "rejected"
    assert len(fake.signatures) == 1
    # Signed ones are no longer open; the others stay unsigned (they expire, blocking nothing).
    again = await sign_open_intents(tf, policy=lambda a: False)
    assert {o.intent_id for o in again} == {large["id"], lying["id"]}


async def test_a_chain_whose_clock_was_moved_needs_a_client_reading_that_clock(
    fake: FakeApi, signer: Signer
) -> None:
    fake.clock_offset = 30 * 86400  # as after evm_increaseTime on a local chain
    async with make_client(fake, signer) as tf:
        with pytest.raises(IntentRejected, match="more than 86400"):
            await tf.claims.transfer(7, to=random_address(), amount=3)
    chain_clock = lambda: time.time() + fake.clock_offset  # noqa: E731
    async with make_client(fake, signer, clock=chain_clock) as tf:
        assert (await tf.claims.transfer(7, to=random_address(), amount=3)).amount == 3


async def test_a_transaction_that_could_cost_fees_is_refused(
    fake: FakeApi, tf: TierflowClient
) -> None:
    fake.mode = "unsigned_tx"

    def expensive(intent: dict[str, Any]) -> None:
        intent["unsigned_tx"]["maxFeePerGas"] = 10**12  # × 500,000 gas = 0.5 ether
        tx = {k: v for k, v in intent["unsigned_tx"].items() if k != "from"}
        intent["digest"] = (
            "0x" + bytes(serializable_unsigned_transaction_from_dict(tx).hash()).hex()
        )

    fake.tamper = expensive
    with pytest.raises(IntentRejected, match="fees"):
        await tf.claims.transfer(7, to=random_address(), amount=3)
    assert fake.signatures == []


async def test_run_signer_signs_until_stopped_and_asks_about_a_refusal_once(
    fake: FakeApi, tf: TierflowClient
) -> None:
    fake.transfer(1, {"to": random_address(), "amount": 100})
    fake.transfer(2, {"to": random_address(), "amount": 10**9})
    outcomes: list[SignerOutcome] = []
    stop = asyncio.Event()
    asked: list[int] = []

    def policy(action: DecodedAction) -> bool:
        asked.append(action.args["value"])
        return bool(action.args["value"] <= 1_000)

    polls: list[httpx.Request] = []

    def count(request: httpx.Request) -> None:
        if request.url.path == "/v1/intents":
            polls.append(request)
            if len(polls) >= 5:
                stop.set()

    fake.on_request = count
    await asyncio.wait_for(
        run_signer(tf, policy=policy, interval_s=0.01, stop=stop, on_outcome=outcomes.append),
        10,
    )
    assert sorted(o.outcome for o in outcomes) == ["declined", "signed"]
    assert sorted(asked) == [100, 10**9]  # the declined one is not asked about again
    assert len(fake.signatures) == 1


async def test_run_signer_signs_while_another_signatures_relay_is_under_way(
    fake: FakeApi, signer: Signer
) -> None:
    """A signature's answer waits for the relayed request to be mined and mirrored: the signer
    does not make the next intent wait for it (one at a time, the tenth intent of a burst
    waited for the nine relays before it)."""
    fake.relay_s = 1.0
    for n in range(3):
        fake.transfer(n, {"to": random_address(), "amount": 100 + n})
    stop = asyncio.Event()
    outcomes: list[SignerOutcome] = []

    def signed(outcome: SignerOutcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 3:
            stop.set()

    async with make_client(fake, signer) as tf:
        await asyncio.wait_for(run_signer(tf, interval_s=0.05, stop=stop, on_outcome=signed), 30)
    assert [o.outcome for o in outcomes] == ["signed"] * 3
    assert fake.most_relaying == 3
    assert len(fake.signatures) == 3


def test_calldata_helper_matches_an_independent_encoding() -> None:
    to = random_address()
    data = calldata("ClaimLedger", "split", [1, to, 2, b"\0" * 32])
    assert data[:4].hex() == "d99c34ec"
    assert data[4:] == encode(["uint256", "address", "uint256", "bytes32"], [1, to, 2, b"\0" * 32])
