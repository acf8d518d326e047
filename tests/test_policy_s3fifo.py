"""S3-FIFO, step by step as its docstring (and libCacheSim's S3FIFO.c) states it; exact
counts vs libCacheSim: test_policy_libcachesim.py."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import S3FIFO

from .conftest import examples


def test_queue_sizes_follow_libcachesim() -> None:
    c = S3FIFO(100)
    assert (c.small_cap, c.main_cap, c.ghost_cap, c.move_to_main) == (10, 90, 90, 2)


def test_one_hit_wonders_leave_through_the_small_queue_into_the_ghost() -> None:
    c = S3FIFO(20)  # small 2, main 18
    for k in range(20):  # warm-up: small fills, then main
        c.admit(k)
    assert list(c._small) == [0, 1] and len(c._main) == 18
    assert c.admit(100) == [0]  # first eviction: from the small queue, into the ghost
    assert 0 in c._ghost and 0 not in c
    assert c.admit(0) == [1]  # a ghost hit enters main directly
    assert 0 in c._main


def test_a_block_used_twice_in_small_moves_to_main() -> None:
    c = S3FIFO(20)
    for k in range(20):
        c.admit(k)
    c.touch(0)
    c.touch(0)
    assert c.admit(100) == [1]  # 0 (freq 2) is moved to main, 1 is evicted
    assert 0 in c._main and c._freq[0] == 0


def test_main_reinserts_used_blocks_with_a_two_bit_counter() -> None:
    c = S3FIFO(20)
    for k in range(20):  # small [0, 1], main [2..19]
        c.admit(k)
    for _ in range(5):
        c.touch(2)  # the head of main, freq 5
    assert c.admit(100) == [0] and c.admit(101) == [1]  # small -> ghost
    assert c.admit(0) == [100]  # ghost hit: 0 goes to main, which is now over M
    assert c.admit(102) == [3]  # main: 2 is reinserted with min(5, 3) - 1 = 2, 3 goes
    assert c._freq[2] == 2 and list(c._main)[-2:] == [0, 2]


@settings(max_examples=examples(60), deadline=None)
@given(keys=st.lists(st.integers(0, 40), max_size=300), cap=st.integers(0, 30))
def test_never_over_capacity(keys, cap) -> None:
    c = S3FIFO(cap)
    for k in keys:
        c.access(k)
        assert len(c) <= cap
        assert len(c._ghost) <= c.ghost_cap
        assert set(c._small).isdisjoint(c._main)
