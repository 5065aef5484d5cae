"""Conservation through a random multi-tier tree (SPEC I-1, I-2, I-4, I-8).

A seeded random sequence of splits, whole transfers and financings (approved, withdrawn or
left pending) spreads two payables over five tiers of suppliers and two financiers; then
every piece is settled, singly or in batches, by the obligor or its clearing agent. After
every step the chain is compared with a plain Python model of the pieces, and for every
payable: live piece values + settled value = face, no live piece has value 0, each piece's
parent is in the same payable and its depth is the parent's + 1, the payable is Settled
exactly when every piece is, and each financier's exposure per obligor equals the value of
the financed pieces it holds. At the end the obligors' outstanding and all exposure are 0.

Pieces are read by id, 1..claimCount. ``TIERFLOW_CONSERVATION_SEEDS`` (comma-separated)
overrides the seeds.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import pytest
from eth_utils.crypto import keccak

from ledger.deployment import DAY
from ledger.bindings import ZERO_HASH, ClaimStatus, FinancingStatus, PayableStatus
from tests.support.contracts import apply, read_claims, terms_for
from bench.cast import Actor, Platform

SEEDS = [int(s) for s in os.environ.get("TIERFLOW_CONSERVATION_SEEDS", "3525,1729").split(",")]
OPERATIONS = 40
HOLDERS = ("sup1", "sup2", "sup3", "sup4", "sup5", "bank", "bank2")
BANKS = ("bank", "bank2")


@dataclass
class Piece:
    payable: int
    holder: str
    value: int
    parent: int | None
    depth: int
    locked: int = 0
    financed: bool = False
    settled: bool = False


@dataclass
class Model:
    faces: dict[int, int] = field(default_factory=dict)
    obligor: dict[int, str] = field(default_factory=dict)  # payable → obligor name
    pieces: dict[int, Piece] = field(default_factory=dict)
    settled: dict[int, int] = field(default_factory=dict)  # payable → settled value
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)  # financing → (claim, amount)

    def live(self) -> list[int]:
        return [cid for cid, p in self.pieces.items() if not p.settled]

    def exposure(self, bank: str, obligor: str) -> int:
        return sum(
            p.value
            for p in self.pieces.values()
            if p.financed
            and not p.settled
            and p.holder == bank
            and self.obligor[p.payable] == obligor
        )


async def check(platform: Platform, model: Model, step: str) -> None:
    """The chain equals the model, and the invariants hold."""
    count = int(await platform.claim_ledger.functions.claimCount().call())
    assert count == len(model.pieces), step
    claims = await read_claims(platform, range(1, count + 1))
    addr = {name: platform.actors[name].address for name in platform.actors}
    live_sum: dict[int, int] = dict.fromkeys(model.faces, 0)
    for claim in claims:
        piece = model.pieces[claim.id]
        where = f"{step}: piece {claim.id}"
        assert claim.payable_id == piece.payable, where
        assert claim.holder == addr[piece.holder], where
        assert claim.amount == piece.value, where
        assert claim.locked_amount == piece.locked, where
        assert claim.financed == piece.financed, where
        assert claim.parent_id == piece.parent, where
        assert claim.depth == piece.depth, where
        if piece.parent is None:
            assert claim.depth == 0, where
        else:
            parent = claims[piece.parent - 1]
            assert parent.payable_id == claim.payable_id, where
            assert claim.depth == parent.depth + 1, where
            assert piece.parent < claim.id, where
        if piece.settled:
            assert claim.status is ClaimStatus.SETTLED, where
        else:
            assert claim.status is not ClaimStatus.SETTLED, where
            assert claim.amount > 0, f"{where}: a live piece with value 0"
            live_sum[claim.payable_id] += claim.amount
    for pid, face in model.faces.items():
        payable = await platform.suite.payable(pid)
        assert payable.settled_value == model.settled[pid], step
        assert live_sum[pid] + payable.settled_value == face, f"{step}: conservation of {pid}"
        all_settled = all(p.settled for p in model.pieces.values() if p.payable == pid)
        expected = PayableStatus.SETTLED if all_settled else PayableStatus.ISSUED
        assert payable.status is expected, step
    for bank in BANKS:
        for obligor in set(model.obligor.values()):
            outstanding, _limit = await platform.suite.exposure(addr[bank], addr[obligor])
            assert outstanding == model.exposure(bank, obligor), f"{step}: {bank}/{obligor}"


class Scenario:
    def __init__(self, platform: Platform, model: Model, rng: random.Random) -> None:
        self.p, self.m, self.rng = platform, model, rng

    def actor(self, name: str) -> Actor:
        return self.p.actors[name]

    def other(self, holder: str, pool: tuple[str, ...] = HOLDERS) -> str:
        return self.rng.choice([h for h in pool if h != holder])

    def recipient(self, holder: str) -> str:
        """Mostly the next tier down (sup1 → sup2 → … → sup5), sometimes anyone."""
        if holder.startswith("sup") and holder != "sup5" and self.rng.random() < 0.7:
            return f"sup{int(holder[3:]) + 1}"
        return self.other(holder)

    async def split(self, cid: int) -> str:
        piece = self.m.pieces[cid]
        free = piece.value - piece.locked
        amount = self.rng.randint(1, min(free, piece.value - 1))
        to = self.recipient(piece.holder)
        await self.actor(piece.holder).transact(
            self.p.claim_ledger.functions.split(cid, self.actor(to).address, amount, ZERO_HASH)
        )
        new_id = len(self.m.pieces) + 1
        self.m.pieces[new_id] = Piece(piece.payable, to, amount, cid, piece.depth + 1)
        piece.value -= amount
        return f"split {cid} → {new_id} ({amount}) {piece.holder}→{to}"

    async def transfer(self, cid: int) -> str:
        piece = self.m.pieces[cid]
        to = self.recipient(piece.holder)
        await self.actor(piece.holder).transact(
            self.p.claim_ledger.functions.transferClaim(cid, self.actor(to).address, ZERO_HASH)
        )
        frm = piece.holder
        piece.holder, piece.financed = to, False
        return f"transfer {cid} {frm}→{to}"

    async def apply(self, cid: int) -> tuple[int, int, str]:
        piece = self.m.pieces[cid]
        free = piece.value - piece.locked
        amount = free if self.rng.random() < 0.3 else self.rng.randint(max(1, free // 10), free)
        bank = self.other(piece.holder, BANKS)
        fid = await apply(self.p, self.actor(piece.holder), cid, self.actor(bank), amount)
        piece.locked += amount
        self.m.pending[fid] = (cid, amount)
        return fid, amount, bank

    async def finance(self, cid: int) -> str:
        piece = self.m.pieces[cid]
        fid, amount, bank = await self.apply(cid)
        terms = await terms_for(self.p, fid)
        await self.actor(bank).transact(self.p.desk.functions.approveFinancing(fid, terms.tuple()))
        del self.m.pending[fid]
        piece.locked -= amount
        if amount == piece.value:  # the whole piece is sold
            piece.holder, piece.financed = bank, True
            return f"finance {cid} whole ({amount}) → {bank}"
        new_id = len(self.m.pieces) + 1
        self.m.pieces[new_id] = Piece(piece.payable, bank, amount, cid, piece.depth + 1, 0, True)
        piece.value -= amount
        financed = (await self.p.suite.financing(fid)).financed_claim_id
        assert financed == new_id
        return f"finance {cid} → {new_id} ({amount}) → {bank}"

    async def withdraw_or_leave(self, cid: int) -> str:
        fid, amount, bank = await self.apply(cid)
        if self.rng.random() < 0.5:
            await self.actor(self.m.pieces[cid].holder).transact(
                self.p.desk.functions.withdrawFinancing(fid)
            )
            del self.m.pending[fid]
            self.m.pieces[cid].locked -= amount
            return f"apply+withdraw {cid} ({amount})"
        return f"apply {cid} ({amount}) to {bank}, left pending"

    async def step(self) -> str | None:
        payable = self.rng.choice(sorted(self.m.faces))
        live = [c for c in self.m.live() if self.m.pieces[c].payable == payable]
        # favour deeper pieces so that the tree grows tiers rather than only width
        cid = self.rng.choices(live, weights=[self.m.pieces[c].depth + 1 for c in live])[0]
        piece = self.m.pieces[cid]
        free = piece.value - piece.locked
        kind = self.rng.choices(["split", "transfer", "finance", "apply"], weights=[50, 20, 22, 8])[
            0
        ]
        if kind == "split" and piece.value >= 2 and free >= 1:
            return await self.split(cid)
        if kind == "transfer" and piece.locked == 0:
            return await self.transfer(cid)
        if kind == "finance" and free >= 10_000:
            return await self.finance(cid)
        if kind == "apply" and free >= 10_000:
            return await self.withdraw_or_leave(cid)
        return None


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_tree_conserves_value_through_settlement(
    platform: Platform, seed: int
) -> None:
    rng = random.Random(seed)
    model = Model()
    # two payables of two obligors; the first names a clearing agent
    for core, supplier, face, agent in (
        ("core", "sup1", 10**12, platform.agent),
        ("core2", "sup2", 3 * 10**9 + 7, None),
    ):
        pid, root, _due = await platform.issue(
            platform.actors[core], platform.actors[supplier], face, due_in=120 * DAY, agent=agent
        )
        model.faces[pid], model.obligor[pid], model.settled[pid] = face, core, 0
        model.pieces[root] = Piece(pid, supplier, face, None, 0)
    await check(platform, model, "issued")

    done = 0
    log: list[str] = []
    holders: set[str] = set()
    while done < OPERATIONS:
        what = await Scenario(platform, model, rng).step()
        if what is None:
            continue
        done += 1
        log.append(what)
        holders.update(p.holder for p in model.pieces.values())
        await check(platform, model, f"op {done}: {what}")
    assert max(p.depth for p in model.pieces.values()) >= 4, f"the tree stayed shallow: {log}"
    for pid in model.faces:
        assert sum(p.payable == pid for p in model.pieces.values()) > 3, f"{pid} untouched: {log}"
    assert holders >= {"sup3", "sup4", "sup5", "bank", "bank2"}, f"tiers not reached: {log}"

    # maturity: lapse pending applications, then settle every piece
    due = max([(await platform.suite.payable(pid)).due_date for pid in model.faces])
    await platform.warp_to(due)
    for fid, (cid, amount) in list(model.pending.items()):
        await platform.outsider.transact(platform.desk.functions.expireFinancing(fid))
        assert (await platform.suite.financing(fid)).status is FinancingStatus.EXPIRED
        model.pieces[cid].locked -= amount
        del model.pending[fid]
    await check(platform, model, "applications expired")

    order = model.live()
    rng.shuffle(order)
    by_payable: dict[int, list[int]] = {}
    for cid in order:
        by_payable.setdefault(model.pieces[cid].payable, []).append(cid)
    batches: list[tuple[int, list[int]]] = []
    for pid, ids in by_payable.items():
        while ids:
            size = rng.choice([1, 2, 4, 8, 16])
            batches.append((pid, ids[:size]))
            ids = ids[size:]
    rng.shuffle(batches)
    for n, (pid, ids) in enumerate(batches, 1):
        settlers = ("core", "agent") if model.obligor[pid] == "core" else ("core2",)
        settler = platform.actors[rng.choice(settlers)]
        refs = [keccak(text=f"payment-{cid}") for cid in ids]
        if len(ids) == 1 and rng.random() < 0.5:
            await settler.transact(platform.claim_ledger.functions.settleClaim(ids[0], refs[0]))
        else:
            await settler.transact(platform.claim_ledger.functions.settleClaims(ids, refs))
        for cid in ids:
            model.pieces[cid].settled = True
            model.settled[pid] += model.pieces[cid].value
        await check(platform, model, f"settlement {n}: {settler.name} settled {ids}")

    for pid, face in model.faces.items():
        payable = await platform.suite.payable(pid)
        assert (payable.status, payable.settled_value) == (PayableStatus.SETTLED, face)
    for core in ("core", "core2"):
        account = await platform.suite.obligor_account(platform.actors[core].address)
        assert account.outstanding == 0
        for bank in BANKS:
            exposure = await platform.suite.exposure(
                platform.actors[bank].address, platform.actors[core].address
            )
            assert exposure[0] == 0
