"""Belady's OPT: next uses, optimality against brute force on tiny traces, and at least the
hits of every other policy, on random traces (hypothesis) and on the real trace
(libCacheSim's Belady agreement: test_policy_libcachesim.py; OPT across tiers:
test_hierarchy.py)."""

from __future__ import annotations

from functools import cache, partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import ARC, FIFO, LFU, LRU, OPT, S3FIFO, Hotness, PrefixLRU
from kvsim.policy.opt import INF, next_use
from tests.test_hierarchy import make_trace
from tests.test_policy_hotness import GOLDEN as HOTNESS
from tests.test_policy_libcachesim import GOLDEN as LIBCACHESIM
from tests.test_policy_prefix_lru import GOLDEN as PREFIX_LRU

from .conftest import examples

OTHERS = {
    "lru": LRU,
    "fifo": FIFO,
    "lfu": partial(LFU, age_every=4),
    "s3fifo": S3FIFO,
    "arc": ARC,
    "prefix_lru": PrefixLRU,
    "hotness": Hotness,
}


def test_next_use() -> None:
    assert next_use(np.array([5, 3, 5, 5, 3, 9])).tolist() == [2, 4, 3, INF, INF, INF]
    assert next_use(np.array([], dtype=np.int64)).tolist() == []


def best_possible(keys: tuple[int, ...], capacity: int) -> int:
    """Most hits any cache of ``capacity`` can get, by exhaustive search (it may keep or
    decline each missed block and evict any resident one)."""

    @cache
    def go(i: int, held: frozenset[int]) -> int:
        if i == len(keys):
            return 0
        k = keys[i]
        if k in held:
            return 1 + go(i + 1, held)
        best = go(i + 1, held)  # do not keep k
        if capacity:
            if len(held) < capacity:
                best = max(best, go(i + 1, held | {k}))
            else:
                for v in held:
                    best = max(best, go(i + 1, (held - {v}) | {k}))
        return best

    return go(0, frozenset())


@settings(max_examples=examples(150), deadline=None)
@given(keys=st.lists(st.integers(0, 5), max_size=14), capacity=st.integers(0, 3))
def test_opt_is_optimal_on_tiny_traces(keys, capacity) -> None:
    assert OPT(capacity).replay(keys) == best_possible(tuple(keys), capacity)


# Random traces shaped like prefix chains, so that prefix_lru and hotness see chains.
requests = st.lists(
    st.tuples(st.integers(0, 7), st.integers(1, 8)), min_size=1, max_size=80
).map(lambda rs: [[0] + [100 * (c + 1) + j for j in range(1, n)] for c, n in rs])


@settings(max_examples=examples(60), deadline=None)
@given(reqs=requests, capacity=st.integers(0, 30))
def test_opt_has_at_least_the_hits_of_every_policy_on_random_traces(reqs, capacity) -> None:
    trace = make_trace(reqs)
    keys = trace.hash_ids.tolist()
    best = OPT(capacity).replay(keys)
    for name, factory in OTHERS.items():
        p = factory(capacity)
        p.bind(trace)
        assert p.replay(keys) <= best, name


@pytest.mark.real_trace
@pytest.mark.parametrize("capacity", [1000, 10000, 50000])
def test_opt_has_at_least_the_hits_of_every_policy_on_the_real_trace(capacity, real_trace) -> None:
    """OPT is replayed here; the others' counts are the golden numbers their own tests
    check (against libCacheSim where it has the policy)."""
    best = OPT(capacity).replay(real_trace.hash_ids)
    assert best == {1000: 55019, 10000: 105710, 50000: 105710}[capacity]
    others = {name: row[capacity] for name, row in LIBCACHESIM.items() if name != "opt"}
    others["prefix_lru"] = PREFIX_LRU[capacity]
    others["hotness"] = HOTNESS[capacity]
    assert all(hits <= best for hits in others.values()), others
    # with 10,000 blocks OPT already hits every block that is ever used again
    unique = len(np.unique(real_trace.hash_ids))
    assert best <= real_trace.num_block_accesses - unique


def test_access_after_bind_equals_replay() -> None:
    reqs = [[0, 1, 2], [0, 3], [0, 1, 4], [0, 3, 5], [0, 1, 2]]
    trace = make_trace(reqs)
    for bypass in (True, False):
        p = OPT(2, bypass=bypass)
        p.bind(trace)
        assert sum(p.access(k) for k in trace.hash_ids.tolist()) == OPT(2, bypass=bypass).replay(trace.hash_ids)


def test_accepts_only_blocks_worth_keeping() -> None:
    p = OPT(1)
    p.bind(make_trace([[1], [2], [1], [3]]))
    p.observe([1], True)
    assert p.accepts(1)
    p.admit(1)
    p.observe([2], True)
    assert not p.accepts(2)  # never used again
