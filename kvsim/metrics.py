"""Per-request records -> summary statistics (summary.json).

Besides hit ratios, TTFT and its parts (mean, p50, p99 each), the summary has the
utilisation of every queue (``link:<name>:<a>-><b>`` per link direction,
``device:<name>``, ``prefill:<instance>``, ``index:<server>``), per-instance figures, and
``overloaded``: the prefill instances' mean utilisation above 0.95, where queues grow
without bound and TTFT measures the backlog rather than the system. A trace whose load
comes in waves can be overloaded for hours at a low mean: ``peak_prefill_load`` is the
prefill work arriving in the busiest ``PEAK_WINDOW_S`` window over what the instances can
do in it, and ``overloaded_peak`` says it is above 1 (the backlog grows through that window).
"""

from __future__ import annotations

from typing import Any

import numpy as np

OVERLOAD_UTILIZATION = 0.95
PEAK_WINDOW_S = 600.0  # ten minutes: longer than nearly every request's prefill, short against a trace

PARTS = (
    ("ttft", "ttft_s"), ("metadata", "metadata_s"), ("queue", "queue_s"), ("load", "load_s"),
    ("compute", "compute_s"), ("batch_wait", "batch_wait_s"), ("store", "store_s"),
    ("load_transfer", "load_transfer_s"), ("overlap_saved", "overlap_saved_s"),
)


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def summarize(
    records: dict[str, np.ndarray],
    tier_names: list[str],
    *,
    sim_time_s: float,
    wall_time_s: float,
    link_bytes: dict[str, int] | None = None,
    utilization: dict[str, float] | None = None,
) -> dict[str, Any]:
    blocks = records["blocks"]
    hits = records["prefix_hits"]
    accesses = int(blocks.sum())
    tier_hits = {t: int(records[f"hits_{t}"].sum()) for t in tier_names}
    out: dict[str, Any] = {
        "requests": len(blocks),
        "block_accesses": accesses,
        "block_hits": int(hits.sum()),
        "hit_ratio": float(hits.sum() / accesses) if accesses else 0.0,
        "tier_hits": tier_hits,
        "tier_hit_ratio": {t: (h / accesses if accesses else 0.0) for t, h in tier_hits.items()},
        "present_blocks": int(records["present_blocks"].sum()),
    }
    for key, col in PARTS:
        if col in records:
            x = records[col]
            out[f"{key}_mean_s"] = float(x.mean()) if len(x) else float("nan")
            out[f"{key}_p50_s"] = _pct(x, 50)
            out[f"{key}_p99_s"] = _pct(x, 99)
    if "load_bytes" in records:
        out["load_bytes"] = int(records["load_bytes"].sum())
    if "moved_bytes" in records:
        out["moved_bytes"] = int(records["moved_bytes"].sum())
    if "recomputed_blocks" in records:
        out["recomputed_blocks"] = int(records["recomputed_blocks"].sum())
    if "instance" in records:
        out["per_instance"] = _per_instance(records, tier_names, utilization or {})
    if link_bytes is not None:
        out["link_bytes"] = {k: int(v) for k, v in link_bytes.items()}
    if utilization is not None:
        out["utilization"] = {k: round(float(v), 6) for k, v in utilization.items()}
        out["overloaded"] = bool(utilization.get("prefill", 0.0) > OVERLOAD_UTILIZATION)
        n_inst = sum(1 for k in utilization if k.startswith("prefill:"))
        if n_inst and "arrival_s" in records and "compute_s" in records:
            peak = peak_load(records["arrival_s"], records["compute_s"], n_inst, PEAK_WINDOW_S)
            out["peak_prefill_load"] = round(peak, 6)
            out["peak_window_s"] = PEAK_WINDOW_S
            out["overloaded_peak"] = bool(peak > 1.0)
    out["sim_time_s"] = float(sim_time_s)
    out["wall_time_s"] = float(wall_time_s)
    return out


def peak_load(arrival_s: np.ndarray, work_s: np.ndarray, servers: int, window_s: float) -> float:
    """The most work arriving in any window of ``window_s`` (starting at an arrival), over
    what ``servers`` servers do in it."""
    if not len(arrival_s):
        return 0.0
    order = np.argsort(arrival_s, kind="stable")
    t = np.asarray(arrival_s, dtype=np.float64)[order]
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(work_s, dtype=np.float64)[order])])
    end = np.searchsorted(t, t + window_s, side="left")  # arrivals in [t_i, t_i + window)
    return float((cum[end] - cum[:-1]).max() / (servers * window_s))


def _per_instance(records: dict[str, np.ndarray], tier_names: list[str], util: dict[str, float]) -> dict[str, list[Any]]:
    """Per prefill instance (lists indexed by instance): requests, hit ratios, TTFT, utilisation."""
    inst = records["instance"]
    n = int(inst.max()) + 1 if len(inst) else 0
    n = max(n, sum(1 for k in util if k.startswith("prefill:")))
    out: dict[str, list[Any]] = {k: [] for k in ("requests", "hit_ratio", "top_tier_hit_ratio", "ttft_p50_s",
                                                  "ttft_p99_s", "queue_p99_s", "utilization")}
    top = f"hits_{tier_names[0]}" if tier_names else None
    for i in range(n):
        sel = inst == i
        acc = int(records["blocks"][sel].sum())
        out["requests"].append(int(sel.sum()))
        out["hit_ratio"].append(float(records["prefix_hits"][sel].sum() / acc) if acc else 0.0)
        out["top_tier_hit_ratio"].append(float(records[top][sel].sum() / acc) if acc and top in records else 0.0)
        out["ttft_p50_s"].append(_pct(records["ttft_s"][sel], 50))
        out["ttft_p99_s"].append(_pct(records["ttft_s"][sel], 99))
        out["queue_p99_s"].append(_pct(records["queue_s"][sel], 99))
        out["utilization"].append(round(float(util.get(f"prefill:{i}", 0.0)), 6))
    return out
