"""The sweep report: gap to OPT per configuration, derived columns, the figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kvsim.report.sweep import add_derived, report


def job(d: Path, name: str, **summary) -> None:
    (d / name).mkdir(parents=True)
    (d / name / "summary.json").write_text(json.dumps(summary))


def tiered(policy: str, scale: float, hit: float, trace: str = "t") -> dict:
    return {
        "mode": "simulate", "trace": trace, "policy": policy, "capacity_scale": scale,
        "tier_capacity_blocks": {"gpu": int(10 * scale), "dram": int(100 * scale)},
        "hit_ratio": hit, "tier_hit_ratio": {"gpu": hit / 2, "dram": hit / 2},
        "ttft_p50_s": 0.1, "ttft_p99_s": 1.0 - hit, "metadata_p99_s": 2e-4,
        "link_bytes": {"pcie": 2**40, "rdma": 2**39},
    }


def test_gap_to_opt_per_configuration(tmp_path: Path) -> None:
    for i, (pol, scale, hit, trace) in enumerate([
        ("lru", 1.0, 0.30, "a"), ("opt", 1.0, 0.40, "a"), ("hotness", 1.0, 0.35, "a"),
        ("lru", 2.0, 0.38, "a"), ("opt", 2.0, 0.42, "a"),
        ("lru", 1.0, 0.10, "b"), ("opt", 1.0, 0.20, "b"),
        ("lru", 4.0, 0.50, "a"),  # no OPT run at this capacity
    ]):
        job(tmp_path, f"{i}_{pol}", **tiered(pol, scale, hit, trace))
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
            "metadata_p99_s", "bytes_moved"} <= set(csv.columns)
    assert (tmp_path / "sweep.png").stat().st_size > 10_000


def test_single_tier_sweeps_get_a_gap_too(tmp_path: Path) -> None:
    for pol, hits in (("lru", 60), ("opt", 100), ("hotness", 70)):
        for cap in (10, 20):
            job(tmp_path, f"{pol}_{cap}", mode="single_tier", policy=pol, capacity_blocks=cap,
                hit_ratio=hits * cap / 2000, block_hits=hits * cap // 20)
    df = report(tmp_path).set_index(["capacity_blocks", "policy"])
    assert df.loc[(20, "lru"), "gap_to_opt"] == pytest.approx(0.4)
    assert (tmp_path / "sweep.png").exists()


def test_without_opt_the_gap_is_missing_not_an_error(tmp_path: Path) -> None:
    job(tmp_path, "0_lru", **tiered("lru", 1.0, 0.3))
    job(tmp_path, "1_fifo", **tiered("fifo", 1.0, 0.2))
    df = add_derived(report(tmp_path))
    assert df["gap_to_opt"].isna().all()
    assert (tmp_path / "sweep.png").exists()


def test_empty_sweep(tmp_path: Path) -> None:
    assert report(tmp_path).empty
