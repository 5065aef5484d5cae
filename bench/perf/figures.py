"""What a benchmark run measures: rates with their latencies, and the machine's load while
they were taken (two cores shared with other work: every figure carries ``uptime``'s 1-minute
load average before and after, and ratios are to the ceilings measured next to the figure,
bench.perf.bracket)."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_average() -> float:
    """The 1-minute load average (``uptime``)."""
    return os.getloadavg()[0]


@dataclass
class Rate:
    """``count`` operations in ``seconds`` along one path, with per-operation latencies."""

    name: str  # e.g. "split · sender · 16 clients · one holder"
    operation: str  # split, transfer, application, ...
    path: str  # ceiling, sender, http
    clients: int
    holders: int
    count: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    load_before: float = 0.0
    load_after: float = 0.0
    offered: float | None = None  # open loop: operations per second offered
    ceiling: float | None = None  # the chain's ceiling for this operation, same run
    #: The ceilings measured just before and just after this figure on the same chain
    #: (bench.perf.bracket), whose mean is ``ceiling``; empty when it is held against one.
    ceilings: list[float] = field(default_factory=list)
    variant: str = ""  # an optimisation's before/after label

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50(self) -> float:
        return quantile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return quantile(self.latencies, 0.99)

    @property
    def ratio(self) -> float | None:
        return self.rate / self.ceiling if self.ceiling else None

    def summary(self) -> dict[str, Any]:
        doc = asdict(self)
        del doc["latencies"]
        doc.update(rate=self.rate, p50=self.p50, p99=self.p99, ratio=self.ratio)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in doc.items()}
