"""The HTTP write figures' bookkeeping (``bench.perf.api_writes``): which ceiling a figure is
held against, and the financing-application target's verdict. No platform runs here."""

from __future__ import annotations

from bench.perf.api_writes import application_verdict, ceiling_for
from bench.perf.figures import Rate


def rate(name: str, operation: str, path: str, holders: int, per_s: float, p99: float) -> Rate:
    return Rate(
        name,
        operation,
        path,
        clients=16,
        holders=holders,
        count=100,
        seconds=100 / per_s,
        latencies=[p99] * 100,
    )


CEILINGS = [
    rate("split · ceiling · one holder", "split", "ceiling", 1, 500.0, 0.1),
    rate("split · ceiling · many holders", "split", "ceiling", 16, 200.0, 0.1),
    rate("application · ceiling · one holder", "application", "ceiling", 1, 300.0, 0.1),
    rate("application · ceiling · many holders", "application", "ceiling", 16, 400.0, 0.1),
    rate("approval · ceiling · many holders", "approval", "ceiling", 2, 150.0, 0.1),
    rate("application · sender · 16 clients", "application", "sender", 16, 90.0, 0.1),
]


def test_a_figure_is_held_against_its_own_operations_ceiling_for_as_many_signers() -> None:
    many = rate("application · HTTP · 16 clients · many holders", "application", "http", 16, 25, 1)
    one = rate("application · HTTP · 1 clients · one holder", "application", "http", 1, 5, 1)
    assert ceiling_for(many, CEILINGS) == 400.0
    assert ceiling_for(one, CEILINGS) == 300.0
    # no ceiling for one signer: the nearest of the same operation, never another operation's
    approval = rate("approval · HTTP · 16 clients · one holder", "approval", "http", 1, 20, 1)
    assert ceiling_for(approval, CEILINGS) == 150.0
    transfer = rate("transfer · HTTP · 16 clients · many holders", "transfer", "http", 16, 20, 1)
    assert ceiling_for(transfer, CEILINGS) is None


def test_the_application_target_is_met_only_by_a_figure_fast_enough_on_both_counts() -> None:
    slow = rate(
        "application · HTTP · 16 clients · many holders", "application", "http", 16, 25, 0.5
    )
    late = rate("application · HTTP · 64 clients · many holders", "application", "http", 16, 150, 2)
    good = rate(
        "application · HTTP · 2 workers · 64 clients · many holders",
        "application", "http", 16, 120, 0.8,
    )  # fmt: skip
    verdict = application_verdict([slow, late])
    assert verdict is not None
    assert verdict.endswith("not met.")
    assert "16 clients · many holders 25/s, p99 500 ms" in verdict
    met = application_verdict([slow, late, good])
    assert met is not None
    assert met.endswith(": met.")
    assert "2 workers · 64 clients · many holders 120/s" in met
    assert application_verdict(CEILINGS) is None  # no HTTP application figure, no line


def test_the_verdict_names_the_database_each_figure_ran_on() -> None:
    sqlite = rate("application · HTTP · 2 workers · 16 clients · many holders",
                  "application", "http", 16, 39, 1.5)  # fmt: skip
    postgres = rate("application · HTTP PostgreSQL · 2 workers · 16 clients · many holders",
                    "application", "http", 16, 38, 0.75)  # fmt: skip
    verdict = application_verdict([sqlite, postgres])
    assert verdict is not None
    assert "HTTP · 2 workers · 16 clients · many holders 39/s" in verdict
    assert "HTTP PostgreSQL · 2 workers · 16 clients · many holders 38/s" in verdict
