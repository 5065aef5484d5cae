"""Signing with a key file and with a PKCS#11 token (SoftHSM2): every signature recovers to
the signer's address, has a low ``s`` and ``v`` of 27 or 28, verifies as an EIP-712 signature
and signs Ethereum transactions (typed 0x02 and legacy); one key imported into the token and
kept in a file gives signers of the same address (the key file's signatures are RFC 6979
deterministic, the token's are not: recovery is compared, not bytes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from client.errors import SignerError
from client.signing import (
    SECP256K1_N,
    KeyfileSigner,
    Pkcs11Signer,
    Signer,
    generate_pkcs11_key,
    import_pkcs11_key,
    pkcs11_key_address,
    recover_address,
    sign_transaction,
    sign_typed_data,
    typed_data_digest,
)
from client.softhsm import SoftHsmToken
from tests.support.hsm import key_label

CHAIN_ID = 31337


def mail_typed_data(n: int) -> dict[str, Any]:
    """An EIP-712 document unrelated to the forwarder (signing works for any typed data)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Note": [
                {"name": "to", "type": "address"},
                {"name": "amount", "type": "uint256"},
                {"name": "memo", "type": "bytes"},
            ],
        },
        "primaryType": "Note",
        "domain": {
            "name": "Test",
            "version": "1",
            "chainId": CHAIN_ID,
            "verifyingContract": "0x" + "11" * 20,
        },
        "message": {"to": "0x" + "22" * 20, "amount": n, "memo": "0x" + os.urandom(5).hex()},
    }


def assert_well_formed(signature: bytes) -> None:
    assert len(signature) == 65
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2  # EIP-2
    assert signature[64] in (27, 28)


def check_signer(signer: Signer, rounds: int = 25) -> None:
    """Random digests and EIP-712 digests recover to the signer; eth-account agrees."""
    vs = set()
    for n in range(rounds):
        digest = os.urandom(32)
        signature = signer.sign_digest(digest)
        assert_well_formed(signature)
        assert recover_address(digest, signature) == signer.address
        vs.add(signature[64])
        typed = mail_typed_data(n)
        sig712 = sign_typed_data(signer, typed)
        assert_well_formed(sig712)
        message = encode_typed_data(full_message=typed)
        assert Account.recover_message(message, signature=sig712) == signer.address
    assert vs == {27, 28}  # both recovery ids occur (2^-25 chance of a false failure)


TRANSACTIONS: list[dict[str, Any]] = [
    {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": 7,
        "to": "0x" + "33" * 20,
        "value": 0,
        "gas": 100_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "data": "0x12345678",
    },
    {  # legacy with EIP-155 (what a zero-gas Besu network without London takes)
        "chainId": CHAIN_ID,
        "nonce": 0,
        "to": "0x" + "44" * 20,
        "value": 1,
        "gas": 21_000,
        "gasPrice": 0,
        "data": b"",
    },
    {  # legacy without a chain id
        "nonce": 3,
        "to": "0x" + "55" * 20,
        "value": 0,
        "gas": 21_000,
        "gasPrice": 10**9,
    },
]


def check_transactions(signer: Signer) -> None:
    for tx in TRANSACTIONS:
        signed = sign_transaction(signer, tx)
        assert Account.recover_transaction(signed.raw) == signer.address
        assert signed.s <= SECP256K1_N // 2


# -- key files ------------------------------------------------------------------------------------


def test_keyfile_signer_from_an_encrypted_key_file_and_a_raw_key(tmp_path: Path) -> None:
    account = Account.create()
    keyfile = tmp_path / "member.json"
    assert KeyfileSigner.write_keyfile(keyfile, account.key, "correct horse") == account.address
    assert oct(keyfile.stat().st_mode & 0o777) == "0o600"
    signer = KeyfileSigner.from_keyfile(keyfile, "correct horse")
    assert signer.address == account.address
    check_signer(signer)
    check_transactions(signer)
    # The same bytes as eth-account's own signing (RFC 6979).
    for tx in TRANSACTIONS:
        assert (
            sign_transaction(signer, tx).raw
            == Account.sign_transaction(tx, account.key).raw_transaction
        )
    digest = os.urandom(32)
    assert signer.sign_digest(digest) == bytes(
        Account.unsafe_sign_hash(digest, account.key).signature
    )

    raw = tmp_path / "member.key"
    raw.write_text(account.key.hex() + "\n")
    assert KeyfileSigner.from_private_key_file(raw).address == account.address
    assert KeyfileSigner.from_file(raw).address == account.address
    assert KeyfileSigner.from_file(keyfile, "correct horse").address == account.address
    assert account.key.hex() not in repr(signer)

    with pytest.raises(SignerError):
        KeyfileSigner.from_keyfile(keyfile, "wrong")
    with pytest.raises(SignerError, match="password"):
        KeyfileSigner.from_file(keyfile)
    with pytest.raises(SignerError):
        signer.sign_digest(b"short")


# -- PKCS#11 --------------------------------------------------------------------------------------


def test_a_key_generated_on_the_token_signs_digests_typed_data_and_transactions(
    hsm: SoftHsmToken,
) -> None:
    label = key_label("gen")
    address = generate_pkcs11_key(hsm.label, hsm.pin, label, module=hsm.module)
    assert pkcs11_key_address(hsm.label, hsm.pin, label, module=hsm.module) == address
    with Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module) as signer:
        assert signer.address == address
        check_signer(signer)
        check_transactions(signer)
    with pytest.raises(SignerError, match="closed"):
        signer.sign_digest(os.urandom(32))
    with pytest.raises(SignerError, match="exists"):
        generate_pkcs11_key(hsm.label, hsm.pin, label, module=hsm.module)


def test_the_private_key_stays_on_the_token(hsm: SoftHsmToken) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    label = key_label("sealed")
    generate_pkcs11_key(hsm.label, hsm.pin, label, module=hsm.module)
    token = pkcs11.lib(hsm.module).get_token(token_label=hsm.label)
    with token.open(user_pin=hsm.pin) as session:
        private = session.get_key(ObjectClass.PRIVATE_KEY, label=label)
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            private[Attribute.VALUE]


def test_one_key_in_a_file_and_on_the_token_signs_as_one_address(
    hsm: SoftHsmToken, tmp_path: Path
) -> None:
    account = Account.create()
    label = key_label("imported")
    assert (
        import_pkcs11_key(hsm.label, hsm.pin, label, account.key, module=hsm.module)
        == account.address
    )
    keyfile = KeyfileSigner(account.key)
    with Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module) as token:
        assert token.address == keyfile.address == account.address
        for n in range(10):
            typed = mail_typed_data(n)
            digest = typed_data_digest(typed)
            by_token, by_file = token.sign_digest(digest), keyfile.sign_digest(digest)
            assert recover_address(digest, by_token) == recover_address(digest, by_file)
            assert by_file == keyfile.sign_digest(digest)  # RFC 6979: deterministic
        for tx in TRANSACTIONS:
            assert Account.recover_transaction(sign_transaction(token, tx).raw) == account.address
        check_signer(token, rounds=10)


def test_a_token_without_a_public_key_object_signs_for_the_address_given(
    hsm: SoftHsmToken,
) -> None:
    import pkcs11
    from pkcs11 import ObjectClass

    account = Account.create()
    label = key_label("bare")
    import_pkcs11_key(hsm.label, hsm.pin, label, account.key, module=hsm.module)
    token = pkcs11.lib(hsm.module).get_token(token_label=hsm.label)
    with token.open(rw=True, user_pin=hsm.pin) as session:
        session.get_key(ObjectClass.PUBLIC_KEY, label=label).destroy()
    with pytest.raises(SignerError, match="no public key"):
        Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module)
    with Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module, address=account.address) as s:
        check_signer(s, rounds=10)


def test_token_mistakes_are_signer_errors(hsm: SoftHsmToken) -> None:
    label = key_label("mistakes")
    address = generate_pkcs11_key(hsm.label, hsm.pin, label, module=hsm.module)
    with pytest.raises(SignerError, match="PIN"):
        Pkcs11Signer(hsm.label, "000000", label, module=hsm.module)
    with pytest.raises(SignerError, match="no PKCS#11 token"):
        Pkcs11Signer("no-such-token", hsm.pin, label, module=hsm.module)
    with pytest.raises(SignerError, match="no private EC key"):
        Pkcs11Signer(hsm.label, hsm.pin, "no-such-key", module=hsm.module)
    with pytest.raises(SignerError, match="has address"):
        Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module, address="0x" + "66" * 20)
    with pytest.raises(SignerError, match="PKCS#11 module"):
        Pkcs11Signer(hsm.label, hsm.pin, label, module="/nonexistent/libpkcs11.so")
    assert pkcs11_key_address(hsm.label, hsm.pin, "absent", module=hsm.module) is None
    with Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module) as signer:
        assert signer.address == address
        assert label in repr(signer)
