"""The hotness-aware policy: admission control, the score, the online tuning of alpha,
and its gap to OPT against LRU's on the real conversation trace."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import LRU, OPT, Hotness
from tests.test_hierarchy import make_trace

# Hits on the real conversation trace; LRU and OPT for comparison (docs/placement.md).
GOLDEN = {1000: 21978, 3000: 35306, 10000: 67256, 50000: 101931}
LRU_HITS = {1000: 12831, 3000: 18761, 10000: 60921, 50000: 102290}
OPT_HITS = {1000: 55019, 3000: 84953, 10000: 105710, 50000: 105710}


def test_a_requests_last_block_is_kept_only_once_reused() -> None:
    p = Hotness(10)
    p.bind(make_trace([[0, 1, 2], [0, 1, 2, 3]]))
    assert p.replay([0, 1, 2]) == 0
    assert set(p) == {0, 1}  # 2 was created as the request's (partial) last block
    assert p.replay([0, 1, 2, 3]) == 2
    assert 2 in p  # now reused: kept; 3 is the new last block
    assert 3 not in p


def test_fast_tiers_keep_only_blocks_used_again() -> None:
    gpu, dram = Hotness(4), Hotness(4)
    peers = [gpu, dram]
    gpu.join(0, peers)
    dram.join(1, peers)
    assert dram.stats is gpu.stats
    gpu.observe([7], True)
    assert not gpu.accepts(7) and dram.accepts(7)
    gpu.observe([7], False)
    assert gpu.accepts(7)


def test_greedydual_order_frequency_and_position() -> None:
    p = Hotness(2, alphas=(1.0,), w_depths=(2.0,))
    p.bind(make_trace([[0, 1, 2]]))
    p.replay([1, 1, 1])  # f(1) = 3
    p.replay([2])
    # H(1) = 3 + 2/2 = 4, H(2) = 1 + 2/3: block 2 goes first though used last
    p.replay([0])
    assert set(p) == {0, 1}
    assert p.score(0) == pytest.approx(1 + 2.0)


@pytest.mark.real_trace
def test_small_caches_tune_toward_frequency_large_ones_toward_recency(real_trace) -> None:
    keys = real_trace.hash_ids.tolist()[:150_000]
    small, large = Hotness(1000), Hotness(50000)
    for p in (small, large):
        p.bind(real_trace)
        p.replay(keys)
    assert small.stats.alpha > large.stats.alpha


@settings(max_examples=60, deadline=None)
@given(
    reqs=st.lists(st.tuples(st.integers(0, 5), st.integers(1, 8)), min_size=1, max_size=60),
    cap=st.integers(0, 12),
)
def test_never_over_capacity_and_replay_equals_access(reqs, cap) -> None:
    trace = make_trace([[0] + [100 * (c + 1) + j for j in range(1, n)] for c, n in reqs])
    keys = trace.hash_ids.tolist()
    a, b = Hotness(cap, tune_rate=2), Hotness(cap, tune_rate=2)
    a.bind(trace)
    b.bind(trace)
    hits = 0
    for k in keys:
        hits += a.access(k)
        assert len(a) <= cap
    assert hits == b.replay(keys)


@pytest.mark.real_trace
@pytest.mark.parametrize("capacity", sorted(GOLDEN))
def test_gap_to_opt_on_the_real_trace(capacity, real_trace) -> None:
    p = Hotness(capacity)
    p.bind(real_trace)
    hits = p.replay(real_trace.hash_ids.tolist())
    assert hits == GOLDEN[capacity]
    assert OPT(capacity).replay(real_trace.hash_ids) == OPT_HITS[capacity]
    if capacity == 3000:
        assert LRU(capacity).replay(real_trace.hash_ids.tolist()) == LRU_HITS[capacity]
    gap, lru_gap = OPT_HITS[capacity] - hits, OPT_HITS[capacity] - LRU_HITS[capacity]
    if capacity <= 10000:
        assert gap < lru_gap  # closes part of LRU's gap where the cache is small
    else:
        assert gap <= 1.15 * lru_gap  # large caches: both within a few % of OPT
