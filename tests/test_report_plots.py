"""One run's figures (kvsim/report/plots.py), drawn from run folders made by hand: what
they show is checked on the figures' artists, not by looking at a picture."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kvsim.report import plots
from tests.figure_util import another_theme, assert_report_theme, bars, legend, lines, texts


@pytest.fixture(autouse=True)
def _theme() -> Iterator[None]:
    with another_theme():
        yield


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


def test_where_ttft_goes_by_hand(tmp_path: Path, drawn: list[Any]) -> None:
    """Mean per size bin, in ms: bin 1-4 (requests 0 and 1): queue (1 + 3) / 2 = 2 ms,
    compute (10 + 20) / 2 = 15 ms; bin 5-8 (request 2): 4 ms and 30 ms, stacked."""
    path = plots.plot_run(_run_folder(tmp_path))
    assert path == tmp_path / "ttft.png" and path.stat().st_size > 10_000
    assert [name for _, name in drawn] == ["ttft.png"]  # no real TTFT: no second figure
    fig = drawn[0][0]
    assert_report_theme()
    assert list(fig.get_size_inches()) == [10, 3.8]
    assert fig.get_suptitle() == "t | policy lru | index redis | hit ratio 0.500"
    assert fig._suptitle.get_fontsize() == 9
    ax1, ax2 = fig.axes[:2]
    assert texts(ax1) == {"title": "TTFT  p50 12.3 ms, p99 45.6 ms", "title_size": pytest.approx(9.6),
                          "xlabel": "time to first token (ms, log)", "ylabel": "share of requests",
                          "xscale": "log", "yscale": "linear"}
    assert texts(ax2) == {"title": "where TTFT goes", "title_size": pytest.approx(9.6),
                          "xlabel": "blocks per request", "ylabel": "mean time (ms)",
                          "xscale": "linear", "yscale": "linear"}
    # queue's bars first (bins 1-4, 5-8), then compute's on top of them
    assert [p.get_y() for p in ax2.patches] == pytest.approx([0, 0, 2.0, 4.0])
    assert [p.get_height() for p in ax2.patches] == pytest.approx([2.0, 4.0, 15.0, 30.0])
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["1-4", "5-8"]
    assert legend(ax2) == {"texts": ["instance queue", "prefill compute (own chunks)"], "fontsize": 7, "ncols": 1,
                           "loc": 0}
    # one ECDF per reuse class present (drawn last class first): > 75%: 23 ms; 25-50%: 34 ms; <= 25%: 11 ms
    assert [t.get_text() for t in ax1.get_legend().get_texts()] == ["reused <= 25%", "25-50%", "50-75%", "> 75%"]
    assert [(x[1:], y) for x, y in lines(ax1)] == [
        (pytest.approx([23.0]), [0, 1]), (pytest.approx([34.0]), [0, 1]), (pytest.approx([11.0]), [0, 1])]


def test_reuse_classes_and_size_bins_at_their_edges(tmp_path: Path, drawn: list[Any]) -> None:
    """Ten requests at the edges of both groupings: blocks 4|5, 8|9, 16|17, 32|33, 64|65
    (size bins 1-4, 5-8, 9-16, 17-32, 33-64, >64), and reuse exactly 0.25, 0.5, 0.75 and 1
    (a class includes its upper edge); request i takes i + 1 ms in every stage, so a bin's
    bar is the mean of its requests' numbers times the stage's factor (the six stages are
    1..6 x that, stacked in the order a request meets them)."""
    blocks = [4, 5, 8, 9, 16, 17, 32, 33, 64, 65]
    hits = [1, 0, 4, 0, 12, 0, 32, 0, 0, 65]  # reuse 0.25, 0, 0.5, 0, 0.75, 0, 1, 0, 0, 1
    ms = np.arange(1, 11) / 1e3
    pd.DataFrame({"blocks": blocks, "prefix_hits": hits, "ttft_s": ms,
                  **{c: ms * (k + 1) for k, (c, _) in enumerate(plots.COMPONENTS)}}).to_parquet(tmp_path / "requests.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"ttft_p50_s": 0.0055, "ttft_p99_s": 0.0099, "hit_ratio": 0.25}))
    plots.plot_run(tmp_path)
    fig = drawn[0][0]
    assert fig.get_suptitle() == "None | policy None | index None | hit ratio 0.250"
    ax1, ax2 = fig.axes[:2]
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["1-4", "5-8", "9-16", "17-32", "33-64", ">64"]
    means = np.array([1, 2.5, 4.5, 6.5, 8.5, 10])  # (1), (2+3)/2, (4+5)/2, (6+7)/2, (8+9)/2, (10)
    heights = np.concatenate([means * k for k in range(1, 7)])
    assert [h for _, _, h in bars(ax2)] == pytest.approx(heights)
    bottoms = np.concatenate([means * k * (k - 1) / 2 for k in range(1, 7)])  # 0, 1, 1+2, ...
    assert [b for _, b, _ in bars(ax2)] == pytest.approx(bottoms)
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == [label for _, label in plots.COMPONENTS]
    # classes (drawn last first): > 75%: requests 6, 9 (7, 10 ms); 50-75%: 4 (5 ms);
    # 25-50%: 2 (3 ms); <= 25%: 0, 1, 3, 5, 7, 8 (1, 2, 4, 6, 8, 9 ms)
    got = [(x[1:], y[1:]) for x, y in lines(ax1)]
    assert got == [(pytest.approx([7, 10]), [0.5, 1]), (pytest.approx([5]), [1]), (pytest.approx([3]), [1]),
                   (pytest.approx([1, 2, 4, 6, 8, 9]), pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1]))]


def test_a_node_runs_title_names_its_instances(tmp_path: Path, drawn: list[Any]) -> None:
    plots.plot_run(_run_folder(tmp_path, instances=2, router="round_robin", scheduler="chunked"))
    assert drawn[0][0].get_suptitle() == (
        "t | policy lru | index redis | 2 instances, router round_robin, scheduler chunked | hit ratio 0.500")


def test_real_ttft_against_the_simulated_one(tmp_path: Path, drawn: list[Any]) -> None:
    """Requests 1, 2, 4 carry a measured TTFT (0.0025, 0.5, 0.01 s; the others NaN or inf):
    scatter (real, simulated) of those three; the diagonal from the lowest of both (the
    simulated 0.002 s) to the highest (the real 0.5 s); both ECDFs; medians in the title."""
    d = tmp_path
    pd.DataFrame({"blocks": [2] * 5, "prefix_hits": [0] * 5, "ttft_s": [0.001, 0.002, 0.003, 0.004, 0.005],
                  "real_ttft_s": [np.nan, 0.0025, 0.5, np.inf, 0.01], "queue_s": [0.0] * 5}).to_parquet(d / "requests.parquet")
    (d / "summary.json").write_text(json.dumps({"ttft_p50_s": 0.003, "ttft_p99_s": 0.005, "trace": "t", "policy": "lru",
                                                 "model": "m", "hit_ratio": 0.0}))
    plots.plot_run(d)
    assert [name for _, name in drawn] == ["ttft.png", "ttft_vs_real.png"]
    assert (d / "ttft_vs_real.png").stat().st_size > 10_000
    fig = drawn[1][0]
    assert_report_theme()
    assert list(fig.get_size_inches()) == [10, 3.8]
    assert fig.get_suptitle() == ("t | policy lru | model m (the real service ran other models, hardware and load: "
                                  "compare shapes, not values)")
    assert fig._suptitle.get_fontsize() == 9
    ax1, ax2 = fig.axes
    assert texts(ax1) == {"title": "3 requests with a measured TTFT", "title_size": pytest.approx(9.6),
                          "xlabel": "real TTFT (s, measured on the service)", "ylabel": "simulated TTFT (s)",
                          "xscale": "log", "yscale": "log"}
    (scatter,) = ax1.collections
    assert scatter.get_offsets().tolist() == [[0.0025, 0.002], [0.5, 0.003], [0.01, 0.005]]
    assert list(scatter.get_sizes()) == [4] and scatter.get_alpha() == 0.4
    (diagonal,) = ax1.lines
    assert list(diagonal.get_xdata()) == [0.002, 0.5] == list(diagonal.get_ydata())
    assert (diagonal.get_color(), diagonal.get_linewidth(), diagonal.get_label()) == ("black", 0.8, "simulated = real")
    assert legend(ax1) == {"texts": ["simulated = real"], "fontsize": 7, "ncols": 1, "loc": 0}
    assert texts(ax2) == {"title": "p50 simulated 0.00 s, real 0.01 s", "title_size": pytest.approx(9.6),
                          "xlabel": "time to first token (s, log)", "ylabel": "share of those requests",
                          "xscale": "log", "yscale": "linear"}
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["simulated", "real"]
    assert [(x[1:], y[1:]) for x, y in lines(ax2)] == [  # drawn last entry first
        (pytest.approx([0.0025, 0.01, 0.5]), pytest.approx([1 / 3, 2 / 3, 1])),
        (pytest.approx([0.002, 0.003, 0.005]), pytest.approx([1 / 3, 2 / 3, 1]))]


def test_the_diagonal_starts_at_a_tenth_of_a_millisecond_at_least(tmp_path: Path, drawn: list[Any]) -> None:
    d = tmp_path
    pd.DataFrame({"blocks": [2, 2], "prefix_hits": [0, 0], "ttft_s": [1e-6, 0.2],
                  "real_ttft_s": [1e-5, 0.3]}).to_parquet(d / "requests.parquet")
    (d / "summary.json").write_text(json.dumps({"ttft_p50_s": 0.1, "ttft_p99_s": 0.2, "hit_ratio": 0.0}))
    plots.plot_run(d)
    assert list(drawn[1][0].axes[0].lines[0].get_xdata()) == [1e-4, 0.3]


def test_no_measured_ttft_draws_no_comparison(tmp_path: Path, drawn: list[Any]) -> None:
    d = _run_folder(tmp_path)
    df = pd.read_parquet(d / "requests.parquet")
    df.assign(real_ttft_s=[np.nan, np.inf, -np.inf]).to_parquet(d / "requests.parquet")
    plots.plot_run(d)
    assert [name for _, name in drawn] == ["ttft.png"]


def test_save_figure_writes_a_tight_png_at_130_dpi(tmp_path: Path) -> None:
    """A 4 x 3 inch figure with one small text: cut to the text (far below 520 x 390
    pixels), written as PNG whatever the file's name, and closed."""
    fig = plt.figure(figsize=(4, 3))
    fig.text(0.5, 0.5, "x")
    path = plots.save_figure(fig, tmp_path / "f.out")
    assert path == tmp_path / "f.out"
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.info["dpi"] == pytest.approx((130, 130), abs=0.01)
        assert im.size[0] < 100 and im.size[1] < 100
    assert not plt.fignum_exists(fig.number)


def test_a_laid_out_figure_is_saved_whole(tmp_path: Path) -> None:
    """``laid_out=True`` (the caller ran tight_layout): the figure as it is, 4 x 3 inches at
    130 dpi, not cut to its text."""
    fig = plt.figure(figsize=(4, 3))
    fig.text(0.5, 0.5, "x")
    with Image.open(plots.save_figure(fig, tmp_path / "f.png", laid_out=True)) as im:
        assert im.size == (520, 390)
    assert not plt.fignum_exists(fig.number)


@pytest.mark.parametrize(("lo", "hi", "want"), [(150, 900, {"200", "500"}), (3, 4000, {"5", "10", "20", "50", "100", "200", "500", "1000", "2000"})])
def test_plain_log_ticks_label_1_2_5_per_decade(lo: float, hi: float, want: set[str]) -> None:
    """Within a decade and across several: plain numbers at 1, 2 and 5 per decade, no minor
    labels (matplotlib's own would label 2x10^2, 3x10^2, ... on the first axis)."""
    fig, ax = plt.subplots()
    ax.plot([lo, hi], [0, 1])
    ax.set_xscale("log")
    plots.plain_log_ticks(ax.xaxis)
    fig.canvas.draw()
    lo_, hi_ = ax.get_xlim()
    shown = {t.get_text() for t, v in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True) if lo_ <= v <= hi_}
    assert want <= shown <= want | {"1", "2", "5000", "100", "1000"}
    assert {t.get_text() for t in ax.get_xticklabels(minor=True)} <= {""}
    plt.close(fig)


def test_ecdf_rows_are_the_exact_ecdf_at_their_ranks() -> None:
    """50,000 values in group a, 100 in b, with ties: a is drawn from 2,000 ranks (its
    first and last included), whose cumulative weights are their exact ranks, so the drawn
    step is never more than 1/2,000 off the full ECDF at any value; b keeps every row (weight
    1). Nothing over the limit: the frame itself, no weights."""
    rng = np.random.default_rng(7)
    a = np.round(rng.lognormal(0, 1, 50_000), 2)  # ties
    b = rng.lognormal(1, 1, 100)
    df = pd.DataFrame({"v": np.r_[b[:50], a, b[50:]], "g": ["b"] * 50 + ["a"] * 50_000 + ["b"] * 50})
    data, w = plots.ecdf_rows(df, "v", "g", points=2000)
    assert w == "weight" and list(pd.unique(data["g"])) == ["b", "a"]  # first appearance
    got_b = data[data.g == "b"]
    assert sorted(got_b["v"]) == sorted(b) and (got_b["weight"] == 1).all()
    got = data[data.g == "a"]
    assert len(got) == 2000 and got["weight"].sum() == 50_000
    assert got["v"].iloc[0] == a.min() and got["v"].iloc[-1] == a.max()
    exact = np.sort(a)
    ranks = np.cumsum(got["weight"].to_numpy())
    assert np.array_equal(exact[ranks.astype(int) - 1], got["v"].to_numpy())
    # the drawn step function (weighted ECDF) against the full one, at every value
    drawn = np.searchsorted(got["v"].to_numpy(), exact, side="right")
    drawn_f = np.r_[0.0, ranks / 50_000][drawn]
    full_f = np.searchsorted(exact, exact, side="right") / 50_000
    assert np.abs(drawn_f - full_f).max() <= 1 / 2000 + 1e-12
    small = df[df.g == "b"]
    same, none = plots.ecdf_rows(small, "v", "g", points=2000)
    assert same.equals(small) and none is None
    assert plots.ecdf_rows(df.assign(v=np.where(df.g == "a", np.nan, df.v)), "v", "g")[1] is None  # NaN dropped


def test_a_large_runs_ecdf_is_drawn_from_a_few_thousand_points(tmp_path: Path, drawn: list[Any]) -> None:
    """200,000 requests in one reuse class: the line has ECDF_POINTS vertices (and seaborn's
    first one), ends at 1, and passes through the exact median."""
    n = 200_000
    ttft = np.random.default_rng(3).lognormal(-3, 1, n)
    pd.DataFrame({"blocks": [4] * n, "prefix_hits": [0] * n, "ttft_s": ttft}).to_parquet(tmp_path / "requests.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"ttft_p50_s": 0.05, "ttft_p99_s": 0.5, "hit_ratio": 0.0}))
    plots.plot_run(tmp_path)
    ((x, y),) = lines(drawn[0][0].axes[0])
    assert len(x) == plots.ECDF_POINTS + 1 and y[-1] == pytest.approx(1.0) and y[0] == 0
    k = np.searchsorted(y, 0.5)
    assert x[k] == pytest.approx(np.sort(ttft)[int(round(y[k] * n)) - 1] * 1e3)
