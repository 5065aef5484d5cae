"""Intents: what a ``self`` member is asked to sign, and the checks made before it is signed.

A write by a ``self`` member answers ``202`` with ``status: "awaiting_signature"`` and an
``intent`` (SPEC §4): its ``id``, ``expires_at``, what to sign (EIP-712 ``typed_data`` of a
``ForwardRequest``, or an ``unsigned_tx``), its ``digest``, and the ``action`` in plain fields
(``contract``, ``function``, ``args`` by their Solidity names). Before anything is signed,
:func:`verify_intent` checks that the bytes to be signed say what the plain fields say and
nothing else, against a deployment the client trusts (:class:`TrustedDeployment`):

- typed data: the domain is exactly ``{name: "TierflowForwarder", version: "1", chainId,
  verifyingContract}`` with the trusted chain id and forwarder address, the types are exactly
  ``ForwardRequest(address from,address to,uint256 value,uint256 gas,uint256 nonce,uint48
  deadline,bytes data)``, and the digest recomputed from ``typed_data`` equals ``digest``;
- the request: ``from`` is the signer, ``to`` is one of the deployment's contracts (never the
  forwarder), ``value`` is 0, the deadline lies ahead but not further than a bound;
- the call: ``data`` decodes, with the contract ABIs shipped in this package, to a function of
  that contract, its canonical encoding is exactly ``data``, and the function's name and every
  argument equal ``action`` (numbers exactly, addresses by checksum, bytes by value).

The :class:`DecodedAction` it answers is what a person or a policy confirms before signing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak
from pydantic import ConfigDict, Field

from client.errors import IntentRejected, SignerError
from client.models import Deployment, Model
from client.signing import typed_data_digest

__all__ = [
    "FORWARDER_CONTRACT",
    "FORWARDER_VERSION",
    "FORWARD_REQUEST_FIELDS",
    "ContractAbis",
    "DecodedAction",
    "Intent",
    "IntentAction",
    "TrustedDeployment",
    "verify_intent",
]

#: The EIP-712 domain name of the forwarder, and its contract's name in the deployment.
FORWARDER_CONTRACT = "TierflowForwarder"
FORWARDER_VERSION = "1"
#: ``ForwardRequest(address from,address to,uint256 value,uint256 gas,uint256 nonce,uint48
#: deadline,bytes data)``, field by field.
FORWARD_REQUEST_FIELDS: tuple[tuple[str, str], ...] = (
    ("from", "address"),
    ("to", "address"),
    ("value", "uint256"),
    ("gas", "uint256"),
    ("nonce", "uint256"),
    ("deadline", "uint48"),
    ("data", "bytes"),
)
_DOMAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
#: The longest a signature may stay usable, by default (a deadline further out is refused).
DEFAULT_MAX_VALIDITY_S = 24 * 3600
#: The most an ``unsigned_tx`` may cost its signer in fees (gas × fee per gas): 0.1 ether. The
#: platform's chains charge nothing; a transaction that could cost more is not the platform's.
MAX_TX_FEE_WEI = 10**17


# -- the API's representation --------------------------------------------------------------------


class IntentAction(Model):
    """The action in plain fields: the contract, the function and its arguments by their
    Solidity names, as the member would read them."""

    contract: str
    function: str
    args: dict[str, Any] = Field(default_factory=dict)


class Intent(Model):
    """A signing request of a ``self`` member (``GET /v1/intents/{id}``, or the ``intent`` of a
    ``202 awaiting_signature``)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: str
    expires_at: datetime
    status: str | None = None
    member: str | None = Field(default=None, description="the signer the API expects")
    typed_data: dict[str, Any] | None = None
    unsigned_tx: dict[str, Any] | None = None
    digest: str | None = None
    action: IntentAction


# -- what the client trusts ----------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedDeployment:
    """The chain id and contract addresses the client signs for: pinned in configuration
    (:meth:`from_record` of ``chain/deployments/<chainId>.json``), or read once from
    ``GET /v1/deployment`` (:meth:`from_api`)."""

    chain_id: int
    contracts: Mapping[str, str]
    forwarder_contract: str = FORWARDER_CONTRACT

    def __post_init__(self) -> None:
        checked = {}
        for name, address in self.contracts.items():
            if not isinstance(address, str) or not is_address(address):
                raise ValueError(f"the address of {name} is not an address")
            checked[name] = to_checksum_address(address)
        object.__setattr__(self, "contracts", checked)

    @classmethod
    def from_api(
        cls, deployment: Deployment, forwarder_contract: str = FORWARDER_CONTRACT
    ) -> TrustedDeployment:
        return cls(
            deployment.chain_id,
            {name: c.address for name, c in deployment.contracts.items()},
            forwarder_contract,
        )

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any] | str | Path, forwarder_contract: str = FORWARDER_CONTRACT
    ) -> TrustedDeployment:
        """From a deployment record ``{"chainId": …, "contracts": {"<Name>": {"address":
        …}}}`` (a dict, or the path of its JSON file)."""
        data: Mapping[str, Any] = (
            record if isinstance(record, Mapping) else json.loads(Path(record).read_text())
        )
        contracts = {name: entry["address"] for name, entry in data["contracts"].items()}
        return cls(int(data["chainId"]), contracts, forwarder_contract)

    @property
    def forwarder(self) -> str | None:
        return self.contracts.get(self.forwarder_contract)

    def name_of(self, address: str) -> str | None:
        wanted = _to_checksum(address)
        for name, known in self.contracts.items():
            if known == wanted:
                return name
        return None


# -- the contracts' ABIs -------------------------------------------------------------------------


def _canonical(entry: Mapping[str, Any]) -> str:
    kind: str = entry["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in entry.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@dataclass(frozen=True)
class _Function:
    contract: str
    name: str
    inputs: tuple[Mapping[str, Any], ...]

    @property
    def types(self) -> list[str]:
        return [_canonical(i) for i in self.inputs]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.types)})"

    @property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]


class ContractAbis:
    """The contracts' ABIs by contract name: the JSON files shipped in ``client/abi`` (copied
    from ``contracts/abi`` by ``scripts/update-client-abi``), or those of another directory."""

    def __init__(self, abis: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        self._functions: dict[str, dict[bytes, _Function]] = {}
        for contract, abi in abis.items():
            table: dict[bytes, _Function] = {}
            for entry in abi:
                if entry.get("type") != "function":
                    continue
                if entry.get("stateMutability") in ("view", "pure"):
                    continue
                fn = _Function(contract, entry["name"], tuple(entry.get("inputs", [])))
                table[fn.selector] = fn
            self._functions[contract] = table

    @classmethod
    def shipped(cls) -> ContractAbis:
        folder = resources.files("client").joinpath("abi")
        abis: dict[str, Any] = {}
        for item in folder.iterdir():
            if item.name.endswith(".json"):
                abis[item.name[: -len(".json")]] = json.loads(item.read_text())
        return cls(abis)

    @classmethod
    def from_directory(cls, directory: str | Path) -> ContractAbis:
        return cls({p.stem: json.loads(p.read_text()) for p in Path(directory).glob("*.json")})

    @property
    def contracts(self) -> list[str]:
        return sorted(self._functions)

    def decode_call(self, contract: str, data: bytes) -> tuple[_Function, dict[str, Any]]:
        """The function of ``contract`` that ``data`` calls and its arguments by name,
        normalised (checksummed addresses, 0x-hex bytes, tuples as dicts)."""
        table = self._functions.get(contract)
        if table is None:
            raise IntentRejected(f"no ABI of {contract} is shipped with this client")
        if len(data) < 4:
            raise IntentRejected("the call data has no function selector")
        fn = table.get(bytes(data[:4]))
        if fn is None:
            raise IntentRejected(f"the call data names no state-changing function of {contract}")
        try:
            values = abi_decode(fn.types, bytes(data[4:]), strict=True)
        except Exception as exc:
            raise IntentRejected(f"the call data does not decode as {fn.signature}: {exc}") from exc
        if abi_encode(fn.types, values) != bytes(data[4:]):
            raise IntentRejected(f"the call data is not the canonical encoding of {fn.signature}")
        args = {
            (i.get("name") or f"arg{n}"): _decoded(v, i)
            for n, (i, v) in enumerate(zip(fn.inputs, values, strict=True))
        }
        return fn, args


def _array_parts(kind: str) -> tuple[str, bool]:
    if kind.endswith("]"):
        return kind[: kind.rindex("[")], True
    return kind, False


def _decoded(value: Any, entry: Mapping[str, Any]) -> Any:
    """A value as eth-abi decodes it, in the client's plain form."""
    kind, is_array = _array_parts(entry["type"])
    if is_array:
        return [_decoded(v, {**entry, "type": kind}) for v in value]
    if kind == "tuple":
        parts = entry.get("components", [])
        return {c["name"]: _decoded(v, c) for c, v in zip(parts, value, strict=True)}
    if kind == "address":
        return _to_checksum(value)
    if kind.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return value


def _plain(value: Any, entry: Mapping[str, Any], where: str) -> Any:
    """A plain field of the intent in the same form, checked against its ABI type."""
    kind, is_array = _array_parts(entry["type"])
    if is_array:
        if not isinstance(value, list):
            raise IntentRejected(f"the plain field {where} is not a list")
        return [_plain(v, {**entry, "type": kind}, f"{where}[{n}]") for n, v in enumerate(value)]
    if kind == "tuple":
        parts = entry.get("components", [])
        if not isinstance(value, Mapping) or set(value) != {c["name"] for c in parts}:
            raise IntentRejected(f"the plain field {where} does not have the fields of {kind}")
        return {c["name"]: _plain(value[c["name"]], c, f"{where}.{c['name']}") for c in parts}
    if kind.startswith(("uint", "int")):
        if isinstance(value, bool):
            raise IntentRejected(f"the plain field {where} is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value, 16) if value.lower().startswith("0x") else int(value, 10)
            except ValueError:
                pass
        raise IntentRejected(f"the plain field {where} is not an integer")
    if kind == "address":
        checksummed = _checksum(value) if isinstance(value, str) else None
        if checksummed is None:
            raise IntentRejected(f"the plain field {where} is not an address")
        return checksummed
    if kind.startswith("bytes"):
        if not isinstance(value, str) or not value.startswith("0x"):
            raise IntentRejected(f"the plain field {where} is not 0x-hex bytes")
        try:
            return "0x" + bytes.fromhex(value[2:]).hex()
        except ValueError as exc:
            raise IntentRejected(f"the plain field {where} is not 0x-hex bytes") from exc
    if kind == "bool":
        if not isinstance(value, bool):
            raise IntentRejected(f"the plain field {where} is not a boolean")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise IntentRejected(f"the plain field {where} is not text")
        return value
    raise IntentRejected(f"the ABI type {kind} of {where} is not one the client compares")


# -- the decoded action --------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedAction:
    """What the signature will authorise, decoded from the bytes to be signed (not from the
    API's plain fields, which were checked equal to it)."""

    intent_id: str
    kind: Literal["typed_data", "transaction"]
    signer: str
    chain_id: int
    contract: str
    contract_address: str
    function: str
    signature: str
    args: dict[str, Any]
    digest: bytes
    expires_at: datetime
    deadline: int | None = None
    nonce: int | None = None
    gas: int | None = None
    forwarder: str | None = None
    inputs: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    @property
    def amounts(self) -> dict[str, int]:
        """The integer arguments (amounts, ids, times) by name."""
        return {
            k: v for k, v in self.args.items() if isinstance(v, int) and not isinstance(v, bool)
        }

    @property
    def counterparties(self) -> dict[str, str]:
        """The address arguments by name."""
        types = {i.get("name"): i.get("type") for i in self.inputs}
        return {k: v for k, v in self.args.items() if types.get(k) == "address"}

    def describe(self) -> str:
        """One line for a person to confirm."""
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        until = (
            datetime.fromtimestamp(self.deadline, UTC).isoformat()
            if self.deadline is not None
            else self.expires_at.isoformat()
        )
        return (
            f"{self.contract}.{self.function}({args}) as {self.signer} on chain "
            f"{self.chain_id}, valid until {until}"
        )


# -- the checks ----------------------------------------------------------------------------------


def _fields(entries: Any) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(entries, list):
        return None
    try:
        return tuple((str(e["name"]), str(e["type"])) for e in entries)
    except (KeyError, TypeError):
        return None


def _uint(value: Any, what: str, intent_id: str) -> int:
    if isinstance(value, bool):
        raise IntentRejected(f"{what} is not an integer", intent_id=intent_id)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError:
            pass
    raise IntentRejected(f"{what} is not an integer", intent_id=intent_id)


def _bytes(value: Any, what: str, intent_id: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise IntentRejected(f"{what} is not 0x-hex bytes", intent_id=intent_id)


@functools.lru_cache(maxsize=4096)
def _checksum(value: str) -> str | None:
    """``value`` as an EIP-55 checksummed address, None if it is not an address. Kept: a
    client meets the same few addresses (its own, the deployment's, its counterparties') in
    every intent, and each costs a keccak."""
    return to_checksum_address(value) if is_address(value) else None


def _to_checksum(value: Any) -> str:
    """``to_checksum_address(value)`` (which raises for what is no address), kept for text."""
    found = _checksum(value) if isinstance(value, str) else None
    return found if found is not None else to_checksum_address(value)


def _address(value: Any, what: str, intent_id: str) -> str:
    checksummed = _checksum(value) if isinstance(value, str) else None
    if checksummed is None:
        raise IntentRejected(f"{what} is not an address", intent_id=intent_id)
    return checksummed


def _check_call(
    intent: Intent,
    deployment: TrustedDeployment,
    abis: ContractAbis,
    to: str,
    data: bytes,
) -> tuple[str, _Function, dict[str, Any]]:
    name = deployment.name_of(to)
    if name is None:
        raise IntentRejected(
            f"{to} is not a contract of the trusted deployment", intent_id=intent.id
        )
    if name == deployment.forwarder_contract:
        raise IntentRejected("a request may not call the forwarder itself", intent_id=intent.id)
    if name != intent.action.contract:
        raise IntentRejected(
            f"the request calls {name}, the plain fields say {intent.action.contract}",
            intent_id=intent.id,
        )
    fn, decoded = abis.decode_call(name, data)
    if fn.name != intent.action.function:
        raise IntentRejected(
            f"the request calls {fn.name}, the plain fields say {intent.action.function}",
            intent_id=intent.id,
        )
    if set(intent.action.args) != set(decoded):
        raise IntentRejected(
            f"the plain fields name {sorted(intent.action.args)}, {fn.signature} takes "
            f"{sorted(decoded)}",
            intent_id=intent.id,
        )
    for entry in fn.inputs:
        key = entry.get("name") or ""
        plain = _plain(intent.action.args[key], entry, key)
        if plain != decoded[key]:
            raise IntentRejected(
                f"{key} is {decoded[key]} in what would be signed, {plain} in the plain fields",
                intent_id=intent.id,
            )
    return name, fn, decoded


def verify_intent(
    intent: Intent,
    deployment: TrustedDeployment,
    signer_address: str,
    *,
    abis: ContractAbis | None = None,
    now: datetime | None = None,
    max_validity_s: int = DEFAULT_MAX_VALIDITY_S,
) -> DecodedAction:
    """Check ``intent`` as the module docstring says; the action it would authorise, or
    :class:`~client.errors.IntentRejected` naming the first check that failed."""
    try:
        return _verify(intent, deployment, signer_address, abis, now, max_validity_s)
    except IntentRejected as exc:
        if exc.intent_id is None:
            raise IntentRejected(exc.reason, intent_id=intent.id) from exc
        raise


def _verify(
    intent: Intent,
    deployment: TrustedDeployment,
    signer_address: str,
    abis: ContractAbis | None,
    now: datetime | None,
    max_validity_s: int,
) -> DecodedAction:
    abis = abis or ContractAbis.shipped()
    now = now or datetime.now(UTC)
    signer = _to_checksum(signer_address)
    iid = intent.id
    if intent.member is not None and _address(intent.member, "member", iid) != signer:
        raise IntentRejected(f"the intent is for {intent.member}, not {signer}", intent_id=iid)
    expires_at = intent.expires_at
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= now:
        raise IntentRejected(f"the intent expired at {expires_at.isoformat()}", intent_id=iid)
    if intent.typed_data is not None and intent.unsigned_tx is not None:
        raise IntentRejected("the intent offers both typed data and a transaction", intent_id=iid)
    if intent.typed_data is not None:
        return _verify_typed_data(intent, deployment, signer, abis, now, max_validity_s)
    if intent.unsigned_tx is not None:
        return _verify_transaction(intent, deployment, signer, abis)
    raise IntentRejected("the intent has nothing to sign", intent_id=iid)


def _verify_typed_data(
    intent: Intent,
    deployment: TrustedDeployment,
    signer: str,
    abis: ContractAbis,
    now: datetime,
    max_validity_s: int,
) -> DecodedAction:
    iid = intent.id
    typed = intent.typed_data or {}
    if set(typed) - {"types", "primaryType", "domain", "message"}:
        raise IntentRejected("the typed data has fields EIP-712 does not", intent_id=iid)
    if typed.get("primaryType") != "ForwardRequest":
        raise IntentRejected("the typed data is not a ForwardRequest", intent_id=iid)
    types = typed.get("types")
    if not isinstance(types, Mapping) or set(types) != {"EIP712Domain", "ForwardRequest"}:
        raise IntentRejected("the typed data declares other types", intent_id=iid)
    if _fields(types["ForwardRequest"]) != FORWARD_REQUEST_FIELDS:
        raise IntentRejected("ForwardRequest is not the forwarder's type", intent_id=iid)
    if _fields(types["EIP712Domain"]) != _DOMAIN_FIELDS:
        raise IntentRejected("the EIP-712 domain is not the forwarder's", intent_id=iid)

    domain = typed.get("domain")
    if not isinstance(domain, Mapping) or set(domain) != {n for n, _ in _DOMAIN_FIELDS}:
        raise IntentRejected("the domain has other fields than the forwarder's", intent_id=iid)
    if domain["name"] != FORWARDER_CONTRACT or domain["version"] != FORWARDER_VERSION:
        raise IntentRejected(
            f"the domain is {domain['name']!r} version {domain['version']!r}", intent_id=iid
        )
    chain_id = _uint(domain["chainId"], "chainId", iid)
    if chain_id != deployment.chain_id:
        raise IntentRejected(
            f"the domain's chain id {chain_id} is not the trusted {deployment.chain_id}",
            intent_id=iid,
        )
    forwarder = deployment.forwarder
    if forwarder is None:
        raise IntentRejected(
            f"the trusted deployment has no {deployment.forwarder_contract}", intent_id=iid
        )
    verifying = _address(domain["verifyingContract"], "verifyingContract", iid)
    if verifying != forwarder:
        raise IntentRejected(
            f"the domain's contract {verifying} is not the trusted forwarder {forwarder}",
            intent_id=iid,
        )

    message = typed.get("message")
    if not isinstance(message, Mapping) or set(message) != {n for n, _ in FORWARD_REQUEST_FIELDS}:
        raise IntentRejected("the message is not a ForwardRequest", intent_id=iid)
    sender = _address(message["from"], "from", iid)
    if sender != signer:
        raise IntentRejected(f"the request is from {sender}, the signer is {signer}", intent_id=iid)
    if _uint(message["value"], "value", iid) != 0:
        raise IntentRejected("the request sends value: the platform moves no ether", intent_id=iid)
    deadline = _uint(message["deadline"], "deadline", iid)
    now_s = int(now.timestamp())
    if deadline <= now_s:
        raise IntentRejected("the request's deadline has passed", intent_id=iid)
    if deadline > now_s + max_validity_s:
        raise IntentRejected(
            f"the request stays valid {deadline - now_s} s, more than {max_validity_s} s",
            intent_id=iid,
        )
    gas = _uint(message["gas"], "gas", iid)
    nonce = _uint(message["nonce"], "nonce", iid)
    to = _address(message["to"], "to", iid)
    data = _bytes(message["data"], "data", iid)
    name, fn, decoded = _check_call(intent, deployment, abis, to, data)

    try:
        digest = typed_data_digest(typed)
    except SignerError as exc:
        raise IntentRejected(str(exc), intent_id=iid) from exc
    if intent.digest is None or _bytes(intent.digest, "digest", iid) != digest:
        raise IntentRejected(
            "the digest is not that of the typed data (recomputed " + "0x" + digest.hex() + ")",
            intent_id=iid,
        )
    return DecodedAction(
        intent_id=iid,
        kind="typed_data",
        signer=signer,
        chain_id=chain_id,
        contract=name,
        contract_address=to,
        function=fn.name,
        signature=fn.signature,
        args=decoded,
        digest=digest,
        expires_at=intent.expires_at,
        deadline=deadline,
        nonce=nonce,
        gas=gas,
        forwarder=forwarder,
        inputs=fn.inputs,
    )


def _verify_transaction(
    intent: Intent, deployment: TrustedDeployment, signer: str, abis: ContractAbis
) -> DecodedAction:
    from eth_account._utils.legacy_transactions import (
        serializable_unsigned_transaction_from_dict,
    )

    iid = intent.id
    tx = dict(intent.unsigned_tx or {})
    if "from" in tx and _address(tx.pop("from"), "from", iid) != signer:
        raise IntentRejected("the transaction is from another account", intent_id=iid)
    if "chainId" not in tx:
        raise IntentRejected("the transaction names no chain id (replayable)", intent_id=iid)
    chain_id = _uint(tx["chainId"], "chainId", iid)
    if chain_id != deployment.chain_id:
        raise IntentRejected(
            f"the transaction's chain id {chain_id} is not the trusted {deployment.chain_id}",
            intent_id=iid,
        )
    if _uint(tx.get("value", 0), "value", iid) != 0:
        raise IntentRejected("the transaction sends value", intent_id=iid)
    fee_per_gas = max(_uint(tx.get(name, 0), name, iid) for name in ("gasPrice", "maxFeePerGas"))
    if _uint(tx.get("gas", 0), "gas", iid) * fee_per_gas > MAX_TX_FEE_WEI:
        raise IntentRejected(
            f"the transaction may cost more than {MAX_TX_FEE_WEI} wei in fees", intent_id=iid
        )
    to = _address(tx.get("to"), "to", iid)
    data = _bytes(tx.get("data", "0x"), "data", iid)
    name, fn, decoded = _check_call(intent, deployment, abis, to, data)
    try:
        digest = bytes(serializable_unsigned_transaction_from_dict(tx).hash())
    except Exception as exc:
        raise IntentRejected(f"not a transaction that can be signed: {exc}", intent_id=iid) from exc
    if intent.digest is not None and _bytes(intent.digest, "digest", iid) != digest:
        raise IntentRejected("the digest is not the transaction's signing hash", intent_id=iid)
    return DecodedAction(
        intent_id=iid,
        kind="transaction",
        signer=signer,
        chain_id=chain_id,
        contract=name,
        contract_address=to,
        function=fn.name,
        signature=fn.signature,
        args=decoded,
        digest=digest,
        expires_at=intent.expires_at,
        nonce=_uint(tx.get("nonce", 0), "nonce", iid),
        gas=_uint(tx.get("gas", 0), "gas", iid),
        inputs=fn.inputs,
    )
