"""Each figure against the ceilings measured next to it (``bench.perf.bracket``): the order of
the measurements, what each figure is held against, the wait for a head that stands still.
No chain here: steps that record what they were asked to do."""

from __future__ import annotations

from bench.perf.bracket import Step, bracket_rate, bracketed, settle_head
from bench.perf.figures import Rate


def rate(name: str, path: str, per_second: float) -> Rate:
    return Rate(name, "split", path, clients=16, holders=1, count=int(per_second), seconds=1.0)


class Log:
    def __init__(self, ceilings: list[float]) -> None:
        self.events: list[str] = []
        self.ceilings = iter(ceilings)
        self.made = 0

    def ceiling(self) -> Step[int]:
        async def prepare() -> int:
            self.made += 1
            self.events.append(f"prepare C{self.made}")
            return self.made

        async def measure(n: int) -> Rate:
            self.events.append(f"C{n}")
            return rate(f"ceiling {n}", "ceiling", next(self.ceilings))

        return Step(prepare, measure)

    def figure(self, name: str, per_second: float) -> Step[str]:
        async def prepare() -> str:
            self.events.append(f"prepare {name}")
            return name

        async def measure(prepared: str) -> Rate:
            self.events.append(prepared)
            return rate(prepared, "sender", per_second)

        return Step(prepare, measure)

    async def settle(self) -> None:
        self.events.append("settle")


async def test_each_figure_is_held_against_the_ceilings_just_before_and_after_it() -> None:
    log = Log([1000.0, 600.0, 400.0])  # a chain that slows down as it ages
    ceilings, figures = await bracketed(
        log.ceiling(), [log.figure("F1", 480.0), log.figure("F2", 250.0)], settle=log.settle
    )
    assert [c.rate for c in ceilings] == [1000.0, 600.0, 400.0]
    f1, f2 = figures
    assert (f1.ceilings, f1.ceiling, f1.ratio) == ([1000.0, 600.0], 800.0, 0.6)
    assert (f2.ceilings, f2.ceiling, f2.ratio) == ([600.0, 400.0], 500.0, 0.5)
    # everything prepared first, then C F C F C back to back, the head settled before each
    assert log.events == [
        "prepare C1", "prepare C2", "prepare C3", "prepare F1", "prepare F2",
        "settle", "C1", "settle", "F1", "settle", "C2", "settle", "F2", "settle", "C3",
    ]  # fmt: skip


async def test_no_figures_measure_nothing() -> None:
    log = Log([])
    assert await bracketed(log.ceiling(), [], settle=log.settle) == ([], [])
    assert log.events == []


def test_the_bracket_is_the_mean_of_its_two_ceilings() -> None:
    assert bracket_rate(rate("a", "ceiling", 900.0), rate("b", "ceiling", 300.0)) == 600.0


async def test_settling_waits_for_the_head_to_stand_still() -> None:
    heads = iter([10, 11, 14, 14, 14, 14, 14, 14, 14, 14])

    async def head() -> int:
        return next(heads, 14)

    mined = await settle_head(head, quiet_s=0.05, look_every_s=0.01)
    assert mined == 4


async def test_settling_gives_up_on_a_head_that_never_stands_still() -> None:
    count = 0

    async def head() -> int:
        nonlocal count
        count += 1
        return count

    mined = await settle_head(head, quiet_s=0.5, timeout_s=0.1, look_every_s=0.01)
    assert 0 < mined < 100
