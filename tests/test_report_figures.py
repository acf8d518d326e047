"""A sweep's figures (kvsim/report/sweep.py ``plot_sweep``, kvsim/report/sweep_figures.py)
and the Redis validation's CDFs (kvsim/report/redis_validation.py), drawn from tables made
by hand: what they show is read from the figures' artists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest

from kvsim.report import redis_validation, sweep_figures
from kvsim.report.plots import LEGEND_IN
from kvsim.report.sweep import plot_sweep
from tests.figure_util import (
    another_theme,
    assert_report_theme,
    bars,
    by_hue,
    legend,
    line_markers,
    lines,
    markers,
    texts,
)

TAB10 = [tuple(mpl.colors.to_rgba(c)) for c in mpl.colormaps["tab10"].colors]


@pytest.fixture(autouse=True)
def _theme() -> Iterator[None]:
    with another_theme():
        yield


# --- the Redis validation's CDFs -------------------------------------------------------------

def _validation_run(d: Path) -> Path:
    """Latencies (s) of two op kinds at speed-ups 16 and 8 (in that order: a set of the two
    keeps it), insert's rows first: get at x8, real 3, 1, 2 us and simulated 4, 2 us; get at
    x16 real only (5 us); insert at x8 and x16 simulated only (7 us, 9 us). The table has
    get x8 (+10%, -5%) and insert x16 (+250%, +0%)."""
    rows = [("insert", 16, "sim", 9e-6), ("insert", 8, "sim", 7e-6),
            ("get", 8, "real", 3e-6), ("get", 8, "real", 1e-6), ("get", 8, "real", 2e-6),
            ("get", 8, "sim", 4e-6), ("get", 8, "sim", 2e-6), ("get", 16, "real", 5e-6)]
    pd.DataFrame(rows, columns=["op", "speedup", "source", "latency_s"]).to_parquet(d / "redis_validation_latency.parquet")
    pd.DataFrame({"op": ["get", "insert"], "speedup": [8.0, 16.0], "err_p50": [0.1, 2.5],
                  "err_p99": [-0.05, 0.0]}).to_csv(d / "redis_validation.csv", index=False)
    return d


def test_redis_validation_cdfs_by_hand(tmp_path: Path, drawn: list[Any]) -> None:
    path = redis_validation.plot_cdfs(_validation_run(tmp_path))
    assert path == tmp_path / "redis_validation_cdf.png" and path.stat().st_size > 10_000
    assert_report_theme()
    fig = drawn[0][0]
    assert list(fig.get_size_inches()) == pytest.approx([7.2, 5.6])  # 2 speed-ups x 2 op kinds
    assert fig.get_suptitle() == "Redis model vs a real redis-server: the same commands at the trace's arrival times"
    assert fig._suptitle.get_fontsize() == 10
    (g1, g2), (i1, i2) = np.array(fig.axes).reshape(2, 2)  # rows: op kinds in OPS order; columns: speed-ups, sorted
    assert [a.get_title() for a in (g1, g2, i1, i2)] == ["get, x8: p50 +10%, p99 -5%", "", "", "insert, x16: p50 +250%, p99 +0%"]
    assert g1.title.get_fontsize() == 8
    for ax in (g1, g2, i1, i2):
        assert (ax.get_xscale(), ax.get_xlabel(), ax.get_ylabel()) == ("log", "latency (us, log)", "CDF")
        assert ax.xaxis.label.get_fontsize() == 7 and ax.yaxis.label.get_fontsize() == 7
        # plain numbers at 1, 2, 5 per decade; no minor labels (they overlap within a decade)
        assert {t.get_text() for t in ax.get_xticklabels()} <= {f"{m * 10**e:g}" for m in (1, 2, 5) for e in range(-1, 3)}
        assert {t.get_text() for t in ax.get_xticklabels(minor=True)} <= {""}
        *_, p99 = ax.lines  # the 99th percentile's line, last
        assert list(p99.get_ydata()) == [0.99, 0.99] and list(p99.get_xdata()) == [0, 1]
        assert (p99.get_color(), p99.get_linewidth(), p99.get_linestyle()) == ("grey", 0.6, ":")
    real, sim, _ = g1.lines
    assert list(real.get_xdata()) == pytest.approx([1, 2, 3]) and list(real.get_ydata()) == pytest.approx([1 / 3, 2 / 3, 1])
    assert list(sim.get_xdata()) == pytest.approx([2, 4]) and list(sim.get_ydata()) == [0.5, 1]
    assert (real.get_color(), real.get_linewidth(), real.get_linestyle(), real.get_label()) == ("black", 1.2, "-", "real redis-server")
    assert (sim.get_color(), sim.get_linewidth(), sim.get_linestyle(), sim.get_label()) == ("tab:orange", 1.2, "--", "simulated")
    assert [lines(ax)[:-1] for ax in (g2, i1, i2)] == [[([5], [1])], [([7], [1])], [([9], [1])]]
    assert [ln.get_label() for ln in i1.lines[:-1]] == ["simulated"]
    assert legend(g1) == {"texts": ["real redis-server", "simulated"], "fontsize": 7, "ncols": 1, "loc": 4}
    assert [ax.get_legend() for ax in (g2, i1, i2)] == [None] * 3
    assert fig.subplotpars.left > 0.125 + 0.01 or fig.subplotpars.left < 0.125 - 0.01  # tight_layout moved it


def test_redis_validation_cdfs_show_each_replay(tmp_path: Path, drawn: list[Any]) -> None:
    """Two replays at x8 (replay 0: 3, 1 us; replay 1: 2 us): each drawn faintly before the
    pooled lines (1, 2, 3 us: the same as one replay of all three), labelled once; a speed-up
    with one replay draws none."""
    d = _validation_run(tmp_path)
    lat = pd.read_parquet(d / "redis_validation_latency.parquet")
    lat["replay"] = [0, 0, 0, 0, 1, 0, 0, 0]  # the x8 gets' real rows: 3 and 1 us, then 2 us
    lat.to_parquet(d / "redis_validation_latency.parquet")
    redis_validation.plot_cdfs(d)
    g1, g2, *_ = drawn[0][0].axes
    one, two, real, sim, _ = g1.lines
    assert list(one.get_xdata()) == pytest.approx([1, 3]) and list(two.get_xdata()) == pytest.approx([2])
    assert list(one.get_ydata()) == [0.5, 1] and list(two.get_ydata()) == [1]
    assert all((ln.get_color(), ln.get_linewidth()) == ("0.7", 0.6) for ln in (one, two))
    assert [ln.get_label() for ln in (one, two)] == ["one replay", "_nolegend_"]
    assert list(real.get_xdata()) == pytest.approx([1, 2, 3]) and real.get_label() == "real redis-server"
    assert len(g2.lines) == 2  # x16: its one replay's real line and the p99 line


def test_redis_validation_without_latencies_draws_nothing(tmp_path: Path, drawn: list[Any]) -> None:
    pd.DataFrame({"op": [], "speedup": [], "source": [], "latency_s": []}).to_parquet(tmp_path / "redis_validation_latency.parquet")
    pd.DataFrame({"op": [], "speedup": [], "err_p50": [], "err_p99": []}).to_csv(tmp_path / "redis_validation.csv", index=False)
    assert redis_validation.plot_cdfs(tmp_path) is None and drawn == []


# --- plot_sweep: sweep.png ---------------------------------------------------------------------

def _two_traces() -> pd.DataFrame:
    """Trace a: fifo at 10 and 40 blocks, lru and opt at 10, 20, 40; trace b: lru and opt at
    10. Hit ratios are written down, the gap is OPT's minus the row's at the same capacity;
    TTFT p99 is the capacity in ms, metadata p99 the hit ratio x 10 us."""
    hits = {("a", "fifo", 10): 0.1, ("a", "fifo", 40): 0.3, ("a", "lru", 10): 0.2, ("a", "lru", 20): 0.3,
            ("a", "lru", 40): 0.4, ("a", "opt", 10): 0.3, ("a", "opt", 20): 0.4, ("a", "opt", 40): 0.5,
            ("b", "lru", 10): 0.5, ("b", "opt", 10): 0.6}
    tiers = {("a", "lru", 20): (0.1, 0.2), ("a", "opt", 20): (0.3, 0.1), ("b", "lru", 10): (0.5, 0.0),
             ("b", "opt", 10): (0.4, 0.2)}
    rows = []
    for (trace, pol, cap), h in hits.items():
        gpu, dram = tiers.get((trace, pol, cap), (h / 2, h / 2))
        rows.append({"trace": trace, "policy": pol, "capacity_total_blocks": cap, "hit_ratio": h,
                     "gap_to_opt": hits[(trace, "opt", cap)] - h, "tier_hit_ratio.gpu": gpu,
                     "tier_hit_ratio.dram": dram, "ttft_p99_s": cap / 1e3, "metadata_p99_s": h * 1e-5})
    return pd.DataFrame(rows)


STYLES = {"fifo": ("o", "-"), "lru": ("X", "-"), "opt": ((4, 0, 45), "-")}  # seaborn's markers, in order


def figure_legend(fig: Any) -> tuple[list[str], list[tuple[float, ...]]]:
    """The figure's one legend of the policies: its names and their colours."""
    (leg,) = fig.legends
    assert (leg.get_title().get_text(), leg._loc) == ("policy", 7)  # center right
    return [t.get_text() for t in leg.get_texts()], [tuple(mpl.colors.to_rgba(h.get_color())) for h in leg.legend_handles]


def test_sweep_figure_by_hand(tmp_path: Path, drawn: list[Any]) -> None:
    """Five panels per trace (gap, hit ratio, TTFT p99, metadata p99, hit ratio by tier) on
    two rows of three (the sixth hidden), one pair of rows per trace; policies ordered by
    name with OPT last, one colour and marker each."""
    df = _two_traces()
    path = plot_sweep(df, tmp_path / "sweep.png")
    assert path == tmp_path / "sweep.png" and path.stat().st_size > 10_000
    assert_report_theme()
    fig = drawn[0][0]
    assert list(fig.get_size_inches()) == pytest.approx([13.8 + LEGEND_IN, 14.0])  # panels, then the legend
    assert figure_legend(fig) == (["fifo", "lru", "opt"], TAB10[:3])  # one for all panels
    assert markers(fig.legends[0]) == STYLES
    assert (fig.get_suptitle(), fig._suptitle.get_fontsize()) == ("placement sweep: gap to OPT and costs per policy", 10)
    axes = fig.axes
    assert len(axes) == 12 and [ax.get_visible() for ax in axes] == [True] * 5 + [False] + [True] * 5 + [False]
    a_gap, a_hit, a_ttft, a_meta, a_tiers = axes[:5]
    b_gap, b_hit, b_ttft, b_meta, b_tiers = axes[6:11]
    ylabels = ["gap to OPT (hit-ratio points)", "block hit ratio, all tiers", "TTFT p99 (ms)", "metadata lookup p99 (us)"]
    for trace, panels in (("a", axes[:4]), ("b", axes[6:10])):
        for ax, ylabel in zip(panels, ylabels, strict=True):
            assert texts(ax) == {"title": trace, "title_size": 9, "xlabel": "KV-cache capacity, all tiers (blocks)",
                                 "ylabel": ylabel, "xscale": "log", "yscale": "linear"}
            assert ax.xaxis.get_transform().base == 2
            assert ax.get_legend() is None
            assert line_markers(ax).items() <= STYLES.items()  # as the figure's legend draws them
    approx = pytest.approx
    assert by_hue(a_gap) == {"fifo": ([10, 40], approx([20, 20])), "lru": ([10, 20, 40], approx([10, 10, 10]))}
    assert by_hue(a_hit) == {"fifo": ([10, 40], [0.1, 0.3]), "lru": ([10, 20, 40], [0.2, 0.3, 0.4]),
                             "opt": ([10, 20, 40], [0.3, 0.4, 0.5])}
    assert by_hue(a_ttft) == {p: (x, approx(x)) for p, x in (("fifo", [10, 40]), ("lru", [10, 20, 40]), ("opt", [10, 20, 40]))}
    assert by_hue(a_meta) == {"fifo": ([10, 40], approx([1, 3])), "lru": ([10, 20, 40], approx([2, 3, 4])),
                              "opt": ([10, 20, 40], approx([3, 4, 5]))}
    assert by_hue(b_gap) == {"lru": ([10], approx([10]))}
    assert by_hue(b_hit) == {"lru": ([10], [0.5]), "opt": ([10], [0.6])}
    # by tier at the middle capacity (a: 20 blocks, where fifo has no run: 0), stacked gpu then dram
    assert np.allclose(bars(a_tiers), [(-0.4, 0, 0), (0.6, 0, 0.1), (1.6, 0, 0.3),
                                       (-0.4, 0, 0), (0.6, 0.1, 0.2), (1.6, 0.3, 0.1)])
    assert a_tiers.get_ylim() == approx((0, 0.4 * 1.3))
    assert np.allclose(bars(b_tiers), [(-0.4, 0, 0), (0.6, 0, 0.5), (1.6, 0, 0.4),
                                       (-0.4, 0, 0), (0.6, 0.5, 0), (1.6, 0.4, 0.2)])
    assert b_tiers.get_ylim() == approx((0, 0.6 * 1.3))
    for ax, title in ((a_tiers, "a at 20 blocks"), (b_tiers, "b at 10 blocks")):
        assert (ax.get_title(), ax.title.get_fontsize(), ax.get_ylabel()) == (title, 9, "block hit ratio by tier")
        assert [(t.get_text(), t.get_rotation(), t.get_fontsize()) for t in ax.get_xticklabels()] == [
            ("fifo", 45, 7), ("lru", 45, 7), ("opt", 45, 7)]
        assert legend(ax) == {"texts": ["gpu", "dram"], "fontsize": 7, "ncols": 2, "loc": 2}
    assert fig.subplotpars.left > 0.125 + 0.01 or fig.subplotpars.left < 0.125 - 0.01  # tight_layout moved it


def test_sweep_figure_of_one_unnamed_trace_without_opt(tmp_path: Path, drawn: list[Any]) -> None:
    """No OPT (the gap is NaN: no gap panel), no TTFT (all NaN: no panel), a capacity of 0
    (the axis stays linear), bytes moved (in TiB), tiers that never hit (bars of 0, the axis
    still drawn), the trace unnamed: three panels on one row, no titles but the tiers'."""
    df = pd.DataFrame({"trace": [None] * 6, "policy": ["lru", "fifo"] * 3, "capacity_total_blocks": [0, 0, 8, 8, 16, 16],
                       "hit_ratio": [0.0, 0.0, 0.25, 0.125, 0.5, 0.25], "gap_to_opt": [np.nan] * 6,
                       "ttft_p99_s": [np.nan] * 6, "bytes_moved": [2**40, 2**41, 2**39, 0, 0, 0],
                       "tier_hit_ratio.gpu": [0.0] * 6})
    plot_sweep(df, tmp_path / "sweep.png")
    fig = drawn[0][0]
    assert list(fig.get_size_inches()) == pytest.approx([13.8 + LEGEND_IN, 3.5])
    hit, moved, tiers = fig.axes
    assert [texts(ax)["title"] for ax in (hit, moved)] == ["", ""]
    assert [texts(ax)["ylabel"] for ax in (hit, moved)] == ["block hit ratio, all tiers", "bytes moved on links (TiB)"]
    assert [ax.get_xscale() for ax in (hit, moved)] == ["linear", "linear"]
    assert by_hue(hit) == {"fifo": ([0, 8, 16], [0, 0.125, 0.25]), "lru": ([0, 8, 16], [0, 0.25, 0.5])}
    assert by_hue(moved) == {"fifo": ([0, 8, 16], [2, 0, 0]), "lru": ([0, 8, 16], [1, 0.5, 0])}
    assert figure_legend(fig) == (["fifo", "lru"], TAB10[:2])
    assert tiers.get_title() == "at 8 blocks"
    assert [p.get_height() for p in tiers.patches] == [0, 0]
    assert tiers.get_ylim() == pytest.approx((0, 1.3e-9))


def test_a_sweep_from_one_block_has_a_log_axis(tmp_path: Path, drawn: list[Any]) -> None:
    df = pd.DataFrame({"policy": ["lru", "lru"], "capacity_total_blocks": [1, 4], "hit_ratio": [0.0, 0.5],
                       "gap_to_opt": np.nan})
    plot_sweep(df, tmp_path / "sweep.png")
    (ax,) = drawn[0][0].axes
    assert ax.get_xscale() == "log" and by_hue(ax) == {"lru": ([1, 4], [0, 0.5])}


def test_no_sweep_figure_without_policies_or_capacities(tmp_path: Path, drawn: list[Any]) -> None:
    df = _two_traces()
    assert plot_sweep(df.iloc[:0], tmp_path / "s.png") is None
    assert plot_sweep(df.drop(columns="policy"), tmp_path / "s.png") is None
    assert plot_sweep(df.drop(columns="capacity_total_blocks"), tmp_path / "s.png") is None
    assert drawn == [] and not (tmp_path / "s.png").exists()


# --- sweep_figures: the standard figures ---------------------------------------------------------

def _with_costs(df: pd.DataFrame) -> pd.DataFrame:
    """_two_traces, trace b's rows first, with TTFT p50 (the capacity / 2 in ms), the relative
    gap (gap / OPT's hit ratio) and the index (a's by capacity: 10 redis, 20 sherman,
    40 chime; b's redis)."""
    df = pd.concat([df[df["trace"] == "b"], df[df["trace"] == "a"]], ignore_index=True)
    opt = df[df["policy"] == "opt"].set_index(["trace", "capacity_total_blocks"])["hit_ratio"]
    return df.assign(
        ttft_p50_s=df["capacity_total_blocks"] / 2e3,
        gap_to_opt_rel=df["gap_to_opt"] / [opt[(t, c)] for t, c in zip(df["trace"], df["capacity_total_blocks"], strict=True)],
        index=[{10: "redis", 20: "sherman", 40: "chime"}[c] if t == "a" else "redis"
               for t, c in zip(df["trace"], df["capacity_total_blocks"], strict=True)],
    )


def test_hit_ratio_ttft_and_gap_figures_by_hand(tmp_path: Path, drawn: list[Any]) -> None:
    df = _with_costs(_two_traces())
    made = sweep_figures.standard_figures(df, tmp_path)
    assert made == [tmp_path / n for n in ("hit_ratio_ttft.png", "gap_to_opt.png", "metadata_p99.png")]
    assert all(p.stat().st_size > 10_000 for p in made)
    assert_report_theme()
    (fig, name), (gap_fig, _), _ = drawn
    assert name == "hit_ratio_ttft.png"
    assert list(fig.get_size_inches()) == pytest.approx([13.8 + LEGEND_IN, 6.8])
    assert figure_legend(fig) == (["fifo", "lru", "opt"], TAB10[:3])
    assert (fig.get_suptitle(), fig._suptitle.get_fontsize()) == ("hit ratio and TTFT against capacity, per policy", 10)
    assert fig.subplotpars.left > 0.125 + 0.01 or fig.subplotpars.left < 0.125 - 0.01  # tight_layout moved it
    approx = pytest.approx
    a_hit, a_p50, a_p99, b_hit, b_p50, b_p99 = fig.axes  # traces sorted: a's row first
    for trace, row in (("a", (a_hit, a_p50, a_p99)), ("b", (b_hit, b_p50, b_p99))):
        for ax, ylabel in zip(row, ("block hit ratio", "TTFT p50 (ms)", "TTFT p99 (ms)"), strict=True):
            assert texts(ax) == {"title": trace, "title_size": 9, "xlabel": "KV-cache capacity (blocks)",
                                 "ylabel": ylabel, "xscale": "log", "yscale": "linear"}
            assert ax.xaxis.get_transform().base == 2
            assert ax.get_legend() is None
            assert line_markers(ax).items() <= STYLES.items()  # as the figure's legend draws them
    assert by_hue(a_hit) == {"fifo": ([10, 40], [0.1, 0.3]), "lru": ([10, 20, 40], [0.2, 0.3, 0.4]),
                             "opt": ([10, 20, 40], [0.3, 0.4, 0.5])}
    assert by_hue(a_p50) == {p: (x, approx([c / 2 for c in x])) for p, x in (("fifo", [10, 40]), ("lru", [10, 20, 40]),
                                                                          ("opt", [10, 20, 40]))}
    assert by_hue(b_p99) == {"lru": ([10], approx([10])), "opt": ([10], approx([10]))}
    assert len(gap_fig.axes) == 4 and list(gap_fig.get_size_inches()) == pytest.approx([9.2 + LEGEND_IN, 6.8])
    assert gap_fig.get_suptitle() == "gap to Belady's OPT at the same configuration"
    a_gap, a_rel, b_gap, b_rel = gap_fig.axes
    assert [a_gap.get_ylabel(), a_rel.get_ylabel()] == ["gap to OPT (hit-ratio points)", "share of OPT's hits missed (%)"]
    assert by_hue(a_gap) == {"fifo": ([10, 40], approx([20, 20])), "lru": ([10, 20, 40], approx([10, 10, 10]))}
    assert by_hue(a_rel) == {"fifo": ([10, 40], approx([200 / 3, 40])), "lru": ([10, 20, 40], approx([100 / 3, 25, 20]))}
    assert by_hue(b_rel) == {"lru": ([10], approx([100 / 6]))}
    assert figure_legend(gap_fig)[0] == ["fifo", "lru"]


def test_metadata_p99_bars_by_hand(tmp_path: Path, drawn: list[Any]) -> None:
    """Bars per index (in order of appearance: redis, sherman, chime), one per policy: the
    mean over the sweep's runs of that index and policy, its line the range. redis: fifo a10
    (1 us), lru a10 and b10 (2 and 5: mean 3.5), opt a10 and b10 (3 and 6: 4.5); sherman
    (a20): lru 3, opt 4; chime (a40): fifo 3, lru 4, opt 5."""
    sweep_figures.standard_figures(_with_costs(_two_traces()), tmp_path)
    fig, name = drawn[2]
    assert name == "metadata_p99.png"
    assert list(fig.get_size_inches()) == pytest.approx([1.2 * 3 + 2, 3.4])
    (ax,) = fig.axes
    assert fig.subplotpars.left > 0.125 + 0.01 or fig.subplotpars.left < 0.125 - 0.01  # tight_layout moved it
    assert ax.get_ylabel() == "metadata lookup p99 (us; bar: mean over capacities, line: range)"
    assert legend(ax) == {"texts": ["lru", "opt", "fifo"], "fontsize": 7, "ncols": 2, "loc": 0}
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    colours = {tuple(mpl.colors.to_rgba(h.get_facecolor())): t.get_text()
               for h, t in zip(ax.get_legend().legend_handles, ax.get_legend().get_texts(), strict=True)}
    got = {(ticks[round(p.get_x() + p.get_width() / 2)], colours[tuple(p.get_facecolor())]): p.get_height()
           for p in ax.patches if p.get_width() and p.get_height()}
    assert got == pytest.approx({("redis", "fifo"): 1, ("redis", "lru"): 3.5, ("redis", "opt"): 4.5,
                                 ("sherman", "lru"): 3, ("sherman", "opt"): 4,
                                 ("chime", "fifo"): 3, ("chime", "lru"): 4, ("chime", "opt"): 5})
    # the range's line where a bar has two runs (a single run's has no length: NaN)
    ranges = [(min(ln.get_ydata()), max(ln.get_ydata())) for ln in ax.lines if np.isfinite(ln.get_ydata()).all()]
    assert np.allclose(ranges, [(2, 5), (3, 6)])


def test_link_bytes_per_direction_by_hand(tmp_path: Path, drawn: list[Any]) -> None:
    """Two policies at four capacities: a panel per capacity, three to a row; per panel a
    bar per link direction and policy, in TiB. Directions named at the top level
    (``link:``) or nested (``link_bytes.``) are both drawn; the per-link total without a
    direction, and a direction with no bytes anywhere, are not."""
    rows = []
    for cap in (1, 2, 4, 8):
        for k, pol in enumerate(("lru", "opt")):
            rows.append({"policy": pol, "capacity_total_blocks": cap, "hit_ratio": 0.5,
                         "link:pcie:gpu->host": cap * 2**40 * (k + 1), "link_bytes.rdma:a->b": 2**39 * cap,
                         "link_bytes.pcie": 7.0, "link:nvlink:x->y": np.nan})
    made = sweep_figures.standard_figures(pd.DataFrame(rows), tmp_path)
    assert [p.name for p in made] == ["hit_ratio_ttft.png", "link_bytes.png"]
    fig, name = drawn[-1]
    assert name == "link_bytes.png"
    assert fig.get_suptitle() == "bytes per link direction" and fig._suptitle.get_fontsize() == 10
    width, height = fig.get_size_inches()
    assert height == pytest.approx(2 * 3.2)  # two rows of panels 3.2 inches high
    assert 3 * 3.2 * 1.4 < width < 3 * 3.2 * 1.4 + 2  # three 1.4 : 1 panels a row, and the legend
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [f"capacity_total_blocks = {c}" for c in (1, 2, 4, 8)]
    assert axes[0].get_ylabel() == "bytes moved (TiB)" and axes[3].get_ylabel() == "bytes moved (TiB)"
    for ax, cap in zip(axes, (1, 2, 4, 8), strict=True):
        assert ax.get_xlabel() == "link direction" if ax in axes[1:] else True
        assert {(t.get_rotation(), t.get_ha(), t.get_fontsize()) for t in ax.get_xticklabels()} <= {(60, "right", 7)}
        # lru's bars (pcie, rdma), then opt's
        assert [p.get_height() for p in ax.patches if p.get_width()] == pytest.approx([cap, cap / 2, 2 * cap, cap / 2])
        assert ax.get_ylim()[1] == pytest.approx(2 * cap * 1.05)  # each panel its own scale
        assert len(ax.lines) == 0  # no error bars
    assert [(t.get_text(), t.get_rotation(), t.get_ha(), t.get_fontsize()) for t in axes[3].get_xticklabels()] == [
        ("pcie:gpu->host", 60, "right", 7), ("rdma:a->b", 60, "right", 7)]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["lru", "opt"]


@pytest.mark.parametrize(("caps", "panels"), [((1,), 1), ((1, 2, 3, 4, 5, 6, 7), 1), ((1, 2), 2)])
def test_link_bytes_panels_per_capacity_only_for_two_to_six(caps: tuple[int, ...], panels: int, tmp_path: Path,
                                                            drawn: list[Any]) -> None:
    df = pd.DataFrame({"policy": "lru", "capacity_total_blocks": list(caps), "link_bytes.pcie": [c * 2.0**40 for c in caps]})
    sweep_figures.standard_figures(df, tmp_path)
    fig, name = drawn[-1]
    assert name == "link_bytes.png" and len(fig.axes) == panels
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["pcie"]  # no direction: the per-link total
    # one panel: the mean over the capacities (1, 4); else the first capacity's (1)
    assert [p.get_height() for p in fig.axes[0].patches if p.get_width()] == pytest.approx([np.mean(caps) if panels == 1 else 1])


def test_standard_figures_leave_out_what_the_sweep_lacks(tmp_path: Path, drawn: list[Any]) -> None:
    """No trace, no TTFT, no relative gap, no index, capacity 0 (linear axis): the hit
    ratio and gap figures only, with one panel each; without policies, none."""
    df = pd.DataFrame({"policy": ["lru", "opt", "lru", "opt"], "capacity_total_blocks": [0, 0, 4, 4],
                       "hit_ratio": [0.0, 0.0, 0.5, 0.75], "gap_to_opt": [0.0, 0.0, 0.25, 0.0],
                       "ttft_p50_s": np.nan, "metadata_p99_s": 1e-6})
    made = sweep_figures.standard_figures(df, tmp_path)
    assert [p.name for p in made] == ["hit_ratio_ttft.png", "gap_to_opt.png"]
    (hit,), (gap,) = (f.axes for f, _ in drawn)
    assert (hit.get_title(), hit.get_xscale(), gap.get_xscale()) == ("", "linear", "linear")
    assert by_hue(hit) == {"lru": ([0, 4], [0, 0.5]), "opt": ([0, 4], [0, 0.75])}
    assert by_hue(gap) == {"lru": ([0, 4], [0, 25])}
    assert list(drawn[0][0].get_size_inches()) == pytest.approx([4.6 + LEGEND_IN, 3.4])
    assert sweep_figures.standard_figures(df.drop(columns="policy"), tmp_path) == []
    assert sweep_figures.standard_figures(df.drop(columns="capacity_total_blocks"), tmp_path) == []
    assert sweep_figures._traces(df.assign(trace=["b", None, "a", "b"])) == ["a", "b"]


def _every_figure() -> pd.DataFrame:
    """_with_costs(_two_traces()) with bytes on one link direction: every figure is drawn."""
    df = _with_costs(_two_traces())
    return df.assign(**{"link:pcie:gpu->host": df["capacity_total_blocks"] * 2.0**40})


@pytest.mark.parametrize("figure", sweep_figures.FIGURES, ids=lambda f: f.__name__)
def test_each_standard_figure_sets_the_report_theme_alone(figure: Any, tmp_path: Path, drawn: list[Any]) -> None:
    """A parallel report draws each figure in its own worker process, where no other figure
    set the theme before it (the autouse fixture sets another one here)."""
    path = figure(_every_figure(), tmp_path)
    assert path == tmp_path / f"{figure.__name__}.png" and path.stat().st_size > 10_000
    assert [name for _fig, name in drawn] == [path.name]
    assert_report_theme()


def test_figures_drawn_as_parallel_tasks_come_in_the_serial_order(tmp_path: Path, drawn: list[Any]) -> None:
    """draw_figures through joblib (one figure per task, the dearest first) returns the same
    files in the same order as drawn in one process: sweep.png, then the standard ones."""
    from kvsim.report.sweep import draw_figures

    df = _every_figure()
    serial = draw_figures(df, tmp_path / "serial")
    tasks = draw_figures(df, tmp_path / "tasks", {"n_jobs": 1})
    names = ["sweep.png", "hit_ratio_ttft.png", "gap_to_opt.png", "metadata_p99.png", "link_bytes.png"]
    assert [p.name for p in serial] == names and [p.parent.name for p in serial] == ["serial"] * 5
    assert [p.name for p in tasks] == names and [p.parent.name for p in tasks] == ["tasks"] * 5
    # drawn dearest first: sweep.png, then the standard figures in reverse
    assert [name for _fig, name in drawn] == names + ["sweep.png", "link_bytes.png", "metadata_p99.png", "gap_to_opt.png",
                                                     "hit_ratio_ttft.png"]
    assert all(p.stat().st_size > 10_000 for p in serial + tasks)


def test_more_policies_than_the_palette_get_distinct_colours(tmp_path: Path, drawn: list[Any]) -> None:
    """As seaborn's hue mapping: past the theme's ten colours, evenly spaced husl hues (a
    cycled palette would give two policies one colour); markers cycle seaborn's nine."""
    pols = [f"p{k:02d}" for k in range(12)]
    df = pd.DataFrame({"policy": pols * 2, "capacity_total_blocks": [1] * 12 + [2] * 12, "hit_ratio": 0.5,
                       "link:pcie:a->b": 2.0**40})
    sweep_figures.standard_figures(df, tmp_path)
    (hit, _), (links, _) = drawn
    handles = hit.legends[0].legend_handles  # the figure's one legend
    assert len({tuple(mpl.colors.to_rgba(h.get_color())) for h in handles}) == 12
    assert [h.get_marker() for h in handles][9:] == ["o", "X", (4, 0, 45)]
    assert len({tuple(p.get_facecolor()) for p in links.axes[0].patches if p.get_width()}) == 12


def test_a_policy_keeps_its_colour_in_every_figure(tmp_path: Path, drawn: list[Any]) -> None:
    """One mapping (policies by name, opt last, tab10): lines of sweep.png and of the
    standard figures, link_bytes' bars and metadata_p99's bars give each policy one colour."""
    df = _with_costs(_two_traces()).assign(**{"link:pcie:a->b": 2.0**40})
    plot_sweep(df, tmp_path / "sweep.png")
    sweep_figures.standard_figures(df, tmp_path)
    want = dict(zip(("fifo", "lru", "opt"), TAB10, strict=False))
    seen: dict[str, set[tuple[float, ...]]] = {}
    for fig, _name in drawn:
        for lg in [ax.get_legend() for ax in fig.axes] + list(fig.legends):
            if lg is None:
                continue
            for h, t in zip(lg.legend_handles, lg.get_texts(), strict=True):
                if t.get_text() in want:
                    c = h.get_color() if hasattr(h, "get_color") else h.get_facecolor()
                    seen.setdefault(t.get_text(), set()).add(tuple(mpl.colors.to_rgba(c)))
    assert seen == {p: {c} for p, c in want.items()}
