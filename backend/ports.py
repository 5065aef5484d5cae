"""What the services need from outside, as protocols, and the state a write carries.

- :class:`LedgerPort`: the chain as services see it: submit a :class:`ledger.calls.ContractCall`
  as a member and get back a :class:`Mined` with its decoded events; the chain's clock, gas
  price, balances and funding; a piece as the chain sees it at ``pending``; waiting for the
  mirror. :class:`backend.gateway.Gateway` implements it over web3; unit tests use
  ``tests/support/fakes.py``.
- :class:`WriteContext`: the state of one write, passed explicitly to the service and the
  port (never a context variable): the caller, the request id, the idempotency journal of the
  transactions recorded before broadcast, and the hashes of those mined (for the audit
  record).
- :class:`Ports`: what a service is given: short database sessions and the ledger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from backend.auth import Caller, CallerCache
from ledger.bindings import ClaimView
from ledger.calls import ContractCall
from ledger.codec import DecodedEvent

#: The memo entry (:meth:`WriteContext.remembered`) marking a write that runs again because a
#: reorganisation removed it (set by :mod:`backend.idempotency` when it reopens the record).
RERUN_MEMO = "_rerun"


@dataclass
class RecordedTx:
    """A transaction signed for a write, recorded before it was broadcast."""

    hash: str
    raw: str  # 0x-hex of the signed bytes
    nonce: int
    #: Earlier signatures of the same call at the same nonce, replaced by this one (re-signed
    #: at current fees after the node dropped them): any of them may still be mined by some
    #: node, so a run that resumes the write looks for each (newest first).
    replaced: list[RecordedTx] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hash": self.hash, "raw": self.raw, "nonce": self.nonce}
        if self.replaced:
            out["replaced"] = [t.as_json() for t in self.replaced]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedTx:
        replaced = [cls.from_json(t) for t in data.get("replaced", ())]
        return cls(str(data["hash"]), str(data["raw"]), int(data["nonce"]), replaced)

    @property
    def hashes(self) -> list[str]:
        """Every hash this step may be mined under, this one first."""
        return [self.hash, *(t.hash for t in self.replaced)]


@dataclass
class TxJournal:
    """The transactions of one idempotent write (and a little state), and how to keep them:
    ``persist`` stores both durably. A write run again after its worker died finds the
    transactions it had sent here (step ``i`` is the ``i``-th recorded transaction)."""

    recorded: list[RecordedTx]
    persist: Callable[[TxJournal], Awaitable[None]]
    state: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    #: ``persist``'s statements on a connection whose transaction the caller opened and
    #: commits (:meth:`WriteContext.record`: the journal and the citation in one commit).
    persist_in: Callable[[AsyncConnection, TxJournal], Awaitable[None]] | None = None
    #: Statements to run in the transaction that stores this run's answer (a success, a
    #: refusal or a ``202`` awaiting a signature), not in one of their own: a ``self``
    #: member's new intent (durable with its 202), a relayed intent's outcome. A run that
    #: ends without an answer drops them; the retry that resumes the write does them again.
    at_answer: list[Callable[[AsyncConnection], Awaitable[None]]] = field(default_factory=list)

    async def remember(self, **values: Any) -> None:
        """Keep ``values`` (JSON) with the record, for a run that resumes this write."""
        self.state.update(values)
        await self.persist(self)


@dataclass
class WriteContext:
    """One write's state (see the module docstring)."""

    caller: Caller
    request_id: str = ""
    journal: TxJournal | None = None
    #: Hashes of the transactions broadcast for this write (its audit record cites them),
    #: each added before its bytes leave.
    tx_hashes: list[str] = field(default_factory=list)
    #: Awaited after a hash is added to ``tx_hashes`` and before it is broadcast: keeps the
    #: citation durable (``audit_pending``), so a crash cannot leave a transaction uncited.
    before_broadcast: Callable[[], Awaitable[None]] | None = None
    #: Set when a transaction was mined but the mirror had not reached its block in time: the
    #: answer is the chain's, reads may not show it yet.
    mirror_behind: bool = False
    #: Calls of a ``self`` member submitted so far in this run (each has its own intent).
    intent_step: int = 0
    #: The write's Idempotency-Key (an intent names it, to resume the write once signed).
    idempotency_key: str | None = None
    #: ``before_broadcast``'s statements on a connection of a transaction the caller opens
    #: on ``engine`` (:meth:`record` makes the journal and the citation durable in one commit).
    cite_in: Callable[[AsyncConnection], Awaitable[None]] | None = None
    engine: AsyncEngine | None = None
    #: Intents whose signature this request kept itself, in the transaction that took the
    #: write's key up, by id: each as that transaction left its row (``signed``, with the
    #: signature), which nothing but this write's relay changes afterwards. Their rows are not
    #: read again.
    signed_intents: Mapping[str, Any] = field(default_factory=dict)

    async def cite(self, tx_hash: str) -> None:
        """Cite ``tx_hash`` for this write, durably, before it is broadcast."""
        if tx_hash not in self.tx_hashes:
            self.tx_hashes.append(tx_hash)
            if self.before_broadcast is not None:
                await self.before_broadcast()

    def records_in(self, journal: TxJournal) -> bool:
        """Whether the journal's record and the citation of a transaction can both be written
        in a transaction of the caller's (:meth:`record_in`)."""
        return journal.persist_in is not None and (
            self.before_broadcast is None or self.cite_in is not None
        )

    async def record_in(self, conn: AsyncConnection, journal: TxJournal, tx_hash: str) -> bool:
        """Write ``journal`` (holding a transaction just signed) and the citation of its hash
        ``tx_hash`` on ``conn``, in the caller's transaction, which makes them durable before
        the bytes leave (:meth:`records_in` must hold). True when ``tx_hash`` was newly cited:
        if that transaction does not commit, :meth:`uncite` it."""
        assert journal.persist_in is not None
        new = tx_hash not in self.tx_hashes
        if new:
            self.tx_hashes.append(tx_hash)
        await journal.persist_in(conn, journal)
        if new and self.before_broadcast is not None and self.cite_in is not None:
            await self.cite_in(conn)
        return new

    def uncite(self, tx_hash: str) -> None:
        """``tx_hash`` was not made durable after all (its record rolled back): a retry of the
        record cites it again."""
        if tx_hash in self.tx_hashes:
            self.tx_hashes.remove(tx_hash)

    async def record(self, journal: TxJournal, tx_hash: str) -> None:
        """Make ``journal`` (holding a transaction just signed) and the citation of its hash
        ``tx_hash`` durable before the bytes leave: in one database transaction when both
        sides can write on a caller's connection, else one after the other."""
        engine = self.engine
        if engine is None or not self.records_in(journal):
            await journal.persist(journal)
            await self.cite(tx_hash)
            return
        new = tx_hash not in self.tx_hashes
        try:
            async with engine.begin() as conn:
                await self.record_in(conn, journal, tx_hash)
        except BaseException:
            if new:  # not cited after all: a retry of the record cites it again
                self.uncite(tx_hash)
            raise

    @property
    def reorganised_rerun(self) -> bool:
        """This run is a rerun of a write that had answered (and so handed out whatever its
        answer showed once) before a reorganisation removed it from the chain."""
        return self.remembered(RERUN_MEMO) is not None

    def remembered(self, name: str) -> Any:
        """A value an earlier run of this write kept with :meth:`remember` (or ``None``)."""
        return None if self.journal is None else self.journal.state.get(name)

    async def remember(self, **values: Any) -> None:
        if self.journal is not None:
            await self.journal.remember(**values)

    def keep(self, **values: Any) -> None:
        """Keep ``values`` (JSON) for a run that resumes this write, with no statement of
        their own: durable with the next thing the write stores (a transaction's record,
        before its bytes leave; a ``202`` awaiting a signature; its answer)."""
        if self.journal is not None:
            self.journal.state.update(values)


class SignatureRequired(Exception):
    """A write of a ``self`` member stops at its chain call: the platform holds no key for it,
    so the call becomes an intent the member signs (docs/consent.md). ``answer`` is the
    write's ``202`` body, ``{"status": "awaiting_signature", "intent": {…}}``; the write is
    resumed from its idempotency record once the signature arrives."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("the member's signature is needed")
        self.answer = answer


@dataclass(frozen=True)
class Mined:
    """A mined, successful transaction and the events it emitted (decoded)."""

    tx_hash: str
    block_number: int
    events: tuple[DecodedEvent, ...]
    #: The mirror's checkpoint reached the block within the wait (reads show the write).
    mirrored: bool

    def event(self, key: str) -> DecodedEvent:
        """The first event ``"Contract:Event"`` (it must be there)."""
        for ev in self.events:
            if ev.key == key:
                return ev
        raise LookupError(f"transaction {self.tx_hash} emitted no {key}")

    def all(self, key: str) -> list[DecodedEvent]:
        return [ev for ev in self.events if ev.key == key]

    @property
    def written(self) -> dict[str, Any]:
        """The fields every write's answer carries."""
        return {"tx_hash": self.tx_hash, "block_number": self.block_number}


@dataclass(frozen=True)
class HostedAccount:
    """A chain account the platform made and keeps (hosted custody)."""

    address: str
    keyfile: str  # encrypted, to store with the member


class LedgerPort(Protocol):
    """The chain, as the services use it."""

    async def submit(self, write: WriteContext, call: ContractCall) -> Mined:
        """Send ``call`` as ``write.caller``, wait until mined and (bounded) mirrored; a
        refusal raises :class:`ledger.errors.ContractRevert`."""
        ...

    async def send_value(self, write: WriteContext, to: str, value: int) -> Mined:
        """A plain transfer of ``value`` wei from ``write.caller`` (gas money)."""
        ...

    def new_account(self) -> HostedAccount:
        """A fresh hosted account (its key encrypted for the keystore table)."""
        ...

    async def chain_time(self) -> int:
        """The latest block's timestamp: the chain's own clock."""
        ...

    async def block_time(self, block_number: int) -> int:
        """The timestamp of block ``block_number``."""
        ...

    async def gas_price(self) -> int: ...

    async def balance(self, address: str) -> int: ...

    async def pending_claim(self, claim_id: int) -> ClaimView:
        """The piece as the chain sees it with pending transactions applied."""
        ...

    async def overdue_from(self, due_dates: dict[int, int]) -> dict[int, int]:
        """``ClaimLedger.overdueFrom`` of each payable (given by id with its due date) at the
        latest block: due date + grace + the seconds since the due date that a freeze or a
        pause stopped the clock. One not yet due there is due date + grace (nothing stops the
        clock before the due date), so only payables past due cost a call."""
        ...

    async def wait_for_mirror(self, block: int, block_hash: str | None = None) -> bool:
        """Wait (bounded) until the mirror's checkpoint reaches ``block`` and, given
        ``block_hash``, the mirror's header there is that block (not a lost branch's)."""
        ...

    async def mirrored_block(self) -> int | None:
        """The mirror's checkpoint block (``None`` before the indexer ran)."""
        ...

    async def local_chain(self) -> bool:
        """Whether the node is the local development chain (anvil, chain id 31337), whose
        clock may be moved."""
        ...

    async def set_chain_time(self, until: int) -> int:
        """Local chain only: move the clock to ``until`` and mine a block dated then; the new
        head's number."""
        ...

    async def canonical(self, tx_hashes: list[str]) -> bool:
        """Are all these transactions mined in blocks still on the canonical chain?"""
        ...


@dataclass(frozen=True)
class Ports:
    """What a service is given: short units of work on the database, and the ledger.

    A service opens a session for its reads, closes it, then waits for the chain; it never
    holds a session (or a pooled connection) across :meth:`LedgerPort.submit`.
    """

    sessions: async_sessionmaker[AsyncSession]
    ledger: LedgerPort
    #: The worker's cached callers, forgotten when a command changes a key or a member.
    callers: CallerCache | None = None

    def session(self) -> AsyncSession:
        """A new session: ``async with ports.session() as session: …``."""
        return self.sessions()
