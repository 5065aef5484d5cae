"""Each figure held against the chain's ceiling measured right next to it.

anvil 1.7.1's work per block grows with the number of blocks it holds (empty ones too: 1,000
empty blocks take 0.8 s at the start of a chain, 5.3 s after 3,000 more), and every write
figure adds blocks: a ceiling measured once at the start of a run and a figure taken after
thousands more transactions compare a young chain with an aged one. So the ceiling is
measured before and after each figure on the same chain, a ceiling shared by the figures on
either side of it (``C F C F C``), and a figure's ceiling is the mean of the two
(:func:`bracket_rate`; :attr:`bench.perf.figures.Rate.ceilings` keeps both).

anvil with automine also goes on mining blocks after the last receipt of a burst is in (one
block per transaction it was told about, empty once the pool is: seen 12 to 57 blocks after a
ceiling of 256 splits): before each measurement :func:`settle` waits until the head stands
still, so no figure pays for the blocks of the one before it.

What is measured comes in two steps each, so that preparing (putting on chain what the calls
consume, untimed) is done for every measurement first and none is sent between a figure and
its ceilings:

    ceilings, figures = await bracketed(ceiling_step, [figure_step, ...], settle=...)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bench.perf.figures import Rate

P = TypeVar("P")

#: The head must stand still this long before a measurement starts.
QUIET_S = 0.15
#: ... but no figure waits longer than this for it (a node mining by the clock never stands still).
SETTLE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Step(Generic[P]):
    """One measurement: ``prepare()`` (untimed: what its calls consume, put on chain), then
    ``measure(prepared)`` returning its :class:`Rate`."""

    prepare: Callable[[], Awaitable[P]]
    measure: Callable[[P], Awaitable[Rate]]


def bracket_rate(before: Rate, after: Rate) -> float:
    """The ceiling a figure taken between ``before`` and ``after`` is held against: their mean
    rate (the chain between the two states it was measured in)."""
    return (before.rate + after.rate) / 2


def hold_against(figure: Rate, before: Rate, after: Rate) -> Rate:
    """Give ``figure`` its bracketing ceilings (``ceilings``) and their mean (``ceiling``)."""
    figure.ceilings = [before.rate, after.rate]
    figure.ceiling = bracket_rate(before, after)
    return figure


Settle = Callable[[], Awaitable[Any]]


async def _nothing() -> None:
    return None


async def bracketed(
    ceiling: Step[Any],
    figures: Sequence[Step[Any]],
    *,
    settle: Settle = _nothing,
) -> tuple[list[Rate], list[Rate]]:
    """Measure ``C F C F … F C``: each figure between two ceilings of ``ceiling``, a ceiling
    shared by its neighbours, ``settle()`` before every measurement. Everything is prepared
    first (each ceiling's calls and each figure's, in that order), so nothing is sent between
    a figure and its ceilings. Returns (ceilings in order, figures in order), each figure held
    against its two (:func:`hold_against`)."""
    if not figures:
        return [], []
    ready_ceilings = [await ceiling.prepare() for _ in range(len(figures) + 1)]
    ready_figures = [await step.prepare() for step in figures]
    await settle()
    ceilings = [await ceiling.measure(ready_ceilings[0])]
    done: list[Rate] = []
    for i, step in enumerate(figures):
        await settle()
        done.append(await step.measure(ready_figures[i]))
        await settle()
        ceilings.append(await ceiling.measure(ready_ceilings[i + 1]))
    for i, figure in enumerate(done):
        hold_against(figure, ceilings[i], ceilings[i + 1])
    return ceilings, done


async def settle_head(
    head: Callable[[], Awaitable[int]],
    quiet_s: float = QUIET_S,
    timeout_s: float = SETTLE_TIMEOUT_S,
    look_every_s: float = 0.025,
) -> int:
    """Wait until ``head()`` (the block number) has not moved for ``quiet_s`` (at most
    ``timeout_s``); returns the blocks mined meanwhile."""
    start = time.monotonic()
    first = last = await head()
    still_since = start
    while True:
        now = time.monotonic()
        if now - still_since >= quiet_s or now - start >= timeout_s:
            return last - first
        await asyncio.sleep(look_every_s)
        current = await head()
        if current != last:
            last = current
            still_since = time.monotonic()
