"""The client's own EIP-712 digest (``client.signing.typed_data_digest``: a flat struct hashed
directly, the domain separator and type hash kept) against eth-account's ``encode_typed_data``,
the reference it replaced on the signing path.

Every intent the API can produce is a ``ForwardRequest`` built by ``backend.forwarding.typed_data``
(``backend.gateway.intents.Intents.prepare``) around the call data of a state-changing function
of a contract a member may call through the forwarder; every such function of the ABIs shipped
with the client is covered (a superset of the calls in ``ledger.calls``), with arguments made from
its ABI types, under several chains, forwarders, nonces, deadlines and gas figures, after the
JSON round trip the intent makes. For each: the client's digest equals eth-account's and the
API's own (``backend.forwarding.request_digest``, what the forwarder's ``hashRequest``
answers); a key file's signature equals eth-account's signature of the typed data byte for
byte; a SoftHSM2 token's signature recovers to the token's address through eth-account.

Documents in any other shape or form (numbers as text, addresses in other cases, nested
structs, a wrong ``primaryType``, values out of range) give eth-account's digest, or its
refusal as a :class:`~client.errors.SignerError`, exactly as before.
"""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.abi import function_abi_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from backend import forwarding
from client.errors import SignerError
from client.intents import ContractAbis, Intent, TrustedDeployment, verify_intent
from client.signing import KeyfileSigner, Pkcs11Signer, typed_data_digest
from tests.support.fake_signing_api import ABI_DIR, calldata

#: The contracts a member's forward request may call (the forwarder itself is refused).
CALLED = ("ClaimLedger", "FinancingDesk", "InvoiceRegistry", "MemberRegistry")


def reference_digest(document: Mapping[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=dict(document))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def abi_type(entry: Mapping[str, Any]) -> str:
    kind: str = entry["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in entry.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def value_of(entry: Mapping[str, Any], rng: random.Random) -> Any:
    """A random value of the ABI input ``entry``'s type."""
    kind: str = entry["type"]
    if kind.endswith("]"):
        inner = {**entry, "type": kind[: kind.rindex("[")]}
        size = kind[kind.rindex("[") + 1 : -1]
        return [value_of(inner, rng) for _ in range(int(size) if size else rng.randint(0, 4))]
    if kind == "tuple":
        return tuple(value_of(c, rng) for c in entry.get("components", []))
    if kind == "address":
        return to_checksum_address(rng.randbytes(20))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "string":
        return "".join(rng.choice("abcé€ 0") for _ in range(rng.randint(0, 40)))
    if kind == "bytes":
        return rng.randbytes(rng.randint(0, 100))
    if kind.startswith("bytes"):
        return rng.randbytes(int(kind[5:]))
    if kind.startswith("uint"):
        return rng.choice([0, 1, 2 ** int(kind[4:] or 256) - 1, rng.getrandbits(int(kind[4:]))])
    if kind.startswith("int"):
        bits = int(kind[3:] or 256)
        return rng.randint(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    raise AssertionError(f"no value for ABI type {kind}")


def calls(rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    """``(contract, function, calldata)`` for every state-changing function of the contracts
    a forward request may call, three argument sets each."""
    for contract in CALLED:
        abi = json.loads((ABI_DIR / f"{contract}.json").read_text())
        for entry in abi:
            if entry.get("type") != "function" or entry.get("stateMutability") in ("view", "pure"):
                continue
            types = [abi_type(i) for i in entry.get("inputs", [])]
            for _ in range(3):
                args = [value_of(i, rng) for i in entry.get("inputs", [])]
                yield (
                    contract,
                    entry["name"],
                    function_abi_to_4byte_selector(entry) + encode(types, args),
                )


def requests(rng: random.Random) -> Iterator[tuple[str, str, tuple[Any, ...]]]:
    """Every call as the API would ask a member to sign it: ``forwarding.typed_data``'s
    arguments, over varied chains, forwarders, gas, nonces (below 2^52) and deadlines
    (uint48)."""
    forwarders = [to_checksum_address(rng.randbytes(20)) for _ in range(3)]
    for n, (contract, function, data) in enumerate(calls(rng)):
        yield (
            contract,
            function,
            (
                [31337, 1, 2**40 + 7][n % 3],
                forwarders[n % len(forwarders)],
                to_checksum_address(rng.randbytes(20)),
                to_checksum_address(rng.randbytes(20)),
                rng.choice([21_000, 10**6, 2**64 - 1]),
                rng.choice([0, forwarding.random_nonce(), forwarding.NONCE_BOUND - 1]),
                rng.choice([1, 1_700_000_000 + n, 2**48 - 1]),
                data,
            ),
        )


def api_document(request: tuple[Any, ...]) -> dict[str, Any]:
    """The typed data as the client receives it: built by the API, stored and sent as JSON."""
    loaded: dict[str, Any] = json.loads(json.dumps(forwarding.typed_data(*request)))
    return loaded


def test_every_intent_the_api_can_produce_hashes_as_eth_account_and_the_api_do() -> None:
    rng = random.Random(712)
    seen = set()
    for contract, function, request in requests(rng):
        document = api_document(request)
        digest = typed_data_digest(document)
        assert digest == reference_digest(document), (contract, function)
        assert digest == forwarding.request_digest(*request), (contract, function)
        seen.add((contract, function))
    # Among them what a self member's writes call (ledger.calls builds them).
    assert {
        ("ClaimLedger", "split"),
        ("ClaimLedger", "transferClaim"),
        ("FinancingDesk", "applyForFinancing"),
        ("FinancingDesk", "approveFinancing"),
        ("InvoiceRegistry", "registerInvoice"),
        ("MemberRegistry", "registerMember"),
    } <= seen
    assert len(seen) > 40


def test_a_key_files_signature_of_every_intent_is_eth_accounts_byte_for_byte() -> None:
    rng = random.Random(2771)
    account = Account.create()
    signer = KeyfileSigner(account.key)
    for contract, function, request in requests(rng):
        request = (request[0], request[1], signer.address, *request[3:])
        document = api_document(request)
        signature = signer.sign_digest(typed_data_digest(document))
        expected = Account.sign_message(encode_typed_data(full_message=document), account.key)
        assert signature == bytes(expected.signature), (contract, function)


def test_a_tokens_signature_of_every_intent_recovers_through_eth_account(
    hsm_signer: Callable[[str], Pkcs11Signer],
) -> None:
    rng = random.Random(11)
    token = hsm_signer("digest")
    for n, (contract, function, request) in enumerate(requests(rng)):
        if n % 4:
            continue  # a token signs slowly; a quarter of the calls, every contract
        request = (request[0], request[1], token.address, *request[3:])
        document = api_document(request)
        signature = token.sign_digest(typed_data_digest(document))
        message = encode_typed_data(full_message=document)
        assert Account.recover_message(message, signature=signature) == token.address, (
            contract,
            function,
        )


def test_the_verified_intent_carries_the_reference_digest() -> None:
    """What the client signs after verifying an intent is eth-account's digest."""
    signer = KeyfileSigner(Account.create().key)
    contracts = {n: to_checksum_address(os.urandom(20)) for n in (*CALLED, "TierflowForwarder")}
    deployment = TrustedDeployment(31337, contracts)
    to = to_checksum_address(os.urandom(20))
    data = calldata("ClaimLedger", "split", [7, to, 1, bytes(32)])
    deadline = 2_000_000_000
    forwarder, ledger = contracts["TierflowForwarder"], contracts["ClaimLedger"]
    request = (31337, forwarder, signer.address, ledger, 150_000, 12345, deadline, data)
    document = api_document(request)
    intent = Intent.model_validate(
        {
            "id": "int_0123456789abcdef",
            "member": signer.address,
            "expires_at": datetime.fromtimestamp(deadline, UTC).isoformat(),
            "typed_data": document,
            "digest": "0x" + forwarding.request_digest(*request).hex(),
            "action": {
                "contract": "ClaimLedger",
                "function": "split",
                "args": {"fromId": 7, "to": to, "value": 1, "invoiceId": "0x" + "00" * 32},
            },
        }
    )
    action = verify_intent(
        intent,
        deployment,
        signer.address,
        abis=ContractAbis.shipped(),
        now=datetime.fromtimestamp(deadline - 600, UTC),
    )
    assert action.digest == reference_digest(document)


# -- other shapes and forms: eth-account decides ----------------------------------------------


def forward_request() -> dict[str, Any]:
    rng = random.Random(5)
    return api_document(
        (
            31337,
            to_checksum_address(rng.randbytes(20)),
            to_checksum_address(rng.randbytes(20)),
            to_checksum_address(rng.randbytes(20)),
            100_000,
            42,
            1_800_000_000,
            rng.randbytes(68),
        )
    )


def _mixed_case_not_checksum(address: str) -> str:
    flipped = "".join(c.swapcase() if c.isalpha() else c for c in address[2:])
    return "0x" + flipped


AGREED: dict[str, Callable[[dict[str, Any]], object]] = {
    "as sent": lambda d: None,
    "numbers as decimal text": lambda d: d["message"].update(gas="100000", nonce="42"),
    "numbers as hex text": lambda d: d["message"].update(deadline=hex(1_800_000_000)),
    "chain id as text": lambda d: d["domain"].update(chainId="31337"),
    "addresses in lower case": lambda d: d["message"].update(to=d["message"]["to"].lower()),
    "addresses in upper case": lambda d: d["message"].update(
        to="0x" + d["message"]["to"][2:].upper()
    ),
    "an address in mixed case, not its checksum": lambda d: d["message"].update(
        to=_mixed_case_not_checksum(d["message"]["to"])
    ),
    "data as bytes": lambda d: d["message"].update(data=bytes.fromhex(d["message"]["data"][2:])),
    "data as odd hex": lambda d: d["message"].update(data="0xabc"),
    "data as text": lambda d: d["message"].update(data="not hex"),
    "empty data": lambda d: d["message"].update(data="0x"),
    "no primaryType": lambda d: d.pop("primaryType"),
    "no EIP712Domain": lambda d: d["types"].pop("EIP712Domain"),
    "a domain without version": lambda d: (
        d["domain"].pop("version"),
        d["types"].update(
            EIP712Domain=[f for f in d["types"]["EIP712Domain"] if f["name"] != "version"]
        ),
    ),
    "a domain with a salt": lambda d: (
        d["domain"].update(salt="0x" + "ab" * 32),
        d["types"]["EIP712Domain"].append({"name": "salt", "type": "bytes32"}),
    ),
    "a domain type declared otherwise": lambda d: d["types"]["EIP712Domain"][2].update(
        type="uint64"
    ),
    "a message field more": lambda d: d["message"].update(extra=1),
    "a nested struct": lambda d: (
        d["types"].update(Inner=[{"name": "x", "type": "uint256"}]),
        d["types"]["ForwardRequest"].append({"name": "inner", "type": "Inner"}),
        d["message"].update(inner={"x": 5}),
    ),
    "an array field": lambda d: (
        d["types"]["ForwardRequest"].append({"name": "ids", "type": "uint256[]"}),
        d["message"].update(ids=[1, 2, 3]),
    ),
    "a bool and a bytes32 field": lambda d: (
        d["types"]["ForwardRequest"].extend(
            [{"name": "flag", "type": "bool"}, {"name": "ref", "type": "bytes32"}]
        ),
        d["message"].update(flag="false", ref="0x" + "cd" * 32),
    ),
    "a signed integer": lambda d: (
        d["types"]["ForwardRequest"].append({"name": "delta", "type": "int256"}),
        d["message"].update(delta=-5),
    ),
    "a missing string": lambda d: (
        d["types"]["ForwardRequest"].append({"name": "note", "type": "string"}),
    ),
}

REFUSED: dict[str, Callable[[dict[str, Any]], object]] = {
    "a deadline past uint48": lambda d: d["message"].update(deadline=2**48),
    "a negative gas": lambda d: d["message"].update(gas=-1),
    "a bool for a number": lambda d: d["message"].update(nonce=True),
    "a missing number": lambda d: d["message"].pop("gas"),
    "None for an address": lambda d: d["message"].update(to=None),
    "a short address": lambda d: d["message"].update(to="0x1234"),
    "another primaryType": lambda d: d.update(primaryType="Other"),
    "domain fields not those of EIP712Domain": lambda d: d["domain"].pop("version"),
    "a domain field eth-account does not know": lambda d: (
        d["domain"].update(extra="x"),
        d["types"]["EIP712Domain"].append({"name": "extra", "type": "string"}),
    ),
    "a chain id of True": lambda d: d["domain"].update(chainId=True),
    "an undefined type": lambda d: d["types"]["ForwardRequest"].append(
        {"name": "thing", "type": "Thing"}
    ),
}


@pytest.mark.parametrize("change", AGREED, ids=list(AGREED))
def test_other_forms_hash_as_eth_account_hashes_them(change: str) -> None:
    document = forward_request()
    typed_data_digest(document)  # the domain separator kept for the value as sent
    AGREED[change](document)
    assert typed_data_digest(copy.deepcopy(document)) == reference_digest(document)


@pytest.mark.parametrize("change", REFUSED, ids=list(REFUSED))
def test_what_eth_account_refuses_is_refused(change: str) -> None:
    document = forward_request()
    typed_data_digest(document)  # the domain separator kept for the value as sent
    REFUSED[change](document)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever eth-account raises
        reference_digest(copy.deepcopy(document))
    with pytest.raises(SignerError):
        typed_data_digest(document)


def test_a_kept_domain_separator_is_for_the_value_and_its_type() -> None:
    """``True == 1`` as a key: a separator kept for chain 1 is not one for ``True``."""
    document = forward_request()
    document["domain"]["chainId"] = 1
    assert typed_data_digest(document) == reference_digest(document)
    document["domain"]["chainId"] = True
    with pytest.raises(SignerError):
        typed_data_digest(document)


def test_the_apis_documents_are_hashed_without_eth_accounts_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The direct path is the one the API's intents take (its speed is the point)."""
    import eth_account.messages

    def refuse(**_: Any) -> None:
        raise AssertionError("eth-account's encoder was used")

    monkeypatch.setattr(eth_account.messages, "encode_typed_data", refuse)
    for _contract, _function, request in requests(random.Random(3)):
        assert typed_data_digest(api_document(request)) == forwarding.request_digest(*request)
    document = forward_request()
    document["message"]["gas"] = "100000"  # not the canonical form: eth-account's encoder
    with pytest.raises(SignerError, match="encoder was used"):
        typed_data_digest(document)
