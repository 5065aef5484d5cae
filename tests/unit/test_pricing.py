"""Pricing a financing as FinancingDesk checks it (backend/services/quotes.py), without a chain.

The desk's convention: ``discount = ceil(amount × bps × days / 3,600,000)``, fees round up
too, ``advance = amount − discount − fees``; the term is the days to maturity rounded up, and
the desk also takes one day less (the day boundary may pass between pricing and mining).
"""

from __future__ import annotations

import pytest

from backend.errors import Invalid
from backend.services import quotes
from backend.services.financing import DEFAULT_EXPIRY_S, EXPIRY_BEFORE_DUE_S, default_expiry
from ledger.deployment import DAY


@pytest.mark.parametrize(
    ("seconds_left", "days"),
    [(0, 0), (-5, 0), (1, 1), (DAY - 1, 1), (DAY, 1), (DAY + 1, 2), (90 * DAY, 90)],
)
def test_days_to_maturity_round_up(seconds_left: int, days: int) -> None:
    assert quotes.days_to_maturity(1_000_000 + seconds_left, 1_000_000) == days


def test_discount_is_face_rate_days_over_360_rounded_up() -> None:
    # 1,000,000 fen at 5 % for 90 days: 1e6 × 500 × 90 / 3.6e6 = 12,500 exactly.
    assert quotes.discount_for(1_000_000, 500, 90) == 12_500
    # One fen more does not divide: rounded in the financier's favour by less than a unit.
    assert quotes.discount_for(1_000_001, 500, 90) == 12_501
    assert quotes.discount_for(7, 1, 1) == 1
    assert quotes.discount_for(10**30, 0, 365) == 0


def test_fees_round_up() -> None:
    assert quotes.fees_for(10_000, 25) == 25
    assert quotes.fees_for(10_001, 25) == 26
    assert quotes.fees_for(10_000, 0) == 0


def test_price_counts_the_days_to_the_horizon() -> None:
    due = 100 * DAY
    pricing = quotes.price(1_000_000, 500, 300, due, 10 * DAY, term_days=None)
    assert pricing.term_days == 90
    assert pricing.discount == 12_500
    assert pricing.advance == 1_000_000 - 12_500 - 300
    given = quotes.price(1_000_000, 500, 0, due, 10 * DAY, term_days=30)
    assert (given.term_days, given.discount) == (30, quotes.discount_for(1_000_000, 500, 30))


def test_terms_in_the_desks_order() -> None:
    pricing = quotes.Pricing(1_000, 100, 10, 3, 2)
    terms = pricing.terms(True, b"\x01" * 32, b"\x00" * 32)
    assert terms.as_tuple() == (995, 3, 2, 100, 10, True, b"\x01" * 32, b"\x00" * 32)


def test_nothing_advanced_is_refused() -> None:
    with pytest.raises(Invalid) as refused:
        quotes.Pricing(100, 10_000, 360, 100, 0).require_advance()
    assert refused.value.code == "terms_invalid"
    assert refused.value.extra == {"discount": 100, "fees": 0}
    quotes.Pricing(100, 0, 360, 0, 99).require_advance()  # one fen advanced is fine


def test_matching_term_days_finds_the_term_a_discount_was_priced_for() -> None:
    now, due = 0, 30 * DAY + 10  # 31 days left, rounded up
    later = quotes.days_to_maturity(due, now + quotes.APPROVAL_MARGIN_S)
    for days in (later, later + 1):
        discount = quotes.discount_for(10**9, 700, days)
        assert quotes.matching_term_days(10**9, 700, discount, due, now) == days
    # Neither: the later one, and the desk refuses the discount.
    assert quotes.matching_term_days(10**9, 700, 1, due, now) == later


def test_default_expiry_a_week_or_an_hour_before_the_due_date() -> None:
    assert default_expiry(0, 100 * DAY) == DEFAULT_EXPIRY_S
    assert default_expiry(0, 2 * DAY) == 2 * DAY - EXPIRY_BEFORE_DUE_S
    assert default_expiry(0, 60) == 59  # not even an hour left: the desk decides
