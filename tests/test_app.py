"""The command line end to end: outputs, single-tier validation mode, config errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException

from kvsim.app import ConfigError, run, validate

from .conftest import ROOT, reference_lru_hits, require_module

SUMMARY_KEYS = {
    "requests", "block_accesses", "block_hits", "hit_ratio", "tier_hits", "ttft_p50_s",
    "ttft_p99_s", "metadata_p50_s", "metadata_p99_s", "sim_time_s", "wall_time_s", "load_p99_s",
    "batch_wait_p99_s", "per_instance", "overloaded", "workload", "gpu_kv_budget", "router", "scheduler",
}
REQUEST_COLUMNS = {
    "arrival_s", "trace_arrival_s", "blocks", "prefix_hits", "hits_gpu", "hits_dram", "hits_remote", "hits_ssd",
    "metadata_s", "load_s", "queue_s", "compute_s", "store_s", "ttft_s", "instance", "batch_wait_s",
    "overlap_saved_s", "recomputed_blocks", "load_transfer_s", "iterations",
}


def kvsim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvsim", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.child_process
def test_simulate_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = kvsim(f"hydra.run.dir={out}", "trace.max_requests=300", "progress=false")
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["requests"] == 300
    assert set(summary["tier_hits"]) == {"gpu", "dram", "remote", "ssd"}
    assert summary["block_hits"] == sum(summary["tier_hits"].values())
    assert summary["workload"] == {"spread": "tick", "tick_s": 3.0, "tick_inferred": True}
    assert len(summary["per_instance"]["utilization"]) == 4 and summary["overloaded"] is False
    assert summary["gpu_kv_budget"]["kv_gib"] == pytest.approx(80 - 8 - 8.03e9 * 2 / 2**30)
    assert any(k.startswith("link:pcie0:host0->gpu0") for k in summary["utilization"])
    df = pd.read_parquet(out / "requests.parquet")
    assert REQUEST_COLUMNS <= set(df.columns) and len(df) == 300
    assert (out / "ttft.png").stat().st_size > 10_000
    assert (out / ".hydra" / "config.yaml").is_file() and (out / "config.yaml").is_file()
    assert not list(out.glob(".*.tmp"))


@pytest.mark.child_process
def test_single_tier_cli_matches_independent_lru(tmp_path: Path, real_trace_path: Path) -> None:
    out = tmp_path / "st"
    p = kvsim(
        f"trace.path={real_trace_path}", "system=single_tier", "system.capacity_blocks=5000",
        "policy=lru", f"hydra.run.dir={out}",
    )
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    from kvsim.trace.mooncake import read_mooncake_jsonl

    keys = read_mooncake_jsonl(real_trace_path).hash_ids.tolist()
    assert summary["block_accesses"] == 288_500
    assert summary["block_hits"] == reference_lru_hits(keys, 5000)
    # what a sweep over several traces groups by (issue 9): the trace's name, with the policy and size
    assert (summary["trace"], summary["policy"], summary["capacity_blocks"]) == ("conversation_trace", "lru", 5000)


@pytest.mark.parametrize("capacity", [100, 2_000, 20_000, 100_000, 200_000])
def test_single_tier_lru_exact_counts_on_real_trace(compose_cfg, real_trace_path, tmp_path, capacity) -> None:
    """kvsim's LRU == a reference LRU written in the test == libCacheSim's LRU."""
    cfg = compose_cfg([f"trace.path={real_trace_path}", "system=single_tier", f"system.capacity_blocks={capacity}"])
    summary = run(cfg, tmp_path)
    from kvsim.trace.mooncake import read_mooncake_jsonl

    keys = read_mooncake_jsonl(real_trace_path).hash_ids.tolist()
    assert summary["block_hits"] == reference_lru_hits(keys, capacity)
    lcs = require_module("libcachesim", "KVSIM_REQUIRE_LIBCACHESIM")
    cache = lcs.LRU(cache_size=capacity)
    req = lcs.Request()
    req.obj_size = 1
    lcs_hits = 0
    for k in keys:
        req.obj_id = k
        lcs_hits += cache.get(req)
    assert summary["block_hits"] == lcs_hits
    if capacity >= 182_790:  # every unique block fits: only cold misses
        assert summary["block_hits"] == 288_500 - 182_790


def test_a_model_that_does_not_fit_is_refused_with_the_arithmetic(tmp_path: Path, compose_cfg) -> None:
    """Llama-3-70B (70.6e9 params x 2 B = 131.5 GiB) on one 80 GiB H100."""
    with pytest.raises(ConfigError, match=r"HBM 80.0 GiB x 1 = 80.0 GiB - weights 131.5 GiB .* = -59.5 GiB"):
        validate(compose_cfg(["model=llama3_70b"]))
    p = kvsim("model=llama3_70b", f"hydra.run.dir={tmp_path / 'x'}")
    assert p.returncode != 0
    assert "llama3_70b does not fit on gpu h100 with gpu.tensor_parallel=1" in p.stderr
    assert "raise gpu.tensor_parallel (>= 2)" in p.stderr
    validate(compose_cfg(["model=llama3_70b", "gpu.tensor_parallel=2"]))


def test_out_of_range_values_fail_before_the_run(compose_cfg) -> None:
    from kvsim.config import check_config

    for override, key in [
        ("gpu.instances=0", "gpu.instances"),
        ("system.instances_per_host=0", "system.instances_per_host"),
        ("scheduler.max_batch_tokens=0", "scheduler.max_batch_tokens"),
        ("trace.spread=smear", "trace.spread"),
        ("system.load_or_recompute=never", "system.load_or_recompute"),
        ("router.balance_tokens=-1", "router.balance_tokens"),
        ("system.tiers.ssd.write_Bps=0", "system.tiers.ssd.write_Bps"),
    ]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            check_config(compose_cfg([override]))


@pytest.mark.child_process
def test_overload_is_flagged(tmp_path: Path) -> None:
    out = tmp_path / "hot"
    p = kvsim(f"hydra.run.dir={out}", "trace.max_requests=300", "progress=false", "gpu.instances=1",
              "gpu.peak_flops=30e12", "figures=false")
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overloaded"] is True and summary["utilization"]["prefill"] > 0.95
    assert "overloaded: prefill utilisation" in p.stdout + p.stderr  # the log


@pytest.mark.child_process
def test_bad_group_option_fails_at_compose(tmp_path: Path) -> None:
    p = kvsim("policy=lruu", f"hydra.run.dir={tmp_path / 'x'}")
    assert p.returncode != 0
    assert "Could not find 'policy/lruu'" in p.stderr
    assert not (tmp_path / "x").exists()


def test_unknown_key_fails_at_compose(compose_cfg) -> None:
    with pytest.raises(ConfigCompositionException, match="capcity_scale"):
        compose_cfg(["system.capcity_scale=2"])
    with pytest.raises(ConfigCompositionException, match="capacity_scale"):
        compose_cfg(["system.capacity_scale=lots"])  # wrong type for a typed field


def test_unknown_policy_or_index_key_fails_before_simulation(compose_cfg) -> None:
    with pytest.raises(ConfigError, match="policy.agee_every: unknown key .*did you mean 'age_every'"):
        validate(compose_cfg(["policy=lfu", "+policy.agee_every=3"]))
    with pytest.raises(ConfigError, match="index.pipelining: unknown key"):
        validate(compose_cfg(["+index.pipelining=true"]))


@pytest.mark.child_process
def test_bad_multirun_fails_before_any_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    p = kvsim("-m", "policy=lru,lruu", "trace.max_requests=50", f"hydra.sweep.dir={sweep}")
    assert p.returncode != 0
    assert "lruu" in p.stderr
    assert not list(sweep.glob("*/summary.json"))


def test_missing_trace_file_is_a_clear_error(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg([f"trace.path={tmp_path / 'nope.jsonl'}"])
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        run(cfg, tmp_path)


@pytest.mark.child_process
def test_placement_sweep_gathers_a_table_and_figure(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    p = kvsim(
        "+experiment=placement_sweep", "trace.max_requests=200", "system.capacity_scale=0.05,0.5",
        f"hydra.sweep.dir={sweep}",
    )
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(sweep / "sweep.csv")
    assert len(df) == 2 * df["policy"].nunique() and df["policy"].nunique() >= 3
    assert {"policy", "capacity_scale", "hit_ratio", "ttft_p99_s"} <= set(df.columns)
    assert (sweep / "sweep.png").stat().st_size > 10_000
    # the job folders' numbers are zero-padded, so a listing is in job order (0, 1, 2 ... not 0, 1, 10)
    jobs = sorted(d.name for d in sweep.iterdir() if d.is_dir() and d.name[0].isdigit())
    assert [int(n.split("_")[0]) for n in jobs] == list(range(len(df))) and jobs[0].startswith("000_")


def test_inputs_longer_than_the_context_window_warn_once(compose_cfg, caplog, monkeypatch) -> None:
    from kvsim import app
    from kvsim.app import build_trace

    # what this process warned about before (another test, or mutmut's earlier pass) is not this test's
    monkeypatch.setattr(app, "_WARNED", set())
    cfg = compose_cfg(["model.context_tokens=4096", "trace.max_requests=50"])
    with caplog.at_level("WARNING", logger="kvsim"):
        trace = build_trace(cfg)
        build_trace(cfg)  # the same trace for the same model: said once
    n = int((trace.input_tokens > 4096).sum())
    assert 0 < n < 50
    assert caplog.text.count(
        f"{n} of 50 requests have an input longer than llama3_8b's context window (model.context_tokens=4096)"
    ) == 1


def test_the_summary_counts_inputs_longer_than_the_context_window(compose_cfg, tmp_path: Path) -> None:
    from kvsim.app import build_trace, run

    cfg = compose_cfg(["model.context_tokens=4096", "trace.max_requests=50", "progress=false", "figures=false",
                       "save_requests=false"])
    n = int((build_trace(cfg).input_tokens > 4096).sum())
    assert 0 < n < 50
    assert run(cfg, tmp_path / "r")["over_context_requests"] == n
