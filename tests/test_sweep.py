"""The sweep report: rows from the sweep's own job list, gap to OPT per configuration,
derived columns, status of failed and missing jobs, the figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kvsim.report.sweep import add_derived, main, report
from kvsim.runfolder import MARKER
from kvsim.sweepjobs import SweepDirError, describe_job, record_failure, write_jobs


def make_sweep(d: Path, runs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[str]:
    """A sweep folder as the kvsim sweeper leaves one: the job list, and per job either a
    complete run (summary + marker) or, with summary None, nothing."""
    jobs = []
    for i, (config, summary) in enumerate(runs):
        job = describe_job(i, f"{i}_{config['policy']['name']}", [], config)
        if summary is not None:
            (d / job.subdir).mkdir(parents=True)
            (d / job.subdir / "summary.json").write_text(json.dumps(summary))
            (d / job.subdir / MARKER).write_text(json.dumps({"config_hash": job.config_hash}))
        jobs.append(job)
    write_jobs(d, jobs)
    return [j.subdir for j in jobs]


def tiered(policy: str, scale: float, hit: float, trace: str = "t") -> tuple[dict, dict]:
    config = {"trace": {"name": trace}, "policy": {"name": policy, "_target_": f"x.{policy}"},
              "system": {"kind": "tiered", "capacity_scale": scale}, "mode": "simulate"}
    summary = {
        "mode": "simulate", "trace": trace, "policy": policy, "capacity_scale": scale,
        "tier_capacity_blocks": {"gpu": int(10 * scale), "dram": int(100 * scale)},
        "hit_ratio": hit, "tier_hit_ratio": {"gpu": hit / 2, "dram": hit / 2},
        "ttft_p50_s": 0.1, "ttft_p99_s": 1.0 - hit, "metadata_p99_s": 2e-4, "index": "redis",
        "link_bytes": {"pcie": 2**40, "rdma": 2**39},
        "link:pcie:gpu->host": 2**39, "link:pcie:host->gpu": 2**39, "wall_time_s": 1.0,
    }
    return config, summary


def single(policy: str, cap: int, hits: int, trace: str = "t") -> tuple[dict, dict]:
    config = {"trace": {"name": trace}, "policy": {"name": policy},
              "system": {"kind": "single_tier", "capacity_blocks": cap}, "mode": "simulate"}
    summary = {"mode": "single_tier", "trace": trace, "policy": policy, "capacity_blocks": cap,
               "block_accesses": 2000, "block_hits": hits, "hit_ratio": hits / 2000}
    return config, summary


def test_gap_to_opt_per_configuration(tmp_path: Path) -> None:
    make_sweep(tmp_path, [tiered(pol, scale, hit, trace) for pol, scale, hit, trace in [
        ("lru", 1.0, 0.30, "a"), ("opt", 1.0, 0.40, "a"), ("hotness", 1.0, 0.35, "a"),
        ("lru", 2.0, 0.38, "a"), ("opt", 2.0, 0.42, "a"),
        ("lru", 1.0, 0.10, "b"), ("opt", 1.0, 0.20, "b"),
        ("lru", 4.0, 0.50, "a"),  # no OPT run at this capacity
    ]])
    df = report(tmp_path).set_index(["trace", "capacity_scale", "policy"])
    assert df.loc[("a", 1.0, "lru"), "gap_to_opt"] == pytest.approx(0.10)
    assert df.loc[("a", 1.0, "hotness"), "gap_to_opt"] == pytest.approx(0.05)
    assert df.loc[("a", 1.0, "hotness"), "gap_to_opt_rel"] == pytest.approx(0.125)
    assert df.loc[("a", 2.0, "lru"), "gap_to_opt"] == pytest.approx(0.04)
    assert df.loc[("b", 1.0, "lru"), "gap_to_opt"] == pytest.approx(0.10)  # its own trace's OPT
    assert df.loc[("a", 1.0, "opt"), "gap_to_opt"] == 0
    assert np.isnan(df.loc[("a", 4.0, "lru"), "gap_to_opt"])
    assert df.loc[("a", 1.0, "lru"), "bytes_moved"] == 1.5 * 2**40
    assert df.loc[("a", 2.0, "lru"), "capacity_total_blocks"] == 220
    csv = pd.read_csv(tmp_path / "sweep.csv")
    assert {"gap_to_opt", "tier_hit_ratio.gpu", "tier_hit_ratio.dram", "ttft_p50_s", "ttft_p99_s",
            "metadata_p99_s", "bytes_moved", "status", "error", "system.capacity_scale", "policy.name",
            "link:pcie:gpu->host"} <= set(csv.columns)
    parquet = pd.read_parquet(tmp_path / "sweep.parquet")
    assert list(parquet["job"]) == list(csv["job"]) and (parquet["status"] == "complete").all()
    for fig in ("sweep.png", "hit_ratio_ttft.png", "gap_to_opt.png", "metadata_p99.png", "link_bytes.png"):
        assert (tmp_path / fig).stat().st_size > 10_000, fig


def test_single_tier_sweeps_get_a_gap_too(tmp_path: Path) -> None:
    make_sweep(tmp_path, [single(pol, cap, hits * cap // 10) for pol, hits in (("lru", 60), ("opt", 100), ("hotness", 70))
                          for cap in (10, 20)])
    df = report(tmp_path).set_index(["capacity_blocks", "policy"])
    assert df.loc[(20, "lru"), "gap_to_opt"] == pytest.approx((200 - 120) / 2000)
    assert (tmp_path / "sweep.png").exists() and (tmp_path / "gap_to_opt.png").exists()


def test_mixed_single_tier_and_tiered_sweep_keeps_every_gap(tmp_path: Path) -> None:
    """Issue 9: a sweep mixing single-tier and tiered runs (and two traces) compares each run
    with the OPT of its own mode, capacity and trace, never NaN where that OPT exists."""
    runs = [single("lru", 10, 100, "a"), single("opt", 10, 300, "a"), single("lru", 10, 50, "b"),
            single("opt", 10, 500, "b"), tiered("lru", 1.0, 0.30, "a"), tiered("opt", 1.0, 0.45, "a")]
    make_sweep(tmp_path, runs)
    df = report(tmp_path)
    assert df["gap_to_opt"].notna().all()
    gaps = df.set_index(["config.mode" if "config.mode" in df else "mode", "trace", "policy"])["gap_to_opt"]
    assert gaps.loc[("simulate", "a", "lru")].tolist() == pytest.approx([0.10, 0.15])
    b = df[(df.trace == "b") & (df.policy == "lru")]
    assert b["gap_to_opt"].item() == pytest.approx(0.225)  # b's OPT (0.25), not a's (0.15)


def test_table_holds_exactly_the_job_list(tmp_path: Path) -> None:
    """A folder left by another sweep is not a row; a listed job whose folder holds another
    config's run is not complete; failed and missing jobs are rows with status and error."""
    names = make_sweep(tmp_path, [tiered("lru", 1.0, 0.3), tiered("opt", 1.0, 0.4), tiered("fifo", 1.0, 0.2),
                                  (tiered("arc", 1.0, 0.2)[0], None)])
    other_config, other_summary = tiered("lru", 8.0, 0.9)
    (tmp_path / "9_old_sweep_job").mkdir()
    (tmp_path / "9_old_sweep_job" / "summary.json").write_text(json.dumps(other_summary))
    (tmp_path / "9_old_sweep_job" / MARKER).write_text(json.dumps({"config_hash": "x"}))
    (tmp_path / names[2] / MARKER).write_text(json.dumps({"config_hash": "another config"}))
    jobs = json.loads((tmp_path / "sweep_jobs.json").read_text())["jobs"]
    record_failure(tmp_path, names[3], 3, jobs[3]["config_hash"], "ValueError: boom")
    df = report(tmp_path)
    assert list(df["job"]) == names
    assert list(df["status"]) == ["complete", "complete", "missing", "failed"]
    assert df.loc[3, "error"] == "ValueError: boom" and df.loc[3, "policy"] == "arc"
    assert "another config" in df.loc[2, "error"]
    assert df["hit_ratio"].max() < 0.9
    assert main([str(tmp_path)]) == 1  # a failed job: the command fails, after writing
    assert (tmp_path / "sweep.csv").is_file() and (tmp_path / "hit_ratio_ttft.png").is_file()


def test_partial_sweep_is_reported_and_is_not_an_error(tmp_path: Path) -> None:
    make_sweep(tmp_path, [tiered("lru", 1.0, 0.3), (tiered("opt", 1.0, 0.4)[0], None)])
    assert main([str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "sweep.csv")
    assert list(df["status"]) == ["complete", "missing"]


def test_without_opt_the_gap_is_missing_not_an_error(tmp_path: Path) -> None:
    make_sweep(tmp_path, [tiered("lru", 1.0, 0.3), tiered("fifo", 1.0, 0.2)])
    df = add_derived(report(tmp_path))
    assert df["gap_to_opt"].isna().all()
    assert (tmp_path / "sweep.png").exists()


def test_not_a_sweep_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "0_lru").mkdir()
    (tmp_path / "0_lru" / "summary.json").write_text("{}")
    with pytest.raises(SweepDirError, match="sweep_jobs.json"):
        report(tmp_path)
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such folder" in err
    assert not (tmp_path / "sweep.csv").exists()


def test_empty_sweep(tmp_path: Path) -> None:
    write_jobs(tmp_path, [])
    assert report(tmp_path).empty


def test_bytes_moved_counts_link_directions_not_devices_too() -> None:
    # A topology run reports each link direction and each device the same bytes pass through.
    df = pd.DataFrame({"link_bytes.pcie:gpu->dram": [100], "link_bytes.pcie:dram->gpu": [30],
                       "link_bytes.ssd": [100], "policy": ["lru"], "hit_ratio": [0.5]})
    assert add_derived(df)["bytes_moved"].iloc[0] == 130
    # Older runs name links without directions: every column is a link.
    old = pd.DataFrame({"link_bytes.pcie": [100], "link_bytes.rdma": [7],
                        "policy": ["lru"], "hit_ratio": [0.5]})
    assert add_derived(old)["bytes_moved"].iloc[0] == 107
