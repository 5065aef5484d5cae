"""The worker's cache of callers for reads (:class:`backend.auth.CallerCache`): hits only for
the very key presented, expires after its TTL, forgets everything on :meth:`clear`, and never
keeps a lookup that began before a clear (a key revoked meanwhile)."""

from __future__ import annotations

import pytest

from backend.auth import Caller, CallerCache
from ledger.roles import Role

KEY = "Bearer tf_0123456789ab_secret"
CALLER = Caller("0x" + "11" * 20, frozenset({Role.SUPPLIER}), "active", "0123456789ab")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_cached_caller_is_given_for_its_key_only_until_its_ttl(clock: Clock) -> None:
    cache = CallerCache(2.0, clock=clock)
    assert cache.get(KEY) is None
    cache.put(KEY, CALLER, cache.generation)
    assert cache.get(KEY) is CALLER
    assert cache.get(KEY + "x") is None  # another secret for the same key id: looked up
    assert cache.get(None) is None
    clock.now += 1.9
    assert cache.get(KEY) is CALLER
    clock.now += 0.2
    assert cache.get(KEY) is None
    assert cache.hits == 2


def test_clear_forgets_and_a_lookup_from_before_it_is_not_kept(clock: Clock) -> None:
    cache = CallerCache(2.0, clock=clock)
    cache.put(KEY, CALLER, cache.generation)
    before = cache.generation  # a read starts its lookup …
    cache.clear()  # … a revoke runs meanwhile …
    assert cache.get(KEY) is None
    cache.put(KEY, CALLER, before)  # … and the read's result, from before, is not kept
    assert cache.get(KEY) is None
    cache.put(KEY, CALLER, cache.generation)
    assert cache.get(KEY) is CALLER


def test_a_zero_ttl_caches_nothing(clock: Clock) -> None:
    cache = CallerCache(0, clock=clock)
    cache.put(KEY, CALLER, cache.generation)
    assert cache.get(KEY) is None


def test_a_full_cache_drops_what_expired_first(clock: Clock) -> None:
    cache = CallerCache(2.0, max_entries=2, clock=clock)
    cache.put(KEY + "1", CALLER, cache.generation)
    clock.now += 3
    cache.put(KEY + "2", CALLER, cache.generation)
    cache.put(KEY + "3", CALLER, cache.generation)  # full: the expired first one goes
    assert cache.get(KEY + "2") is CALLER
    assert cache.get(KEY + "3") is CALLER
    cache.put(KEY + "4", CALLER, cache.generation)  # full of live ones: start again
    assert cache.get(KEY + "4") is CALLER
    assert cache.get(KEY + "2") is None


def test_commands_that_change_a_key_or_a_member_clear_the_cache() -> None:
    from backend.services.commands import CHANGES_CALLERS, COMMANDS

    assert CHANGES_CALLERS.issubset(COMMANDS)
    for name in ("api_keys.revoke", "members.suspend", "members.reinstate", "members.create"):
        assert name in CHANGES_CALLERS


def test_a_cached_caller_keeps_no_dual_control_setting(clock: Clock) -> None:
    """A write reads dual control with its own key lookup; a cached caller (a read's) carries
    none, so were it ever given to a write, the setting would be read afresh there."""
    cache = CallerCache(2.0, clock=clock)
    looked_up = Caller(CALLER.address, CALLER.roles, "active", CALLER.key_id, dual_control=False)
    cache.put(KEY, looked_up, cache.generation)
    cached = cache.get(KEY)
    assert cached is not None
    assert cached.dual_control is None
    assert cached.address == CALLER.address
    assert cached.roles == CALLER.roles
