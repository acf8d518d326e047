"""Prefix-aware LRU: a chain's tail goes before its head; without chains it is LRU."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import LRU, PrefixLRU
from kvsim.policy.prefix_lru import chain_parents
from tests.test_hierarchy import make_trace

from .conftest import examples

# Hits on the real conversation trace (LRU: 12831, 60921, 102290).
GOLDEN = {1000: 12847, 10000: 61046, 50000: 102290}


def test_chain_parents() -> None:
    t = make_trace([[0, 1, 2], [0, 1, 3], [7]])
    assert chain_parents(t.hash_ids, t.offsets) == {1: 0, 2: 1, 3: 1}


def test_the_tail_is_evicted_before_the_head() -> None:
    p = PrefixLRU(3)
    p.bind(make_trace([[0, 1, 2], [5]]))
    for k in (0, 1, 2):
        p.admit(k)
    # plain LRU would evict 0, the head; here only leaves go, and 2 is the only leaf
    assert p.admit(5) == [2]
    assert p.admit(6) == [1]  # 1 became a leaf once 2 left; 5 was used later
    p.touch(0)
    assert p.admit(7) == [5]


def test_a_head_with_resident_children_stays_even_when_old() -> None:
    p = PrefixLRU(3)
    p.bind(make_trace([[0, 1], [0, 2]]))
    p.admit(0)
    p.admit(1)
    p.admit(2)  # 0 is the least recent, but the parent of both
    assert p.admit(9) == [1]
    p.remove(2)
    assert p.admit(10) == [] and p.admit(11) == [0]  # 0 is a leaf again (the oldest)


@settings(max_examples=examples(100), deadline=None)
@given(keys=st.lists(st.integers(0, 20), max_size=200), cap=st.integers(0, 8))
def test_without_chains_it_is_lru(keys, cap) -> None:
    assert PrefixLRU(cap).replay(keys) == LRU(cap).replay(keys)


@settings(max_examples=examples(60), deadline=None)
@given(
    reqs=st.lists(st.tuples(st.integers(0, 5), st.integers(1, 8)), min_size=1, max_size=50),
    cap=st.integers(1, 12),
)
def test_a_resident_block_never_loses_its_parent_to_eviction(reqs, cap) -> None:
    chains = [[0] + [100 * (c + 1) + j for j in range(1, n)] for c, n in reqs]
    trace = make_trace(chains)
    p = PrefixLRU(cap)
    p.bind(trace)
    for k in trace.hash_ids.tolist():
        parent_was_in = {c for c in p if p.parent.get(c) in p}
        p.access(k)
        # eviction removes leaves only: a block whose parent was resident keeps it
        for c in parent_was_in:
            if c in p:
                assert p.parent[c] in p
        assert len(p) <= cap


@pytest.mark.real_trace
@pytest.mark.parametrize("capacity", sorted(GOLDEN))
def test_golden_hits_on_the_real_trace(capacity, real_trace) -> None:
    p = PrefixLRU(capacity)
    p.bind(real_trace)
    assert p.replay(real_trace.hash_ids.tolist()) == GOLDEN[capacity]


def test_chain_parents_with_empty_requests() -> None:
    """Requests [5 6], [], [7 8 9], []: offsets 0 2 2 5 5; every block's parent is the one
    before it in its request, and an empty request (even the last, starting at the end)
    starts nothing."""
    assert chain_parents(np.array([5, 6, 7, 8, 9]), np.array([0, 2, 2, 5, 5])) == {6: 5, 8: 7, 9: 8}
