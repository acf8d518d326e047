"""FIFO: insertion order only; a hit changes nothing (exact counts vs libCacheSim:
test_policy_libcachesim.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import FIFO

from .conftest import examples


def test_hits_do_not_reorder() -> None:
    c = FIFO(2)
    c.admit(1)
    c.admit(2)
    c.touch(1)
    assert c.admit(3) == [1]
    assert list(c) == [2, 3]
    c.remove(2)
    assert list(c) == [3] and FIFO(0).admit(9) == [9]


@settings(max_examples=examples(100), deadline=None)
@given(keys=st.lists(st.integers(0, 20), max_size=200), cap=st.integers(0, 8))
def test_matches_a_queue_model(keys, cap) -> None:
    queue: list[int] = []
    hits = 0
    for k in keys:
        if k in queue:
            hits += 1
        elif cap:
            queue.append(k)
            if len(queue) > cap:
                queue.pop(0)
    assert FIFO(cap).replay(keys) == hits
