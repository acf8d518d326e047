"""Every statistic of the trace analysis on small hand-made traces, answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kvsim.analysis.stats import analyze, count_sorted_runs, previous_request, zipf_fit
from kvsim.trace.schema import Trace

from .conftest import shared


def make_trace(reqs: list[list[int]], times: list[float] | None = None, name: str = "hand") -> Trace:
    """A trace from lists of block ids (one list per request) and arrival times."""
    lens = [len(r) for r in reqs]
    offsets = np.zeros(len(reqs) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    ids = np.array([x for r in reqs for x in r], dtype=np.int64)
    t = np.asarray(times if times is not None else range(len(reqs)), dtype=np.float64)
    return Trace(
        arrival_s=t,
        input_tokens=np.maximum(np.array(lens, dtype=np.int64), 1) * 512,
        output_tokens=np.ones(len(reqs), dtype=np.int64),
        offsets=offsets,
        hash_ids=ids,
        name=name,
    )


# Mooncake-like: chained prefixes renumbered in first-seen order.
#   r0 t=0  [0 1 2 3]   all new
#   r1 t=1  [0 1 4]     0 1 hit (prefix 2)
#   r2 t=2  [0 5 6]     0 hit   (prefix 1)
#   r3 t=4  [0 1 2 7]   0 1 2 hit (prefix 3)
#   r4 t=10 [8]         new
T1 = make_trace([[0, 1, 2, 3], [0, 1, 4], [0, 5, 6], [0, 1, 2, 7], [8]], [0, 1, 2, 4, 10])


@pytest.fixture(scope=shared("module"))
def a1():
    return analyze(T1)


def test_counts(a1) -> None:
    s = a1.stats
    assert s["requests"] == 5
    assert s["block_accesses"] == 15
    assert s["unique_blocks"] == 9
    assert s["span_s"] == 10.0
    assert s["arrival_resolution_s"] == 1.0


def test_hit_rates(a1) -> None:
    s = a1.stats
    # hits per request 0, 2, 1, 3, 0 of 4, 3, 3, 4, 1 blocks
    assert a1.requests["hits"].tolist() == [0, 2, 1, 3, 0]
    np.testing.assert_allclose(a1.requests["hit_rate"], [0, 2 / 3, 1 / 3, 3 / 4, 0])
    assert s["block_hit_ratio"] == pytest.approx(6 / 15)
    assert s["share_requests_hit_gt_50"] == pytest.approx(2 / 5)  # r1 (0.67) and r3 (0.75)
    assert s["share_requests_hit_gt_80"] == 0.0
    assert s["share_requests_hit_ge_50"] == pytest.approx(2 / 5)
    assert s["mean_request_hit_rate"] == pytest.approx((2 / 3 + 1 / 3 + 3 / 4) / 5)
    assert a1.requests["prefix_hits"].tolist() == [0, 2, 1, 3, 0]
    assert s["prefix_hit_ratio"] == pytest.approx(6 / 15)
    assert s["set_equals_prefix"] is True


def test_share_threshold_is_strict() -> None:
    # r1 has hit rate exactly 0.5: counted by >= 0.5, not by > 0.5
    a = analyze(make_trace([[0, 1], [0, 2]]))
    assert a.stats["share_requests_hit_gt_50"] == 0.0
    assert a.stats["share_requests_hit_ge_50"] == 0.5
    assert a.stats["share_requests_hit_eq_50"] == 0.5


def test_sequential_fraction(a1) -> None:
    s = a1.stats
    # in runs: r0 4/4, r1 {0,1} 2/3, r2 {5,6} 2/3, r3 {0,1,2} 3/4, r4 (one block) 0
    np.testing.assert_allclose(a1.requests["sequential_fraction"], [1, 2 / 3, 2 / 3, 3 / 4, 0])
    assert s["mean_sequential_fraction"] == pytest.approx((1 + 2 / 3 + 2 / 3 + 3 / 4 + 0) / 5)
    assert s["block_weighted_sequential_fraction"] == pytest.approx(11 / 15)
    assert a1.requests["scattered"].tolist() == [0, 1, 1, 1, 1]
    assert s["scattered_blocks"] == 4
    assert s["scattered_share_at_position_0"] == pytest.approx(2 / 4)  # r2's 0 and r4's 8
    assert s["scattered_share_hits"] == pytest.approx(1 / 4)  # r2's 0
    # nothing to runs-test: every request has fewer than 2 scattered blocks
    assert s["runs_test_n"] == 0
    assert s["runs_test_share_p_gt_005"] is None


def test_reuse_distances(a1) -> None:
    s = a1.stats
    # r1: 0,1 from r0 (1, 1); r2: 0 from r1 (1); r3: 0 from r2 (1), 1 from r1 (2), 2 from r0 (3)
    acc = a1.accesses
    assert sorted(acc["reuse_requests"][acc["hit"]].tolist()) == [1, 1, 1, 1, 2, 3]
    assert sorted(acc["reuse_s"][acc["hit"]].tolist()) == [1, 1, 1, 2, 3, 4]
    assert s["reuse_distance_requests"] == {"p10": 1.0, "p50": 1.0, "p90": 2.5, "p99": 2.95}
    assert s["reuse_distance_s"]["p50"] == 1.5
    assert s["reuse_distance_s"]["p90"] == 3.5


def test_popularity_and_position(a1) -> None:
    s = a1.stats
    # counts: id0 4, id1 3, id2 2, six ids once; ceil(1% of 9) = 1 block
    assert s["top1pct_blocks"] == 1
    assert s["top1pct_blocks_access_share"] == pytest.approx(4 / 15)
    assert s["share_blocks_accessed_once"] == pytest.approx(6 / 9)
    assert s["max_block_accesses"] == 4
    assert s["hits_share_most_accessed_block"] == pytest.approx(3 / 6)
    assert s["hit_rate_first_block"] == pytest.approx(3 / 5)
    assert s["hit_rate_first_four"] == pytest.approx(6 / 15)  # every position is < 4
    assert s["hit_rate_last_four"] == pytest.approx(6 / 15)
    assert s["hit_rate_last_block"] == 0.0


def test_lru(a1) -> None:
    s = a1.stats
    # sequence 0 1 2 3 | 0 1 4 | 0 5 6 | 0 1 2 7 | 8: re-access stack distances 4 4 3 3 5 7
    sd = a1.accesses["stack_distance"]
    assert sd.tolist() == [-1, -1, -1, -1, 4, 4, -1, 3, -1, -1, 3, 5, 7, -1, -1]
    curve = dict(zip(a1.lru_curve["capacity_blocks"].tolist(), a1.lru_curve["hits"].tolist(), strict=True))
    assert curve[1] == 0 and curve[3] == 2 and curve[4] == 4 and curve[5] == 5 and curve[9] == 6
    assert s["lru_unlimited_hit_ratio"] == pytest.approx(6 / 15)
    assert s["lru_capacity_for_share_of_unlimited"] == {"0.50": 4, "0.90": 7, "0.99": 7}


def test_id_assignment_checks(a1) -> None:
    s = a1.stats
    assert s["ids_strictly_increasing_within_requests"] is True
    assert s["ids_dense_first_seen_order"] is True
    assert s["ids_prefix_chained"] is True
    # lookups (maximal runs of consecutive ids): 1, 2, 2, 2, 1
    assert a1.requests["lookups_remapped"].tolist() == [1, 2, 2, 2, 1]
    assert s["lookups_per_request_remapped"] == pytest.approx(8 / 5)


# Not Mooncake-like: a hit after a miss (set != prefix), an id repeated inside a request,
# decreasing ids, ids not in first-seen order, and an id with two different predecessors.
#   r0 t=0 [10 20 30]
#   r1 t=3 [50 20 10]   20, 10 hit; prefix 0 (50 is new)
#   r2 t=3 [7 7 8]      nothing hits; the second 7 repeats inside the request
#   r3 t=6 [20]         hit, from r1 (distance 2 requests, 3 s)
T2 = make_trace([[10, 20, 30], [50, 20, 10], [7, 7, 8], [20]], [0, 3, 3, 6])


def test_non_mooncake_definitions() -> None:
    a = analyze(T2)
    s = a.stats
    assert a.requests["hits"].tolist() == [0, 2, 0, 1]
    assert a.requests["prefix_hits"].tolist() == [0, 0, 0, 1]
    assert s["set_equals_prefix"] is False
    assert s["share_requests_set_ne_prefix"] == pytest.approx(1 / 4)
    assert s["block_hit_ratio"] == pytest.approx(3 / 10)
    assert s["prefix_hit_ratio"] == pytest.approx(1 / 10)
    # a repeat inside one request is an LRU hit (distance 1) but not a block hit
    assert a.accesses["stack_distance"][7] == 1
    assert s["lru_unlimited_hit_ratio"] == pytest.approx(4 / 10)
    # sequential: only 7 -> 8 in r2 (positions 1 and 2)
    np.testing.assert_allclose(a.requests["sequential_fraction"], [0, 0, 2 / 3, 0])
    assert s["ids_strictly_increasing_within_requests"] is False
    assert s["share_multiblock_requests_strictly_increasing"] == pytest.approx(1 / 3)
    assert s["ids_dense_first_seen_order"] is False
    assert s["ids_prefix_chained"] is False  # 20 follows 10 in r0 and 50 in r1
    assert sorted(a.accesses["reuse_requests"][a.accesses["hit"]].tolist()) == [1, 1, 2]
    assert sorted(a.accesses["reuse_s"][a.accesses["hit"]].tolist()) == [3, 3, 3]
    assert s["arrival_resolution_s"] == 3.0
    # lookups on the sorted set: r0 {10,20,30} 3; r1 3; r2 {7,8} 1; r3 1
    assert a.requests["lookups_remapped"].tolist() == [3, 3, 1, 1]


def test_runs_test_per_request_by_hand() -> None:
    # scattered ids 5 1 9 3 7 2 (no two consecutive): median 4 -> 1 0 1 0 1 0, R = 6 with
    # n1 = n2 = 3; exact P(R = 6) = 2 / C(6, 3) = 0.1, two-sided p = 0.2.
    # The second request's scattered ids 0 10 20 ... 80 are increasing: R = 2 with n1 = 4,
    # n2 = 5; P(R = 2) = 2 / C(9, 4) = 2 / 126, p = 4 / 126 < 0.05.
    t = make_trace([[5, 1, 9, 3, 7, 2], [0, 10, 20, 30, 40, 50, 60, 70, 80], [100, 101]])
    a = analyze(t)
    s = a.stats
    assert a.requests["runs"].tolist() == [6, 2, -1]
    assert a.requests["runs_pvalue"][0] == pytest.approx(0.2)
    assert a.requests["runs_pvalue"][1] == pytest.approx(4 / 126)
    assert math.isnan(a.requests["runs_pvalue"][2])  # no scattered block
    assert s["runs_test_n"] == 2
    assert s["runs_test_share_p_gt_005"] == 0.5
    assert s["runs_test_share_ids_p_gt_005"] == pytest.approx(6 / 15)
    assert s["runs_test_share_scattered_strictly_increasing"] == 0.5
    assert s["runs_test_min_n_that_can_reject"] == 9
    assert s["runs_test_n_can_reject"] == 1  # only the 9-id request
    assert s["runs_test_share_p_gt_005_when_n_can_reject"] == 0.0


def test_runs_min_n_setting() -> None:
    t = make_trace([[5, 1, 9, 3, 7, 2], [0, 10, 20, 30, 40, 50, 60, 70, 80]])
    assert analyze(t, runs_min_n=7).stats["runs_test_n"] == 1


def test_previous_request_skips_repeats_in_same_request() -> None:
    t = make_trace([[1, 2], [2, 2, 1], [1]])
    req = t.request_index()
    assert previous_request(t, req).tolist() == [-1, -1, 0, 0, 0, 1]


def test_count_sorted_runs() -> None:
    keys = np.array([3, 1, 2, 9, 5, 5, 6])
    req = np.array([0, 0, 0, 0, 1, 1, 1])
    assert count_sorted_runs(keys, req, 2).tolist() == [2, 1]  # {1,2,3},{9}; {5,6}


def test_zipf_fit_recovers_exponent() -> None:
    ranks = np.arange(1, 5001)
    counts = np.floor(1e5 * ranks**-1.0).astype(np.int64)
    s_hat, _, r2 = zipf_fit(counts)
    assert s_hat == pytest.approx(1.0, abs=0.02)
    assert r2 > 0.99
    assert zipf_fit(np.array([1, 1, 1])) == (None, None, None)


def test_hashed_key_order_breaks_runs() -> None:
    # two requests of 100 new blocks each: 1 lookup each with remapped ids; in a random key
    # order each request's keys interleave with the other's (about 50 runs expected)
    t = make_trace([list(range(100)), list(range(100, 200))])
    s = analyze(t).stats
    assert s["lookups_per_request_remapped"] == 1
    assert s["lookups_per_request_hashed"] > 30


def test_empty_request_is_left_out() -> None:
    t = make_trace([[0, 1], [], [0, 1]])
    s = analyze(t).stats
    assert s["requests"] == 3 and s["requests_with_blocks"] == 2
    assert s["share_requests_hit_gt_80"] == 0.5
    assert s["mean_sequential_fraction"] == 1.0


# Longer requests, so that the position windows (first four, last four) cut requests; chosen
# so that a window one position shorter or longer gives a different answer:
#   r0 t=0 [0 1 2 3 4 5 6 7]   all new
#   r1 t=2 [0 1 2 3 4 5 8 9]   positions 0-5 hit (from r0: 1 request, 2 s back)
#   r2 t=5 [0 1 2 3 10]        positions 0-3 hit (from r1: 1 request, 3 s back)
#   r3 t=6 [0 11 12]           position 0 hits (from r2: 1 request, 1 s back)
#   r4 t=9 [0 1]               0 from r3 (1 request, 3 s), 1 from r2 (2 requests, 4 s)
T3 = make_trace(
    [[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 8, 9], [0, 1, 2, 3, 10], [0, 11, 12], [0, 1]],
    [0, 2, 5, 6, 9],
)


def test_position_windows_by_hand() -> None:
    s = analyze(T3).stats
    # position 0: every request but r0 -> 4/5 (positions 0-1 would give 7/10)
    assert s["hit_rate_first_block"] == pytest.approx(4 / 5)
    # positions 0-3: r0 0/4, r1 4/4, r2 4/4, r3 1/3, r4 2/2 -> 11/17
    # (0-2 would give 9/14, 0-4 12/20)
    assert s["hit_rate_first_four"] == pytest.approx(11 / 17)
    # last four: r0 (4-7) 0, r1 (4-7) 2, r2 (1-4) 3, r3 (all) 1, r4 (all) 2 -> 8/17
    # (last three would give 6/14, last five 10/20)
    assert s["hit_rate_last_four"] == pytest.approx(8 / 17)
    # last block: only r4's block 1 hits -> 1/5 (last two blocks would give 3/10)
    assert s["hit_rate_last_block"] == pytest.approx(1 / 5)


def test_reuse_windows_by_hand() -> None:
    a = analyze(T3)
    s = a.stats
    hit = a.accesses["hit"]
    assert a.accesses["reuse_requests"][hit].tolist() == [1] * 12 + [2]
    assert a.accesses["reuse_s"][hit].tolist() == [2.0] * 6 + [3.0] * 4 + [1.0, 3.0, 4.0]
    # 13 distances sorted [1 x 12, 2]; rank q/100 x 12: p90 at 10.8 -> 1, p99 at 11.88 -> 1.88
    assert s["reuse_distance_requests"] == {"p10": 1.0, "p50": 1.0, "p90": 1.0, "p99": pytest.approx(1.88)}
    # seconds sorted [1, 2 x 6, 3 x 5, 4]: p10 at 1.2 -> 2; p50 at 6 -> 2; p90 at 10.8 -> 3;
    # p99 at 11.88 -> 3 + 0.88 = 3.88
    assert s["reuse_distance_s"] == {"p10": 2.0, "p50": 2.0, "p90": 3.0, "p99": pytest.approx(3.88)}
    # blocks per request sorted [2 3 5 8 8]: mean 26 / 5; p10 at rank 0.4 -> 2.4
    assert s["blocks_per_request"] == {"mean": pytest.approx(5.2), "p10": pytest.approx(2.4),
                                       "p50": 5.0, "p90": 8.0, "p99": 8.0}
    assert s["span_s"] == 9.0 and s["arrival_resolution_s"] == 1.0


def test_sequential_runs_by_hand() -> None:
    a = analyze(T3)
    # r0 8/8; r1 0..5 and 8 9 -> 8/8; r2 0..3 -> 4/5 (10 alone); r3 11 12 -> 2/3 (0 alone); r4 2/2
    assert a.requests["sequential_blocks"].tolist() == [8, 8, 4, 2, 2]
    assert a.requests["scattered"].tolist() == [0, 0, 1, 1, 0]
    assert a.stats["mean_sequential_fraction"] == pytest.approx((1 + 1 + 4 / 5 + 2 / 3 + 1) / 5)
    assert a.stats["block_weighted_sequential_fraction"] == pytest.approx(24 / 26)
    # lookups on the sorted id sets: r0 1, r1 {0..5, 8 9} 2, r2 {0..3, 10} 2, r3 {0, 11 12} 2, r4 1
    assert a.requests["lookups_remapped"].tolist() == [1, 2, 2, 2, 1]


def test_a_run_starts_only_at_consecutive_ids_within_a_request() -> None:
    """id 5 ends r0 and 6 starts r1: consecutive ids across a request boundary are no run."""
    a = analyze(make_trace([[1, 3, 5], [6, 8], [9, 10, 12]]))
    assert a.requests["sequential_blocks"].tolist() == [0, 0, 2]
    assert a.accesses["sequential"].tolist() == [False] * 5 + [True, True, False]
