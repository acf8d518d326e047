"""The busiest window's offered prefill load (kvsim.metrics.peak_load), worked by hand."""

from __future__ import annotations

import numpy as np

from kvsim.metrics import PEAK_WINDOW_S, peak_load, summarize


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
