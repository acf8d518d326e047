"""``mode: trace_analysis``: statistics, tables, figures and a report of one trace.

    python -m kvsim +experiment=trace_analysis trace.path=FILE hydra.run.dir=DIR

writes into DIR:

* ``trace_stats.json``  every statistic, with its definition (:mod:`kvsim.analysis.stats`)
* ``requests.parquet``  one row per request (hit rate, sequential fraction, runs test, ...)
* ``accesses.parquet``  one row per block access (hit, reuse distances, stack distance)
* ``lru_curve.csv``     LRU hit/miss ratio at log-spaced capacities (exact, from stack distances)
* ``popularity.csv``    how many blocks were accessed k times, for every k
* figures (``fig*.png``, ``overview.png``) drawn from the files above, and ``report.md``
  (:func:`kvsim.report.trace_report.report_trace_analysis`: this module only computes).

:func:`analyze_to_dir` writes the tables from a :class:`Trace` without Hydra (notebooks,
tests); the mode (:func:`kvsim.modes.trace_analysis`) then draws.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvsim.analysis.settings import TraceAnalysisSettings
from kvsim.analysis.stats import analyze
from kvsim.io import write_json, write_with
from kvsim.trace.schema import Trace

log = logging.getLogger("kvsim")

# Mooncake FAST'25 file stems -> the trace kind the study reports numbers for.
STUDY_TRACE_BY_STEM = {
    "conversation_trace": "conversation",
    "toolagent_trace": "toolagent",
    "synthetic_trace": "synthetic",
}


@dataclass
class AnalysisSettings(TraceAnalysisSettings):
    """The experiment's settings plus what the run takes from the rest of the config."""

    figures: bool = True
    seed: int = 0
    kv_block_bytes: int | None = None  # bytes of one block's KV for a model (secondary axis)
    model: str | None = None


def study_trace_kind(setting: str, source: str) -> str | None:
    if setting == "auto":
        return STUDY_TRACE_BY_STEM.get(Path(source).stem) if source else None
    return None if setting in ("none", "", None) else setting


def analyze_to_dir(trace: Trace, out: str | Path, settings: AnalysisSettings | None = None,
                   read_s: float = 0.0) -> dict[str, Any]:
    """Analyse ``trace`` and write its tables and ``trace_stats.json`` into ``out``; return the
    stats. Numbers only: the figures and ``report.md`` are drawn from these files by
    :func:`kvsim.report.trace_report.report_trace_analysis`."""
    s = settings or AnalysisSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    a = analyze(
        trace,
        runs_min_n=s.runs_min_n,
        runs_alpha=s.runs_alpha,
        runs_exact_below=s.runs_exact_below,
        lru_points=s.lru_points,
        seed=s.seed,
    )
    t_analysis = time.perf_counter() - t0
    stats = a.stats
    stats["trace_file"] = Path(trace.source).name if trace.source else trace.name
    stats["study_trace"] = study_trace_kind(s.study_trace, trace.source)
    stats["settings"] = {
        "runs_min_n": s.runs_min_n,
        "runs_alpha": s.runs_alpha,
        "runs_exact_below": s.runs_exact_below,
        "lru_points": s.lru_points,
        "seed": s.seed,
    }
    if s.kv_block_bytes:
        stats["kv_block_bytes"] = int(s.kv_block_bytes)
        stats["kv_model"] = s.model

    t1 = time.perf_counter()
    req = pd.DataFrame(a.requests)
    acc = pd.DataFrame(a.accesses)
    acc["request"] = acc["request"].astype(np.int32)
    acc["position"] = acc["position"].astype(np.int32)
    acc["reuse_requests"] = acc["reuse_requests"].astype(np.int32)
    acc["reuse_s"] = acc["reuse_s"].astype(np.float32)
    lru = pd.DataFrame(a.lru_curve)
    counts, blocks = np.unique(a.popularity["count"], return_counts=True)
    pop = pd.DataFrame({"accesses": counts, "blocks": blocks})
    write_with(out / "requests.parquet", lambda p: req.to_parquet(p, index=False))
    write_with(out / "accesses.parquet", lambda p: acc.to_parquet(p, index=False))
    write_with(out / "lru_curve.csv", lambda p: lru.to_csv(p, index=False))
    write_with(out / "popularity.csv", lambda p: pop.to_csv(p, index=False))
    stats["timing_s"] = {"read": read_s, "analysis": t_analysis, "write_tables": time.perf_counter() - t1}
    stats["timing_s"]["total"] = read_s + time.perf_counter() - t0
    write_json(out / "trace_stats.json", stats)
    return stats
