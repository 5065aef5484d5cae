"""Auto-approval: financiers' policies decide matching requests within seconds, no person.

Every API worker runs :func:`run` (started in the app's lifespan by :func:`running`). Every
:data:`POLL_INTERVAL_S` it reads the mirror for Applied requests addressed to a financier with
an enabled policy and no decision yet, and assesses each (:func:`backend.services.quotes.assess`:
amount, tenor, obligor, a credit line with a registration number, room under the exposure
limit) in a task of its own: a hosted financier's approval waits for its transaction mined and
mirrored, and one after another a burst of them held up every later request, a ``self``
bank's intents included:

- it does not match: an ``auto_decisions`` row ``declined`` with the reason, for the financier
  and the applicant to see; nothing happens on chain, a person decides;
- it matches: the worker *claims* it by inserting the ``claimed`` row — the primary key is the
  financing id, so of several workers exactly one insert succeeds and only that worker signs
  ``approveFinancing`` as the financier, with the policy's rate and fees and the financing's
  own registration number (the credit line's programme number, ``-``, the financing id:
  :func:`backend.services.encodings.financing_registration`; a number backs one financing
  only); the row becomes ``approved`` (with the transaction) or ``failed``
  (with the chain's refusal). The desk itself refuses a second approval, so even a worker that
  took over a stale claim (:data:`STALE_CLAIM_S`, its first owner died) cannot finance twice.

The applicant's commitments are honoured, never overridden: a request whose committed
``min_advance`` is above what the policy's terms advance (on either term the desk accepts,
:func:`backend.services.quotes.price_at_least`), or whose committed recourse is not the
policy's, is ``declined`` with that reason and stays for a person.

A decision is final until the financier changes its policy or a credit line, which forgets the
declined and failed ones of its pending requests (:func:`backend.services.decisions.reconsider`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend import audit_log
from backend.auth import Caller
from backend.errors import from_revert
from backend.models import AutoDecision, FinancingPolicy, MemberProfile
from backend.ports import Ports, SignatureRequired, TxJournal, WriteContext
from backend.services import quotes
from backend.services.encodings import encode_registration, financing_registration
from db.engine import now_s
from indexer import models as m
from ledger import calls
from ledger.bindings import ZERO_HASH
from ledger.errors import ContractRevert
from ledger.roles import Role

if TYPE_CHECKING:
    from backend.idempotency import Claimed, Idempotency

log = logging.getLogger("tierflow.auto_approval")

POLL_INTERVAL_S = 0.5
#: Requests assessed per poll (the rest wait for the next one).
BATCH = 50
#: A claim older than this whose request is still Applied belongs to a worker that died.
STALE_CLAIM_S = 120


async def _candidates(session: AsyncSession) -> list[m.Financing]:
    decided = exists().where(AutoDecision.financing_id == m.Financing.id)
    query = (
        select(m.Financing)
        .join(FinancingPolicy, FinancingPolicy.financier == m.Financing.financier)
        .where(m.Financing.status == "applied", FinancingPolicy.enabled.is_(True), ~decided)
        .order_by(m.Financing.id)
        .limit(BATCH)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(query)).scalars())


async def _stale_claims(session: AsyncSession) -> list[tuple[int, int]]:
    rows = await session.execute(
        select(AutoDecision.financing_id, AutoDecision.decided_at)
        .join(m.Financing, m.Financing.id == AutoDecision.financing_id)
        .where(
            AutoDecision.outcome == "claimed",
            AutoDecision.decided_at < now_s() - STALE_CLAIM_S,
            m.Financing.status == "applied",
        )
        .limit(BATCH)
    )
    return [(int(r[0]), int(r[1])) for r in rows]


async def _record(session: AsyncSession, financing: m.Financing, outcome: str, detail: str) -> bool:
    """Insert this request's decision; False when another worker decided first."""
    session.add(
        AutoDecision(
            financing_id=financing.id,
            financier=financing.financier,
            outcome=outcome,
            detail=detail,
            tx_hash=None,
            decided_at=now_s(),
        )
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def _set(session: AsyncSession, financing_id: int, **values: Any) -> None:
    await session.execute(
        update(AutoDecision)
        .where(AutoDecision.financing_id == financing_id)
        .values(decided_at=now_s(), **values)
    )
    await session.commit()


#: The "key" a write of auto-approval is stored under (it is no API key: the policy acts).
AUTO_KEY_ID = "auto-approval"


def system_caller(financier: str) -> Caller:
    return _system_caller(financier)


def _system_caller(financier: str) -> Caller:
    """The financier as auto-approval acts for it (its policy is its instruction)."""
    return Caller(
        address=financier,
        roles=frozenset({Role.FINANCIER}),
        status="active",
        key_id=AUTO_KEY_ID,
    )


async def decide(
    ports: Ports, financing: m.Financing, now: int, idempotency: Idempotency | None = None
) -> None:
    """Assess one Applied request and, if it matches and this worker claims it, approve it."""
    async with ports.session() as session:
        claim = await session.get(m.Claim, financing.claim_id)
        policy = await session.get(FinancingPolicy, financing.financier)
        if claim is None or policy is None:
            return
        if now >= financing.expires_at:
            await _record(session, financing, "declined", "the request has expired")
            return
        fees = quotes.fees_for(financing.amount, policy.fee_bps)
        pricing = quotes.price_at_least(
            financing.amount,
            policy.annual_rate_bps,
            fees,
            claim.due_date,
            now,
            financing.min_advance,
        )
        outlook = await quotes.assess(
            session,
            policy,
            financing.financier,
            financing.obligor,
            financing.amount,
            pricing.term_days,
        )
        if outlook.approve and pricing.advance <= 0:
            outlook = quotes.Assessment(False, "the discount and fees would take the whole amount")
        if outlook.approve and pricing.advance < financing.min_advance:
            margin_end = now + quotes.APPROVAL_MARGIN_S
            if quotes.days_to_maturity(claim.due_date, now) != quotes.days_to_maturity(
                claim.due_date, margin_end
            ):
                return  # a day boundary within the margin: a later poll prices it again
            outlook = quotes.Assessment(
                False,
                "the policy's terms would advance less than the applicant's committed "
                "min_advance: a person decides",
            )
        if outlook.approve and policy.recourse != financing.recourse:
            outlook = quotes.Assessment(
                False,
                "the applicant committed to other recourse than the policy's: a person decides",
            )
        registration_no = financing_registration(outlook.registration_no, financing.id)
        if outlook.approve and registration_no is None:
            outlook = quotes.Assessment(
                False,
                "the credit line's registration number leaves no room for the financing's "
                "own suffix (32 bytes at most): a person decides",
            )
        if not outlook.approve:
            await _record(session, financing, "declined", outlook.reason or "does not match")
            return
        if not await _record(session, financing, "claimed", "being approved automatically"):
            return  # another worker has it
    if idempotency is not None and await _self_custody(ports, financing.financier):
        await _approve_by_intent(
            ports, idempotency, financing, pricing, financing.recourse, registration_no
        )
        return
    await _approve(
        ports,
        financing,
        pricing,
        financing.recourse,
        registration_no,
        None if idempotency is None else idempotency.engine,
    )


async def signed(ports: Ports, answer: dict[str, Any]) -> dict[str, Any]:
    """A self-custody financier signed the approval its policy prepared: the decision is
    ``approved`` now (the answer shows it)."""
    financing_id = answer.get("id")
    tx_hash = answer.get("tx_hash")
    if isinstance(financing_id, int):
        async with ports.session() as session:
            await _set(
                session,
                financing_id,
                outcome="approved",
                detail="approved automatically, signed by the financier",
                tx_hash=tx_hash,
            )
    decision = answer.get("auto_decision")
    if isinstance(decision, dict):
        decision.update(
            outcome="approved",
            detail="approved automatically, signed by the financier",
            tx_hash=tx_hash,
        )
    return answer


async def _self_custody(ports: Ports, financier: str) -> bool:
    async with ports.session() as session:
        profile = await session.get(MemberProfile, financier)
    return profile is not None and profile.custody == "self"


async def _approve_by_intent(
    ports: Ports,
    idempotency: Idempotency,
    financing: m.Financing,
    pricing: quotes.Pricing,
    recourse: bool,
    registration_no: str | None,
) -> None:
    """A self-custody bank: the approval its policy matches is prepared as an intent, run
    as an idempotent write under a key of its own, so the bank's signer (``tierflow signer``,
    beside its HSM) signs it and the API resumes it like any other write."""
    from backend.api.problems import stored_refusal  # the stored answers of refusals
    from backend.services import commands  # the registry imports this module's neighbours

    args = {
        "financing_id": financing.id,
        "annual_rate_bps": pricing.annual_rate_bps,
        "fees": pricing.fees,
        "advance": pricing.advance,
        "discount": pricing.discount,
        "term_days": pricing.term_days,
        "recourse": recourse,
        "registration_no": registration_no,
    }
    command = commands.Command("financing.approve", args)
    key = f"auto-approval-{financing.id}"
    path = f"/v1/financing-requests/{financing.id}/approve"
    body = json.dumps(args, sort_keys=True).encode()
    refusal = stored_refusal(path)

    async def handler(claimed: Claimed, journal: TxJournal) -> tuple[int, Any]:
        write = WriteContext(
            _system_caller(financing.financier),
            request_id="auto-approval",
            journal=journal,
            idempotency_key=key,
        )
        return 200, await commands.execute(ports, write, claimed.command)

    try:
        stored = await idempotency.run(
            financing.financier, key, ("POST", path, body), command, AUTO_KEY_ID, handler, refusal
        )
    except Exception as exc:
        answer = refusal(exc)
        async with ports.session() as session:
            if answer is None:
                log.exception("auto-approval of financing %s did not complete", financing.id)
                await _forget(session, financing.id)
            else:
                detail = f"{answer[1].get('code')}: {answer[1].get('detail')}"
                await _set(session, financing.id, outcome="failed", detail=detail)
        if answer is not None:
            await _AutoAudit(idempotency.engine, financing, args).record(
                answer[0], answer[1].get("code")
            )
        return
    if not stored.replayed:
        audit = _AutoAudit(idempotency.engine, financing, args)
        audit.tx_hashes.extend(stored.tx_hashes)
        code = "awaiting_signature" if stored.status == 202 else None
        if stored.status >= 400 and isinstance(stored.body, dict):
            code = stored.body.get("code")
        await audit.record(stored.status, code)
    async with ports.session() as session:
        if stored.status == 202:
            intent = stored.body.get("intent", {}) if isinstance(stored.body, dict) else {}
            detail = f"intent {intent.get('id')}: the financier signs it with its own key"
            await _set(session, financing.id, outcome="awaiting_signature", detail=detail)
        elif stored.status < 300:
            await _set(
                session,
                financing.id,
                outcome="approved",
                detail="approved automatically",
                tx_hash=stored.body.get("tx_hash"),
            )
        else:
            await _set(session, financing.id, outcome="failed", detail=str(stored.body))


class _AutoAudit:
    """The audit record of one automatic approval (AP-3: every transaction the platform
    broadcasts is cited by a record). No request causes it: the financier's policy does, so
    the record names the financier as ``member``, ``auto-approval`` as its key and
    ``auto-approval-<id>`` as its key of idempotency. Each transaction is kept in
    ``audit_pending`` before it leaves, so a worker dying in between leaves a
    ``request_interrupted`` record citing it (:func:`backend.audit_log.sweep`)."""

    def __init__(self, engine: AsyncEngine | None, financing: m.Financing, args: Any) -> None:
        self.engine = engine
        self.request_id = uuid.uuid4().hex
        self.path = f"/v1/financing-requests/{financing.id}/approve"
        self.member = financing.financier
        self.key = f"{AUTO_KEY_ID}-{financing.id}"
        body = json.dumps(args, sort_keys=True, default=str).encode()
        self.sha256 = hashlib.sha256(body).hexdigest()
        self.tx_hashes: list[str] = []

    def entry(self, status: int, code: str | None = None) -> audit_log.Entry:
        return audit_log.Entry(
            method="POST",
            path=self.path,
            status=status,
            request_sha256=self.sha256,
            member=self.member,
            api_key_id=AUTO_KEY_ID,
            code=code,
            idempotency_key=self.key,
            tx_hashes=tuple(self.tx_hashes),
            request_id=self.request_id,
        )

    async def before_broadcast(self) -> None:
        if self.engine is not None:
            await audit_log.mark_pending(self.engine, self.request_id, self.entry(0))

    async def record(self, status: int, code: str | None = None) -> None:
        if self.engine is None:
            return
        try:
            await audit_log.append(self.engine, self.entry(status, code), self.request_id)
        except Exception:  # the sweeper records a pending one as request_interrupted
            log.exception("the audit record of an automatic approval was not written")


async def _approve(
    ports: Ports,
    financing: m.Financing,
    pricing: quotes.Pricing,
    recourse: bool,
    registration_no: str | None,
    engine: AsyncEngine | None = None,
) -> None:
    terms = pricing.terms(recourse, encode_registration(registration_no), ZERO_HASH)
    audit = _AutoAudit(engine, financing, terms.as_tuple())
    write = WriteContext(
        _system_caller(financing.financier),
        request_id=audit.request_id,
        tx_hashes=audit.tx_hashes,
        before_broadcast=audit.before_broadcast,
    )
    try:
        mined = await ports.ledger.submit(write, calls.approve_financing(financing.id, terms))
    except ContractRevert as revert:
        from backend.api.problems import status_of  # the HTTP status a refusal has

        problem = from_revert(revert)
        await audit.record(status_of(problem), problem.code)
        async with ports.session() as session:
            if problem.code == "financing_not_pending":
                # Decided meanwhile (a person, or the mirror was behind): no decision of ours.
                await _forget(session, financing.id)
                return
            await _set(
                session,
                financing.id,
                outcome="failed",
                detail=f"{problem.code}: {problem.detail}",
            )
        return
    except SignatureRequired as waiting:
        # A self-custody bank: the platform holds no key of its. The approval waits as an
        # intent for the bank's own signer; not prepared again at every poll.
        await audit.record(202, "awaiting_signature")
        intent = waiting.answer.get("intent", {})
        async with ports.session() as session:
            await _set(
                session,
                financing.id,
                outcome="awaiting_signature",
                detail=f"intent {intent.get('id')}: the financier signs it with its own key",
            )
        return
    except Exception:
        # Not a refusal (node or database trouble): let a later poll try again. What it
        # broadcast is cited now (the pending row would be swept into a record anyway).
        log.exception("auto-approval of financing %s did not complete", financing.id)
        if audit.tx_hashes:
            await audit.record(503, "auto_approval_incomplete")
        async with ports.session() as session:
            await _forget(session, financing.id)
        return
    await audit.record(200)
    detail = (
        f"approved automatically: {pricing.annual_rate_bps} bps a year over "
        f"{pricing.term_days} days, fees {pricing.fees}"
    )
    async with ports.session() as session:
        await _set(session, financing.id, outcome="approved", detail=detail, tx_hash=mined.tx_hash)
    log.info("financing %s approved automatically in %s", financing.id, mined.tx_hash)


async def _forget(session: AsyncSession, financing_id: int) -> None:
    await session.execute(delete(AutoDecision).where(AutoDecision.financing_id == financing_id))
    await session.commit()


async def _release_stale(session: AsyncSession, financing_id: int, seen: int) -> None:
    """Drop a dead worker's claim (only if it is still the one seen), so the next pass
    assesses the request afresh; the desk refuses it if the dead worker did approve."""
    await session.execute(
        delete(AutoDecision).where(
            AutoDecision.financing_id == financing_id,
            AutoDecision.outcome == "claimed",
            AutoDecision.decided_at == seen,
        )
    )
    await session.commit()


async def poll_once(
    ports: Ports,
    idempotency: Idempotency | None = None,
    inflight: dict[int, asyncio.Task[None]] | None = None,
) -> int:
    """One pass over the undecided requests; returns how many were looked at. Without
    ``inflight`` the decisions are made here, one after another; with it (:func:`run`) each
    is a task of its own, kept in ``inflight`` until it ends, and a later pass skips it."""
    async with ports.session() as session:
        pending = await _candidates(session)
        stale = await _stale_claims(session)
        await session.commit()
    if inflight is not None:
        pending = [f for f in pending if f.id not in inflight]
    if not pending and not stale:
        return 0
    now = await ports.ledger.chain_time()
    for financing in pending:
        if inflight is None:
            await decide(ports, financing, now, idempotency)
            continue
        task = asyncio.create_task(
            _decided(ports, financing, now, idempotency), name=f"auto-approval-{financing.id}"
        )
        inflight[financing.id] = task
        task.add_done_callback(_forget_task(inflight, financing.id))
    for financing_id, seen in stale:
        async with ports.session() as session:
            await _release_stale(session, financing_id, seen)
    return len(pending) + len(stale)


def _forget_task(
    inflight: dict[int, asyncio.Task[None]], financing_id: int
) -> Callable[[asyncio.Task[None]], None]:
    def done(_task: asyncio.Task[None]) -> None:
        inflight.pop(financing_id, None)

    return done


async def _decided(
    ports: Ports, financing: m.Financing, now: int, idempotency: Idempotency | None
) -> None:
    try:
        await decide(ports, financing, now, idempotency)
    except Exception:
        log.exception("auto-approval of financing %s failed", financing.id)


async def run(
    ports: Ports, interval_s: float = POLL_INTERVAL_S, idempotency: Idempotency | None = None
) -> None:
    """Poll until cancelled; a failing pass is logged and the next one tries again. Each
    matching request is decided in a task of its own: a hosted financier's approval waits for
    its transaction to be mined and mirrored (a block or more), and a pass that waited for it
    held up every other financier's requests, a self bank's intents included."""
    inflight: dict[int, asyncio.Task[None]] = {}
    try:
        while True:
            try:
                await poll_once(ports, idempotency, inflight)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("auto-approval pass failed")
            await asyncio.sleep(interval_s)
    finally:
        for task in list(inflight.values()):
            task.cancel()
        if inflight:
            await asyncio.gather(*inflight.values(), return_exceptions=True)


@contextlib.asynccontextmanager
async def running(ports: Ports, idempotency: Idempotency | None = None) -> AsyncIterator[None]:
    """Run :func:`run` in the background for the life of the block."""
    task = asyncio.create_task(run(ports, idempotency=idempotency), name="tierflow-auto-approval")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
