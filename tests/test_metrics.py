"""summary.json from per-request records: every number worked out by hand on known arrays,
percentiles also against numpy.percentile (linear interpolation, numpy's default)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from kvsim.metrics import PEAK_WINDOW_S, peak_load, summarize

from .conftest import shared

N = 100


def records() -> dict[str, np.ndarray]:
    """100 requests of 3 blocks; the last 50 hit all 3 (2 on the GPU, 1 in DRAM)."""
    k = np.arange(N, dtype=np.float64)
    hit = np.r_[np.zeros(50), np.ones(50)].astype(np.int64)
    return {
        "blocks": np.full(N, 3, dtype=np.int64),
        "prefix_hits": 3 * hit,
        "hits_gpu": 2 * hit,
        "hits_dram": hit,
        "present_blocks": 3 * hit + 1,
        "ttft_s": (k + 1) * 1e-3,  # 1 ms .. 100 ms
        "metadata_s": k**2 * 1e-6,  # 0, 1, 4, ... 9801 us
        "load_s": np.r_[np.zeros(N - 1), 1.0],  # one request loads for 1 s
        "queue_s": k[::-1].copy(),  # 99 .. 0 s: order must not matter
        "compute_s": np.full(N, 0.002),
        "load_bytes": np.full(N, 7, dtype=np.int64),
        "moved_bytes": np.arange(N, dtype=np.int64),
    }


@pytest.fixture(scope=shared("module"))
def summary() -> dict:
    return summarize(
        records(), ["gpu", "dram"], sim_time_s=12.5, wall_time_s=0.25,
        link_bytes={"pcie": np.int64(10), "rdma": 3}, utilization={"prefill": 0.123456789, "link:x": 1},
    )


def test_counts_and_hit_ratios_by_hand(summary) -> None:
    s = summary
    assert s["requests"] == 100
    assert s["block_accesses"] == 300
    assert s["block_hits"] == 150
    assert s["hit_ratio"] == 0.5
    assert s["tier_hits"] == {"gpu": 100, "dram": 50}
    assert s["tier_hit_ratio"] == {"gpu": pytest.approx(1 / 3), "dram": pytest.approx(1 / 6)}
    assert s["present_blocks"] == 50 * 4 + 50 * 1
    assert s["load_bytes"] == 700
    assert s["moved_bytes"] == 99 * 100 // 2
    assert s["link_bytes"] == {"pcie": 10, "rdma": 3} and type(s["link_bytes"]["pcie"]) is int
    assert s["utilization"] == {"prefill": 0.123457, "link:x": 1.0}
    assert (s["sim_time_s"], s["wall_time_s"]) == (12.5, 0.25)


def test_percentiles_by_hand(summary) -> None:
    """numpy's linear percentile of n sorted values x: rank q/100 x (n - 1), interpolated.
    n = 100: p50 at rank 49.5, p99 at rank 98.01."""
    s = summary
    # 1 .. 100 ms: p50 = 50.5 ms, p99 = 99 + 0.01 = 99.01 ms (p95 would be 95.05 ms)
    assert s["ttft_p50_s"] == pytest.approx(50.5e-3, rel=1e-12)
    assert s["ttft_p99_s"] == pytest.approx(99.01e-3, rel=1e-12)
    assert s["ttft_mean_s"] == pytest.approx(50.5e-3, rel=1e-12)
    # k^2 us: p50 = 49^2 + 0.5 (50^2 - 49^2) = 2450.5; p99 = 98^2 + 0.01 x 197 = 9605.97;
    # mean = (0^2 + ... + 99^2) / 100 = 328,350 / 100
    assert s["metadata_p50_s"] == pytest.approx(2450.5e-6, rel=1e-12)
    assert s["metadata_p99_s"] == pytest.approx(9605.97e-6, rel=1e-12)
    assert s["metadata_mean_s"] == pytest.approx(3283.5e-6, rel=1e-12)
    # 99 zeros and one 1 s: p50 = 0, p99 = 0.01 (1% of the way from x[98] = 0 to x[99] = 1)
    assert s["load_p50_s"] == 0.0
    assert s["load_p99_s"] == pytest.approx(0.01, rel=1e-12)
    assert s["load_mean_s"] == pytest.approx(0.01, rel=1e-12)
    # 99 .. 0 s unsorted: 49.5 and 98.01
    assert s["queue_p50_s"] == pytest.approx(49.5, rel=1e-12)
    assert s["queue_p99_s"] == pytest.approx(98.01, rel=1e-12)
    for stat in ("p50", "p99", "mean"):
        assert s[f"compute_{stat}_s"] == pytest.approx(0.002, rel=1e-12)
    assert "store_p99_s" not in s  # no column, no key


@pytest.mark.parametrize("col", ["ttft_s", "metadata_s", "load_s", "queue_s", "compute_s"])
def test_percentiles_equal_numpy(summary, col) -> None:
    x = records()[col]
    key = col.removesuffix("_s")
    assert summary[f"{key}_p50_s"] == np.percentile(x, 50)
    assert summary[f"{key}_p99_s"] == np.percentile(x, 99)
    assert summary[f"{key}_mean_s"] == pytest.approx(float(np.mean(x)), rel=1e-12)


def test_percentiles_on_random_arrays_equal_numpy() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 1000):
        x = rng.lognormal(size=n)
        r = {"blocks": np.ones(n, dtype=np.int64), "prefix_hits": np.zeros(n, dtype=np.int64),
             "present_blocks": np.zeros(n, dtype=np.int64), "store_s": x}
        s = summarize(r, [], sim_time_s=1, wall_time_s=1)
        assert s["store_p50_s"] == np.percentile(x, 50)
        assert s["store_p99_s"] == np.percentile(x, 99)
        assert "ttft_p99_s" not in s and "load_bytes" not in s and "link_bytes" not in s


def test_no_requests() -> None:
    e = np.zeros(0)
    r = {"blocks": e.astype(np.int64), "prefix_hits": e.astype(np.int64), "hits_gpu": e.astype(np.int64),
         "present_blocks": e.astype(np.int64), "ttft_s": e}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" noise for the user
        s = summarize(r, ["gpu"], sim_time_s=0, wall_time_s=0)
    assert (s["requests"], s["block_accesses"], s["block_hits"], s["hit_ratio"]) == (0, 0, 0, 0.0)
    assert s["tier_hit_ratio"] == {"gpu": 0.0}
    assert math.isnan(s["ttft_p50_s"]) and math.isnan(s["ttft_p99_s"]) and math.isnan(s["ttft_mean_s"])


# --- the busiest window's offered prefill load (peak_load), worked by hand ---------------
def test_peak_load_by_hand() -> None:
    t = np.array([1000.0, 0.0, 100.0, 200.0])  # out of order on purpose
    w = np.array([60.0, 300.0, 300.0, 300.0])
    # [0, 600) brings 900 s of work: 1.5 servers' worth; [1000, 1600) only 60 s
    assert peak_load(t, w, 1, 600.0) == 1.5
    assert peak_load(t, w, 2, 600.0) == 0.75
    # a window is half-open: an arrival at its end starts the next one
    assert peak_load(np.array([0.0, 600.0]), np.array([600.0, 600.0]), 1, 600.0) == 1.0
    assert peak_load(np.array([]), np.array([]), 1, 600.0) == 0.0


def test_a_wave_is_flagged_though_the_mean_is_low() -> None:
    # Two instances; 1,300 s of prefill work arrives in the first ten minutes, then nothing
    # for a day: the mean utilisation is tiny, the first window 1300 / (2 x 600) = 1.083.
    n = 13
    rec = {
        "blocks": np.ones(n, dtype=np.int64), "prefix_hits": np.zeros(n, dtype=np.int64),
        "present_blocks": np.zeros(n, dtype=np.int64), "ttft_s": np.ones(n),
        "arrival_s": np.arange(n) * 10.0, "compute_s": np.full(n, 100.0),
        "instance": np.arange(n) % 2, "queue_s": np.zeros(n),
    }
    util = {"prefill": 0.015, "prefill:0": 0.015, "prefill:1": 0.015}
    s = summarize(rec, [], sim_time_s=86400.0, wall_time_s=1.0, utilization=util)
    assert s["overloaded"] is False and s["overloaded_peak"] is True
    assert s["peak_window_s"] == PEAK_WINDOW_S and abs(s["peak_prefill_load"] - 1300 / 1200) < 1e-6
    rec["compute_s"] = np.full(n, 90.0)  # 1170 / 1200: busy, not overloaded
    assert summarize(rec, [], sim_time_s=86400.0, wall_time_s=1.0, utilization=util)["overloaded_peak"] is False
