"""Load for the chain indexer: many realistic events on a real anvil, fast.

Three entry points, all against an anvil JSON-RPC URL (they use ``anvil_setBalance``,
``evm_setAutomine`` and ``evm_mine``):

- :func:`generate` deploys a fresh suite, registers a cast (two core enterprises, sixteen
  suppliers, three financiers, a clearing agent, an auditor) and produces at least
  ``target_logs`` logs: mostly claim splits (four logs each: ``ClaimSplit``, ``Transfer``,
  ``SlotChanged``, ``TransferValue``) down many tiers, some whole transfers, financing
  applications and their approvals or rejections, spread over 48 payables and every holder.
- :func:`write_at_rate` keeps writing splits and transfers at a steady rate while blocks are
  mined on an interval, for measuring how far an indexer lags behind the head.
- :func:`scenario` is a small seeded random history that emits every event the four contracts
  can emit (:func:`all_domain_events`), for the indexer's replay-equivalence tests.

How it is fast. Transactions are legacy EIP-155 ones signed here with coincurve (byte for byte
what ``eth_account`` produces, five times faster), calldata is ABI-encoded without web3's
contract machinery, nonces are counted locally, and a round of a few thousand transactions from
all accounts is broadcast in JSON-RPC batches with automine off, then packed into blocks with
``evm_mine`` (explicit gas limits keep a block under half the gas limit, so the base fee does
not climb). Within a round no transaction depends on another account's: each holder only
spends value of pieces it held when the round was planned, against a budget kept here, so
whatever order the node mines them in, every one succeeds (which is checked: each mined
transaction must have left logs). New piece ids, holders and financing ids are learnt from the
round's logs, through the same log-driven model (:class:`World`) the scenario uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import coincurve
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils.abi import collapse_if_tuple
from rich.progress import Progress, TaskID

from ledger.deploy import deploy_suite
from ledger.deployment import DAY, Deployment
from ledger.node import close_web3, make_web3
from ledger.paths import abi_dir
from ledger.reverts import revert_for_failed_transaction
from ledger.roles import Role, roles_to_mask
from ledger.sender import TransactionSender

CONTRACTS: tuple[str, ...] = ("MemberRegistry", "InvoiceRegistry", "ClaimLedger", "FinancingDesk")
#: ERC-721 / ERC-3525 approval events: allowances are disabled, so no call can emit them.
UNREACHABLE_EVENTS = frozenset({"Approval", "ApprovalForAll", "ApprovalValue"})
DEFAULT_LABEL = "tierflow-load"
GRACE = 7 * DAY  # DeploymentParameters.grace_period_days
RATE_BPS = 600
REG_NO = keccak(b"zhongdeng-registration")
FACE = 10**15
BIG_LIMIT = 2**127
#: Explicit gas limits (no estimation): generous for the measured costs (docs/gas.md), low
#: enough that ~240 splits fill a block only to half of anvil's 60M gas limit.
GAS = {
    "split": 250_000,
    "transferClaim": 200_000,
    "applyForFinancing": 250_000,
    "approveFinancing": 400_000,
    "default": 600_000,
}
BATCH = 250  # transactions per JSON-RPC batch
#: Gas limits packed into one block: half of anvil's 60M, so the base fee does not climb.
BLOCK_GAS = 30_000_000
MAX_PER_ROUND_PER_ACCOUNT = 160


# -- ABI: calldata and event decoding ----------------------------------------------------------


def _abi(name: str) -> list[dict[str, Any]]:
    doc: list[dict[str, Any]] = json.loads((abi_dir() / f"{name}.json").read_text())
    return doc


def _canonical(entry: dict[str, Any]) -> str:
    types = ",".join(collapse_if_tuple(dict(i)) for i in entry["inputs"])
    return f"{entry['name']}({types})"


@dataclass(frozen=True)
class _EventSpec:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type)
    data: tuple[tuple[str, str], ...]
    static: bool


class Codec:
    """Calldata for the suite's functions and decoding of its events (by topic0)."""

    def __init__(self) -> None:
        self.functions: dict[tuple[str, str], tuple[bytes, list[str]]] = {}
        self.events: dict[str, _EventSpec] = {}  # topic0 hex → spec
        self.event_names: dict[str, set[str]] = {}
        for contract in CONTRACTS:
            names: set[str] = set()
            for entry in _abi(contract):
                if entry.get("type") == "function":
                    key = (contract, entry["name"])
                    if key in self.functions:  # overloads (ERC-721/3525): we call neither
                        continue
                    selector = keccak(_canonical(entry).encode())[:4]
                    types = [collapse_if_tuple(dict(i)) for i in entry["inputs"]]
                    self.functions[key] = (selector, types)
                elif entry.get("type") == "event":
                    topic = "0x" + keccak(_canonical(entry).encode()).hex()
                    inputs = entry["inputs"]
                    indexed = tuple((i["name"], i["type"]) for i in inputs if i["indexed"])
                    data = tuple((i["name"], i["type"]) for i in inputs if not i["indexed"])
                    static = all(
                        not t.endswith("]") and t not in ("bytes", "string") for _, t in data
                    )
                    self.events[topic] = _EventSpec(contract, entry["name"], indexed, data, static)
                    names.add(entry["name"])
            self.event_names[contract] = names

    def calldata(self, contract: str, function: str, *args: Any) -> bytes:
        selector, types = self.functions[(contract, function)]
        return selector + abi_encode(types, list(args))

    def decode(self, raw: dict[str, Any], only: frozenset[str] | None = None) -> Log | None:
        """Decode one ``eth_getLogs``/receipt log (hex JSON); ``None`` if not ours.

        With ``only``, the arguments of other events are left empty (faster).
        """
        topics: list[str] = raw["topics"]
        spec = self.events.get(topics[0]) if topics else None
        if spec is None:
            return None
        args: dict[str, Any] = {}
        if only is not None and spec.name not in only:
            return Log(
                spec.contract,
                spec.name,
                args,
                int(raw["blockNumber"], 16),
                raw["transactionHash"],
                int(raw["logIndex"], 16),
                raw["address"].lower(),
            )
        for (name, typ), topic in zip(spec.indexed, topics[1:], strict=True):
            args[name] = _word(typ, bytes.fromhex(topic[2:]))
        data = bytes.fromhex(raw["data"][2:])
        if spec.static:
            for i, (name, typ) in enumerate(spec.data):
                args[name] = _word(typ, data[32 * i : 32 * i + 32])
        else:
            values = abi_decode([t for _, t in spec.data], data)
            for (name, typ), value in zip(spec.data, values, strict=True):
                args[name] = value.lower() if typ == "address" else value
        return Log(
            spec.contract,
            spec.name,
            args,
            int(raw["blockNumber"], 16),
            raw["transactionHash"],
            int(raw["logIndex"], 16),
            raw["address"].lower(),
        )


def _word(typ: str, word: bytes) -> Any:
    if typ == "address":
        return "0x" + word[12:].hex()
    if typ == "bool":
        return word[-1] == 1
    if typ.startswith("bytes"):
        return word
    return int.from_bytes(word, "big")


@dataclass(slots=True)
class Log:
    """A decoded log; addresses are lower-case hex."""

    contract: str
    name: str
    args: dict[str, Any]
    block: int
    tx_hash: str
    log_index: int
    address: str


_CODEC: Codec | None = None


def codec() -> Codec:
    """The shared :class:`Codec` (built once from ``contracts/abi``)."""
    global _CODEC
    if _CODEC is None:
        _CODEC = Codec()
    return _CODEC


def domain_events() -> dict[str, frozenset[str]]:
    """Per contract, the event names a call can emit (all but the disabled approvals)."""
    return {c: frozenset(n - UNREACHABLE_EVENTS) for c, n in codec().event_names.items()}


def all_domain_events() -> frozenset[str]:
    """``"Contract:Event"`` for every reachable event of the suite."""
    return frozenset(f"{c}:{n}" for c, names in domain_events().items() for n in names)


# -- signing ------------------------------------------------------------------------------------


class Key:
    """A local account that signs legacy EIP-155 transactions fast and counts its nonce."""

    def __init__(self, private_key: bytes) -> None:
        self.private_key = private_key
        self._signer = coincurve.PrivateKey(private_key)
        self.address = Account.from_key(private_key).address.lower()
        self.nonce = 0

    @classmethod
    def derive(cls, label: str, index: int) -> Key:
        return cls(keccak(f"{label}/{index}".encode()))

    def sign(
        self, to: str, data: bytes, gas: int, gas_price: int, chain_id: int
    ) -> tuple[str, str]:
        """Sign with the next nonce; returns ``(raw hex, tx hash hex)``."""
        nonce = self.nonce
        self.nonce += 1
        to_b = bytes.fromhex(to[2:])
        head = _rlp_int(nonce) + _rlp_int(gas_price) + _rlp_int(gas) + _rlp_str(to_b) + b"\x80"
        head += _rlp_str(data)
        digest = keccak(_rlp_list(head + _rlp_int(chain_id) + b"\x80\x80"))
        sig = self._signer.sign_recoverable(digest, hasher=None)
        v = sig[64] + chain_id * 2 + 35
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
        raw = _rlp_list(head + _rlp_int(v) + _rlp_int(r) + _rlp_int(s))
        return "0x" + raw.hex(), "0x" + keccak(raw).hex()


def _rlp_str(b: bytes) -> bytes:
    n = len(b)
    if n == 1 and b[0] < 0x80:
        return b
    if n < 56:
        return bytes((0x80 + n,)) + b
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xB7 + len(size),)) + size + b


def _rlp_int(n: int) -> bytes:
    return _rlp_str(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _rlp_list(payload: bytes) -> bytes:
    n = len(payload)
    if n < 56:
        return bytes((0xC0 + n,)) + payload
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(size),)) + size + payload


@dataclass(slots=True)
class Tx:
    """A call to sign: ``key`` calls ``to`` with ``data``."""

    key: Key
    to: str
    data: bytes
    gas: int


# -- JSON-RPC -------------------------------------------------------------------------------------


class RpcFailed(RuntimeError):
    """The node answered a request with a JSON-RPC error."""


class Rpc:
    """A minimal JSON-RPC client (single calls and batches) over one aiohttp session."""

    def __init__(self, url: str, timeout_s: float = 120.0) -> None:
        self.url = url
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            connector=aiohttp.TCPConnector(limit=16),
        )
        self._ids = itertools.count(1)

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        async with self._session.post(self.url, json=body) as response:
            doc = await response.json(content_type=None)
        if doc.get("error"):
            raise RpcFailed(f"{method}: {doc['error']}")
        return doc.get("result")

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results in order; raises :class:`RpcFailed` on the first error."""
        if not calls:
            return []
        first = next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        self._ids = itertools.count(first + len(calls))
        async with self._session.post(self.url, json=body) as response:
            docs = await response.json(content_type=None)
        by_id = {d["id"]: d for d in docs}
        results: list[Any] = []
        for i, (method, _) in enumerate(calls):
            doc = by_id[first + i]
            if doc.get("error"):
                raise RpcFailed(f"{method}: {doc['error']}")
            results.append(doc.get("result"))
        return results

    async def aclose(self) -> None:
        await self._session.close()


# -- the model ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Piece:
    id: int
    payable_id: int
    holder: str
    value: int
    depth: int
    locked: int = 0
    frozen: bool = False
    settled: bool = False
    cancelled: bool = False
    financed: bool = False

    @property
    def live(self) -> bool:
        return not (self.settled or self.cancelled)

    @property
    def available(self) -> int:
        return self.value - self.locked


@dataclass(slots=True)
class Payable:
    id: int
    obligor: str
    supplier: str
    root: int
    face: int
    due: int
    agent: str | None
    settled_value: int = 0
    status: str = "issued"  # issued, overdue, settled, cancelled
    touched: bool = False  # the root was split, transferred or locked


@dataclass(slots=True)
class Financing:
    id: int
    claim_id: int
    applicant: str
    financier: str
    amount: int
    expires: int
    status: str = "applied"


@dataclass(slots=True)
class Invoice:
    id: bytes
    seller: str
    buyer: str
    amount: int
    status: str = "registered"  # registered, confirmed, used, voided


@dataclass
class World:
    """The suite's state as its events tell it (addresses lower-case); fed with :meth:`apply`."""

    members: dict[str, str] = field(default_factory=dict)  # address → active / suspended
    roles: dict[str, set[bytes]] = field(default_factory=dict)
    pieces: dict[int, Piece] = field(default_factory=dict)
    payables: dict[int, Payable] = field(default_factory=dict)
    financings: dict[int, Financing] = field(default_factory=dict)
    invoices: dict[bytes, Invoice] = field(default_factory=dict)
    holdings: dict[str, list[int]] = field(default_factory=dict)  # may hold stale ids
    events: Counter[str] = field(default_factory=Counter)  # "Contract:Event" → count
    logs: int = 0
    paused: bool = False

    def apply_all(self, logs: Iterable[Log]) -> None:
        for log in logs:
            self.apply(log)

    def apply(self, log: Log) -> None:
        self.logs += 1
        self.events[f"{log.contract}:{log.name}"] += 1
        handler = _HANDLERS.get(log.name)
        if handler is not None:
            handler(self, log.args)

    def hold(self, holder: str, piece_id: int) -> None:
        self.holdings.setdefault(holder, []).append(piece_id)

    def held(self, holder: str) -> list[Piece]:
        """Live pieces ``holder`` holds now (and prunes the index)."""
        ids = self.holdings.get(holder, [])
        pieces = [self.pieces[i] for i in ids]
        keep = [p for p in pieces if p.holder == holder and p.live]
        self.holdings[holder] = [p.id for p in keep]
        return keep

    def due_of(self, piece: Piece) -> int:
        return self.payables[piece.payable_id].due

    def active(self, address: str) -> bool:
        return self.members.get(address) == "active"


def _on_member_registered(w: World, a: dict[str, Any]) -> None:
    w.members[a["account"]] = "active"


def _on_member_suspended(w: World, a: dict[str, Any]) -> None:
    w.members[a["account"]] = "suspended"


def _on_member_reinstated(w: World, a: dict[str, Any]) -> None:
    w.members[a["account"]] = "active"


def _on_role_granted(w: World, a: dict[str, Any]) -> None:
    w.roles.setdefault(a["account"], set()).add(a["role"])


def _on_role_revoked(w: World, a: dict[str, Any]) -> None:
    w.roles.setdefault(a["account"], set()).discard(a["role"])


def _on_paused(w: World, a: dict[str, Any]) -> None:
    w.paused = True


def _on_unpaused(w: World, a: dict[str, Any]) -> None:
    w.paused = False


def _on_invoice_registered(w: World, a: dict[str, Any]) -> None:
    iid = a["invoiceId"]
    w.invoices[iid] = Invoice(iid, a["seller"], a["buyer"], a["amount"])


def _invoice_status(status: str) -> Callable[[World, dict[str, Any]], None]:
    def handler(w: World, a: dict[str, Any]) -> None:
        w.invoices[a["invoiceId"]].status = status

    return handler


def _on_payable_issued(w: World, a: dict[str, Any]) -> None:
    agent = a["clearingAgent"]
    pid, root = a["payableId"], a["rootClaimId"]
    w.payables[pid] = Payable(
        pid,
        a["obligor"],
        a["supplier"],
        root,
        a["faceValue"],
        a["dueDate"],
        None if int(agent, 16) == 0 else agent,
    )
    w.pieces[root] = Piece(root, pid, a["supplier"], a["faceValue"], 0)
    w.hold(a["supplier"], root)


def _on_payable_cancelled(w: World, a: dict[str, Any]) -> None:
    w.payables[a["payableId"]].status = "cancelled"
    w.pieces[a["rootClaimId"]].cancelled = True


def _on_payable_overdue(w: World, a: dict[str, Any]) -> None:
    w.payables[a["payableId"]].status = "overdue"


def _on_payable_settled(w: World, a: dict[str, Any]) -> None:
    w.payables[a["payableId"]].status = "settled"


def _on_claim_split(w: World, a: dict[str, Any]) -> None:
    parent = w.pieces[a["parentId"]]
    parent.value -= a["value"]
    if parent.depth == 0:
        w.payables[parent.payable_id].touched = True
    cid = a["claimId"]
    w.pieces[cid] = Piece(cid, a["payableId"], a["to"], a["value"], a["depth"])
    w.hold(a["to"], cid)


def _on_claim_transferred(w: World, a: dict[str, Any]) -> None:
    piece = w.pieces[a["claimId"]]
    if piece.depth == 0:
        w.payables[piece.payable_id].touched = True
    piece.holder = a["to"]
    piece.financed = False
    w.hold(a["to"], piece.id)


def _on_claim_frozen(w: World, a: dict[str, Any]) -> None:
    w.pieces[a["claimId"]].frozen = True


def _on_claim_unfrozen(w: World, a: dict[str, Any]) -> None:
    w.pieces[a["claimId"]].frozen = False


def _on_claim_settled(w: World, a: dict[str, Any]) -> None:
    w.pieces[a["claimId"]].settled = True
    w.payables[a["payableId"]].settled_value += a["value"]


def _on_financing_applied(w: World, a: dict[str, Any]) -> None:
    fid = a["financingId"]
    piece = w.pieces[a["claimId"]]
    piece.locked += a["amount"]
    if piece.depth == 0:
        w.payables[piece.payable_id].touched = True
    w.financings[fid] = Financing(
        fid, piece.id, a["applicant"], a["financier"], a["amount"], a["expiresAt"]
    )


def _on_financing_approved(w: World, a: dict[str, Any]) -> None:
    f = w.financings[a["financingId"]]
    f.status = "approved"
    w.pieces[f.claim_id].locked -= f.amount
    w.pieces[a["financedClaimId"]].financed = True


def _financing_closed(status: str) -> Callable[[World, dict[str, Any]], None]:
    def handler(w: World, a: dict[str, Any]) -> None:
        f = w.financings[a["financingId"]]
        f.status = status
        w.pieces[f.claim_id].locked -= f.amount

    return handler


_HANDLERS: dict[str, Callable[[World, dict[str, Any]], None]] = {
    "MemberRegistered": _on_member_registered,
    "MemberSuspended": _on_member_suspended,
    "MemberReinstated": _on_member_reinstated,
    "RoleGranted": _on_role_granted,
    "RoleRevoked": _on_role_revoked,
    "Paused": _on_paused,
    "Unpaused": _on_unpaused,
    "InvoiceRegistered": _on_invoice_registered,
    "InvoiceConfirmed": _invoice_status("confirmed"),
    "InvoiceUsed": _invoice_status("used"),
    "InvoiceReleased": _invoice_status("confirmed"),
    "InvoiceVoided": _invoice_status("voided"),
    "PayableIssued": _on_payable_issued,
    "PayableCancelled": _on_payable_cancelled,
    "PayableOverdue": _on_payable_overdue,
    "PayableSettled": _on_payable_settled,
    "ClaimSplit": _on_claim_split,
    "ClaimTransferred": _on_claim_transferred,
    "ClaimFrozen": _on_claim_frozen,
    "ClaimUnfrozen": _on_claim_unfrozen,
    "ClaimSettled": _on_claim_settled,
    "FinancingApplied": _on_financing_applied,
    "FinancingApproved": _on_financing_approved,
    "FinancingRejected": _financing_closed("rejected"),
    "FinancingWithdrawn": _financing_closed("withdrawn"),
    "FinancingExpired": _financing_closed("expired"),
}


_HANDLED = frozenset(_HANDLERS)


def discount_for(amount: int, rate_bps: int, term_days: int) -> int:
    """``FinancingDesk.discountFor``: ceil(amount × bps × days / 3,600,000)."""
    return -(-(amount * rate_bps * term_days) // 3_600_000)


# -- the cast and the driver ----------------------------------------------------------------------


@dataclass
class Cast:
    operator: Key
    cores: list[Key]
    suppliers: list[Key]
    financiers: list[Key]
    agent: Key
    auditor: Key
    spare: Key  # a supplier that never trades: its role is revoked in the scenario

    @classmethod
    def derive(cls, label: str, suppliers: int, financiers: int = 3, cores: int = 2) -> Cast:
        counter = itertools.count()

        def key() -> Key:
            return Key.derive(label, next(counter))

        return cls(
            operator=key(),
            cores=[key() for _ in range(cores)],
            suppliers=[key() for _ in range(suppliers)],
            financiers=[key() for _ in range(financiers)],
            agent=key(),
            auditor=key(),
            spare=key(),
        )

    def all(self) -> list[Key]:
        return [
            self.operator,
            *self.cores,
            *self.suppliers,
            *self.financiers,
            self.agent,
            self.auditor,
            self.spare,
        ]

    def members(self) -> list[tuple[Key, tuple[Role, ...]]]:
        return [
            *((k, (Role.CORE_ENTERPRISE,)) for k in self.cores),
            *((k, (Role.SUPPLIER,)) for k in self.suppliers),
            *((k, (Role.FINANCIER,)) for k in self.financiers),
            (self.agent, (Role.CLEARING_AGENT,)),
            (self.auditor, (Role.AUDITOR,)),
            (self.spare, (Role.SUPPLIER,)),
        ]

    def by_address(self) -> dict[str, Key]:
        return {k.address: k for k in self.all()}


@dataclass
class LoadResult:
    """What a generation produced: where, which blocks, how many logs."""

    deployment: Deployment
    first_block: int
    last_block: int
    logs: int
    transactions: int
    seconds: float
    events: Counter[str]  # "Contract:Event" → count
    world: World = field(repr=False)
    cast: Cast = field(repr=False)
    label: str = DEFAULT_LABEL

    @property
    def addresses(self) -> list[str]:
        """The four contracts' addresses (checksummed)."""
        return [self.deployment.address(c) for c in CONTRACTS]

    @property
    def logs_per_s(self) -> float:
        return self.logs / self.seconds if self.seconds > 0 else 0.0


class TxFailed(RuntimeError):
    """A generated transaction was refused or reverted (the generator's model is wrong)."""


class Driver:
    """Signs, broadcasts, mines and reads back transactions; keeps the :class:`World`."""

    def __init__(self, rpc: Rpc, cast: Cast, chain_id: int, world: World | None = None) -> None:
        self.rpc = rpc
        self.cast = cast
        self.chain_id = chain_id
        self.world = world or World()
        self.addresses: dict[str, str] = {}  # contract name → lower-case address
        self.gas_price = 10**10
        self.transactions = 0
        self.on_logs: Callable[[int], None] | None = None
        self.deployment: Deployment | None = None

    @classmethod
    async def connect(cls, url: str, cast: Cast, world: World | None = None) -> Driver:
        rpc = Rpc(url)
        chain_id = int(await rpc.call("eth_chainId"), 16)
        driver = cls(rpc, cast, chain_id, world)
        await driver.sync_nonces()
        return driver

    async def sync_nonces(self) -> None:
        keys = self.cast.all()
        counts = await self.rpc.batch(
            [("eth_getTransactionCount", [k.address, "pending"]) for k in keys]
        )
        for k, n in zip(keys, counts, strict=True):
            k.nonce = int(n, 16)

    def bind(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.addresses = {c: deployment.address(c).lower() for c in CONTRACTS}

    def tx(self, key: Key, contract: str, function: str, *args: Any) -> Tx:
        data = codec().calldata(contract, function, *args)
        return Tx(key, self.addresses[contract], data, GAS.get(function, GAS["default"]))

    def split_tx(self, key: Key, piece: int, to: str, value: int, invoice: bytes = b"") -> Tx:
        """``ClaimLedger.split`` (the hot path: encoded by hand)."""
        data = (
            _SPLIT_SELECTOR
            + piece.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(to[2:])
            + value.to_bytes(32, "big")
            + (invoice or bytes(32))
        )
        return Tx(key, self.addresses["ClaimLedger"], data, GAS["split"])

    async def now(self) -> int:
        block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16)

    async def head(self) -> int:
        return int(await self.rpc.call("eth_blockNumber"), 16)

    async def refresh_gas_price(self) -> None:
        block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        base = int(block.get("baseFeePerGas") or "0x0", 16)
        self.gas_price = max(3 * base, 2 * 10**9)

    def sign(self, txs: Sequence[Tx]) -> tuple[list[str], list[str]]:
        raws: list[str] = []
        hashes: list[str] = []
        for t in txs:
            raw, h = t.key.sign(t.to, t.data, t.gas, self.gas_price, self.chain_id)
            raws.append(raw)
            hashes.append(h)
        return raws, hashes

    async def broadcast(self, raws: Sequence[str]) -> None:
        """Send signed transactions in JSON-RPC batches (in order, one batch at a time)."""
        for i in range(0, len(raws), BATCH):
            await self.rpc.batch([("eth_sendRawTransaction", [r]) for r in raws[i : i + BATCH]])

    async def mine_pool(self) -> None:
        while True:
            status = await self.rpc.call("txpool_status")
            if int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0:
                return
            await self.rpc.call("evm_mine")

    async def send_and_mine(self, txs: Sequence[Tx], raws: Sequence[str]) -> None:
        """Broadcast and mine block by block, never more in the pool than one block takes.

        anvil's block builder skips a transaction whose gas limit no longer fits the block and
        then drops that sender's later transactions from the pool as if their nonces were
        invalid; so each block's worth is broadcast only once the previous block is mined.
        """
        start, gas = 0, 0
        for i, tx in enumerate(txs):
            if gas + tx.gas > BLOCK_GAS:
                await self.broadcast(raws[start:i])
                await self.mine_pool()
                start, gas = i, 0
            gas += tx.gas
        await self.broadcast(raws[start:])
        await self.mine_pool()

    async def logs(self, first: int, last: int) -> list[Log]:
        """The suite's decoded logs of blocks ``first..last`` (chunks of 2,000 blocks)."""
        out: list[Log] = []
        addresses = list(self.addresses.values())
        c = codec()
        for start in range(first, last + 1, 2000):
            end = min(last, start + 1999)
            raws = await self.rpc.call(
                "eth_getLogs",
                [{"fromBlock": hex(start), "toBlock": hex(end), "address": addresses}],
            )
            for raw in raws:
                log = c.decode(raw, _HANDLED)
                if log is not None:
                    out.append(log)
        return out

    async def execute(self, txs: Sequence[Tx]) -> list[Log]:
        """Broadcast ``txs`` (one account's in list order), mine them all, apply their logs.

        Raises :class:`TxFailed` if any was not mined or reverted.
        """
        if not txs:
            return []
        first = await self.head() + 1
        raws, hashes = self.sign(txs)
        try:
            await self.send_and_mine(txs, raws)
        except RpcFailed as exc:
            await self.sync_nonces()
            raise TxFailed(f"broadcast refused: {exc}") from exc
        last = await self.head()
        logs = await self.logs(first, last)
        await self._check(hashes, {log.tx_hash for log in logs})
        self.transactions += len(txs)
        self.world.apply_all(logs)
        if self.on_logs is not None:
            self.on_logs(len(logs))
        return logs

    async def execute_one(self, tx: Tx) -> list[Log]:
        """Send one transaction, mine it in a block of its own, apply its logs."""
        return await self.execute([tx])

    async def _check(self, hashes: Sequence[str], logged: set[str]) -> None:
        missing = [h for h in hashes if h not in logged]
        if not missing:
            return
        w3 = make_web3(self.rpc.url)
        try:
            receipt = await self.rpc.call("eth_getTransactionReceipt", [missing[0]])
            if receipt is None:
                raise TxFailed(f"{len(missing)} transactions not mined, first {missing[0]}")
            if int(receipt["status"], 16) == 1:
                raise TxFailed(f"transaction {missing[0]} succeeded without emitting a log")
            revert = await revert_for_failed_transaction(w3, missing[0])
            raise TxFailed(f"{len(missing)} of {len(hashes)} transactions reverted: {revert}")
        finally:
            await close_web3(w3)

    async def overdue_from(self, payable_id: int) -> int:
        """``ClaimLedger.overdueFrom``: the deadline ``markOverdue`` applies as of now (due date
        + grace + the time since the due date a piece was frozen or the platform paused)."""
        data = codec().calldata("ClaimLedger", "overdueFrom", payable_id)
        call = {"to": self.addresses["ClaimLedger"], "data": "0x" + data.hex()}
        return int(await self.rpc.call("eth_call", [call, "latest"]), 16)

    async def set_automine(self, on: bool) -> None:
        await self.rpc.call("evm_setAutomine", [on])

    async def warp(self, seconds: int) -> None:
        await self.rpc.call("evm_increaseTime", [seconds])
        await self.rpc.call("evm_mine")


_SPLIT_SELECTOR = keccak(b"split(uint256,address,uint256,bytes32)")[:4]


async def _fund(rpc: Rpc, keys: Iterable[Key]) -> None:
    balance = hex(10**24)
    await rpc.batch([("anvil_setBalance", [k.address, balance]) for k in keys])


async def setup(url: str, cast: Cast, *, payables_per_supplier: int, due_in: int) -> Driver:
    """Deploy a fresh suite, register the cast, set limits and issue the first payables.

    Leaves automine off (the driver mines); the caller turns it back on.
    """
    rpc = Rpc(url)
    try:
        await _fund(rpc, cast.all())
        await rpc.call("evm_setAutomine", [True])
    finally:
        await rpc.aclose()
    w3 = make_web3(url)
    try:
        sender = TransactionSender(w3, Account.from_key(cast.operator.private_key))
        deployment = await deploy_suite(w3, sender, record=False)
    finally:
        await close_web3(w3)
    driver = await Driver.connect(url, cast)
    driver.bind(deployment)
    await driver.set_automine(False)
    await driver.refresh_gas_price()
    # the deployment's own events (role set-up, desk binding)
    driver.world.apply_all(await driver.logs(deployment.start_block, await driver.head()))
    now = await driver.now()
    kyc = now + 3650 * DAY
    op = cast.operator
    register = [
        driver.tx(op, "MemberRegistry", "registerMember", k.address, roles_to_mask(r), kyc)
        for k, r in cast.members()
    ]
    register += [
        driver.tx(op, "ClaimLedger", "setProgramLimit", core.address, BIG_LIMIT)
        for core in cast.cores
    ]
    await driver.execute(register)
    limits = [
        driver.tx(f, "FinancingDesk", "setExposureLimit", core.address, BIG_LIMIT)
        for f in cast.financiers
        for core in cast.cores
    ]
    await driver.execute(limits)
    await issue_many(driver, payables_per_supplier, due_in, now)
    return driver


async def issue_many(driver: Driver, per_supplier: int, due_in: int, now: int) -> None:
    """Each supplier gets ``per_supplier`` payables of :data:`FACE` (cores in turn)."""
    cast = driver.cast
    plan: list[tuple[Key, Key, bytes]] = []
    for i, (sup, _) in enumerate(itertools.product(cast.suppliers, range(per_supplier))):
        core = cast.cores[i % len(cast.cores)]
        plan.append((sup, core, keccak(f"{sup.address}/{driver.world.logs}/{i}".encode())))
    await driver.execute(
        [
            driver.tx(
                sup,
                "InvoiceRegistry",
                "registerInvoice",
                inv,
                core.address,
                FACE,
                now - 60,
                keccak(inv + b"doc"),
            )
            for sup, core, inv in plan
        ]
    )
    await driver.execute(
        [driver.tx(core, "InvoiceRegistry", "confirmInvoice", inv) for _, core, inv in plan]
    )
    zero = "0x" + "00" * 20
    await driver.execute(
        [
            driver.tx(
                core,
                "ClaimLedger",
                "issuePayable",
                sup.address,
                FACE,
                now + due_in + i * 60,
                [inv],
                cast.agent.address if i % 3 == 0 else zero,
            )
            for i, (sup, core, inv) in enumerate(plan)
        ]
    )


# -- generation -----------------------------------------------------------------------------------


@dataclass
class _Budget:
    """Value a holder may still spend from each piece within one round."""

    left: dict[int, int] = field(default_factory=dict)
    whole: set[int] = field(default_factory=set)  # moved whole this round: off limits

    def available(self, piece: Piece) -> int:
        if piece.id in self.whole:
            return 0
        return self.left.get(piece.id, piece.available)


def _plan_round(driver: Driver, rng: random.Random, per_account: int, now: int) -> list[Tx]:
    """One round: every supplier splits (mostly), transfers and applies; financiers decide."""
    w, cast = driver.world, driver.cast
    recipients = [k.address for k in cast.suppliers]
    financiers = [k.address for k in cast.financiers]
    by_address = cast.by_address()
    txs: list[Tx] = []
    horizon = now + 2 * DAY
    # financiers decide on the open applications first (their own accounts, any order)
    for f in w.financings.values():
        if f.status != "applied" or f.expires <= now + 600:
            continue
        financier = by_address[f.financier]
        if rng.random() < 0.9:
            due = w.due_of(w.pieces[f.claim_id])
            days = -(-(due - now - 60) // DAY)
            discount = discount_for(f.amount, RATE_BPS, days)
            terms = (
                f.amount - discount,
                discount,
                0,
                RATE_BPS,
                days,
                False,
                keccak(REG_NO + f.id.to_bytes(8, "big")),  # a number backs one financing
                keccak(f"disbursement/{f.id}".encode()),
            )
            txs.append(driver.tx(financier, "FinancingDesk", "approveFinancing", f.id, terms))
        else:
            reason = keccak(f"reject/{f.id}".encode())
            txs.append(driver.tx(financier, "FinancingDesk", "rejectFinancing", f.id, reason))
    for key in cast.suppliers:
        pieces = [p for p in w.held(key.address) if not p.frozen and w.due_of(p) > horizon]
        if not pieces:
            continue
        budget = _Budget()
        touched: set[int] = set()
        others = [a for a in recipients if a != key.address]
        for _ in range(per_account):
            piece = rng.choice(pieces)
            avail = budget.available(piece)
            r = rng.random()
            if r < 0.06 and piece.locked == 0 and piece.id not in touched and avail > 0:
                to = rng.choice(others)
                txs.append(driver.tx(key, "ClaimLedger", "transferClaim", piece.id, to, bytes(32)))
                budget.whole.add(piece.id)
            elif r < 0.09 and avail >= 16:
                amount = avail // 8
                budget.left[piece.id] = avail - amount
                touched.add(piece.id)
                expires = now + 3 * DAY
                txs.append(
                    driver.tx(
                        key,
                        "FinancingDesk",
                        "applyForFinancing",
                        piece.id,
                        rng.choice(financiers),
                        amount,
                        expires,
                        0,
                        False,
                    )
                )
            elif avail >= 2:
                value = rng.randint(max(1, avail // 400), max(1, avail // 40))
                value = min(value, avail - 1)
                budget.left[piece.id] = avail - value
                touched.add(piece.id)
                txs.append(driver.split_tx(key, piece.id, rng.choice(others), value))
    # financiers pass some financed value on (ExposureReleased with every such split)
    for key in cast.financiers:
        for piece in w.held(key.address)[:3]:
            if piece.available >= 2 and w.due_of(piece) > horizon and not piece.frozen:
                value = max(1, piece.available // 10)
                txs.append(driver.split_tx(key, piece.id, rng.choice(recipients), value))
    return txs


async def generate(
    rpc_url: str,
    target_logs: int,
    *,
    progress: Progress | None = None,
    seed: int = 1,
    suppliers: int = 16,
    label: str = DEFAULT_LABEL,
) -> LoadResult:
    """Deploy a fresh suite on the anvil at ``rpc_url`` and emit ≥ ``target_logs`` logs.

    ``progress`` (a rich ``Progress``) gets a task advanced by logs. Automine is back on when
    this returns.
    """
    started = time.monotonic()
    rng = random.Random(seed)
    cast = Cast.derive(label, suppliers)
    task: TaskID | None = None
    if progress is not None:
        task = progress.add_task("generating events", total=target_logs)
    driver = await setup(rpc_url, cast, payables_per_supplier=3, due_in=300 * DAY)
    try:
        if progress is not None and task is not None:
            progress.update(task, completed=driver.world.logs)
            driver.on_logs = lambda n: progress.advance(task, n)
        deployment = driver.deployment
        assert deployment is not None
        while driver.world.logs < target_logs:
            now = await driver.now()
            await driver.refresh_gas_price()
            remaining = target_logs - driver.world.logs
            per_account = max(8, min(MAX_PER_ROUND_PER_ACCOUNT, remaining // (3 * suppliers) + 1))
            txs = _plan_round(driver, rng, per_account, now)
            if not txs:
                raise TxFailed("nothing left to split (budget exhausted)")
            await driver.execute(txs)
        last = await driver.head()
        return LoadResult(
            deployment=deployment,
            first_block=deployment.start_block,
            last_block=last,
            logs=driver.world.logs,
            transactions=driver.transactions,
            seconds=time.monotonic() - started,
            events=Counter(driver.world.events),
            world=driver.world,
            cast=cast,
            label=label,
        )
    finally:
        with contextlib.suppress(Exception):
            await driver.set_automine(True)
        await driver.rpc.aclose()


# -- steady writes for the lag measurement ------------------------------------------------------


@dataclass(frozen=True)
class WriterResult:
    """What :func:`write_at_rate` achieved."""

    sent: int
    succeeded: int
    seconds: float
    first_block: int
    last_block: int

    @property
    def rate(self) -> float:
        """Successful transactions per second."""
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0


async def rebuild_world(driver: Driver, deployment: Deployment) -> None:
    """Feed the driver's world with every log of the deployment so far."""
    driver.world.apply_all(await driver.logs(deployment.start_block, await driver.head()))


async def write_at_rate(
    rpc_url: str,
    deployment: Deployment | LoadResult,
    tx_per_s: float,
    duration_s: float,
    *,
    block_time_s: int = 1,
    seed: int = 2,
    suppliers: int = 16,
    label: str = DEFAULT_LABEL,
    tick_s: float = 0.05,
) -> WriterResult:
    """Write splits (nine in ten) and whole transfers at ``tx_per_s`` for ``duration_s``.

    Blocks are mined every ``block_time_s`` meanwhile (like a QBFT network), then automine is
    restored. ``deployment`` is the :class:`LoadResult` of :func:`generate` (its cast and
    model are reused) or a bare :class:`Deployment` made by it (state is rebuilt from logs).
    """
    rng = random.Random(seed)
    if isinstance(deployment, LoadResult):
        cast, dep, world = deployment.cast, deployment.deployment, deployment.world
    else:
        cast, dep, world = Cast.derive(label, suppliers), deployment, None
    driver = await Driver.connect(rpc_url, cast, world)
    driver.bind(dep)
    try:
        if world is None:
            await rebuild_world(driver, dep)
        await driver.refresh_gas_price()
        now = await driver.now()
        horizon = now + 2 * DAY
        w = driver.world
        recipients = [k.address for k in cast.suppliers]
        # per holder: pieces and what is left to spend of them
        usable: dict[str, list[Piece]] = {}
        for key in cast.suppliers:
            usable[key.address] = [
                p
                for p in w.held(key.address)
                if not p.frozen and p.available >= 1000 and w.due_of(p) > horizon
            ]
        left = {p.id: p.available for ps in usable.values() for p in ps}
        senders = [k for k in cast.suppliers if usable[k.address]]
        first_block = await driver.head() + 1
        await driver.rpc.call("evm_setIntervalMining", [max(1, block_time_s)])
        sent_hashes: list[str] = []
        started = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        try:
            while (elapsed := time.monotonic() - started) < duration_s:
                due = int(elapsed * tx_per_s) - len(sent_hashes)
                txs: list[Tx] = []
                for _ in range(max(0, due)):
                    key = rng.choice(senders)
                    pieces = usable[key.address]
                    if not pieces:
                        continue
                    piece = rng.choice(pieces)
                    to = rng.choice([a for a in recipients if a != key.address])
                    if rng.random() < 0.1 and piece.locked == 0:
                        pieces.remove(piece)
                        txs.append(
                            driver.tx(key, "ClaimLedger", "transferClaim", piece.id, to, bytes(32))
                        )
                        continue
                    value = max(1, left[piece.id] // 200)
                    left[piece.id] -= value
                    if left[piece.id] < 1000:
                        pieces.remove(piece)
                    txs.append(driver.split_tx(key, piece.id, to, value))
                if txs:
                    raws, hashes = driver.sign(txs)
                    sent_hashes += hashes
                    task = asyncio.create_task(driver.broadcast(raws))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                await asyncio.sleep(tick_s)
            if pending:
                await asyncio.gather(*pending)
            seconds = time.monotonic() - started
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # let the interval miner drain the pool
                status = await driver.rpc.call("txpool_status")
                if int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0:
                    break
                await asyncio.sleep(block_time_s / 2)
        finally:
            await driver.rpc.call("evm_setIntervalMining", [0])
            await driver.set_automine(True)
        last_block = await driver.head()
        logs = await driver.logs(first_block, last_block)
        ours = set(sent_hashes)
        succeeded = len({log.tx_hash for log in logs if log.tx_hash in ours})
        driver.world.apply_all(logs)
        return WriterResult(len(sent_hashes), succeeded, seconds, first_block, last_block)
    finally:
        await driver.rpc.aclose()


# -- a small random history with every event, for the indexer's tests ------------------------------

SCENARIO_LABEL = "tierflow-scenario"
MARGIN = 600  # seconds of slack for "before the due date / expiry" (the next block comes later)
ZERO_ADDRESS = "0x" + "00" * 20


class _Scenario:
    """Seeded random operations, each valid for the state the model shows."""

    def __init__(self, driver: Driver, rng: random.Random, seed: int) -> None:
        self.d = driver
        self.w = driver.world
        self.cast = driver.cast
        self.rng = rng
        self.seed = seed
        self.now = 0
        self.serial = itertools.count(1)
        self.by_address = self.cast.by_address()

    # -- helpers ---------------------------------------------------------------------------

    def unique(self, label: str) -> bytes:
        return keccak(f"{label}/{self.seed}/{next(self.serial)}".encode())

    async def run(self, *groups: Sequence[Tx]) -> None:
        """Each group in a block of its own, in order (a group: one sender's calls)."""
        for group in groups:
            await self.d.execute(group)

    def tx(self, key: Key, contract: str, function: str, *args: Any) -> Tx:
        return self.d.tx(key, contract, function, *args)

    def key(self, address: str) -> Key:
        return self.by_address[address]

    def active(self, keys: Iterable[Key]) -> list[Key]:
        return [k for k in keys if self.w.active(k.address)]

    def recipients(self, holder: str, suppliers_only: bool = False) -> list[Key]:
        keys = self.cast.suppliers + ([] if suppliers_only else self.cast.financiers)
        return [k for k in self.active(keys) if k.address != holder]

    def movable(self, p: Piece) -> bool:
        return (
            p.live
            and not p.frozen
            and self.now + MARGIN < self.w.due_of(p)
            and self.w.active(p.holder)
            and p.holder in self.by_address
        )

    def pick(self, items: Sequence[Any]) -> Any:
        return self.rng.choice(items) if items else None

    # -- operations: each returns whether it did something -----------------------------------

    async def issue(self, due_in: int | None = None, agent: bool | None = None) -> int | None:
        core = self.pick(self.active(self.cast.cores))
        supplier = self.pick(self.active(self.cast.suppliers))
        if core is None or supplier is None:
            return None
        rng = self.rng
        face = rng.randint(10**6, 10**9)
        if due_in is None:
            due_in = rng.randint(3, 40) * DAY if rng.random() < 0.8 else 200 * DAY
        if agent is None:
            agent = rng.random() < 0.5
        count = rng.choice((1, 1, 2))
        amounts = [face // count + 1 + rng.randint(0, 1000) for _ in range(count)]
        ids = [self.unique("invoice") for _ in amounts]
        await self.run(
            [
                self.tx(
                    supplier,
                    "InvoiceRegistry",
                    "registerInvoice",
                    i,
                    core.address,
                    a,
                    self.now - 60,
                    self.unique("doc"),
                )
                for i, a in zip(ids, amounts, strict=True)
            ],
            [self.tx(core, "InvoiceRegistry", "confirmInvoice", i) for i in ids],
            [
                self.tx(
                    core,
                    "ClaimLedger",
                    "issuePayable",
                    supplier.address,
                    face,
                    self.now + due_in,
                    ids,
                    self.cast.agent.address if agent else ZERO_ADDRESS,
                )
            ],
        )
        return max(self.w.payables)

    async def split(
        self, trade_invoice: bool = False, holders: Sequence[Key] | None = None
    ) -> bool:
        allowed = {k.address for k in (holders or self.cast.suppliers + self.cast.financiers)}
        pieces = [
            p
            for p in self.w.pieces.values()
            if p.holder in allowed and self.movable(p) and p.available >= 2
        ]
        piece: Piece | None = self.pick(pieces)
        if piece is None:
            return False
        to: Key | None = self.pick(self.recipients(piece.holder, suppliers_only=trade_invoice))
        if to is None:
            return False
        value = self.rng.randint(1, piece.available)
        if value == piece.value:
            value -= 1
        holder = self.key(piece.holder)
        invoice = b""
        if trade_invoice:
            invoice = self.unique("trade-invoice")
            await self.run(
                [
                    self.tx(
                        to,
                        "InvoiceRegistry",
                        "registerInvoice",
                        invoice,
                        holder.address,
                        value + self.rng.randint(0, 100),
                        self.now - 60,
                        self.unique("doc"),
                    )
                ],
                [self.tx(holder, "InvoiceRegistry", "confirmInvoice", invoice)],
            )
        await self.run([self.d.split_tx(holder, piece.id, to.address, value, invoice)])
        return True

    async def transfer(self, holders: Sequence[Key] | None = None) -> bool:
        allowed = {k.address for k in (holders or self.cast.suppliers + self.cast.financiers)}
        pieces = [
            p
            for p in self.w.pieces.values()
            if p.holder in allowed and self.movable(p) and p.locked == 0
        ]
        piece: Piece | None = self.pick(pieces)
        if piece is None:
            return False
        to: Key | None = self.pick(self.recipients(piece.holder))
        if to is None:
            return False
        holder = self.key(piece.holder)
        await self.run(
            [self.tx(holder, "ClaimLedger", "transferClaim", piece.id, to.address, bytes(32))]
        )
        return True

    async def apply(self, expires_in: int | None = None) -> int | None:
        suppliers = {k.address for k in self.cast.suppliers}
        pieces = [
            p
            for p in self.w.pieces.values()
            if p.holder in suppliers
            and self.movable(p)
            and p.available >= 1000
            and self.w.due_of(p) - self.now > 3 * 3600
        ]
        piece: Piece | None = self.pick(pieces)
        financier: Key | None = self.pick(self.active(self.cast.financiers))
        if piece is None or financier is None:
            return None
        amount = self.rng.randint(1000, piece.available)
        room = self.w.due_of(piece) - self.now - 2 * MARGIN
        expires = self.now + (expires_in or self.rng.randint(3600, max(3600, min(7 * DAY, room))))
        await self.run(
            [
                self.tx(
                    self.key(piece.holder),
                    "FinancingDesk",
                    "applyForFinancing",
                    piece.id,
                    financier.address,
                    amount,
                    expires,
                    0,
                    False,
                )
            ]
        )
        return max(self.w.financings)

    def open_financings(self, *, live: bool) -> list[Financing]:
        out = []
        for f in self.w.financings.values():
            if f.status != "applied":
                continue
            if live and not (
                self.now + MARGIN < f.expires
                and self.movable(self.w.pieces[f.claim_id])
                and self.w.active(f.applicant)
            ):
                continue
            out.append(f)
        return out

    async def approve(self, financing: Financing | None = None) -> bool:
        f: Financing | None = financing or self.pick(self.open_financings(live=True))
        if f is None:
            return False
        due = self.w.due_of(self.w.pieces[f.claim_id])
        days = -(-(due - self.now - 60) // DAY)
        discount = discount_for(f.amount, RATE_BPS, days)
        fees = self.rng.choice((0, f.amount // 100))
        if f.amount - discount - fees <= 0:
            fees = 0
        if f.amount - discount - fees <= 0:
            return False
        terms = (
            f.amount - discount - fees,
            discount,
            fees,
            RATE_BPS,
            days,
            False,  # the recourse the application committed to
            self.unique("registration"),  # a number backs one financing
            self.unique("disbursement"),
        )
        financier = self.key(f.financier)
        await self.run([self.tx(financier, "FinancingDesk", "approveFinancing", f.id, terms)])
        return True

    async def reject(self, financing: Financing | None = None) -> bool:
        f: Financing | None = financing or self.pick(self.open_financings(live=False))
        if f is None:
            return False
        await self.run(
            [
                self.tx(
                    self.key(f.financier),
                    "FinancingDesk",
                    "rejectFinancing",
                    f.id,
                    self.unique("reason"),
                )
            ]
        )
        return True

    async def withdraw(self, financing: Financing | None = None) -> bool:
        f: Financing | None = financing or self.pick(self.open_financings(live=False))
        if f is None:
            return False
        await self.run([self.tx(self.key(f.applicant), "FinancingDesk", "withdrawFinancing", f.id)])
        return True

    async def expire(self) -> bool:
        lapsed = [f for f in self.open_financings(live=False) if self.now > f.expires + 5]
        f: Financing | None = self.pick(lapsed)
        if f is None:
            return False
        await self.run([self.tx(self.cast.operator, "FinancingDesk", "expireFinancing", f.id)])
        return True

    async def freeze(self) -> bool:
        pieces = [p for p in self.w.pieces.values() if p.live and not p.frozen]
        piece: Piece | None = self.pick(pieces)
        if piece is None:
            return False
        op = self.cast.operator
        await self.run(
            [self.tx(op, "ClaimLedger", "freezeClaim", piece.id, self.unique("court-order"))]
        )
        return True

    async def unfreeze(self) -> bool:
        piece: Piece | None = self.pick([p for p in self.w.pieces.values() if p.frozen])
        if piece is None:
            return False
        await self.run([self.tx(self.cast.operator, "ClaimLedger", "unfreezeClaim", piece.id)])
        return True

    async def cancel(self, payable: Payable | None = None) -> bool:
        candidates = [
            p
            for p in self.w.payables.values()
            if p.status == "issued"
            and not p.touched
            and not self.w.pieces[p.root].frozen
            and self.now + MARGIN < p.due
            and p.supplier in self.by_address
        ]
        p: Payable | None = payable or self.pick(candidates)
        if p is None:
            return False
        await self.run([self.tx(self.key(p.supplier), "ClaimLedger", "cancelPayable", p.id)])
        return True

    async def void(self) -> bool:
        supplier: Key | None = self.pick(self.active(self.cast.suppliers))
        core: Key | None = self.pick(self.cast.cores)
        if supplier is None or core is None:
            return False
        invoice = self.unique("void-invoice")
        amount = self.rng.randint(1, 10**9)
        await self.run(
            [
                self.tx(
                    supplier,
                    "InvoiceRegistry",
                    "registerInvoice",
                    invoice,
                    core.address,
                    amount,
                    self.now - 60,
                    self.unique("doc"),
                )
            ]
        )
        if self.rng.random() < 0.5 and self.w.active(core.address):
            await self.run([self.tx(core, "InvoiceRegistry", "confirmInvoice", invoice)])
        voider = supplier if self.rng.random() < 0.7 else self.cast.operator
        await self.run([self.tx(voider, "InvoiceRegistry", "voidInvoice", invoice)])
        return True

    def settleable(self, payable: Payable | None = None) -> list[Piece]:
        return [
            p
            for p in self.w.pieces.values()
            if p.live
            and not p.frozen
            and p.locked == 0
            and self.now >= self.w.due_of(p) + 5
            and (payable is None or p.payable_id == payable.id)
        ]

    async def settle(self) -> bool:
        piece: Piece | None = self.pick(self.settleable())
        if piece is None:
            return False
        payable = self.w.payables[piece.payable_id]
        settler = self.key(payable.obligor)
        if payable.agent is not None and self.rng.random() < 0.5:
            settler = self.key(payable.agent)
        ref = self.unique("payment")
        await self.run([self.tx(settler, "ClaimLedger", "settleClaim", piece.id, ref)])
        return True

    async def settle_batch(self, payable: Payable | None = None) -> bool:
        pieces = self.settleable(payable)
        if not pieces:
            return False
        obligor = self.w.payables[self.pick(pieces).payable_id].obligor
        mine = [p for p in pieces if self.w.payables[p.payable_id].obligor == obligor]
        chosen = mine if payable is not None else self.rng.sample(mine, min(len(mine), 5))
        for start in range(0, len(chosen), 100):
            ids = [p.id for p in chosen[start : start + 100]]
            refs = [self.unique("payment") for _ in ids]
            await self.run([self.tx(self.key(obligor), "ClaimLedger", "settleClaims", ids, refs)])
        return True

    async def mark_overdue(self) -> bool:
        late = [
            p
            for p in self.w.payables.values()
            if p.status == "issued" and self.now > p.due + GRACE + 5
        ]
        p: Payable | None = self.pick(late)
        # freezes and pauses after the due date stop its clock: the ledger knows for how long
        if p is None or self.now <= await self.d.overdue_from(p.id):
            return False
        await self.run([self.tx(self.cast.operator, "ClaimLedger", "markOverdue", p.id)])
        return True

    async def warp(self, seconds: int | None = None) -> bool:
        await self.d.warp(seconds or self.rng.randint(3600, 6 * DAY))
        return True

    async def financier_moves(self) -> bool:
        financiers = self.active(self.cast.financiers)
        if self.rng.random() < 0.7:
            return await self.split(holders=financiers)
        return await self.transfer(holders=financiers)

    async def admin(self, which: str | None = None) -> bool:
        op, rng = self.cast.operator, self.rng
        choices = ["kyc", "suspend", "pause", "delay", "handover", "reinstate", "revoke"]
        which = which or rng.choice(choices)
        members = "MemberRegistry"
        if which == "kyc":
            member: Key = rng.choice([k for k, _ in self.cast.members()])
            kyc = self.now + 3650 * DAY + rng.randint(1, DAY)
            await self.run([self.tx(op, members, "renewKyc", member.address, kyc)])
        elif which == "suspend":
            auditor = self.cast.auditor.address
            await self.run(
                [self.tx(op, members, "suspendMember", auditor, self.unique("reason"))],
                [self.tx(op, members, "reinstateMember", auditor)],
            )
        elif which == "pause":
            await self.run([self.tx(op, members, "pause")], [self.tx(op, members, "unpause")])
        elif which == "delay":
            await self.run(
                [self.tx(op, members, "changeDefaultAdminDelay", rng.randint(3, 9) * DAY)],
                [self.tx(op, members, "rollbackDefaultAdminDelay")],
            )
        elif which == "handover":
            await self.run(
                [self.tx(op, members, "beginDefaultAdminTransfer", self.cast.auditor.address)],
                [self.tx(op, members, "cancelDefaultAdminTransfer")],
            )
        elif which == "reinstate":
            suspended = [k for k in self.cast.cores if not self.w.active(k.address)]
            if not suspended:
                return False
            await self.run([self.tx(op, members, "reinstateMember", suspended[0].address)])
        elif which == "revoke":
            spare = self.cast.spare.address
            if Role.SUPPLIER.role_id not in self.w.roles.get(spare, set()):
                return False
            await self.run([self.tx(op, members, "revokeRole", Role.SUPPLIER.role_id, spare)])
        return True

    # -- the whole history -----------------------------------------------------------------

    async def random_operations(self, count: int) -> None:
        ops: list[tuple[Callable[[], Any], int]] = [
            (self.issue, 8),
            (self.split, 20),
            (lambda: self.split(trade_invoice=True), 4),
            (self.transfer, 6),
            (self.apply, 8),
            (self.approve, 6),
            (self.reject, 2),
            (self.withdraw, 2),
            (self.expire, 3),
            (self.freeze, 2),
            (self.unfreeze, 3),
            (self.cancel, 2),
            (self.void, 2),
            (self.settle, 6),
            (self.settle_batch, 3),
            (self.mark_overdue, 3),
            (self.warp, 4),
            (self.financier_moves, 3),
            (self.admin, 3),
        ]
        functions = [f for f, _ in ops]
        weights = [w for _, w in ops]
        done = attempts = 0
        while done < count and attempts < count * 20:
            attempts += 1
            self.now = await self.d.now()
            op = self.rng.choices(functions, weights)[0]
            if await op():
                done += 1

    async def cover_the_rest(self) -> None:
        """A short lifecycle that emits whatever event the random part did not."""
        missing = all_domain_events() - set(self.w.events)
        if not missing:
            return
        self.now = await self.d.now()
        for which in ("reinstate", "kyc", "suspend", "pause", "delay", "handover", "revoke"):
            await self.admin(which)
        await self.void()
        cancelled = await self.issue(due_in=30 * DAY, agent=False)
        assert cancelled is not None
        await self.cancel(self.w.payables[cancelled])
        payable_id = await self.issue(due_in=3 * DAY, agent=True)
        assert payable_id is not None
        payable = self.w.payables[payable_id]
        root = self.w.pieces[payable.root]
        holder = self.key(root.holder)
        await self.split(trade_invoice=True, holders=[holder])
        child = max(i for i, p in self.w.pieces.items() if p.payable_id == payable_id)
        await self.transfer_piece(self.w.pieces[child])
        for decide in (self.approve, self.reject, self.withdraw):
            fid = await self.apply_on(root, expires_in=DAY)
            await decide(self.w.financings[fid])
        financed = max(i for i, p in self.w.pieces.items() if p.financed)
        if self.w.pieces[financed].available >= 2:
            await self.split_piece(self.w.pieces[financed])
        lapsing = await self.apply_on(root, expires_in=3600)
        await self.run(
            [self.tx(self.cast.operator, "ClaimLedger", "freezeClaim", root.id, bytes(32))]
        )
        await self.run([self.tx(self.cast.operator, "ClaimLedger", "unfreezeClaim", root.id)])
        await self.warp(2 * 3600)
        await self.run([self.tx(self.cast.operator, "FinancingDesk", "expireFinancing", lapsing)])
        late_id = await self.issue(due_in=DAY, agent=False)
        assert late_id is not None
        await self.warp(3 * DAY + 60)
        self.now = await self.d.now()
        await self.settle_batch(payable)
        await self.warp(GRACE)
        self.now = await self.d.now()
        await self.run([self.tx(self.cast.operator, "ClaimLedger", "markOverdue", late_id)])

    async def transfer_piece(self, piece: Piece) -> None:
        to = self.recipients(piece.holder)[0]
        await self.run(
            [
                self.tx(
                    self.key(piece.holder),
                    "ClaimLedger",
                    "transferClaim",
                    piece.id,
                    to.address,
                    bytes(32),
                )
            ]
        )

    async def split_piece(self, piece: Piece) -> None:
        to = self.recipients(piece.holder, suppliers_only=True)[0]
        await self.run([self.d.split_tx(self.key(piece.holder), piece.id, to.address, 1)])

    async def apply_on(self, piece: Piece, expires_in: int) -> int:
        financier = self.active(self.cast.financiers)[0]
        amount = max(1000, piece.available // 10)
        await self.run(
            [
                self.tx(
                    self.key(piece.holder),
                    "FinancingDesk",
                    "applyForFinancing",
                    piece.id,
                    financier.address,
                    amount,
                    self.now + expires_in,
                    0,
                    False,
                )
            ]
        )
        return max(self.w.financings)


async def scenario(
    rpc_url: str, seed: int, operations: int, *, label: str = SCENARIO_LABEL
) -> LoadResult:
    """A seeded random history on a fresh suite that emits every event in
    :func:`all_domain_events`: payables issued (with and without a clearing agent, some long
    term) and cancelled, invoices voided, splits down several tiers with and without trade
    invoices, whole transfers, financing applied / approved / rejected / withdrawn / expired,
    financed value passed on, freezes, time warps past due dates, settlement one by one and in
    batches, overdue marking (and automatic suspension when it happens), member and admin
    operations. ``operations`` random operations run first; a short deterministic lifecycle
    then adds whatever event they did not produce. Each transaction is mined in its own block.
    Automine is back on when this returns.
    """
    started = time.monotonic()
    rng = random.Random(seed)
    cast = Cast.derive(f"{label}/{seed}", suppliers=4, financiers=2)
    driver = await setup(rpc_url, cast, payables_per_supplier=1, due_in=rng.randint(5, 30) * DAY)
    try:
        story = _Scenario(driver, rng, seed)
        await story.random_operations(operations)
        await story.cover_the_rest()
        deployment = driver.deployment
        assert deployment is not None
        return LoadResult(
            deployment=deployment,
            first_block=deployment.start_block,
            last_block=await driver.head(),
            logs=driver.world.logs,
            transactions=driver.transactions,
            seconds=time.monotonic() - started,
            events=Counter(driver.world.events),
            world=driver.world,
            cast=cast,
            label=label,
        )
    finally:
        with contextlib.suppress(Exception):
            await driver.set_automine(True)
        await driver.rpc.aclose()
