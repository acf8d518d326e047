"""Property tests: random valid traces never crash the analysis, and every ratio is in [0, 1]."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.analysis.stats import analyze
from kvsim.trace.generate import GeneratorConfig, generate_trace
from kvsim.trace.schema import Trace

from .conftest import examples

RATIO_KEYS = [
    "block_hit_ratio", "mean_request_hit_rate", "share_requests_hit_gt_50",
    "share_requests_hit_gt_80", "share_requests_hit_ge_50", "share_requests_hit_eq_50",
    "share_requests_hit_eq_0", "prefix_hit_ratio", "share_requests_set_ne_prefix",
    "mean_sequential_fraction", "block_weighted_sequential_fraction",
    "scattered_share_at_position_0", "scattered_share_hits", "runs_test_share_p_gt_005",
    "runs_test_share_ids_p_gt_005", "runs_test_share_p_gt_005_shuffled",
    "runs_test_share_scattered_strictly_increasing", "runs_test_share_p_gt_005_when_n_can_reject",
    "runs_test_share_p_gt_005_shuffled_when_n_can_reject", "top1pct_blocks_access_share",
    "share_blocks_accessed_once", "hits_share_most_accessed_block", "hit_rate_first_block",
    "hit_rate_first_four", "hit_rate_last_four", "hit_rate_last_block", "lru_unlimited_hit_ratio",
    "share_multiblock_requests_strictly_increasing",
]


@st.composite
def traces(draw) -> Trace:
    n = draw(st.integers(1, 25))
    id_max = draw(st.sampled_from([3, 30, 2**40]))
    reqs = [draw(st.lists(st.integers(0, id_max), min_size=0, max_size=12)) for _ in range(n)]
    gaps = draw(st.lists(st.floats(0, 100, allow_nan=False), min_size=n, max_size=n))
    lens = np.array([len(r) for r in reqs], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return Trace(
        arrival_s=np.cumsum(gaps),
        input_tokens=np.maximum(lens, 1) * 512,
        output_tokens=np.ones(n, dtype=np.int64),
        offsets=offsets,
        hash_ids=np.array([x for r in reqs for x in r], dtype=np.int64),
    )


@settings(max_examples=examples(150), deadline=None)
@given(traces())
def test_random_traces_keep_ratios_in_range(trace: Trace) -> None:
    a = analyze(trace, lru_points=20)
    s = a.stats
    for key in RATIO_KEYS:
        v = s[key]
        assert v is None or 0.0 <= v <= 1.0, (key, v)
    for col in ("hit_rate", "prefix_hit_rate", "sequential_fraction", "runs_pvalue"):
        v = a.requests[col]
        v = v[~np.isnan(v)]
        assert np.all((v >= 0) & (v <= 1)), col
    r = a.requests
    assert np.all(r["prefix_hits"] <= r["hits"])
    assert s["set_equals_prefix"] == bool(np.all(r["prefix_hits"] == r["hits"]))
    assert s["prefix_hit_ratio"] <= s["block_hit_ratio"] + 1e-12
    # an unlimited LRU hits every re-access, also repeats inside one request
    assert s["lru_unlimited_hit_ratio"] >= s["block_hit_ratio"] - 1e-12
    hr = a.lru_curve["hit_ratio"]
    assert np.all(np.diff(hr) >= 0)
    assert hr[-1] == s["lru_unlimited_hit_ratio"]
    assert s["block_accesses"] == trace.num_block_accesses
    assert a.accesses["stack_distance"].shape == (trace.num_block_accesses,)
    for q in s["reuse_distance_requests"].values():
        assert q is None or q >= 1
    assert all(math.isfinite(x) for x in r["lookups_remapped"])


@settings(max_examples=examples(8), deadline=None)
@given(st.integers(0, 10_000))
def test_generated_mooncake_like_traces_pass_the_id_checks(seed: int) -> None:
    """The generator renumbers chained prefix hashes in first-seen order, as Mooncake does."""
    t = generate_trace(GeneratorConfig(duration_s=60.0, seed=seed))
    s = analyze(t, lru_points=20).stats
    assert s["ids_strictly_increasing_within_requests"]
    assert s["ids_dense_first_seen_order"]
    assert s["ids_prefix_chained"]
    assert s["set_equals_prefix"]
