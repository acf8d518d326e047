"""One run's figure (kvsim/report/plots.py), drawn from a run folder made by hand: what it
shows is checked on the figure's artists, not by looking at a picture."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from kvsim.report import plots


def _run_folder(tmp_path: Path, **extra: object) -> Path:
    """Three requests: 2, 3 and 6 blocks (bins 1-4, 1-4, 5-8), reuse 0, 1 and 0.5."""
    pd.DataFrame({
        "blocks": [2, 3, 6], "prefix_hits": [0, 3, 3], "ttft_s": [0.011, 0.023, 0.034],
        "queue_s": [0.001, 0.003, 0.004], "compute_s": [0.010, 0.020, 0.030],
    }).to_parquet(tmp_path / "requests.parquet")
    summary = {"ttft_p50_s": 0.0123, "ttft_p99_s": 0.0456, "trace": "t", "policy": "lru", "index": "redis",
               "hit_ratio": 0.5, **extra}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[plt.Figure]:
    figs: list[plt.Figure] = []
    real = plots.save_figure

    def keep(fig: plt.Figure, path: Path) -> Path:
        figs.append(fig)  # closing it (after saving) leaves its artists to read
        return real(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return figs


def test_where_ttft_goes_by_hand(tmp_path: Path, drawn: list[plt.Figure]) -> None:
    """Mean per size bin, in ms: bin 1-4 (requests 0 and 1): queue (1 + 3) / 2 = 2 ms,
    compute (10 + 20) / 2 = 15 ms; bin 5-8 (request 2): 4 ms and 30 ms, stacked."""
    path = plots.plot_run(_run_folder(tmp_path))
    assert path == tmp_path / "ttft.png" and path.stat().st_size > 10_000
    fig = drawn[0]
    assert fig.get_suptitle() == "t | policy lru | index redis | hit ratio 0.500"
    ax1, ax2 = fig.axes[:2]
    assert [ax1.get_title(), ax2.get_title()] == ["TTFT  p50 12.3 ms, p99 45.6 ms", "where TTFT goes"]
    assert ax1.get_xscale() == "log"
    # queue's bars first (bins 1-4, 5-8), then compute's on top of them
    assert [p.get_y() for p in ax2.patches] == pytest.approx([0, 0, 2.0, 4.0])
    assert [p.get_height() for p in ax2.patches] == pytest.approx([2.0, 4.0, 15.0, 30.0])
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["1-4", "5-8"]
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["instance queue", "prefill compute (own chunks)"]
    classes = {t.get_text() for t in ax1.get_legend().get_texts()}
    assert {"reused <= 25%", "25-50%", "> 75%"} <= classes


def test_a_node_runs_title_names_its_instances(tmp_path: Path, drawn: list[plt.Figure]) -> None:
    plots.plot_run(_run_folder(tmp_path, instances=2, router="round_robin", scheduler="chunked"))
    assert drawn[0].get_suptitle() == (
        "t | policy lru | index redis | 2 instances, router round_robin, scheduler chunked | hit ratio 0.500")
