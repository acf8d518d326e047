"""Access-pattern statistics of a trace: pure numpy on a :class:`~kvsim.trace.schema.Trace`.

:func:`analyze` returns every number of ``trace_stats.json`` plus per-request and
per-access columns (saved as parquet, from which the figures are drawn). Every statistic
is defined once, in :data:`DEFINITIONS`, and that text is written next to the numbers.

Conventions: accesses are the trace's block ids in request order; "position" is the
index of a block in its request (0 = first block); a request with no blocks is left out
of every per-request average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kvsim.analysis.runs_test import EXACT_BELOW, min_n_can_reject, monotone_pvalue, runs_test
from kvsim.analysis.stack_distance import log_capacities, lru_hits_by_capacity, stack_distances
from kvsim.trace.schema import Trace

PERCENTILES = (10, 50, 90, 99)

DEFINITIONS: dict[str, str] = {
    "block_accesses": "Sum over requests of len(hash_ids).",
    "unique_blocks": "Number of distinct block ids in the trace.",
    "span_s": "Last arrival time minus first arrival time, in seconds.",
    "arrival_resolution_s": "Smallest positive gap between two distinct arrival times (s).",
    "block_hit_ratio": (
        "Share of block accesses whose block id appeared in an earlier request "
        "(an unlimited cache; a repeat of an id inside the same request is not a hit)."
    ),
    "request_hit_rate": (
        "Per request: blocks whose id appeared in an earlier request / blocks of the request."
    ),
    "share_requests_hit_gt_50": "Share of requests whose request hit rate is > 0.5 (strictly).",
    "share_requests_hit_gt_80": "Share of requests whose request hit rate is > 0.8 (strictly).",
    "share_requests_hit_ge_50": "Share of requests whose request hit rate is >= 0.5.",
    "prefix_hit_ratio": (
        "Like block_hit_ratio but counting, per request, only the longest prefix of blocks "
        "that each appeared in an earlier request (what a prefix cache can reuse)."
    ),
    "set_equals_prefix": (
        "True when, in every request, the hit blocks are exactly its longest seen prefix."
    ),
    "mean_sequential_fraction": (
        "Per request, the share of its blocks lying in a run of two or more consecutive "
        "positions with id[i+1] == id[i] + 1 (a one-block request counts 0); mean over requests."
    ),
    "block_weighted_sequential_fraction": (
        "Blocks in such runs / all block accesses (the same, weighted by request length)."
    ),
    "scattered": "A block not in such a run (the study's 'non-sequential' blocks).",
    "reuse_distance_requests": (
        "For an access of block b in request j whose block appeared in an earlier request, "
        "j - i where i < j is the latest earlier request holding b (1 = the previous request)."
    ),
    "reuse_distance_s": "For the same accesses, arrival time of j minus arrival time of i (s).",
    "top1pct_blocks_access_share": (
        "Share of all block accesses that go to the ceil(1%) most accessed blocks."
    ),
    "zipf_exponent": (
        "s in count ~ rank^-s: minus the least-squares slope of log10(access count) on "
        "log10(rank), fitted on up to 50 log-spaced ranks from 1 to the last block accessed "
        "at least twice (the single-access tail is a plateau set by the trace's length)."
    ),
    "hit_rate_first_block": "Share of accesses at position 0 that are hits (block_hit_ratio sense).",
    "hit_rate_first_four": "The same over positions 0-3 of every request.",
    "hit_rate_last_four": "The same over the last four positions of every request.",
    "lru_curve": (
        "Hit ratio of an LRU cache of C blocks, every block access in trace order looked up "
        "and inserted on a miss, exact for every C from one pass of LRU stack distances."
    ),
    "reuse_structure": (
        "How a request reuses earlier ones. resent_prefix_share: per request, its longest "
        "prefix of blocks seen in earlier requests / its blocks (the part of the prompt that is "
        "a re-sent prefix); new_blocks_per_request: blocks never seen before; "
        "accesses_per_unique_block: block accesses / unique blocks. With sessions (agentic "
        "traces): hits_from_same_session is the share of hits whose latest earlier request "
        "holding the block is of the same session; share_from_previous_session_request is, per "
        "request, the share of its blocks whose latest earlier holder is its session's previous "
        "request; session_gap_s is the time between consecutive requests of a session; "
        "max_concurrent_sessions counts sessions between their first and last request."
    ),
    "lookups_per_request": (
        "Maximal runs of consecutive ids in a request's sorted set of ids: the range/point "
        "lookups a sorted index needs. 'remapped' uses the trace's ids; 'hashed' relabels "
        "ids by a seeded random permutation (keys in hash order, as SHA-256 keys would be), with "
        "every key of the trace in the index."
    ),
}


@dataclass
class TraceAnalysis:
    stats: dict[str, Any]
    requests: dict[str, np.ndarray]  # one entry per request
    accesses: dict[str, np.ndarray]  # one entry per block access
    lru_curve: dict[str, np.ndarray]  # capacity_blocks, hits, hit_ratio, miss_ratio
    popularity: dict[str, np.ndarray] = field(default_factory=dict)  # rank, count


# --- building blocks -------------------------------------------------------------------
def request_positions(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(request index, position in request) of every access."""
    req = trace.request_index()
    pos = np.arange(trace.num_block_accesses, dtype=np.int64) - trace.offsets[req]
    return req, pos


def previous_request(trace: Trace, req: np.ndarray) -> np.ndarray:
    """Per access: the latest earlier request (``< own``) that holds the same id, or -1."""
    n = trace.num_block_accesses
    out = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return out
    order = np.lexsort((req, trace.hash_ids))  # by id, then request (stable: then position)
    s_id = trace.hash_ids[order]
    s_req = req[order]
    new_group = np.ones(n, dtype=bool)  # a new (id, request) pair starts here
    new_group[1:] = (s_id[1:] != s_id[:-1]) | (s_req[1:] != s_req[:-1])
    start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    before = start - 1
    ok = before >= 0
    ok[ok] = s_id[before[ok]] == s_id[ok]
    res = np.full(n, -1, dtype=np.int64)
    res[ok] = s_req[before[ok]]
    out[order] = res
    return out


def sequential_mask(trace: Trace, req: np.ndarray) -> np.ndarray:
    """True for blocks in a run of >= 2 positions with id[i+1] == id[i] + 1 within a request."""
    h = trace.hash_ids
    n = h.size
    in_run = np.zeros(n, dtype=bool)
    if n < 2:
        return in_run
    link = (req[1:] == req[:-1]) & (np.diff(h) == 1)
    in_run[:-1] |= link
    in_run[1:] |= link
    return in_run


def percentiles(x: np.ndarray, qs: tuple[int, ...] = PERCENTILES) -> dict[str, float | None]:
    if x.size == 0:
        return {f"p{q}": None for q in qs}
    v = np.percentile(x, qs)
    return {f"p{q}": float(val) for q, val in zip(qs, v, strict=True)}


def zipf_fit(
    counts_desc: np.ndarray, points: int = 50
) -> tuple[float | None, float | None, float | None]:
    """(exponent s, intercept log10 c, r^2) of count ~ c rank^-s, fitted as in DEFINITIONS."""
    last = int(np.count_nonzero(counts_desc >= 2))
    if last < 3:
        return None, None, None
    ranks = np.unique(np.round(np.logspace(0, np.log10(last), points)).astype(np.int64))
    if ranks.size < 3:
        return None, None, None
    lx = np.log10(ranks.astype(np.float64))
    ly = np.log10(counts_desc[ranks - 1].astype(np.float64))
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else 1.0
    return float(-slope), float(intercept), r2


def count_sorted_runs(keys: np.ndarray, req: np.ndarray, nreq: int) -> np.ndarray:
    """Per request: maximal runs of consecutive integers in its sorted set of keys."""
    out = np.zeros(nreq, dtype=np.int64)
    if keys.size == 0:
        return out
    order = np.lexsort((keys, req))
    k = keys[order]
    r = req[order]
    first = np.ones(k.size, dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (np.diff(k) != 1)
    dup = np.zeros(k.size, dtype=bool)
    dup[1:] = (r[1:] == r[:-1]) & (k[1:] == k[:-1])  # a repeated key is not a new run
    return np.bincount(r[first & ~dup], minlength=nreq).astype(np.int64)


# --- the analysis ----------------------------------------------------------------------
def analyze(
    trace: Trace,
    *,
    runs_min_n: int = 2,
    runs_alpha: float = 0.05,
    runs_exact_below: int = EXACT_BELOW,
    lru_points: int = 200,
    seed: int = 0,
) -> TraceAnalysis:
    """Every statistic of ``trace_stats.json`` (see :data:`DEFINITIONS`)."""
    rng = np.random.default_rng(seed)
    nreq = len(trace)
    h = trace.hash_ids
    n = int(h.size)
    blocks = trace.blocks_per_request.astype(np.int64)
    has_blocks = blocks > 0
    nb = np.maximum(blocks, 1)  # denominators (requests without blocks are masked out)
    req, pos = request_positions(trace)
    arrival = trace.arrival_s.astype(np.float64)

    uniq, dense = np.unique(h, return_inverse=True)
    dense = dense.astype(np.int64).reshape(-1)
    n_unique = int(uniq.size)

    # --- hits against an unlimited cache, reuse distances ---------------------------
    prev_req = previous_request(trace, req)
    hit = prev_req >= 0
    hits_req = np.bincount(req, weights=hit, minlength=nreq).astype(np.int64)
    rate = hits_req / nb
    reuse_req = np.where(hit, req - prev_req, -1)
    reuse_s = np.full(n, np.nan)
    reuse_s[hit] = arrival[req[hit]] - arrival[prev_req[hit]]

    # longest seen prefix: position of the first miss, or the whole request
    prefix = blocks.copy()
    miss = ~hit
    rm, pm = req[miss], pos[miss]
    if rm.size:
        first = np.ones(rm.size, dtype=bool)
        first[1:] = rm[1:] != rm[:-1]
        prefix[rm[first]] = pm[first]
    prefix_rate = prefix / nb

    # --- sequential runs and scattered blocks ---------------------------------------
    in_run = sequential_mask(trace, req)
    seq_req = np.bincount(req, weights=in_run, minlength=nreq).astype(np.int64)
    seq_frac = seq_req / nb
    scattered = ~in_run
    n_scat = blocks - seq_req

    # --- runs test on each request's scattered ids, in request order -----------------
    sc_ids = h[scattered].astype(np.float64)
    sc_off = np.zeros(nreq + 1, dtype=np.int64)
    np.cumsum(n_scat, out=sc_off[1:])
    p_obs = np.full(nreq, np.nan)
    p_shuf = np.full(nreq, np.nan)
    n_runs = np.full(nreq, -1, dtype=np.int64)
    increasing = np.zeros(nreq, dtype=bool)
    for i in np.flatnonzero(n_scat >= max(runs_min_n, 2)):
        x = sc_ids[sc_off[i] : sc_off[i + 1]]
        res = runs_test(x, method="auto", exact_below=runs_exact_below)
        p_obs[i] = res.pvalue
        n_runs[i] = res.runs
        increasing[i] = bool(np.all(np.diff(x) > 0))
        p_shuf[i] = runs_test(rng.permutation(x), method="auto", exact_below=runs_exact_below).pvalue
    tested = ~np.isnan(p_obs)
    n_tested = int(tested.sum())
    passed = tested & (p_obs > runs_alpha)
    can_reject_n = min_n_can_reject(runs_alpha, "auto", runs_exact_below)

    def share(mask: np.ndarray, within: np.ndarray) -> float | None:
        d = int(within.sum())
        return float((mask & within).sum() / d) if d else None

    powered = tested & (n_scat >= (can_reject_n or 10**9))
    runs_by_n = []
    for lo, hi in ((2, 3), (4, 8), (9, 19), (20, 49), (50, None)):
        sel = tested & (n_scat >= lo) & ((n_scat <= hi) if hi is not None else True)
        runs_by_n.append(
            {
                "scattered_ids": f"{lo}-{hi}" if hi is not None else f">={lo}",
                "requests": int(sel.sum()),
                "share_p_gt_alpha": share(p_obs > runs_alpha, sel),
                "share_p_gt_alpha_shuffled": share(p_shuf > runs_alpha, sel),
                "monotone_sequence_p_at_lower_end": monotone_pvalue(lo, "auto", runs_exact_below),
            }
        )

    # --- LRU stack distances ------------------------------------------------------------
    sd = stack_distances(dense)
    caps = log_capacities(n_unique, lru_points)
    lru_hits = lru_hits_by_capacity(sd, caps)
    lru_hit_ratio = lru_hits / n if n else np.zeros(caps.size)
    unlimited_lru = float(np.count_nonzero(sd > 0) / n) if n else 0.0

    # --- popularity ---------------------------------------------------------------------
    counts = np.bincount(dense, minlength=n_unique)
    counts_desc = np.sort(counts)[::-1]
    top = max(1, math.ceil(0.01 * n_unique)) if n_unique else 0
    zipf_s, zipf_c, zipf_r2 = zipf_fit(counts_desc)

    # --- hit rate by position -----------------------------------------------------------
    from_end = blocks[req] - 1 - pos

    def hit_share(sel: np.ndarray) -> float | None:
        k = int(sel.sum())
        return float(hit[sel].sum() / k) if k else None

    # --- how ids were assigned ----------------------------------------------------------
    same_req = req[1:] == req[:-1]
    multi = blocks >= 2
    not_increasing = np.zeros(nreq, dtype=bool)
    if n >= 2:
        bad = same_req & (np.diff(h) <= 0)
        not_increasing[req[1:][bad]] = True
    first_idx = np.sort(np.unique(dense, return_index=True)[1]) if n else np.zeros(0, np.int64)
    first_seen = h[first_idx]
    dense_first_seen = bool(np.array_equal(first_seen, np.arange(n_unique)))
    # chained prefix hashes: an id always follows the same id (or always starts a request)
    pred = np.where(pos > 0, np.r_[-1, dense[:-1]], -1) if n else dense
    pairs = np.unique(dense * (n_unique + 1) + (pred + 1)).size if n else 0
    chained = bool(pairs == n_unique)
    perm = rng.permutation(n_unique)
    lookups_remapped = count_sorted_runs(h, req, nreq)
    lookups_hashed = count_sorted_runs(perm[dense], req, nreq)

    def mean_req(x: np.ndarray) -> float | None:
        return float(x[has_blocks].mean()) if has_blocks.any() else None

    hit_scat = hit & scattered
    stats: dict[str, Any] = {
        "trace": trace.name,
        "source": trace.source,
        "block_tokens": trace.block_tokens,
        "requests": nreq,
        "requests_with_blocks": int(has_blocks.sum()),
        "block_accesses": n,
        "unique_blocks": n_unique,
        "span_s": trace.span_s,
        "arrival_resolution_s": _resolution(arrival),
        "blocks_per_request": {"mean": mean_req(blocks.astype(float)), **percentiles(blocks[has_blocks])},
        # reuse
        "block_hit_ratio": float(hit.mean()) if n else 0.0,
        "mean_request_hit_rate": mean_req(rate),
        "share_requests_hit_gt_50": mean_req(rate > 0.5),
        "share_requests_hit_gt_80": mean_req(rate > 0.8),
        "share_requests_hit_ge_50": mean_req(rate >= 0.5),
        "share_requests_hit_eq_50": mean_req(rate == 0.5),
        "share_requests_hit_eq_0": mean_req(hits_req == 0),
        "prefix_hit_ratio": float(prefix.sum() / n) if n else 0.0,
        "set_equals_prefix": bool(np.array_equal(prefix, hits_req)),
        "share_requests_set_ne_prefix": mean_req(prefix != hits_req),
        # sequential / scattered
        "mean_sequential_fraction": mean_req(seq_frac),
        "block_weighted_sequential_fraction": float(in_run.mean()) if n else 0.0,
        "scattered_blocks": int(scattered.sum()),
        "scattered_per_request": {"mean": mean_req(n_scat.astype(float)), **percentiles(n_scat[has_blocks])},
        "scattered_share_at_position_0": float((scattered & (pos == 0)).sum() / max(1, scattered.sum())),
        "scattered_share_hits": float(hit_scat.sum() / max(1, scattered.sum())),
        # runs test
        "runs_test_definition": (
            f"Per request with at least {max(runs_min_n, 2)} scattered blocks: the Wald-Wolfowitz "
            "runs test on the sequence of its scattered block ids in request order, split at "
            "the sequence's median (values >= median are 'above'), two-sided, exact "
            f"distribution of the number of runs for fewer than {runs_exact_below} ids and the "
            f"normal approximation (no continuity correction) above; a request passes when "
            f"p > {runs_alpha}. runs_test_n requests were tested; the share is of those."
        ),
        "runs_test_share_p_gt_005": share(p_obs > runs_alpha, tested),
        "runs_test_n": n_tested,
        "runs_test_share_ids_p_gt_005": (
            float(n_scat[passed].sum() / n_scat[tested].sum()) if n_tested else None
        ),
        "runs_test_share_p_gt_005_shuffled": share(p_shuf > runs_alpha, tested),
        "runs_test_share_scattered_strictly_increasing": share(increasing, tested),
        "runs_test_min_n_that_can_reject": can_reject_n,
        "runs_test_share_p_gt_005_when_n_can_reject": share(p_obs > runs_alpha, powered),
        "runs_test_n_can_reject": int(powered.sum()),
        "runs_test_share_p_gt_005_shuffled_when_n_can_reject": share(p_shuf > runs_alpha, powered),
        "runs_test_by_n": runs_by_n,
        # reuse distance and popularity
        "reuse_distance_requests": percentiles(reuse_req[hit].astype(float)),
        "reuse_distance_s": percentiles(reuse_s[hit]),
        "top1pct_blocks": top,
        "top1pct_blocks_access_share": float(counts_desc[:top].sum() / n) if n else 0.0,
        "share_blocks_accessed_once": float(np.mean(counts == 1)) if n_unique else 0.0,
        "max_block_accesses": int(counts_desc[0]) if n_unique else 0,
        "hits_share_most_accessed_block": (
            float(np.count_nonzero(hit & (dense == int(np.argmax(counts)))) / max(1, int(hit.sum())))
            if n_unique else 0.0
        ),
        "zipf_exponent": zipf_s,
        "zipf_fit_log10_intercept": zipf_c,
        "zipf_fit_r2": zipf_r2,
        # position
        "hit_rate_first_block": hit_share(pos == 0),
        "hit_rate_first_four": hit_share(pos < 4),
        "hit_rate_last_four": hit_share(from_end < 4),
        "hit_rate_last_block": hit_share(from_end == 0),
        # LRU
        "lru_unlimited_hit_ratio": unlimited_lru,
        "lru_curve": {
            "capacity_blocks": caps[:: max(1, caps.size // 25)].tolist() + [None],
            "hit_ratio": lru_hit_ratio[:: max(1, caps.size // 25)].tolist() + [unlimited_lru],
            "note": "capacity null = unlimited; the full curve is in lru_curve.csv",
        },
        "lru_capacity_for_share_of_unlimited": {
            f"{q:.2f}": _capacity_for(sd, q) for q in (0.5, 0.9, 0.99)
        },
        # id assignment
        "ids_strictly_increasing_within_requests": bool(not not_increasing.any()),
        "share_multiblock_requests_strictly_increasing": share(~not_increasing, multi),
        "ids_dense_first_seen_order": dense_first_seen,
        "ids_prefix_chained": chained,
        "lookups_per_request_remapped": mean_req(lookups_remapped.astype(float)),
        "lookups_per_request_hashed": mean_req(lookups_hashed.astype(float)),
        "reuse_structure": reuse_structure(trace, req, hit, prev_req, prefix),
        "definitions": DEFINITIONS,
    }
    requests = {
        "request": np.arange(nreq, dtype=np.int64),
        "arrival_s": arrival,
        "blocks": blocks,
        "hits": hits_req,
        "hit_rate": np.where(has_blocks, rate, np.nan),
        "prefix_hits": prefix,
        "prefix_hit_rate": np.where(has_blocks, prefix_rate, np.nan),
        "sequential_blocks": seq_req,
        "sequential_fraction": np.where(has_blocks, seq_frac, np.nan),
        "scattered": n_scat,
        "runs": n_runs,
        "runs_pvalue": p_obs,
        "runs_pvalue_shuffled": p_shuf,
        "scattered_increasing": increasing,
        "lookups_remapped": lookups_remapped,
        "lookups_hashed": lookups_hashed,
    }
    accesses = {
        "request": req,
        "position": pos,
        "block_id": h,
        "arrival_s": arrival[req] if n else np.zeros(0),
        "hit": hit,
        "sequential": in_run,
        "reuse_requests": reuse_req,
        "reuse_s": reuse_s,
        "stack_distance": sd,
    }
    lru = {
        "capacity_blocks": caps,
        "hits": lru_hits,
        "hit_ratio": lru_hit_ratio,
        "miss_ratio": 1.0 - lru_hit_ratio,
    }
    popularity = {"rank": np.arange(1, n_unique + 1, dtype=np.int64), "count": counts_desc}
    return TraceAnalysis(stats, requests, accesses, lru, popularity)


def reuse_structure(
    trace: Trace, req: np.ndarray, hit: np.ndarray, prev_req: np.ndarray, prefix: np.ndarray
) -> dict[str, Any]:
    """The ``reuse_structure`` statistics (see :data:`DEFINITIONS`)."""
    blocks = trace.blocks_per_request.astype(np.int64)
    has = blocks > 0
    nb = np.maximum(blocks, 1)
    nreq = len(trace)
    hits_req = np.bincount(req, weights=hit, minlength=nreq).astype(np.int64)
    share = prefix / nb
    n_unique = int(np.unique(trace.hash_ids).size)
    out: dict[str, Any] = {
        "accesses_per_unique_block": trace.num_block_accesses / n_unique if n_unique else None,
        "resent_prefix_share": {
            "mean": float(share[has].mean()) if has.any() else None, **percentiles(share[has])},
        "share_requests_resent_ge_90": float((share[has] >= 0.9).mean()) if has.any() else None,
        "reused_blocks_per_request": {
            "mean": float(hits_req[has].mean()) if has.any() else None, **percentiles(hits_req[has])},
        "new_blocks_per_request": {
            "mean": float((blocks - hits_req)[has].mean()) if has.any() else None,
            **percentiles((blocks - hits_req)[has])},
    }
    sess = trace.session
    if sess is None:
        return out
    sess = np.asarray(sess, dtype=np.int64)
    order = np.argsort(sess, kind="stable")  # requests grouped by session, in time order
    same = np.zeros(nreq, dtype=bool)
    same[order[1:]] = sess[order[1:]] == sess[order[:-1]]
    sess_prev = np.full(nreq, -1, dtype=np.int64)
    sess_prev[order[1:][same[order[1:]]]] = order[:-1][same[order[1:]]]
    t = trace.arrival_s
    gaps = t[order[1:]][same[order[1:]]] - t[order[:-1]][same[order[1:]]]
    ids, dense, counts = np.unique(sess, return_inverse=True, return_counts=True)
    first = np.full(ids.size, np.inf)  # (sized by the sessions, not by their largest id)
    last = np.full(ids.size, -np.inf)
    np.minimum.at(first, dense, t)
    np.maximum.at(last, dense, t)
    ev = np.concatenate([first, last])
    step = np.concatenate([np.ones(ids.size), -np.ones(ids.size)])
    o = np.lexsort((-step, ev))  # a session that starts when another ends overlaps it
    from_prev = hit & (prev_req == sess_prev[req])
    out.update({
        "sessions": int(ids.size),
        "requests_per_session": {"mean": float(counts.mean()), "max": int(counts.max()), **percentiles(counts)},
        "session_duration_s": percentiles(last - first),
        "session_gap_s": percentiles(gaps),
        "max_concurrent_sessions": int(np.cumsum(step[o]).max()) if ids.size else 0,
        "hits_from_same_session": (
            float((hit & (sess[np.maximum(prev_req, 0)] == sess[req])).sum() / max(1, int(hit.sum())))),
        "share_from_previous_session_request": float(
            (np.bincount(req, weights=from_prev, minlength=nreq) / nb)[has].mean()) if has.any() else None,
    })
    return out


def _resolution(t: np.ndarray) -> float | None:
    """Smallest positive gap between distinct arrival times (the timestamps' resolution)."""
    gaps = np.diff(np.unique(t))
    return float(gaps.min()) if gaps.size else None


def _capacity_for(sd: np.ndarray, share: float) -> int | None:
    """Smallest LRU capacity (blocks) that gets ``share`` of the unlimited cache's hits (exact)."""
    finite = np.sort(sd[sd > 0])
    if finite.size == 0:
        return None
    k = max(1, math.ceil(share * finite.size - 1e-9))
    return int(finite[k - 1])
