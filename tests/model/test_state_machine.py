"""Model-based test: random operations through the Python client, each compared with the rules.

A Hypothesis state machine drives random operations (right and wrong callers, existing and
nonexistent ids, amounts at their bounds, time across due dates and expiries) through the
real client against the deployed contracts, and runs each one in the plain Python model of
the rules (``tests/support/model_rules.py``) too. After every call: success on chain ⇔ success in
the model, and a revert's decoded custom error is the one the model names. The
``via_forwarder`` rule sends the next call as the caller's EIP-712-signed ForwardRequest relayed
through the TierflowForwarder (ERC-2771: the contracts must act for the signer exactly as for a
direct call, the inner call's refusal read from ``ForwardRequestExecuted``), or an invalid one
(signed by another key, past its deadline: the forwarder refuses it and nothing changes), or a
valid one relayed twice (the replay is ``ForwarderNonceUsed``). After every step
the chain's typed views (``ledger.bindings``) of everything the step touched equal the model's,
and the model keeps the SPEC §3 invariants (conservation, limits, locks and exposure, terminal
states absorb …). At the end of each example, and inside every pause window, every object,
member, limit, exposure, counter and ERC-721 balance is compared and conservation is checked
on the chain's own numbers.

Time. ``eth_estimateGas`` runs at the latest block's timestamp, so every transaction is
mined at exactly that timestamp (``evm_setNextBlockTimestamp(now)`` before each): estimation,
execution and the model all see the same ``block.timestamp``. Time moves only by mining an
empty block (``warp``).

Budgets: the default is sized for CI (derandomized, so every run replays the same programs;
under a minute on two cores); ``TIERFLOW_LONG_TESTS=1`` runs a long random exploration (a
failure prints a ``@reproduce_failure`` blob). Shrinking a failure replays whole programs on
the chain, so it takes minutes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import pytest
from eth_account import Account
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.logs import DISCARD

from bench.cast import CAST, EXPOSURE_LIMIT, PROGRAM_LIMIT
from ledger import bindings as views
from ledger.errors import ContractRevert, DecodedRevert
from ledger.reverts import decode_revert
from ledger.roles import mask_to_roles
from tests.support import model_rules as R
from tests.support.model_env import ModelEnv
from tests.support.model_rules import DAY, ZERO, ZERO_HASH, ModelRevert

T = TypeVar("T")

LONG = os.environ.get("TIERFLOW_LONG_TESTS") == "1"
_COMMON = settings(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# CI's budget (20 minutes for the whole suite on two cores): 50 runs of 30 steps, about what
# 15 runs cost before the receipt watcher stopped stalling after each example's evm_revert.
# At load ~2: 15 runs 77 s before, 17 s after; 30 runs 34 s; 50 runs 69 s. At load ~7: 15
# runs 120 s before and 92 s after, side by side. TIERFLOW_LONG_TESTS=1 for the long budget.
CI_SETTINGS = settings(_COMMON, max_examples=50, stateful_step_count=30, derandomize=True)
LONG_SETTINGS = settings(_COMMON, max_examples=300, stateful_step_count=60, derandomize=False)

ACTORS: tuple[str, ...] = tuple(CAST)
MAX_UINT128 = 2**128 - 1
UNKNOWN_INVOICE = R.Hash(hashlib.sha256(b"never registered").digest())
AMOUNTS = (1, 2, 999, 1_000, 250_000, 1_000_000, 3_000_000)
#: Gas a relayed request gives its inner call (every model operation needs far less).
RELAY_GAS = 5_000_000
#: How the next call goes through the forwarder (the ``via_forwarder`` rule): ``signed`` (a
#: valid request), ``replayed`` (valid, then relayed again), or invalid as named.
RELAY_MODES = ("signed", "replayed", "wrong_signer", "expired")
RELAY_REFUSALS = {
    "wrong_signer": "ForwarderSignatureInvalid",
    "expired": "ForwarderRequestExpired",
}


def _diff(actual: Any, expected: Any) -> str:
    if dataclasses.is_dataclass(actual) and dataclasses.is_dataclass(expected):
        names = [f.name for f in dataclasses.fields(expected)]
        return ", ".join(
            f"{n}: chain {getattr(actual, n)!r} model {getattr(expected, n)!r}"
            for n in names
            if getattr(actual, n) != getattr(expected, n)
        )
    return f"chain {actual!r} model {expected!r}"


class TierflowMachine(RuleBasedStateMachine):
    """The chain and the model side by side; every rule is a call (or a few) on both."""

    def __init__(self, env: ModelEnv) -> None:
        super().__init__()
        self.env = env
        self.platform = env.platform
        self.model = env.fresh_model()
        self.serial = 0
        self.counts = (0, 0, 0)  # payables, claims, financings last compared
        self.dirty = False  # a step failed: skip the final comparison, keep the first error
        self.relay: str | None = None  # the next call goes through the forwarder, thus
        self.relay_nonce = 0
        self.snapshot_id = env.run(self._start())

    async def _start(self) -> str:
        p = self.platform
        # the previous example's teardown restored the freshly built platform
        assert await p.now() == self.env.genesis_now
        assert await p.claim_ledger.functions.claimCount().call() == 0
        assert not await p.members.functions.paused().call()
        return await p.snapshot()

    def teardown(self) -> None:
        try:
            if not self.dirty:
                self.env.run(self._compare(everything=True))
        finally:
            self.env.run(self.platform.revert(self.snapshot_id))

    # ================================================================ plumbing

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.env.run(awaitable)

    def a(self, name: str) -> str:
        """The address of an actor (or of ZERO)."""
        return self.env.address(name)

    def fresh(self, kind: str) -> R.Hash:
        self.serial += 1
        return R.Hash(hashlib.sha256(f"{kind}-{self.serial}".encode()).digest())

    async def _transact(self, caller: str, fn: Any) -> ContractRevert | None:
        await self.platform.set_next_timestamp(self.model.now)
        try:
            await self.platform.actors[caller].transact(fn)
        except ContractRevert as exc:
            return exc
        return None

    async def _relay(
        self, caller: str, fn: Any, mode: str
    ) -> tuple[ContractRevert | None, DecodedRevert | None]:
        """Send ``fn`` as ``caller``'s signed ForwardRequest, relayed by the operator's
        account: (the forwarder's refusal, the inner call's refusal). ``wrong_signer`` signs
        with another actor's key, ``expired`` puts the deadline a second before the block;
        ``replayed`` relays the valid request a second time, which must be refused."""
        p = self.platform
        forwarder = p.suite.forwarder
        self.relay_nonce += 1
        now = self.model.now
        request = [
            self.a(caller),
            fn.address,
            0,
            RELAY_GAS,
            self.relay_nonce,
            now - 1 if mode == "expired" else now + 3600,
            bytes.fromhex(fn._encode_transaction_data()[2:]),
            b"",
        ]
        digest = await forwarder.functions.hashRequest(tuple(request)).call()
        signer = caller
        if mode == "wrong_signer":
            signer = ACTORS[(ACTORS.index(caller) + 1) % len(ACTORS)]
        key = p.actors[signer].account.key
        request[-1] = bytes(Account.unsafe_sign_hash(bytes(digest), key).signature)
        relayer = p.actors["operator"]
        execute = forwarder.functions.execute(tuple(request))
        await p.set_next_timestamp(now)
        try:
            receipt = await relayer.transact(execute)
        except ContractRevert as exc:
            return exc, None
        (executed,) = forwarder.events.ForwardRequestExecuted().process_receipt(
            receipt, errors=DISCARD
        )
        assert executed["args"]["signer"] == self.a(caller)
        inner = (
            None if executed["args"]["success"] else decode_revert(executed["args"]["returndata"])
        )
        if mode == "replayed":
            await p.set_next_timestamp(now)
            with pytest.raises(ContractRevert) as replay:
                await relayer.transact(execute)
            assert replay.value.name == "ForwarderNonceUsed", replay.value.decoded.describe()
        return None, inner

    def call(
        self, label: str, caller: str, expect: Callable[[], T], fn: Any
    ) -> tuple[bool, T | None]:
        """Run one contract call in the model and on chain; their outcomes must agree. When
        the ``via_forwarder`` rule asked for it, the call is a relayed ForwardRequest."""
        self.dirty = True
        relay, self.relay = self.relay, None
        if relay in RELAY_REFUSALS:
            # An invalid request: the forwarder refuses it, the contracts never see it, so
            # the model does not run either (the comparisons after the step see no change).
            refused, _ = self.run(self._relay(caller, fn, relay))
            said = refused.decoded.describe() if refused else "ok"
            note(f"{label} by {caller} relayed ({relay}): chain {said}")
            assert refused is not None, f"{relay}: the forwarder relayed it"
            assert refused.name == RELAY_REFUSALS[relay], said
            return False, None
        try:
            result: T | None = expect()
            expected: ModelRevert | None = None
        except ModelRevert as exc:
            result, expected = None, exc
        actual: DecodedRevert | None
        if relay is None:
            reverted = self.run(self._transact(caller, fn))
            actual = reverted.decoded if reverted else None
        else:
            refused, actual = self.run(self._relay(caller, fn, relay))
            assert refused is None, f"a valid request was refused: {refused}"
            label = f"{label} (relayed, {relay})"
        want = "ok" if expected is None else expected.name
        got = "ok" if actual is None else actual.name
        said = actual.describe() if actual else "ok"
        note(f"{label} by {caller}: model {expected or 'ok'} | chain {said}")
        assert got == want, (
            f"{label} by {caller}: the chain says {said}, the rules say {expected or 'ok'}"
        )
        return expected is None, result

    # ---------------------------------------------------------------- drawing values

    def pick(
        self,
        data: Any,
        label: str,
        likely: Iterable[T],
        others: Iterable[T] = (),
        *,
        edge: bool = False,
    ) -> T:
        """Mostly one of ``likely`` (the sensible choice), sometimes one of ``others`` (the wrong
        caller, the nonexistent id …); with ``edge``, ``others`` are the invalid side of a
        boundary and come up more often. Hypothesis favours the first and last items of a
        list: put the most telling ones there."""
        good = list(dict.fromkeys(likely))
        bad = [x for x in dict.fromkeys(others) if x not in good]
        chosen: T = self._weighted(
            data,
            label,
            st.sampled_from(good) if good else None,
            st.sampled_from(bad) if bad else None,
            edge=edge,
        )
        return chosen

    def amount(
        self, data: Any, label: str, valid: Iterable[int], invalid: Iterable[int], upper: int
    ) -> int:
        """An amount at the bounds that matter: mostly ``valid`` ones (1, value−1, available …),
        sometimes ``invalid`` ones (0, value+1 …), sometimes anything in 1..upper. Order is
        kept: the first and last of each list come up most."""
        good = [v for v in dict.fromkeys(valid) if 0 < v <= MAX_UINT128]
        bad = [v for v in dict.fromkeys(invalid) if 0 <= v <= MAX_UINT128 and v not in good]
        anything = st.integers(1, min(upper, MAX_UINT128)) if upper >= 1 else None
        return int(
            self._weighted(
                data,
                label,
                st.sampled_from(good) if good else anything,
                st.sampled_from(bad) if bad else None,
                anything,
                edge=True,
            )
        )

    @staticmethod
    def _weighted(
        data: Any, label: str, good: Any, bad: Any, other: Any = None, *, edge: bool = False
    ) -> Any:
        """One draw: ``good`` most of the time (it holds both ends of the table, which
        Hypothesis favours), ``bad`` 1/8 (2/8 for an ``edge``), ``other`` 1/8, falling back to
        what exists. An operation has several things that can be wrong (caller, id, recipient,
        amount …): each is wrong rarely, so that a good share of the calls get through to the
        deeper checks, while boundaries (amounts, times) get their invalid side tried often."""
        good = next(x for x in (good, other, bad) if x is not None)
        bad = good if bad is None else bad
        other = good if other is None else other
        table = [good, good, bad if edge else good, bad, other, good, good, good]
        return data.draw(st.sampled_from(table).flatmap(lambda s: s), label=label)

    def with_role(self, role: str, *, active: bool = False) -> list[str]:
        m = self.model
        return [n for n in ACTORS if m.has_role(n, role) and (m.is_active(n) or not active)]

    def claim_id(self, data: Any, likely: Iterable[int]) -> int:
        m = self.model
        return self.pick(data, "claim", likely, [*m.claims, 0, len(m.claims) + 1])

    def payable_id(self, data: Any, likely: Iterable[int]) -> int:
        m = self.model
        return self.pick(data, "payable", likely, [*m.payables, 0, len(m.payables) + 1])

    def financing_id(self, data: Any, likely: Iterable[int]) -> int:
        m = self.model
        return self.pick(data, "financing", likely, [*m.financings, 0, len(m.financings) + 1])

    def live_claims(self) -> list[int]:
        return [c.id for c in self.model.claims.values() if c.live]

    def movable(self, *, whole: bool) -> list[int]:
        """Pieces that can move now: live, not frozen, before the due date, with unlocked value
        (for a split) or nothing locked (for a whole transfer)."""
        m = self.model
        return [
            c.id
            for c in m.claims.values()
            if c.live
            and not c.frozen
            and m.now < m.payables[c.payable_id].due_date
            and (c.locked == 0 if whole else c.available > 0)
        ]

    def pending_financings(self) -> list[int]:
        m = self.model
        return [f.id for f in m.financings.values() if f.status == R.FinancingStatus.APPLIED]

    def due_of(self, claim_id: int) -> int:
        m = self.model
        c = m.claims.get(claim_id)
        return m.payables[c.payable_id].due_date if c else m.now + 90 * DAY

    @property
    def L(self) -> Any:
        return self.platform.claim_ledger.functions

    # ================================================================ invoices

    def do_register_invoice(self, data: Any) -> None:
        m = self.model
        seller = self.pick(data, "seller", self.with_role(R.SUPPLIER), ACTORS)
        holders = [m.claims[c].holder for c in self.live_claims()]
        buyer = self.pick(data, "buyer", ["core", "core2", *holders], [*ACTORS, ZERO])
        amount = self.amount(data, "amount", AMOUNTS, [0], 10**9)
        issue_date = self.pick(
            data, "issue_date", [m.now - 60], [0, m.now, m.now + 1, m.now - 400 * DAY]
        )
        invoice_id = self.pick(
            data, "invoice_id", [self.fresh("invoice")], [ZERO_HASH, *m.invoices]
        )
        docs = [inv.document_hash for inv in m.invoices.values()]
        doc = self.pick(data, "document", [self.fresh("doc")], [ZERO_HASH, *docs])
        self.call(
            "registerInvoice",
            seller,
            lambda: m.register_invoice(seller, invoice_id, buyer, amount, issue_date, doc),
            self.platform.invoices.functions.registerInvoice(
                invoice_id, self.a(buyer), amount, issue_date, doc
            ),
        )

    def do_confirm_or_void_invoice(self, data: Any) -> None:
        m = self.model
        open_ = [
            i
            for i, inv in m.invoices.items()
            if inv.status in (R.InvoiceStatus.REGISTERED, R.InvoiceStatus.CONFIRMED)
        ]
        invoice_id = self.pick(data, "invoice", open_, [*m.invoices, UNKNOWN_INVOICE])
        inv = m.invoices.get(invoice_id)
        if data.draw(st.sampled_from(["confirm", "void"]), label="action") == "confirm":
            caller = self.pick(data, "caller", [inv.buyer] if inv else [], ACTORS)
            self.call(
                "confirmInvoice",
                caller,
                lambda: m.confirm_invoice(caller, invoice_id),
                self.platform.invoices.functions.confirmInvoice(invoice_id),
            )
        else:
            caller = self.pick(data, "caller", [inv.seller, "operator"] if inv else [], ACTORS)
            self.call(
                "voidInvoice",
                caller,
                lambda: m.void_invoice(caller, invoice_id),
                self.platform.invoices.functions.voidInvoice(invoice_id),
            )

    # ================================================================ payables

    def _issue(
        self,
        caller: str,
        supplier: str,
        face: int,
        due: int,
        invoice_ids: Sequence[bytes],
        agent: str,
    ) -> None:
        m = self.model
        self.call(
            "issuePayable",
            caller,
            lambda: m.issue_payable(caller, supplier, face, due, invoice_ids, agent),
            self.L.issuePayable(self.a(supplier), face, due, invoice_ids, self.a(agent)),
        )

    def do_open_payable(self, data: Any) -> None:
        """The happy path, step by step: invoices registered and confirmed, then issued."""
        m = self.model
        core = self.pick(
            data,
            "obligor",
            self.with_role(R.CORE_ENTERPRISE, active=True),
            self.with_role(R.CORE_ENTERPRISE),
        )
        supplier = self.pick(
            data, "supplier", self.with_role(R.SUPPLIER, active=True), self.with_role(R.SUPPLIER)
        )
        invoice_ids, total = [], 0
        for _ in range(data.draw(st.integers(1, 2), label="invoices")):
            amount = data.draw(st.sampled_from(AMOUNTS[1:]) | st.integers(1, 10**8), label="amount")
            invoice_id, doc = self.fresh("invoice"), self.fresh("doc")
            self.call(
                "registerInvoice",
                supplier,
                functools.partial(
                    m.register_invoice, supplier, invoice_id, core, amount, m.now - 60, doc
                ),
                self.platform.invoices.functions.registerInvoice(
                    invoice_id, self.a(core), amount, m.now - 60, doc
                ),
            )
            self.call(
                "confirmInvoice",
                core,
                functools.partial(m.confirm_invoice, core, invoice_id),
                self.platform.invoices.functions.confirmInvoice(invoice_id),
            )
            invoice_ids.append(invoice_id)
            total += amount
        face = data.draw(
            st.sampled_from(sorted({total, max(1, total - 1), max(1, total // 2)})), label="face"
        )
        term = data.draw(
            st.sampled_from([3_600, DAY, 10 * DAY, 90 * DAY, m.parameters.term_cap]), label="term"
        )
        # not always whole days: days to maturity must round up (ceil) in approvals
        term -= (
            data.draw(st.sampled_from([1, 43_200, 0, DAY - 1]), label="minus") if term > DAY else 0
        )
        agent = data.draw(st.sampled_from([ZERO, "agent"]), label="agent")
        self._issue(core, supplier, face, m.now + term, invoice_ids, agent)

    def do_issue_payable(self, data: Any) -> None:
        """Issuing with anything wrong: caller, supplier, agent, face, due date, invoices."""
        m = self.model
        caller = self.pick(data, "caller", self.with_role(R.CORE_ENTERPRISE), ACTORS)
        supplier = self.pick(data, "supplier", self.with_role(R.SUPPLIER), [*ACTORS, ZERO])
        matching = [
            i
            for i, inv in m.invoices.items()
            if inv.seller == supplier
            and inv.buyer == caller
            and inv.status == R.InvoiceStatus.CONFIRMED
        ]
        shape = data.draw(
            st.sampled_from(["matching", "mixed", "empty", "duplicate", "too many"]),
            label="invoice list",
        )
        lists: dict[str, list[bytes]] = {
            "matching": matching[:3],
            "mixed": [*matching[:1], self.pick(data, "other", [*m.invoices, UNKNOWN_INVOICE])],
            "empty": [],
            "duplicate": matching[:1] * 2,
            "too many": [UNKNOWN_INVOICE] * (m.parameters.max_invoices_per_payable + 1),
        }
        invoice_ids = lists[shape]
        total = sum(m.invoices[i].amount for i in invoice_ids if i in m.invoices)
        account = m.obligor(caller)
        headroom = account.program_limit - account.outstanding
        face = self.amount(
            data,
            "face",
            [total, 1, total - 1, headroom],
            [total + 1, 0, headroom + 1],
            max(total, 1),
        )
        cap = m.parameters.term_cap
        term = self.pick(data, "term", [DAY, 90 * DAY - 7_200, cap], [cap + 1, 1, -1, 0], edge=True)
        agent = self.pick(data, "agent", [ZERO, "agent"], ACTORS)
        self._issue(caller, supplier, face, max(0, m.now + term), invoice_ids, agent)

    def do_cancel_payable(self, data: Any, focus: Sequence[int] = ()) -> None:
        m = self.model
        issued = [p.id for p in m.payables.values() if p.status == R.PayableStatus.ISSUED]
        payable_id = self.payable_id(data, focus or issued)
        p = m.payables.get(payable_id)
        likely = [p.supplier, m.claims[p.root_claim_id].holder] if p else []
        caller = self.pick(data, "caller", likely, ACTORS)
        self.call(
            "cancelPayable",
            caller,
            lambda: m.cancel_payable(caller, payable_id),
            self.L.cancelPayable(payable_id),
        )

    def do_mark_overdue(self, data: Any, focus: Sequence[int] = ()) -> None:
        m = self.model
        late = [
            p.id
            for p in m.payables.values()
            if p.status == R.PayableStatus.ISSUED and m.now >= p.due_date
        ]
        payable_id = self.payable_id(data, focus or late or list(m.payables))
        caller = self.pick(data, "caller", ["agent", "sup1"], ACTORS)
        self.call(
            "markOverdue",
            caller,
            lambda: m.mark_overdue(caller, payable_id),
            self.L.markOverdue(payable_id),
        )

    # ================================================================ claim pieces

    def _trade_invoices(self, seller: str, buyer: str) -> list[bytes]:
        return [
            i
            for i, inv in self.model.invoices.items()
            if inv.seller == seller
            and inv.buyer == buyer
            and inv.status == R.InvoiceStatus.CONFIRMED
        ]

    def _recipient(self, data: Any, holder: str | None) -> str:
        movers = [
            n
            for n in (
                *self.with_role(R.SUPPLIER, active=True),
                *self.with_role(R.FINANCIER, active=True),
            )
            if n != holder
        ]
        # the telling wrong recipients (zero, the holder itself) at the ends of the list
        others = [ZERO, *(a for a in ACTORS if a != holder), *([holder] if holder else [])]
        return self.pick(data, "to", movers, others, edge=True)

    def _background(self, data: Any, to: str, holder: str | None) -> bytes:
        trade = self._trade_invoices(to, holder) if holder else []
        return self.pick(
            data, "invoice", [ZERO_HASH, *trade], [*self.model.invoices, UNKNOWN_INVOICE]
        )

    def do_split(self, data: Any, focus: Sequence[int] = ()) -> None:
        m = self.model
        claim_id = self.claim_id(data, focus or self.movable(whole=False) or self.live_claims())
        c = m.claims.get(claim_id)
        caller = self.pick(data, "caller", [c.holder] if c else [], ACTORS)
        to = self._recipient(data, c.holder if c else None)
        v, avail = (c.value, c.available) if c else (1_000, 1_000)
        valid = [x for x in (1, v - 1, avail - 1, avail, avail // 2) if x <= avail and x < v]
        value = self.amount(
            data, "value", valid, [v, 0, avail + 1, v + 1], max(min(avail, v - 1), 1)
        )
        invoice_id = self._background(data, to, c.holder if c else None)
        standard = invoice_id == ZERO_HASH and data.draw(
            st.booleans(), label="via ERC-3525 transferFrom"
        )
        if standard:
            fn = self.platform.claim_ledger.get_function_by_signature(
                "transferFrom(uint256,address,uint256)"
            )(claim_id, self.a(to), value)
        else:
            fn = self.L.split(claim_id, self.a(to), value, invoice_id)
        self.call(
            "split",
            caller,
            lambda: m.split(caller, claim_id, to, value, invoice_id, standard=standard),
            fn,
        )

    def do_transfer(self, data: Any, focus: Sequence[int] = ()) -> None:
        m = self.model
        claim_id = self.claim_id(data, focus or self.movable(whole=True) or self.live_claims())
        c = m.claims.get(claim_id)
        caller = self.pick(data, "caller", [c.holder] if c else [], ACTORS)
        to = self._recipient(data, c.holder if c else None)
        invoice_id = self._background(data, to, c.holder if c else None)
        entry = "transferClaim"
        if invoice_id == ZERO_HASH:
            entry = data.draw(
                st.sampled_from(["transferClaim", "transferFrom", "safeTransferFrom"]),
                label="entry",
            )
        if entry == "transferClaim":
            self.call(
                "transferClaim",
                caller,
                lambda: m.transfer(caller, claim_id, to, invoice_id),
                self.L.transferClaim(claim_id, self.a(to), invoice_id),
            )
            return
        from_ = self.pick(data, "from", [caller], ACTORS)
        fn = self.platform.claim_ledger.get_function_by_signature(
            f"{entry}(address,address,uint256)"
        )
        self.call(
            entry,
            caller,
            lambda: m.transfer(caller, claim_id, to, from_=from_),
            fn(self.a(from_), self.a(to), claim_id),
        )

    def do_freeze_or_unfreeze(self, data: Any) -> None:
        m = self.model
        caller = self.pick(data, "caller", ["operator"], ACTORS)
        frozen = [c.id for c in m.claims.values() if c.frozen]
        # a frozen piece blocks everything on it: mostly lift the freeze again soon
        if (
            self.pick(
                data, "action", ["unfreeze"] if frozen else ["freeze"], ["freeze", "unfreeze"]
            )
            == "freeze"
        ):
            claim_id = self.claim_id(
                data, [c for c in self.live_claims() if not m.claims[c].frozen]
            )
            self.call(
                "freezeClaim",
                caller,
                lambda: m.freeze(caller, claim_id),
                self.L.freezeClaim(claim_id, self.fresh("court order")),
            )
        else:
            claim_id = self.claim_id(data, frozen)
            self.call(
                "unfreezeClaim",
                caller,
                lambda: m.unfreeze(caller, claim_id),
                self.L.unfreezeClaim(claim_id),
            )

    # ================================================================ settlement

    @staticmethod
    def _settlers(p: R.Payable | None) -> list[str]:
        return [n for n in (p.obligor, p.clearing_agent) if n != ZERO] if p else []

    def do_settle(self, data: Any, focus: Sequence[int] = ()) -> None:
        m = self.model
        due = list(focus) or [c for c in self.live_claims() if m.now >= self.due_of(c)]
        how = data.draw(st.sampled_from(["one", "batch", "whole payable"]), label="how")
        if how == "whole payable":
            # clearing at maturity: every live piece of a due payable, in one batch
            payables = sorted({m.claims[c].payable_id for c in due} or set(m.payables))
            payable = m.payables[self.pick(data, "payable", payables)]
            claim_ids = [c.id for c in m.pieces_of(payable.id) if c.live] or [payable.root_claim_id]
            refs = [self.fresh("payment") for _ in claim_ids]
            caller = self.pick(data, "caller", self._settlers(payable), ACTORS)
            self.call(
                "settleClaims",
                caller,
                lambda: m.settle_batch(caller, claim_ids, refs),
                self.L.settleClaims(claim_ids, refs),
            )
            return
        if how == "one":
            claim_id = self.claim_id(data, due or self.live_claims())
            c = m.claims.get(claim_id)
            p = m.payables[c.payable_id] if c else None
            caller = self.pick(data, "caller", self._settlers(p), ACTORS)
            # sometimes a reference cited before: fine for the same holder and payable only
            cited = list(m.payment_refs)[-2:]
            ref = self.pick(data, "payment_ref", [self.fresh("payment")], [ZERO_HASH, *cited])
            self.call(
                "settleClaim",
                caller,
                lambda: m.settle(caller, claim_id, ref),
                self.L.settleClaim(claim_id, ref),
            )
            return
        size = self.pick(data, "batch size", [1, 2, 3], [0, m.parameters.max_settlement_batch + 1])
        first = self.claim_id(data, due or self.live_claims()) if size else 0
        claim_ids = [first] * min(size, 1)
        while len(claim_ids) < size:
            claim_ids.append(self.pick(data, "claim", due, [*m.claims, first]) if due else first)
        refs = [self.fresh("payment") for _ in claim_ids]
        flaw = self.pick(data, "flaw", ["none"], ["zero ref", "short refs"])
        if flaw == "zero ref" and refs:
            refs[-1] = ZERO_HASH
        elif flaw == "short refs":
            refs = refs[:-1] if refs else [self.fresh("payment")]
        c = m.claims.get(first)
        p = m.payables[c.payable_id] if c else None
        caller = self.pick(data, "caller", self._settlers(p), ACTORS)
        self.call(
            "settleClaims",
            caller,
            lambda: m.settle_batch(caller, claim_ids, refs),
            self.L.settleClaims(claim_ids, refs),
        )

    # ================================================================ financing

    def do_apply(self, data: Any, focus: Sequence[int] = ()) -> None:
        m = self.model
        claim_id = self.claim_id(
            data, focus or [c for c in self.live_claims() if m.claims[c].available]
        )
        c = m.claims.get(claim_id)
        caller = self.pick(data, "caller", [c.holder] if c else [], ACTORS)
        banks = [b for b in self.with_role(R.FINANCIER, active=True) if b != caller]
        financier = self.pick(data, "financier", banks, [*ACTORS, ZERO])
        v, avail = (c.value, c.available) if c else (1_000, 1_000)
        amount = self.amount(
            data, "amount", [1, avail - 1, avail // 2, avail], [avail + 1, v + 1, 0], max(avail, 1)
        )
        due = self.due_of(claim_id)
        now = m.now
        expires_at = self.pick(
            data,
            "expires_at",
            [t for t in (now + 3_600, now + DAY, (now + due) // 2, due - 1) if now < t < due],
            [due, now + 1, due + 1, now],
            edge=True,
        )
        # the least advance the applicant accepts: none, most of it, or more than the amount
        min_advance = self.pick(
            data, "min_advance", [0, amount * 99 // 100, amount // 2], [amount + 1], edge=True
        )
        recourse = data.draw(st.booleans(), label="recourse committed")
        self.call(
            "applyForFinancing",
            caller,
            lambda: m.apply(caller, claim_id, financier, amount, expires_at, min_advance, recourse),
            self.platform.desk.functions.applyForFinancing(
                claim_id, self.a(financier), amount, expires_at, min_advance, recourse
            ),
        )

    def financeable(self) -> list[int]:
        m = self.model
        return [
            c
            for c in self.live_claims()
            if m.claims[c].available and not m.claims[c].frozen and m.now + 2 < self.due_of(c)
        ]

    def do_finance(self, data: Any, focus: Sequence[int] = ()) -> None:
        """The financing happy path: a holder applies to a bank, which approves at once."""
        m = self.model
        claim_id = self.claim_id(data, focus or self.financeable())
        c = m.claims.get(claim_id)
        holder = c.holder if c else "sup1"
        banks = [b for b in self.with_role(R.FINANCIER, active=True) if b != holder] or ["bank"]
        financier = self.pick(data, "financier", banks)
        avail = c.available if c else 1_000
        amount = self.pick(data, "amount", [avail, max(1, avail // 2), max(1, avail - 1)])
        due = self.due_of(claim_id)
        expires_at = self.pick(
            data,
            "expires_at",
            [t for t in (m.now + DAY, (m.now + due) // 2, due - 1) if m.now < t < due] or [due - 1],
        )
        recourse = data.draw(st.booleans(), label="recourse committed")
        applied, financing_id = self.call(
            "applyForFinancing",
            holder,
            lambda: m.apply(holder, claim_id, financier, amount, expires_at, 0, recourse),
            self.platform.desk.functions.applyForFinancing(
                claim_id, self.a(financier), amount, expires_at, 0, recourse
            ),
        )
        if applied and financing_id is not None:
            self._approve(data, financier, financing_id)
            financed = m.financings[financing_id].financed_claim_id
            # the financier may pass the financed piece on at once (its exposure goes with it)
            if financed and data.draw(st.booleans(), label="pass it on"):
                data.draw(st.sampled_from([self.do_transfer, self.do_split]), label="how")(
                    data, [financed]
                )

    def _terms(self, data: Any, f: R.Financing | None) -> R.Terms:
        """Terms per the convention, or off by one in one of the ways that matter."""
        m = self.model
        amount = f.amount if f else 1_000_000
        due = self.due_of(f.claim_id) if f else m.now + 90 * DAY
        days = max(0, R.days_to_maturity(due, m.now))
        term_days = self.pick(
            data, "term_days", [days, max(days - 1, 0)], [days + 1, max(days - 2, 0)], edge=True
        )
        rate = self.pick(data, "annual_rate_bps", [350, 1_200], [0, 1, 10_000])
        expected = R.discount_for(amount, rate, term_days)
        discount = self.pick(data, "discount", [expected], [expected + 1, max(expected - 1, 0)])
        fees = self.pick(data, "fees", [0, amount // 1_000], [1, amount])
        advance = max(0, amount - discount - fees)
        advance = self.pick(data, "advance", [advance], [0, advance + 1])
        used = list(m.registrations)[-1:]  # a number that already backs a financing: refused
        registration = self.pick(
            data, "registration_no", [self.fresh("registration")], [ZERO_HASH, *used]
        )
        return R.Terms(
            advance=min(advance, MAX_UINT128),
            discount=min(discount, MAX_UINT128),
            fees=min(fees, MAX_UINT128),
            annual_rate_bps=rate,
            term_days=min(term_days, R.UINT16_MAX),
            # mostly the recourse the applicant committed to, sometimes the other (refused)
            recourse=self.pick(
                data, "recourse", [f.recourse if f else False], [not (f.recourse if f else False)]
            ),
            registration_no=registration,
            disbursement_ref=self.fresh("disbursement"),
        )

    def do_approve(self, data: Any, focus: Sequence[int] = ()) -> None:
        m = self.model
        financing_id = self.financing_id(data, focus or self.pending_financings())
        f = m.financings.get(financing_id)
        caller = self.pick(data, "caller", [f.financier] if f else [], ACTORS)
        self._approve(data, caller, financing_id)

    def _approve(self, data: Any, caller: str, financing_id: int) -> None:
        m = self.model
        t = self._terms(data, m.financings.get(financing_id))
        terms = (
            t.advance, t.discount, t.fees, t.annual_rate_bps, t.term_days, t.recourse,
            t.registration_no, t.disbursement_ref,
        )  # fmt: skip
        self.call(
            "approveFinancing",
            caller,
            lambda: m.approve(caller, financing_id, t),
            self.platform.desk.functions.approveFinancing(financing_id, terms),
        )

    def do_end_application(self, data: Any, focus: Sequence[int] = ()) -> None:
        m = self.model
        desk = self.platform.desk.functions
        financing_id = self.financing_id(data, focus or self.pending_financings())
        f = m.financings.get(financing_id)
        action = data.draw(st.sampled_from(["reject", "withdraw", "expire"]), label="action")
        if action == "reject":
            caller = self.pick(data, "caller", [f.financier] if f else [], ACTORS)
            self.call(
                "rejectFinancing",
                caller,
                lambda: m.reject(caller, financing_id),
                desk.rejectFinancing(financing_id, self.fresh("reason")),
            )
        elif action == "withdraw":
            caller = self.pick(data, "caller", [f.applicant] if f else [], ACTORS)
            self.call(
                "withdrawFinancing",
                caller,
                lambda: m.withdraw(caller, financing_id),
                desk.withdrawFinancing(financing_id),
            )
        else:
            caller = self.pick(data, "caller", ["agent"], ACTORS)
            self.call(
                "expireFinancing",
                caller,
                lambda: m.expire(caller, financing_id),
                desk.expireFinancing(financing_id),
            )

    # ================================================================ members and limits

    def do_member_admin(self, data: Any) -> None:
        m = self.model
        registry = self.platform.members.functions
        caller = self.pick(data, "caller", ["operator"], ACTORS)
        members = [n for n in ACTORS if m.member(n).status != R.MemberStatus.NONE]
        suspended = [n for n in members if m.member(n).status == R.MemberStatus.SUSPENDED]
        actions = [
            "suspend",
            "reinstate",
            "renew_kyc",
            "register",
            "program_limit",
            "exposure_limit",
        ]
        # a suspended member blocks much of the rest: mostly reinstate it again soon
        action = self.pick(data, "action", ["reinstate"] if suspended else actions, actions)
        kyc_choices = [m.now + DAY, m.now + 30 * DAY, m.now + 3650 * DAY]
        if action == "suspend":
            account = self.pick(
                data, "account", [n for n in members if m.is_active(n)], [*ACTORS, ZERO]
            )
            self.call(
                "suspendMember",
                caller,
                lambda: m.suspend_member(caller, account),
                registry.suspendMember(self.a(account), self.fresh("reason")),
            )
        elif action == "reinstate":
            account = self.pick(data, "account", suspended, [*ACTORS, ZERO])
            self.call(
                "reinstateMember",
                caller,
                lambda: m.reinstate_member(caller, account),
                registry.reinstateMember(self.a(account)),
            )
        elif action == "renew_kyc":
            account = self.pick(data, "account", members, [*ACTORS, ZERO])
            kyc = self.pick(data, "kyc_expires_at", kyc_choices, [m.now, m.now + 1, 0])
            self.call(
                "renewKyc",
                caller,
                lambda: m.renew_kyc(caller, account, kyc),
                registry.renewKyc(self.a(account), kyc),
            )
        elif action == "register":
            unregistered = [n for n in ACTORS if m.member(n).status == R.MemberStatus.NONE]
            account = self.pick(data, "account", unregistered, [*ACTORS, ZERO])
            bits = R.ROLE_BITS
            mask = self.pick(
                data, "roles",
                [bits[R.SUPPLIER], bits[R.FINANCIER], bits[R.SUPPLIER] | bits[R.FINANCIER],
                 bits[R.CORE_ENTERPRISE]],
                [0, bits[R.OPERATOR], 1 << 6, bits[R.AUDITOR] | bits[R.SUPPLIER]],
            )  # fmt: skip
            kyc = self.pick(data, "kyc_expires_at", kyc_choices, [m.now])
            self.call(
                "registerMember",
                caller,
                lambda: m.register_member(caller, account, mask, kyc),
                registry.registerMember(self.a(account), mask, kyc),
            )
        elif action == "program_limit":
            obligor = self.pick(data, "obligor", self.with_role(R.CORE_ENTERPRISE), [*ACTORS, ZERO])
            out = m.obligor(obligor).outstanding
            limit = self.amount(
                data,
                "limit",
                [out, out + 1, out + 1_000_000, PROGRAM_LIMIT],
                [0, max(out - 1, 0)],  # below what is outstanding: allowed, it is over its limit
                out + 10**7,
            )
            self.call(
                "setProgramLimit",
                caller,
                lambda: m.set_program_limit(caller, obligor, limit),
                self.L.setProgramLimit(self.a(obligor), limit),
            )
        else:
            financier = self.pick(data, "financier", self.with_role(R.FINANCIER), ACTORS)
            obligor = self.pick(data, "obligor", self.with_role(R.CORE_ENTERPRISE), [*ACTORS, ZERO])
            out = m.exposure(financier, obligor).outstanding
            asked = sum(
                f.amount
                for f in m.financings.values()
                if f.status == R.FinancingStatus.APPLIED
                and f.financier == financier
                and f.obligor == obligor
            )
            limit = self.amount(
                data,
                "limit",
                [out + asked, out + asked + 1, EXPOSURE_LIMIT],
                [0, out, out + asked - 1],
                out + asked + 10**7,
            )
            self.call(
                "setExposureLimit",
                financier,
                lambda: m.set_exposure_limit(financier, obligor, limit),
                self.platform.desk.functions.setExposureLimit(self.a(obligor), limit),
            )

    # ================================================================ the rules

    @initialize(data=st.data())
    def open_first_payables(self, data: Any) -> None:
        """Every example starts with a payable or three, so every rule has something to do."""
        for _ in range(data.draw(st.integers(1, 3), label="payables")):
            self.do_open_payable(data)
        roots = [p.root_claim_id for p in self.model.payables.values()]
        for _ in range(data.draw(st.integers(0, 2), label="first moves")):
            data.draw(st.sampled_from([self.do_split, self.do_finance]), label="move")(data, roots)

    @rule(data=st.data())
    def register_invoice(self, data: Any) -> None:
        self.do_register_invoice(data)

    @precondition(lambda self: self.model.invoices)
    @rule(data=st.data())
    def confirm_or_void_invoice(self, data: Any) -> None:
        self.do_confirm_or_void_invoice(data)

    @rule(data=st.data())
    def open_payable(self, data: Any) -> None:
        self.do_open_payable(data)

    @rule(data=st.data())
    def issue_payable(self, data: Any) -> None:
        self.do_issue_payable(data)

    @precondition(lambda self: self.model.payables)
    @rule(data=st.data())
    def cancel_payable(self, data: Any) -> None:
        self.do_cancel_payable(data)

    @precondition(lambda self: self.model.payables)
    @rule(data=st.data())
    def mark_overdue(self, data: Any) -> None:
        self.do_mark_overdue(data)

    @precondition(lambda self: self.model.claims)
    @rule(data=st.data())
    def split(self, data: Any) -> None:
        self.do_split(data)

    @precondition(lambda self: self.model.claims)
    @rule(data=st.data())
    def transfer(self, data: Any) -> None:
        self.do_transfer(data)

    @precondition(lambda self: self.model.claims)
    @rule(data=st.data())
    def freeze_or_unfreeze(self, data: Any) -> None:
        self.do_freeze_or_unfreeze(data)

    @precondition(lambda self: self.model.claims)
    @rule(data=st.data())
    def settle(self, data: Any) -> None:
        self.do_settle(data)

    @precondition(lambda self: self.model.claims)
    @rule(data=st.data())
    def apply_for_financing(self, data: Any) -> None:
        self.do_apply(data)

    @precondition(lambda self: self.financeable())
    @rule(data=st.data())
    def finance(self, data: Any) -> None:
        self.do_finance(data)

    @precondition(lambda self: self.model.financings)
    @rule(data=st.data())
    def approve_financing(self, data: Any) -> None:
        self.do_approve(data)

    @precondition(lambda self: self.model.financings)
    @rule(data=st.data())
    def end_application(self, data: Any) -> None:
        self.do_end_application(data)

    @rule(data=st.data())
    def member_admin(self, data: Any) -> None:
        self.do_member_admin(data)

    @rule(data=st.data())
    def via_forwarder(self, data: Any) -> None:
        """A business operation sent as the caller's signed request through the forwarder
        (SPEC §2 "Consent and custody"): valid, replayed, signed by another key or expired."""
        m = self.model
        self.relay = data.draw(st.sampled_from(RELAY_MODES), label="relay")
        operations: list[Callable[[Any], None]] = [self.do_register_invoice, self.do_member_admin]
        if m.invoices:
            operations.append(self.do_confirm_or_void_invoice)
        if m.claims:
            operations += [self.do_split, self.do_transfer, self.do_apply, self.do_settle]
        if m.financings:
            operations += [self.do_approve, self.do_end_application]
        try:
            data.draw(st.sampled_from(operations), label="operation")(data)
        finally:
            self.relay = None

    @rule(data=st.data())
    def warp(self, data: Any) -> None:
        """Move block time: a few minutes, days, or to just before/at/after a deadline."""
        m = self.model
        deadlines: set[int] = set()
        grace = m.parameters.grace_period
        for p in m.payables.values():
            deadlines |= {p.due_date - 1, p.due_date, p.due_date + grace, p.due_date + grace + 1}
        for f in m.financings.values():
            if f.status == R.FinancingStatus.APPLIED:
                deadlines |= {f.expires_at - 1, f.expires_at}
        for mem in m.members.values():
            if mem.status != R.MemberStatus.NONE and mem.kyc_expires_at <= m.now + 60 * DAY:
                deadlines |= {mem.kyc_expires_at - 1, mem.kyc_expires_at}
        ahead = sorted(t for t in deadlines if t > m.now)
        steps = [m.now + d for d in (60, 3_600, DAY, 7 * DAY, 30 * DAY)]
        target = (
            self.pick(data, "warp to", ahead, steps)
            if ahead
            else data.draw(st.sampled_from(steps), label="warp to")
        )
        note(f"warp +{target - m.now}s to {target}")
        self.run(self.platform.warp_to(target))
        m.warp(target)

    @precondition(lambda self: self.model.payables)
    @rule(data=st.data())
    def at_a_deadline(self, data: Any) -> None:
        """I-7 at its edges: time moves to one side of a deadline (due date, due date + grace,
        an application's expiry) and the operation whose answer changes there is tried."""
        m = self.model
        grace = m.parameters.grace_period
        # first the object, then its edge; each list ends with the exact points where the
        # answer flips (the due date: no more moves, settlement opens; due + grace: not yet
        # overdue; the expiry: no more approval), which Hypothesis draws most
        objects: list[tuple[str, int]] = [
            *(("payable", p.id) for p in m.payables.values() if p.due_date + grace + 1 >= m.now),
            *(
                ("financing", f)
                for f in self.pending_financings()
                if m.financings[f].expires_at >= m.now
            ),
        ]
        if not objects:
            return
        kind, oid = data.draw(st.sampled_from(objects), label="deadline of")
        edges: list[tuple[int, str, list[int]]]
        if kind == "payable":
            p = m.payables[oid]
            pieces = [c.id for c in m.pieces_of(p.id) if c.live] or [p.root_claim_id]
            edges = [
                (p.due_date, "piece", pieces),
                (p.due_date - 1, "piece", pieces),
                (p.due_date + grace + 1, "payable", [p.id]),
                (p.due_date + grace, "payable", [p.id]),
            ]
        else:
            f = m.financings[oid]
            edges = [(f.expires_at, "financing", [f.id]), (f.expires_at - 1, "financing", [f.id])]
        edges = [e for e in edges if e[0] >= m.now]
        when, kind, focus = data.draw(st.sampled_from(edges), label="deadline")
        if when > m.now:
            note(f"warp +{when - m.now}s to {when}")
            self.run(self.platform.warp_to(when))
            m.warp(when)
        ops: dict[str, list[Callable[[Any, Sequence[int]], None]]] = {
            "piece": [self.do_split, self.do_transfer, self.do_apply, self.do_settle],
            "payable": [self.do_mark_overdue, self.do_cancel_payable],
            "financing": [self.do_approve, self.do_end_application],
        }
        if kind == "piece" and m.claims[focus[0]].parent_id == 0:
            ops["piece"].append(lambda d, f: self.do_cancel_payable(d, [m.claims[f[0]].payable_id]))
        data.draw(st.sampled_from(ops[kind]), label="try")(data, focus)

    # ---------------------------------------------------------------- scenarios
    # States that single random steps reach rarely but where rules bite: each scenario still
    # draws its details and every call in it is compared like any other.

    @precondition(lambda self: self.pending_financings())
    @rule(data=st.data())
    def stale_application_at_maturity(self, data: Any) -> None:
        """The due date comes with an application still pending on the piece: the settler
        tries to settle, expires the application, settles again."""
        m = self.model
        f = m.financings[self.pick(data, "financing", self.pending_financings())]
        c = m.claims[f.claim_id]
        p = m.payables[c.payable_id]
        when = data.draw(st.sampled_from([p.due_date, p.due_date - 1]), label="at")
        if when > m.now:
            self.run(self.platform.warp_to(when))
            m.warp(when)
        settler = self.pick(data, "settler", self._settlers(p))
        for _ in range(2):
            ref = self.fresh("payment")
            self.call(
                "settleClaim",
                settler,
                functools.partial(m.settle, settler, c.id, ref),
                self.L.settleClaim(c.id, ref),
            )
            if m.financings[f.id].status == R.FinancingStatus.APPLIED:
                self.call(
                    "expireFinancing",
                    "agent",
                    lambda: m.expire("agent", f.id),
                    self.platform.desk.functions.expireFinancing(f.id),
                )

    def untouched_roots(self) -> list[int]:
        m = self.model
        return [
            p.id
            for p in m.payables.values()
            if p.status == R.PayableStatus.ISSUED
            and not m.claims[p.root_claim_id].touched
            and m.now + 2 < p.due_date
        ]

    @precondition(lambda self: self.untouched_roots())
    @rule(data=st.data())
    def root_round_trip(self, data: Any) -> None:
        """The root piece is locked and unlocked, or sent away and back, whole: then the
        supplier tries to cancel the payable."""
        m = self.model
        p = m.payables[self.pick(data, "payable", self.untouched_roots())]
        root, supplier = p.root_claim_id, p.supplier
        if data.draw(st.sampled_from(["lock", "away and back"]), label="how") == "lock":
            bank = self.pick(
                data, "financier", self.with_role(R.FINANCIER, active=True) or ["bank"]
            )
            amount = self.pick(data, "amount", [p.face_value, 1])
            expires_at = m.now + min(DAY, (p.due_date - m.now) // 2)
            ok, financing_id = self.call(
                "applyForFinancing",
                supplier,
                lambda: m.apply(supplier, root, bank, amount, expires_at),
                self.platform.desk.functions.applyForFinancing(
                    root, self.a(bank), amount, expires_at, 0, False
                ),
            )
            if ok and financing_id is not None:
                self.call(
                    "withdrawFinancing",
                    supplier,
                    lambda: m.withdraw(supplier, financing_id),
                    self.platform.desk.functions.withdrawFinancing(financing_id),
                )
        else:
            other = self.pick(
                data,
                "to",
                [n for n in self.with_role(R.SUPPLIER, active=True) if n != supplier] or ["sup2"],
            )
            for a, b in ((supplier, other), (other, supplier)):
                self.call(
                    "transferClaim",
                    a,
                    functools.partial(m.transfer, a, root, b),
                    self.L.transferClaim(root, self.a(b), ZERO_HASH),
                )
        self.do_cancel_payable(data, [p.id])

    @rule(data=st.data())
    def kyc_lapse(self, data: Any) -> None:
        """A party's KYC runs out just before or at the moment it acts (confirming an invoice,
        moving or financing a piece, receiving financing), then it is renewed."""
        m = self.model
        options: list[tuple[str, Any]] = [
            *(
                ("confirm", i.id)
                for i in m.invoices.values()
                if i.status == R.InvoiceStatus.REGISTERED
            ),
            *(("move", c) for c in self.movable(whole=False)),
            *(("approve", f) for f in self.pending_financings()),
        ]
        if not options:
            return
        kind, ref = data.draw(st.sampled_from(options), label="act")
        who = {
            "confirm": lambda: m.invoices[ref].buyer,
            "move": lambda: m.claims[ref].holder,
            "approve": lambda: m.financings[ref].applicant,
        }[kind]()
        if m.member(who).status == R.MemberStatus.NONE:
            return
        registry = self.platform.members.functions
        kyc = m.now + data.draw(st.sampled_from([60, 3_600, DAY]), label="kyc in")
        self.call(
            "renewKyc",
            "operator",
            lambda: m.renew_kyc("operator", who, kyc),
            registry.renewKyc(self.a(who), kyc),
        )
        when = data.draw(st.sampled_from([kyc, kyc - 1]), label="at")
        self.run(self.platform.warp_to(when))
        m.warp(when)
        if kind == "confirm":
            self.call(
                "confirmInvoice",
                who,
                lambda: m.confirm_invoice(who, ref),
                self.platform.invoices.functions.confirmInvoice(ref),
            )
        elif kind == "move":
            data.draw(st.sampled_from([self.do_split, self.do_apply]), label="how")(data, [ref])
        else:
            self._approve(data, m.financings[ref].financier, ref)
        later = m.now + 3650 * DAY
        self.call(
            "renewKyc",
            "operator",
            lambda: m.renew_kyc("operator", who, later),
            registry.renewKyc(self.a(who), later),
        )

    @rule(data=st.data())
    def paused_window(self, data: Any) -> None:
        """An emergency pause: business stops, every view still answers (I-11)."""
        m = self.model
        registry = self.platform.members.functions
        caller = self.pick(data, "pauser", ["operator"], ACTORS)
        paused, _ = self.call("pause", caller, lambda: m.pause(caller), registry.pause())
        if not paused:
            self.call("unpause", caller, lambda: m.unpause(caller), registry.unpause())
            return
        business: Sequence[Callable[[Any], None]] = (
            self.do_register_invoice, self.do_confirm_or_void_invoice, self.do_open_payable,
            self.do_cancel_payable, self.do_mark_overdue, self.do_split, self.do_transfer,
            self.do_freeze_or_unfreeze, self.do_settle, self.do_apply, self.do_approve,
            self.do_end_application, self.do_member_admin, self.do_finance,
        )  # fmt: skip
        usable = [
            op
            for op in business
            if (self.model.invoices or op is not self.do_confirm_or_void_invoice)
            and (
                self.model.claims
                or op.__name__
                not in {
                    "do_split",
                    "do_transfer",
                    "do_freeze_or_unfreeze",
                    "do_settle",
                    "do_apply",
                    "do_cancel_payable",
                    "do_mark_overdue",
                    "do_finance",
                }
            )
            and (self.model.financings or op.__name__ not in {"do_approve", "do_end_application"})
        ]
        data.draw(st.sampled_from(usable), label="while paused")(data)
        self.run(self._compare(everything=True))
        unpauser = self.pick(data, "unpauser", ["operator"], ACTORS)
        ok, _ = self.call("unpause", unpauser, lambda: m.unpause(unpauser), registry.unpause())
        if not ok:
            self.call("unpause", "operator", lambda: m.unpause("operator"), registry.unpause())

    # ================================================================ comparing

    @invariant()
    def chain_agrees_with_model(self) -> None:
        self.model.check_invariants()
        self.run(self._compare(self.model.take_touched()))
        self.dirty = False

    def _expected_claim(self, c: R.Claim) -> views.ClaimView:
        return views.ClaimView(
            id=c.id,
            payable_id=c.payable_id,
            parent_id=c.parent_id or None,
            depth=c.depth,
            holder=self.a(c.holder),
            amount=c.value,
            locked_amount=c.locked,
            status=views.ClaimStatus(int(c.status)),
            frozen=c.frozen,
            financed=c.financed,
            due_date=self.model.payables[c.payable_id].due_date,
        )

    def _expected_payable(self, p: R.Payable) -> views.PayableView:
        return views.PayableView(
            id=p.id,
            obligor=self.a(p.obligor),
            supplier=self.a(p.supplier),
            face_value=p.face_value,
            settled_value=p.settled_value,
            due_date=p.due_date,
            issued_at=p.issued_at,
            clearing_agent=None if p.clearing_agent == ZERO else self.a(p.clearing_agent),
            root_claim_id=p.root_claim_id,
            status=views.PayableStatus(int(p.status)),
        )

    def _expected_financing(self, f: R.Financing) -> views.FinancingView:
        t = f.terms or R.Terms(0, 0, 0, 0, 0, False, ZERO_HASH, ZERO_HASH)
        return views.FinancingView(
            id=f.id,
            claim_id=f.claim_id,
            applicant=self.a(f.applicant),
            financier=self.a(f.financier),
            status=views.FinancingStatus(int(f.status)),
            amount=f.amount,
            advance=t.advance,
            discount=t.discount,
            fees=t.fees,
            annual_rate_bps=t.annual_rate_bps,
            recourse=f.recourse,
            expires_at=f.expires_at,
            financed_claim_id=f.financed_claim_id or None,
            registration_no=t.registration_no,
            disbursement_ref=t.disbursement_ref,
            min_advance=f.min_advance,
        )

    def _expected_invoice(self, inv: R.Invoice) -> views.InvoiceView:
        return views.InvoiceView(
            id=inv.id,
            seller=self.a(inv.seller),
            buyer=self.a(inv.buyer),
            amount=inv.amount,
            issue_date=inv.issue_date,
            document_hash=inv.document_hash,
            status=views.InvoiceStatus(int(inv.status)),
        )

    def _expected_member(self, name: str) -> views.MemberView:
        mem = self.model.member(name)
        mask = sum(R.ROLE_BITS[r] for r in mem.roles)
        return views.MemberView(
            self.a(name),
            views.MemberStatus(int(mem.status)),
            mem.kyc_expires_at,
            tuple(mask_to_roles(mask)),
        )

    def _expected_account(self, obligor: str) -> views.ObligorAccountView:
        acc = self.model.obligors.get(obligor) or R.ObligorAccount()
        return views.ObligorAccountView(
            acc.program_limit, acc.outstanding, acc.previous_overdue_at, acc.last_overdue_at
        )

    async def _compare(self, touched: R.Touched | None = None, *, everything: bool = False) -> None:
        """The chain's views of ``touched`` (or of everything) equal the model's."""
        m, s = self.model, self.platform.suite
        t = touched or R.Touched()
        if everything:
            t = R.Touched(
                members=set(ACTORS),
                invoices=set(m.invoices),
                payables=set(m.payables),
                claims=set(m.claims),
                financings=set(m.financings),
                obligors=set(m.obligors) | set(self.with_role(R.CORE_ENTERPRISE)),
                exposures=set(m.exposures),
            )
        payables = sorted(t.payables)
        claims = sorted(t.claims)
        checks: list[tuple[str, Any, Awaitable[Any]]] = []
        counts = (len(m.payables), len(m.claims), len(m.financings))
        if everything or counts != self.counts:
            self.counts = counts
            checks += [
                ("payableCount", counts[0], self.L.payableCount().call()),
                ("claimCount", counts[1], self.L.claimCount().call()),
                ("financingCount", counts[2], self.platform.desk.functions.financingCount().call()),
            ]
        if everything:
            checks.append(("paused", m.paused, self.platform.members.functions.paused().call()))
        checks += [(f"claim {i}", self._expected_claim(m.claims[i]), s.claim(i)) for i in claims]
        checks += [
            (f"payable {i}", self._expected_payable(m.payables[i]), s.payable(i)) for i in payables
        ]
        # the overdue clock: freezes and pauses since the due date push the deadline (SPEC §2)
        checks += [
            (f"overdueFrom {i}", m.overdue_from(m.payables[i]), self.L.overdueFrom(i).call())
            for i in payables
        ]
        checks += [
            (f"financing {i}", self._expected_financing(m.financings[i]), s.financing(i))
            for i in sorted(t.financings)
        ]
        checks += [
            (f"invoice {i.hex()[:8]}", self._expected_invoice(m.invoices[i]), s.invoice(i))
            for i in sorted(t.invoices)
        ]
        checks += [
            (f"member {n}", self._expected_member(n), s.member(self.a(n)))
            for n in sorted(t.members)
        ]
        checks += [
            (f"obligor {n}", self._expected_account(n), s.obligor_account(self.a(n)))
            for n in sorted(t.obligors)
        ]
        checks += [
            (f"exposure {b}/{o}", (m.exposure(b, o).outstanding, m.exposure(b, o).limit),
             s.exposure(self.a(b), self.a(o)))
            for b, o in sorted(t.exposures)
        ]  # fmt: skip
        if everything:
            balance_of = self.platform.claim_ledger.get_function_by_signature("balanceOf(address)")
            checks += [
                (f"balanceOf {n}", m.piece_count(n), balance_of(self.a(n)).call()) for n in ACTORS
            ]
        actual = await asyncio.gather(*(aw for _, _, aw in checks))
        problems = [
            f"{label}: {_diff(got, want)}"
            for (label, want, _), got in zip(checks, actual, strict=True)
            if got != want
        ]
        assert not problems, "chain and model disagree:\n  " + "\n  ".join(problems)
        if not everything:
            return
        # I-1 on the chain's own numbers: live pieces + settled value = face, no empty piece
        got = dict(zip((label for label, _, _ in checks), actual, strict=True))
        for pid in payables:
            pv = got[f"payable {pid}"]
            pieces = [got[f"claim {c.id}"] for c in m.pieces_of(pid)]
            assert all(v.amount > 0 for v in pieces), f"payable {pid}: a piece of value 0"
            if pv.status != views.PayableStatus.CANCELLED:
                live = sum(
                    v.amount
                    for v in pieces
                    if v.status not in (views.ClaimStatus.SETTLED, views.ClaimStatus.CANCELLED)
                )
                assert live + pv.settled_value == pv.face_value, (
                    f"payable {pid}: value not conserved"
                )


def test_contracts_follow_the_rules(model_env: ModelEnv) -> None:
    run_state_machine_as_test(
        lambda: TierflowMachine(model_env),  # type: ignore[arg-type]
        settings=LONG_SETTINGS if LONG else CI_SETTINGS,
    )
