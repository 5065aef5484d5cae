"""What the console draws of a payable beyond the API's tree answer: for every piece the
transaction that created it, whether it is financed or frozen, and the names and custody
(``self`` or ``hosted``) of the holders.

:func:`lineage` first asks :func:`backend.services.payables.tree` (the same visibility as
``GET /v1/payables/{id}/tree``: 404 for a payable the caller may not see, 403 for a holder
that may see it but not the whole tree), then adds these facts in three set-wise queries, so
a tree of 10,000 pieces costs the same few round trips as one of ten.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.models import MemberProfile
from backend.services import payables
from indexer import models as m

#: Deeper than any tree: the console reads the whole tree and draws a window of it.
ALL_LEVELS = 1 << 30


def custody_of(profile: MemberProfile | None) -> str | None:
    """``self`` or ``hosted`` (``member_profiles.custody``); None for no profile."""
    value = None if profile is None else profile.custody
    return value if value in ("self", "hosted") else None


async def people(
    session: AsyncSession, addresses: Iterable[str | None]
) -> dict[str, dict[str, Any]]:
    """address → ``{name, custody}`` of the given members (those with a profile)."""
    wanted = sorted({a for a in addresses if a})
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await session.execute(select(MemberProfile).where(MemberProfile.address.in_(chunk)))
        for profile in rows.scalars():
            out[profile.address] = {"name": profile.name, "custody": custody_of(profile)}
    return out


async def _creations(session: AsyncSession, payable_id: int) -> dict[int, str]:
    """claim id → hash of the transaction that created it: the first event about the piece
    in the block it was created in (the root's: the payable's issue)."""
    by_claim = (
        select(m.Claim.id, m.Event.tx_hash)
        .join(
            m.Event,
            and_(m.Event.claim_id == m.Claim.id, m.Event.block_number == m.Claim.created_block),
        )
        .where(m.Claim.payable_id == payable_id)
        .order_by(m.Event.block_number.desc(), m.Event.log_index.desc())
    )
    # Ordered last first, so the dict keeps each piece's first event.
    found = {row.id: row.tx_hash for row in await session.execute(by_claim)}
    issued = (
        select(m.Payable.root_claim_id, m.Event.tx_hash)
        .join(
            m.Event,
            and_(
                m.Event.payable_id == m.Payable.id,
                m.Event.block_number == m.Payable.issued_block,
                m.Event.event == "PayableIssued",
            ),
        )
        .where(m.Payable.id == payable_id)
    )
    for row in await session.execute(issued):
        found.setdefault(row.root_claim_id, row.tx_hash)
    return found


Lineage = tuple[dict[str, Any], dict[str, dict[str, Any]]]


class LineageCache:
    """The last few trees read, per payable and mirror checkpoint (block number and hash).

    The indexer commits a batch's rows and its checkpoint together (IX-3), so a tree read
    between two reads of an unchanged checkpoint is the tree at that checkpoint, and stays
    so: a new block, or a reorganisation rolling the mirror back, moves the checkpoint and
    the key. Only such trees are kept. Entries are shared: callers must not change them."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, int, str], Lineage] = OrderedDict()
        self.hits = 0

    def get(self, key: tuple[int, int, str]) -> Lineage | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: tuple[int, int, str], value: Lineage) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


async def _checkpoint(session: AsyncSession) -> tuple[int, str] | None:
    row = (
        await session.execute(select(m.Checkpoint.block_number, m.Checkpoint.block_hash))
    ).first()
    return None if row is None else (int(row.block_number), str(row.block_hash))


async def lineage(
    session: AsyncSession, caller: Caller, payable_id: int, cache: LineageCache | None = None
) -> Lineage:
    """The payable's whole tree (the API's answer, every node with ``tx_hash``, ``financed``
    and ``frozen`` added) and the holders' names and custody. The caller's right to the
    whole tree is checked every time; the tree itself may come from ``cache``. The answer
    is shared with the cache: read it, do not change it."""
    await payables.require_tree(session, caller, payable_id)
    before = await _checkpoint(session) if cache is not None else None
    if cache is not None and before is not None:
        found = cache.get((payable_id, *before))
        if found is not None:
            return found
    made = await _read(session, caller, payable_id)
    if cache is not None and before is not None and await _checkpoint(session) == before:
        cache.put((payable_id, *before), made)
    return made


async def _read(session: AsyncSession, caller: Caller, payable_id: int) -> Lineage:
    answer = await payables.tree(session, caller, payable_id, None, ALL_LEVELS)
    flags_rows = await session.execute(
        select(m.Claim.id, m.Claim.financed, m.Claim.frozen).where(m.Claim.payable_id == payable_id)
    )
    flags = {row.id: (bool(row.financed), bool(row.frozen)) for row in flags_rows}
    creations = await _creations(session, payable_id)
    holders: set[str] = set()
    stack = [answer["root"]]
    while stack:
        node = stack.pop()
        financed, frozen = flags.get(node["id"], (False, False))
        node["financed"] = financed or node["status"] == "financed"
        node["frozen"] = frozen or node["status"] == "frozen"
        node["tx_hash"] = creations.get(node["id"])
        holders.add(node["holder"])
        stack.extend(node["children"])
    return answer, await people(session, holders)
