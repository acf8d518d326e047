"""End to end: the trace_analysis command, its outputs, the notebook, and the real trace."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import EMBEDDED, ROOT, run_notebook

FIGURES = [
    "fig1a_hit_rate_cdf.png",
    "fig1b_block_ids_over_time.png",
    "fig2a_sequential_fraction.png",
    "fig2b_runs_test_pvalues.png",
    "fig3_reuse_distance.png",
    "fig4_lru_miss_ratio.png",
    "fig5_popularity_position.png",
    "overview.png",
]
REQUIRED_KEYS = [
    "requests", "block_accesses", "unique_blocks", "span_s", "block_hit_ratio",
    "share_requests_hit_gt_50", "share_requests_hit_gt_80", "prefix_hit_ratio", "set_equals_prefix",
    "mean_sequential_fraction", "block_weighted_sequential_fraction", "runs_test_share_p_gt_005",
    "runs_test_definition", "runs_test_n", "reuse_distance_requests", "reuse_distance_s",
    "top1pct_blocks_access_share", "zipf_exponent", "hit_rate_first_block", "hit_rate_first_four",
    "hit_rate_last_four", "lru_curve", "lru_unlimited_hit_ratio", "definitions",
]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m kvsim +experiment=trace_analysis` on the embedded trace, as a user runs it."""
    out = tmp_path_factory.mktemp("trace_analysis") / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "kvsim", "+experiment=trace_analysis", f"trace.path={EMBEDDED}",
         f"hydra.run.dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.child_process
def test_cli_writes_every_output(cli_run: Path) -> None:
    for name in ["trace_stats.json", "requests.parquet", "accesses.parquet", "lru_curve.csv",
                 "popularity.csv", "report.md", "config.yaml", *FIGURES]:
        p = cli_run / name
        assert p.is_file() and p.stat().st_size > 0, name
    for name in FIGURES:
        assert (cli_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = json.loads((cli_run / "trace_stats.json").read_text())
    for key in REQUIRED_KEYS:
        assert key in s, key
    from kvsim.trace.mooncake import read_mooncake_jsonl

    trace = read_mooncake_jsonl(EMBEDDED)
    assert (s["requests"], s["block_accesses"]) == (len(trace), trace.num_block_accesses)
    assert s["lru_curve"]["capacity_blocks"][-1] is None  # unlimited
    assert s["lru_curve"]["hit_ratio"][-1] == s["lru_unlimited_hit_ratio"]
    assert s["study_trace"] is None  # kvsim's own trace: the study has no numbers for it
    assert s["timing_s"]["total"] > 0
    report = (cli_run / "report.md").read_text()
    for name in FIGURES[:-1]:
        assert name in report
    assert "id assignment" in report


@pytest.mark.child_process
def test_saved_tables_agree_with_stats(cli_run: Path) -> None:
    import pandas as pd

    s = json.loads((cli_run / "trace_stats.json").read_text())
    acc = pd.read_parquet(cli_run / "accesses.parquet")
    req = pd.read_parquet(cli_run / "requests.parquet")
    lru = pd.read_csv(cli_run / "lru_curve.csv")
    assert len(acc) == s["block_accesses"] and len(req) == s["requests"]
    assert acc["hit"].mean() == pytest.approx(s["block_hit_ratio"])
    assert req["sequential_fraction"].mean() == pytest.approx(s["mean_sequential_fraction"])
    sd = acc["stack_distance"].to_numpy()
    for cap, ratio in zip(lru["capacity_blocks"], lru["hit_ratio"], strict=True):
        assert np.mean((sd > 0) & (sd <= cap)) == pytest.approx(ratio)


def test_experiment_config_is_single_run() -> None:
    from hydra import compose, initialize_config_dir

    import kvsim.config  # noqa: F401

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=trace_analysis"], return_hydra_config=True)
    assert cfg.mode == "trace_analysis"
    assert str(cfg.hydra.mode) != "RunMode.MULTIRUN"
    assert cfg.experiment.runs_min_n == 2


@pytest.mark.child_process
def test_notebook_is_current_and_runs(cli_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = run_notebook("trace_analysis", {"KVSIM_ANALYSIS_DIR": str(cli_run)}, monkeypatch)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5


@pytest.mark.real_trace
def test_real_trace_headline_numbers(real_trace_path: Path) -> None:
    from kvsim.analysis.stats import analyze
    from kvsim.trace.mooncake import read_mooncake_jsonl

    trace = read_mooncake_jsonl(real_trace_path)
    s = analyze(trace).stats
    assert (s["requests"], s["block_accesses"], s["unique_blocks"]) == (12_031, 288_500, 182_790)
    assert s["block_hit_ratio"] == pytest.approx(0.366412, abs=1e-6)
    assert s["share_requests_hit_gt_50"] == pytest.approx(0.293159, abs=1e-6)
    assert s["share_requests_hit_ge_50"] == pytest.approx(0.424653, abs=1e-6)
    assert s["share_requests_hit_gt_80"] == pytest.approx(0.189594, abs=1e-6)
    assert s["mean_sequential_fraction"] == pytest.approx(0.761053, abs=1e-6)
    assert s["block_weighted_sequential_fraction"] == pytest.approx(0.935317, abs=1e-6)
    assert s["runs_test_n"] == 3945
    assert s["runs_test_share_p_gt_005"] == pytest.approx(0.988086, abs=1e-6)
    assert s["runs_test_share_p_gt_005_when_n_can_reject"] == 0.0
    assert s["set_equals_prefix"] and s["prefix_hit_ratio"] == s["block_hit_ratio"]
    # the facts about id assignment that the report relies on
    assert s["ids_strictly_increasing_within_requests"]
    assert s["ids_dense_first_seen_order"]
    assert s["ids_prefix_chained"]
    assert s["runs_test_share_scattered_strictly_increasing"] == 1.0
    assert s["hit_rate_first_block"] == pytest.approx(12_030 / 12_031)


@pytest.mark.real_trace
@pytest.mark.slow
def test_real_trace_full_analysis_writes_everything(tmp_path: Path, real_trace_path: Path) -> None:
    # Its speed is measured by benchmarks/bench_analysis.py, never asserted here.
    from kvsim.analysis.run import AnalysisSettings, analyze_to_dir
    from kvsim.report.trace_report import report_trace_analysis
    from kvsim.trace.mooncake import read_mooncake_jsonl

    t0 = time.perf_counter()
    trace = read_mooncake_jsonl(real_trace_path)
    read_s = time.perf_counter() - t0
    analyze_to_dir(trace, tmp_path, AnalysisSettings(), read_s=read_s)
    s = report_trace_analysis(tmp_path)
    assert s["study_trace"] == "conversation"
    for name in FIGURES:
        assert (tmp_path / name).is_file()
