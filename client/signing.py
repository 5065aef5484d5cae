"""Signing for ``self`` members (SPEC §2 "Consent and custody", §5): the member's key signs,
in a key file or in a hardware security module through PKCS#11; the platform never holds it.

A :class:`Signer` has an ``address`` and signs a 32-byte digest into the 65 bytes Ethereum
expects, ``r ‖ s ‖ v``: ``s`` in the lower half of the curve order (EIP-2) and ``v`` 27 or 28.
Two implementations:

- :class:`KeyfileSigner`: an eth-account encrypted key file (``keystore`` JSON) and its
  password, or a raw private key (hex) in a file.
- :class:`Pkcs11Signer`: a secp256k1 key on a PKCS#11 token (tested with SoftHSM2). The token
  signs with ``CKM_ECDSA`` and answers the raw ``r ‖ s``; the signer brings ``s`` to the low
  half and finds ``v`` by recovering the public key with each recovery id and keeping the one
  that gives the token's public key (``CKA_EC_POINT``); the address is the last 20 bytes of
  the keccak of the uncompressed public key.

:func:`generate_pkcs11_key`, :func:`import_pkcs11_key` and :func:`pkcs11_key_address` set a
member's key up on a token. :func:`sign_typed_data` signs EIP-712 data and
:func:`sign_transaction` an Ethereum transaction (typed ``0x02`` or legacy) through any signer.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import coincurve
from Crypto.Hash.keccak import new as _keccak_new
from eth_keys.datatypes import PrivateKey, PublicKey, Signature
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from client.errors import SignerError

__all__ = [
    "DEFAULT_PKCS11_MODULE",
    "SECP256K1_N",
    "KeyfileSigner",
    "Pkcs11Signer",
    "SignedTransaction",
    "Signer",
    "generate_pkcs11_key",
    "import_pkcs11_key",
    "normalize_signature",
    "pkcs11_key_address",
    "recover_address",
    "sign_transaction",
    "sign_typed_data",
    "typed_data_digest",
]

#: The order of secp256k1's group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
#: Debian's SoftHSM2 module.
DEFAULT_PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
#: secp256k1's object identifier (SEC 2), named in the key's ``CKA_EC_PARAMS``.
SECP256K1_OID = "1.3.132.0.10"


@runtime_checkable
class Signer(Protocol):
    """Something that signs for one Ethereum account."""

    @property
    def address(self) -> str:
        """The account's 0x-checksummed address."""
        ...

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a 32-byte digest: 65 bytes ``r ‖ s ‖ v``, low ``s``, ``v`` in {27, 28}."""
        ...


# -- signatures ---------------------------------------------------------------------------------


def _check_digest(digest: bytes) -> None:
    if not isinstance(digest, bytes | bytearray) or len(digest) != 32:
        raise SignerError("a digest to sign is exactly 32 bytes")


def normalize_signature(r: int, s: int, recovery_id: int) -> bytes:
    """``r ‖ s ‖ v`` with ``s`` in the lower half of the order (EIP-2; the recovery id flips
    with it) and ``v`` = 27 + recovery id."""
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N) or recovery_id not in (0, 1):
        raise SignerError("not a valid secp256k1 signature")
    if s > _HALF_N:
        s = SECP256K1_N - s
        recovery_id ^= 1
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + recovery_id])


def _split(signature: bytes) -> tuple[int, int, int]:
    if len(signature) != 65:
        raise SignerError("a signature is 65 bytes r ‖ s ‖ v")
    v = signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise SignerError("a signature's v is 27 or 28")
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), v


def recover_address(digest: bytes, signature: bytes) -> str:
    """The address whose key made ``signature`` over ``digest`` (checksummed)."""
    _check_digest(digest)
    r, s, v = _split(signature)
    try:
        public = Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(bytes(digest))
    except (BadSignature, ValueError) as exc:
        raise SignerError(f"the signature does not recover: {exc}") from exc
    return str(public.to_checksum_address())


def _address_of(public: PublicKey) -> str:
    return str(public.to_checksum_address())


def _with_recovery_id(digest: bytes, r: int, s: int, public: PublicKey) -> bytes:
    """The 65-byte signature of a raw ``(r, s)``: low ``s``, and the ``v`` under which it
    recovers to ``public`` (a token answers no recovery id)."""
    if s > _HALF_N:
        s = SECP256K1_N - s
    for recovery_id in (0, 1):
        try:
            found = Signature(vrs=(recovery_id, r, s)).recover_public_key_from_msg_hash(
                bytes(digest)
            )
        except (BadSignature, ValueError):
            continue
        if found == public:
            return normalize_signature(r, s, recovery_id)
    raise SignerError("the token's signature recovers to neither candidate: wrong public key?")


# -- key files ----------------------------------------------------------------------------------


class KeyfileSigner:
    """A key held in a file: an eth-account encrypted key file (``from_keyfile``), or a raw
    private key as hex (``from_private_key_file``). Signatures are deterministic (RFC 6979)."""

    def __init__(self, private_key: bytes | str) -> None:
        raw = _private_key_bytes(private_key)
        try:
            self._key = PrivateKey(raw)
            # Signed with libsecp256k1 through coincurve directly (eth-keys' backend calls
            # the same function, behind its own checks and objects).
            self._signing_key = coincurve.PrivateKey(raw)
        except Exception as exc:
            raise SignerError("not a secp256k1 private key") from exc
        self._address = _address_of(self._key.public_key)

    @classmethod
    def from_keyfile(cls, path: str | os.PathLike[str], password: str | bytes) -> KeyfileSigner:
        """Decrypt an eth-account (Web3 secret storage) key file with ``password``."""
        from eth_account import Account

        try:
            document = json.loads(Path(path).read_text())
            raw = Account.decrypt(document, _text(password))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SignerError(f"cannot open the key file {path}: {exc}") from exc
        return cls(bytes(raw))

    @classmethod
    def from_private_key_file(cls, path: str | os.PathLike[str]) -> KeyfileSigner:
        """A file holding the private key as 64 hex digits (``0x`` optional)."""
        try:
            text = Path(path).read_text().strip()
        except OSError as exc:
            raise SignerError(f"cannot read the key file {path}: {exc}") from exc
        return cls(text)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], password: str | bytes | None = None
    ) -> KeyfileSigner:
        """Either kind of file: an encrypted key file (needs ``password``) or a raw key."""
        try:
            text = Path(path).read_text().strip()
        except OSError as exc:
            raise SignerError(f"cannot read the key file {path}: {exc}") from exc
        if text.startswith("{"):
            if password is None:
                raise SignerError(f"{path} is an encrypted key file: a password is needed")
            return cls.from_keyfile(path, password)
        return cls(text)

    @staticmethod
    def write_keyfile(
        path: str | os.PathLike[str], private_key: bytes | str, password: str | bytes
    ) -> str:
        """Encrypt ``private_key`` under ``password`` into ``path`` (mode 0600); its address."""
        from eth_account import Account

        raw = _private_key_bytes(private_key)
        document = Account.encrypt(raw, _text(password))
        target = Path(path)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
        return _address_of(PrivateKey(raw).public_key)

    @property
    def address(self) -> str:
        return self._address

    def sign_digest(self, digest: bytes) -> bytes:
        _check_digest(digest)
        signed = self._signing_key.sign_recoverable(bytes(digest), hasher=None)
        return normalize_signature(
            int.from_bytes(signed[:32], "big"), int.from_bytes(signed[32:64], "big"), signed[64]
        )

    def __repr__(self) -> str:
        return f"KeyfileSigner({self._address})"


def _text(password: str | bytes) -> str:
    return password.decode() if isinstance(password, bytes) else password


def _private_key_bytes(private_key: bytes | str) -> bytes:
    if isinstance(private_key, str):
        text = private_key.strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise SignerError("a private key is 32 bytes of hex") from exc
    else:
        raw = bytes(private_key)
    if len(raw) != 32:
        raise SignerError("a private key is 32 bytes")
    return raw


# -- PKCS#11 ------------------------------------------------------------------------------------


def _ec_params() -> bytes:
    from pkcs11.util.ec import encode_named_curve_parameters

    return encode_named_curve_parameters(SECP256K1_OID)


def _point_bytes(ec_point: bytes) -> bytes:
    """The uncompressed point ``04 ‖ x ‖ y`` from ``CKA_EC_POINT``: the standard wraps it in a
    DER OCTET STRING; some tokens give it bare, or compressed."""
    point = bytes(ec_point)
    if len(point) in (67, 35) and point[0] == 0x04 and point[1] == len(point) - 2:
        point = point[2:]  # the DER OCTET STRING around 65 (or 33) bytes
    if len(point) == 65 and point[0] == 0x04:
        return point
    if len(point) == 33 and point[0] in (0x02, 0x03):
        return b"\x04" + PublicKey.from_compressed_bytes(point).to_bytes()
    raise SignerError("the token's EC point is not a secp256k1 point")


def _public_key(ec_point: bytes) -> PublicKey:
    return PublicKey(_point_bytes(ec_point)[1:])


def _open_session(module: str, token_label: str, pin: str, rw: bool = False) -> Any:
    import pkcs11

    try:
        lib = pkcs11.lib(module)
    except (pkcs11.exceptions.PKCS11Error, OSError, RuntimeError) as exc:
        raise SignerError(f"cannot load the PKCS#11 module {module}: {exc}") from exc
    try:
        token = lib.get_token(token_label=token_label)
        try:
            return token.open(rw=rw, user_pin=pin)
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            # PKCS#11 logs a whole application in, not a session: another session of this
            # process is logged in to the token, and a new one shares that login.
            return token.open(rw=rw)
    except pkcs11.exceptions.NoSuchToken as exc:
        raise SignerError(f"no PKCS#11 token labelled {token_label!r} in {module}") from exc
    except pkcs11.exceptions.PinIncorrect as exc:
        raise SignerError(f"the PIN of token {token_label!r} is wrong") from exc
    except pkcs11.exceptions.PKCS11Error as exc:
        raise SignerError(f"cannot open token {token_label!r}: {exc!r}") from exc


def _find(session: Any, object_class: Any, key_label: str) -> Any:
    import pkcs11
    from pkcs11 import Attribute, KeyType

    found = list(
        session.get_objects(
            {
                Attribute.CLASS: object_class,
                Attribute.KEY_TYPE: KeyType.EC,
                Attribute.LABEL: key_label,
            }
        )
    )
    if len(found) > 1:
        raise SignerError(f"several keys are labelled {key_label!r}: give each key its own label")
    if not found:
        return None
    obj = found[0]
    try:
        params = bytes(obj[Attribute.EC_PARAMS])
    except pkcs11.exceptions.PKCS11Error:
        params = _ec_params()
    if params != _ec_params():
        raise SignerError(f"the key {key_label!r} is not on secp256k1")
    return obj


class Pkcs11Signer:
    """A secp256k1 key on a PKCS#11 token, labelled ``key_label``.

    Opens the module, logs in to the token labelled ``token_label`` with ``pin`` and keeps
    the session until :meth:`close` (or the end of a ``with`` block). The private key never
    leaves the token; the public key (``CKA_EC_POINT`` of the public key object with the
    same label) gives the address. A token that keeps no public key object can still be used
    by naming the ``address`` the key is known to have.
    """

    def __init__(
        self,
        token_label: str,
        pin: str,
        key_label: str,
        *,
        module: str = DEFAULT_PKCS11_MODULE,
        address: str | None = None,
    ) -> None:
        from pkcs11 import Attribute, ObjectClass

        self.module = module
        self.token_label = token_label
        self.key_label = key_label
        self._lock = threading.Lock()
        self._session = _open_session(module, token_label, pin)
        try:
            self._private = _find(self._session, ObjectClass.PRIVATE_KEY, key_label)
            if self._private is None:
                raise SignerError(f"no private EC key labelled {key_label!r} on {token_label!r}")
            public = _find(self._session, ObjectClass.PUBLIC_KEY, key_label)
            self._public: PublicKey | None = None
            if public is not None:
                self._public = _public_key(public[Attribute.EC_POINT])
                self._address = _address_of(self._public)
                if address is not None and to_checksum_address(address) != self._address:
                    raise SignerError(
                        f"the key {key_label!r} has address {self._address}, not {address}"
                    )
            elif address is not None:
                self._address = to_checksum_address(address)
            else:
                raise SignerError(
                    f"no public key labelled {key_label!r} on {token_label!r}: name the "
                    "address the key is known to have"
                )
        except BaseException:
            self._session.close()
            raise

    @property
    def address(self) -> str:
        return self._address

    def sign_digest(self, digest: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism

        _check_digest(digest)
        with self._lock:
            if self._session is None:
                raise SignerError("the PKCS#11 session is closed")
            try:
                raw = self._private.sign(bytes(digest), mechanism=Mechanism.ECDSA)
            except pkcs11.exceptions.PKCS11Error as exc:
                raise SignerError(f"the token did not sign: {exc!r}") from exc
        if len(raw) != 64:
            raise SignerError(f"the token answered {len(raw)} bytes, not r ‖ s of 32 each")
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        if self._public is not None:
            return _with_recovery_id(digest, r, s, self._public)
        for recovery_id in (0, 1):
            candidate = normalize_signature(r, s, recovery_id)
            try:
                if recover_address(digest, candidate) == self._address:
                    return candidate
            except SignerError:
                continue
        raise SignerError(f"the token's signature does not recover to {self._address}")

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self.token_label!r}/{self.key_label!r}, {self._address})"


def generate_pkcs11_key(
    token_label: str, pin: str, key_label: str, *, module: str = DEFAULT_PKCS11_MODULE
) -> str:
    """Generate a secp256k1 key pair on the token (``CKM_EC_KEY_PAIR_GEN``), the private key
    sensitive and not extractable; answers its address. Refuses a label already in use."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    session = _open_session(module, token_label, pin, rw=True)
    try:
        if _find(session, ObjectClass.PRIVATE_KEY, key_label) is not None:
            raise SignerError(f"a key labelled {key_label!r} exists on {token_label!r}")
        key_id = os.urandom(16)
        try:
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: _ec_params()}, local=True
            )
            public, _private = params.generate_keypair(
                id=key_id,
                label=key_label,
                store=True,
                mechanism=pkcs11.Mechanism.EC_KEY_PAIR_GEN,
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                },
                public_template={Attribute.VERIFY: True},
            )
        except pkcs11.exceptions.PKCS11Error as exc:
            raise SignerError(f"the token could not generate a secp256k1 key: {exc!r}") from exc
        return _address_of(_public_key(public[Attribute.EC_POINT]))
    finally:
        session.close()


def import_pkcs11_key(
    token_label: str,
    pin: str,
    key_label: str,
    private_key: bytes | str,
    *,
    module: str = DEFAULT_PKCS11_MODULE,
) -> str:
    """Store an existing secp256k1 private key (and its public key) on the token under
    ``key_label``, sensitive and not extractable from then on; answers its address."""
    import pkcs11
    from asn1crypto.core import OctetString
    from pkcs11 import Attribute, KeyType, ObjectClass

    raw = _private_key_bytes(private_key)
    public = PrivateKey(raw).public_key
    point = OctetString(b"\x04" + public.to_bytes()).dump()
    key_id = os.urandom(16)
    session = _open_session(module, token_label, pin, rw=True)
    try:
        if _find(session, ObjectClass.PRIVATE_KEY, key_label) is not None:
            raise SignerError(f"a key labelled {key_label!r} exists on {token_label!r}")
        common = {
            Attribute.KEY_TYPE: KeyType.EC,
            Attribute.EC_PARAMS: _ec_params(),
            Attribute.LABEL: key_label,
            Attribute.ID: key_id,
            Attribute.TOKEN: True,
        }
        try:
            session.create_object(
                {
                    **common,
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                    Attribute.VALUE: raw,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                }
            )
            session.create_object(
                {
                    **common,
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                    Attribute.EC_POINT: point,
                    Attribute.VERIFY: True,
                }
            )
        except pkcs11.exceptions.PKCS11Error as exc:
            raise SignerError(f"the token did not take the key: {exc!r}") from exc
        return _address_of(public)
    finally:
        session.close()


def pkcs11_key_address(
    token_label: str, pin: str, key_label: str, *, module: str = DEFAULT_PKCS11_MODULE
) -> str | None:
    """The address of the key labelled ``key_label`` on the token, or None if there is none."""
    from pkcs11 import Attribute, ObjectClass

    session = _open_session(module, token_label, pin)
    try:
        public = _find(session, ObjectClass.PUBLIC_KEY, key_label)
        return None if public is None else _address_of(_public_key(public[Attribute.EC_POINT]))
    finally:
        session.close()


# -- what is signed -----------------------------------------------------------------------------


def typed_data_digest(typed_data: Mapping[str, Any]) -> bytes:
    """The EIP-712 digest ``keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))``
    of a full typed-data document (``types``, ``primaryType``, ``domain``, ``message``).

    A document of one struct of plain fields (``address``, ``uint8``…``uint256``, ``bytes``,
    ``string``: the forwarder's ``ForwardRequest`` the API sends) is hashed directly, its
    domain separator and type hash kept per domain and type; any other document, or a value
    in another form than the canonical one (a number as text, an address in mixed case that
    is not its checksum, ``None``…), goes through eth-account's ``encode_typed_data``, which
    answers exactly as before (the same digest, or the same refusal)."""
    try:
        return _direct_digest(typed_data)
    except _NotDirect:
        pass
    from eth_account.messages import encode_typed_data

    try:
        signable = encode_typed_data(full_message=dict(typed_data))
    except Exception as exc:
        raise SignerError(f"not valid EIP-712 typed data: {exc}") from exc
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


class _NotDirect(Exception):
    """Not a document :func:`_direct_digest` hashes: eth-account's encoder decides."""


def _keccak(data: bytes) -> bytes:
    return bytes(_keccak_new(data=data, digest_bits=256).digest())


_HEX_BYTES = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_UINT_BITS = {f"uint{n}": n for n in range(8, 257, 8)}
#: eth-account's domain fields, in the order it hashes them (whatever ``EIP712Domain`` says).
_DOMAIN_TYPES = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
_DOMAIN_KEYS = frozenset(n for n, _ in _DOMAIN_TYPES) | {"salt"}
_CACHE_MAX = 256
_domain_separators: dict[tuple[Any, ...], bytes] = {}
_type_hashes: dict[tuple[Any, ...], bytes] = {}


@functools.lru_cache(maxsize=4096)
def _is_abi_address(value: str) -> bool:
    """What eth-abi's address encoder takes as text: 0x and 40 hex digits, all lower case,
    all upper case, or its EIP-55 checksum."""
    digits = value[2:]
    if digits == digits.lower() or digits == digits.upper():
        return True
    return bool(to_checksum_address(value) == value)


def _word(kind: str, value: Any) -> bytes:
    """One field's 32-byte word as eth-account encodes it, for the canonical value forms."""
    if kind == "address":
        if isinstance(value, str) and _HEX_ADDRESS.fullmatch(value) and _is_abi_address(value):
            return bytes(12) + bytes.fromhex(value[2:])
    elif kind == "bytes":
        if isinstance(value, bytes):
            return _keccak(value)
        if isinstance(value, str) and _HEX_BYTES.fullmatch(value):
            return _keccak(bytes.fromhex(value[2:]))
    elif kind == "string":
        if isinstance(value, str):
            try:
                return _keccak(value.encode("utf-8"))
            except UnicodeEncodeError:
                pass
    else:
        bits = _UINT_BITS.get(kind)
        if (
            bits is not None
            and isinstance(value, int)
            and not isinstance(value, bool)
            and 0 <= value < 1 << bits
        ):
            return value.to_bytes(32, "big")
    raise _NotDirect(kind)


def _struct_fields(entries: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(entries, list):
        raise _NotDirect("fields")
    fields = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise _NotDirect("field")
        name, kind = entry.get("name"), entry.get("type")
        if not isinstance(name, str) or not isinstance(kind, str):
            raise _NotDirect("field")
        if kind not in ("address", "bytes", "string") and kind not in _UINT_BITS:
            raise _NotDirect(kind)
        fields.append((name, kind))
    return tuple(fields)


def _kept(cache: dict[tuple[Any, ...], bytes], key: tuple[Any, ...], value: bytes) -> bytes:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _domain_separator(domain: Mapping[str, Any]) -> bytes:
    if not set(domain) <= _DOMAIN_KEYS or "salt" in domain:
        raise _NotDirect("domain")
    fields = tuple((n, k) for n, k in _DOMAIN_TYPES if n in domain)
    # The values' types are part of the key: True == 1 and 1.0 == 1 as dict keys.
    key = tuple((n, type(domain[n]), domain[n]) for n, _ in fields)
    try:
        return _domain_separators[key]
    except KeyError:
        pass
    except TypeError as exc:  # an unhashable value
        raise _NotDirect("domain") from exc
    encoded = "EIP712Domain(" + ",".join(f"{k} {n}" for n, k in fields) + ")"
    words = b"".join(_word(k, domain[n]) for n, k in fields)
    return _kept(_domain_separators, key, _keccak(_keccak(encoded.encode()) + words))


def _type_hash(primary: str, fields: tuple[tuple[str, str], ...]) -> bytes:
    key = (primary, fields)
    found = _type_hashes.get(key)
    if found is None:
        encoded = f"{primary}(" + ",".join(f"{k} {n}" for n, k in fields) + ")"
        found = _kept(_type_hashes, key, _keccak(encoded.encode()))
    return found


def _direct_digest(typed: Mapping[str, Any]) -> bytes:
    """:func:`typed_data_digest` of a document of one flat struct (see there), hashed as
    eth-account hashes it; :class:`_NotDirect` for anything else."""
    if not isinstance(typed, Mapping):
        raise _NotDirect("document")
    types, domain, message = typed.get("types"), typed.get("domain"), typed.get("message")
    if not (isinstance(types, dict) and isinstance(domain, dict) and isinstance(message, dict)):
        raise _NotDirect("document")  # eth-account copies them as dicts
    if "EIP712Domain" in types:
        declared = _struct_fields(types["EIP712Domain"])
        if {n for n, _ in declared} != set(domain):
            raise _NotDirect("domain")
    structs = [name for name in types if name != "EIP712Domain"]
    if len(structs) != 1:
        raise _NotDirect("types")
    primary = structs[0]
    if "primaryType" in typed and typed["primaryType"] != primary:
        raise _NotDirect("primaryType")
    fields = _struct_fields(types[primary])
    struct = _keccak(
        _type_hash(primary, fields) + b"".join(_word(k, message.get(n)) for n, k in fields)
    )
    return _keccak(b"\x19\x01" + _domain_separator(domain) + struct)


def sign_typed_data(signer: Signer, typed_data: Mapping[str, Any]) -> bytes:
    """Sign EIP-712 typed data with ``signer``; the 65-byte signature."""
    digest = typed_data_digest(typed_data)
    signature = signer.sign_digest(digest)
    if recover_address(digest, signature) != signer.address:
        raise SignerError("the signature does not recover to the signer's address")
    return signature


@dataclass(frozen=True)
class SignedTransaction:
    """A signed Ethereum transaction: ``raw`` to send with ``eth_sendRawTransaction``."""

    raw: bytes
    hash: bytes
    r: int
    s: int
    v: int

    @property
    def raw_hex(self) -> str:
        return "0x" + self.raw.hex()


def sign_transaction(signer: Signer, transaction: Mapping[str, Any]) -> SignedTransaction:
    """Sign an Ethereum transaction dict (as web3 builds it: ``type`` 2 with
    ``maxFeePerGas``/``maxPriorityFeePerGas``, or legacy with ``gasPrice``; ``chainId``, which a
    legacy one may omit to be pre-EIP-155) through ``signer``."""
    from eth_account import Account
    from eth_account._utils.legacy_transactions import (
        Transaction,
        UnsignedTransaction,
        encode_transaction,
        serializable_unsigned_transaction_from_dict,
    )
    from eth_account.typed_transactions.typed_transaction import TypedTransaction

    try:
        unsigned = serializable_unsigned_transaction_from_dict(dict(transaction))
    except Exception as exc:
        raise SignerError(f"not a transaction eth-account can sign: {exc}") from exc
    digest = unsigned.hash()
    r, s, recovery_id = _split(signer.sign_digest(digest))
    if isinstance(unsigned, TypedTransaction):
        v = recovery_id
    elif isinstance(unsigned, UnsignedTransaction):
        v = 27 + recovery_id
    elif isinstance(unsigned, Transaction):
        # A chain-aware legacy transaction carries its chain id in ``v`` until signed (EIP-155).
        v = 35 + recovery_id + 2 * int(unsigned.v)
    else:  # pragma: no cover - eth-account makes no other kind
        raise SignerError(f"unknown transaction kind {type(unsigned).__name__}")
    raw = bytes(encode_transaction(unsigned, vrs=(v, r, s)))
    if Account.recover_transaction(raw) != signer.address:
        raise SignerError("the signed transaction does not recover to the signer's address")
    return SignedTransaction(raw=raw, hash=keccak(raw), r=r, s=s, v=v)
