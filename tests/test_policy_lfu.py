"""LFU with optional aging: frequency order, LRU among equals, halving every
``age_every`` admissions (exact counts without aging vs libCacheSim:
test_policy_libcachesim.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import LFU

from .conftest import examples


def test_lowest_frequency_then_least_recent_is_evicted() -> None:
    c = LFU(3)
    for k in (1, 2, 3):
        c.admit(k)
    c.touch(1)
    c.touch(1)
    c.touch(3)
    assert c.admit(4) == [2]  # 2 is the only block used once
    assert c.admit(5) == [4]  # 4 (f=1) before 3 (f=2)
    assert list(c) == [5, 3, 1]  # by frequency, then recency


def test_aging_lets_a_formerly_hot_block_go() -> None:
    trace = [1] * 8 + [2, 3, 2, 3, 2, 3, 4, 2, 3]
    plain, aged = LFU(2), LFU(2, age_every=2)
    plain.replay(trace)
    aged.replay(trace)
    assert 1 in plain  # frequency 8 keeps it forever
    assert 1 not in aged and {2, 3} <= set(aged)


def test_aging_halves_every_frequency() -> None:
    c = LFU(4, age_every=3)
    c.admit(1)
    for _ in range(5):
        c.touch(1)  # f = 6
    c.admit(2)
    c.admit(3)  # third admission: halve
    assert c._freq == {1: 3, 2: 1, 3: 1}


@settings(max_examples=examples(60), deadline=None)
@given(keys=st.lists(st.integers(0, 15), max_size=200), cap=st.integers(0, 6), age=st.integers(0, 5))
def test_never_over_capacity_and_remove_works(keys, cap, age) -> None:
    c = LFU(cap, age_every=age)
    for k in keys:
        c.access(k)
        assert len(c) <= cap and len(set(c)) == len(c)
    for k in list(c):
        c.remove(k)
    assert len(c) == 0
