"""Per-request records -> summary statistics (summary.json)."""

from __future__ import annotations

from typing import Any

import numpy as np


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
    for key, col in (("ttft", "ttft_s"), ("metadata", "metadata_s"), ("load", "load_s"),
                     ("queue", "queue_s"), ("compute", "compute_s"), ("store", "store_s")):
        if col in records:
            x = records[col]
            out[f"{key}_mean_s"] = float(x.mean()) if len(x) else float("nan")
            out[f"{key}_p50_s"] = _pct(x, 50)
            out[f"{key}_p99_s"] = _pct(x, 99)
    if "load_bytes" in records:
        out["load_bytes"] = int(records["load_bytes"].sum())
    if "moved_bytes" in records:
        out["moved_bytes"] = int(records["moved_bytes"].sum())
    if link_bytes is not None:
        out["link_bytes"] = {k: int(v) for k, v in link_bytes.items()}
    if utilization is not None:
        out["utilization"] = {k: round(float(v), 6) for k, v in utilization.items()}
    out["sim_time_s"] = float(sim_time_s)
    out["wall_time_s"] = float(wall_time_s)
    return out
