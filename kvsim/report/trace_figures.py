"""Figures of a trace analysis, drawn only from the files saved in its run directory.

Each ``draw_*`` function fills one matplotlib axes from :class:`Outputs`, so a figure
file, the overview panel and the notebook all draw the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.colors import LogNorm

from kvsim.io import write_with
from kvsim.report.plots import ecdf_rows, plt, sns  # (plots picks the backend)

BLUE, ORANGE, GREEN, RED, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"

# What the study (kvc-metadata-study.txt, section II) reports, by trace kind.
STUDY_POINTS = {
    "toolagent": [(0.5, 0.25, "study (tool&agent): >75% of requests above 0.5")],
    "conversation": [(0.5, 0.60, "study (conversation): ~40% of requests above 0.5")],
    "synthetic": [(0.8, 0.55, "study (synthetic): 45% of requests above 0.8")],
}


@dataclass
class Outputs:
    dir: Path
    stats: dict[str, Any]
    requests: pd.DataFrame
    accesses: pd.DataFrame
    lru: pd.DataFrame
    popularity: pd.DataFrame

    @property
    def label(self) -> str:
        return str(self.stats.get("trace_file") or self.stats.get("trace"))


def load(run_dir: str | Path) -> Outputs:
    d = Path(run_dir)
    return Outputs(
        d,
        json.loads((d / "trace_stats.json").read_text()),
        pd.read_parquet(d / "requests.parquet"),
        pd.read_parquet(d / "accesses.parquet"),
        pd.read_csv(d / "lru_curve.csv"),
        pd.read_csv(d / "popularity.csv"),
    )


def _pct(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.2f}%" if 0.999 < x < 1 else f"{100 * x:.1f}%"  # 99.99% is not 100.0%


def _note(ax: plt.Axes, text: str, loc: str = "upper left") -> None:
    xy = {"upper left": (0.02, 0.97), "lower right": (0.98, 0.03), "upper right": (0.98, 0.97),
          "lower left": (0.02, 0.03)}[loc]
    ax.text(*xy, text, transform=ax.transAxes, fontsize=8,
            va="top" if "upper" in loc else "bottom", ha="left" if "left" in loc else "right",
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.8", "alpha": 0.9})


def _num(v: float, _pos: object = None) -> str:
    """Tick label without mathtext (1, 10, 100, 1k, 10k, 1M; 0.1, 1e-05): readable and fast."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    if a >= 1e-3:
        return f"{v:g}"
    return f"{v:.0e}"


def _log(axis: Any) -> None:
    """Plain-number major labels and no minor labels on a log axis (after set_*scale)."""
    axis.set_major_formatter(ticker.FuncFormatter(_num))
    axis.set_minor_formatter(ticker.NullFormatter())


def _title(ax: plt.Axes, text: str, y: float = 1.0, **kw: Any) -> None:
    # A fixed y turns off matplotlib's automatic title placement, which re-measures every
    # tick label of every axes at each draw and was half of the figures' run time.
    kw.setdefault("pad", 6)
    ax.set_title(text, y=y, **kw)


# --- panels ----------------------------------------------------------------------------
def draw_hit_rate_cdf(ax: plt.Axes, o: Outputs, title: str | None = None) -> None:
    s = o.stats
    r = o.requests.dropna(subset=["hit_rate"])
    data, w = ecdf_rows(r, "hit_rate")
    sns.ecdfplot(data=data, x="hit_rate", weights=w, ax=ax, color=BLUE, lw=2, label="hit rate (any earlier request)")
    if not s.get("set_equals_prefix", True):
        data, w = ecdf_rows(r, "prefix_hit_rate")
        sns.ecdfplot(data=data, x="prefix_hit_rate", weights=w, ax=ax, color=ORANGE, lw=1.5, ls="--",
                     label="prefix hit rate (longest seen prefix)")
    for x in (0.5, 0.8):
        ax.axvline(x, color=GREY, lw=0.8, ls=":")
    for x, y, text in STUDY_POINTS.get(str(s.get("study_trace")), []):
        ax.plot([x], [y], marker="D", color=RED, ms=7, ls="none", label=text)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("request hit rate = blocks seen in an earlier request / blocks of the request")
    ax.set_ylabel("share of requests with hit rate <= x")
    if title:
        _title(ax, title)
    _note(ax, f"> 0.5: {_pct(s['share_requests_hit_gt_50'])} of requests "
              f"(>= 0.5: {_pct(s.get('share_requests_hit_ge_50'))})\n"
              f"> 0.8: {_pct(s['share_requests_hit_gt_80'])}\n"
              f"block hit ratio {_pct(s['block_hit_ratio'])}"
              + ("\nhit blocks = longest seen prefix in every request" if s.get("set_equals_prefix") else ""))
    ax.legend(loc="lower right", fontsize=8)


def draw_block_ids_over_time(ax: plt.Axes, o: Outputs, marginal: plt.Axes | None = None,
                             cax: plt.Axes | None = None, title: str | None = None) -> None:
    s = o.stats
    a = o.accesses
    hits = a[a["hit"]]
    t_min = a["arrival_s"].to_numpy() / 60.0
    x = hits["arrival_s"].to_numpy() / 60.0
    y = hits["block_id"].to_numpy()
    ymax = max(1, int(a["block_id"].max()))
    if len(hits):
        _, _, _, im = ax.hist2d(x, y, bins=(120, 150), range=[[0, max(t_min.max(), 1e-9)], [0, ymax]],
                                norm=LogNorm(), cmap="rocket_r", cmin=1)
        cb = plt.colorbar(im, cax=cax) if cax is not None else plt.colorbar(im, ax=ax, pad=0.02)
        cb.set_label("re-accesses per cell (log)")
        _log(cb.ax.yaxis)
    newest = np.maximum.accumulate(a["block_id"].to_numpy())
    step = max(1, len(newest) // 2000)
    ax.plot(t_min[::step], newest[::step], color=BLUE, lw=1.2, label="newest block id so far")
    ax.set_xlabel("arrival time (minutes)")
    dense = s.get("ids_dense_first_seen_order")
    ax.set_ylabel("block id" + (" (numbered in first-seen order)" if dense else ""))
    if title:
        _title(ax, title)
    ax.set_xlim(0, max(t_min.max(), 1e-9))
    ax.set_ylim(0, ymax)
    if dense and len(hits):
        ax.annotate(f"earliest blocks: block 0 is\nre-used by {_pct(s['hit_rate_first_block'])} of requests",
                    xy=(t_min.max() * 0.55, ymax * 0.005), xytext=(t_min.max() * 0.5, ymax * 0.12),
                    fontsize=8, arrowprops={"arrowstyle": "->", "color": "0.2"},
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.8"})
        ax.annotate("recently created blocks\n(just below the newest id)",
                    xy=(t_min.max() * 0.3, ymax * 0.27), xytext=(t_min.max() * 0.03, ymax * 0.55),
                    fontsize=8, arrowprops={"arrowstyle": "->", "color": "0.2"},
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.8"})
    ax.legend(loc="upper left", fontsize=8)
    if marginal is not None:
        counts, edges = np.histogram(y, bins=150, range=(0, ymax))
        marginal.barh(edges[:-1], counts, height=np.diff(edges), align="edge", color=GREY)
        marginal.set_xscale("log")
        _log(marginal.xaxis)
        marginal.set_ylim(0, ymax)
        marginal.set_xlabel("re-accesses\nper id bin (log)")
        marginal.tick_params(labelleft=False)
        _title(marginal, "all times", fontsize=9)


def draw_sequential_over_time(ax: plt.Axes, o: Outputs) -> None:
    r = o.requests.dropna(subset=["sequential_fraction"])
    t = r["arrival_s"] / 60.0
    jitter = np.random.default_rng(0).uniform(-0.01, 0.01, len(r))
    ax.scatter(t, r["sequential_fraction"] + jitter, s=3, alpha=0.15, color=BLUE, lw=0,
               label="one request")
    bins = np.floor(t).astype(int)
    m = r.groupby(bins)["sequential_fraction"].mean()
    ax.plot(m.index + 0.5, m.to_numpy(), color=RED, lw=1.5, label="mean per minute")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("arrival time (minutes)")
    ax.set_ylabel("sequential fraction of the request")
    _title(ax, "Sequential fraction over time")
    ax.legend(loc="lower left", fontsize=8)


def draw_sequential_hist(ax: plt.Axes, o: Outputs, title: str = "Distribution over requests") -> None:
    s = o.stats
    r = o.requests.dropna(subset=["sequential_fraction"])
    sns.histplot(x=r["sequential_fraction"], bins=np.linspace(0, 1, 21), stat="percent", ax=ax,
                 color=BLUE)
    mean, bw = s["mean_sequential_fraction"], s["block_weighted_sequential_fraction"]
    ax.axvline(mean, color=RED, lw=1.5, label=f"mean over requests {_pct(mean)}")
    ax.axvline(bw, color=GREEN, lw=1.5, ls="--", label=f"block-weighted {_pct(bw)}")
    if s.get("study_trace"):
        ax.axvline(0.868, color=GREY, lw=1.2, ls=":", label="study (tool&agent) 86.8%")
    ax.set_xlabel("sequential fraction = blocks in runs of >= 2 consecutive ids / blocks")
    ax.set_ylabel("% of requests")
    _title(ax, title)
    ax.legend(loc="upper left", fontsize=8)


def draw_runs_pvalue_hist(ax: plt.Axes, o: Outputs) -> None:
    s = o.stats
    r = o.requests.dropna(subset=["runs_pvalue"])
    alpha = s["settings"]["runs_alpha"]
    bins = np.linspace(0, 1, 21).tolist()
    ax.hist(r["runs_pvalue_shuffled"], bins=bins, histtype="step", lw=1.5, color=GREY,
            weights=np.full(len(r), 100.0 / max(1, len(r))),
            label="same ids, randomly reordered")
    ax.hist(r["runs_pvalue"], bins=bins, alpha=0.7, color=BLUE,
            weights=np.full(len(r), 100.0 / max(1, len(r))), label="scattered ids in request order")
    ax.axvline(alpha, color=RED, lw=1, ls="--", label=f"p = {alpha}")
    ax.set_xlabel("runs-test p-value (two-sided)")
    ax.set_ylabel("% of tested requests")
    _title(ax, f"p-values: {_pct(s['runs_test_share_p_gt_005'])} of {s['runs_test_n']} "
                 f"requests have p > {alpha}")
    ax.legend(loc="upper center", fontsize=8)


def draw_runs_pvalue_by_n(ax: plt.Axes, o: Outputs) -> None:
    from kvsim.analysis.runs_test import monotone_pvalue

    s = o.stats
    r = o.requests.dropna(subset=["runs_pvalue"])
    alpha = s["settings"]["runs_alpha"]
    exact_below = s["settings"]["runs_exact_below"]
    floor = 1e-6
    jit = np.random.default_rng(0).uniform(-0.2, 0.2, len(r))
    ax.scatter(r["scattered"] + jit, np.maximum(r["runs_pvalue_shuffled"], floor), s=6, alpha=0.25,
               color=GREY, lw=0, label="randomly reordered")
    ax.scatter(r["scattered"] + jit, np.maximum(r["runs_pvalue"], floor), s=8, alpha=0.5,
               color=BLUE, lw=0, label="request order")
    nmax = int(max(10, r["scattered"].max() if len(r) else 10))
    ns = np.arange(2, nmax + 1)
    ax.plot(ns, [max(monotone_pvalue(int(k), "auto", exact_below), floor) for k in ns],
            color=RED, lw=1.2, drawstyle="steps-mid", label="any increasing sequence (2 runs)")
    ax.axhline(alpha, color=RED, lw=1, ls="--")
    n_min = s.get("runs_test_min_n_that_can_reject")
    if n_min:
        ax.axvspan(1.5, n_min - 0.5, color=GREEN, alpha=0.08)
        ax.text(1.7, 1.5e-6, f"n < {n_min}: no ordering\ncan give p <= {alpha}", fontsize=8,
                va="bottom")
    ax.set_yscale("log")
    _log(ax.yaxis)
    ax.set_ylim(floor * 0.8, 2)
    ax.set_xscale("log", base=2)
    _log(ax.xaxis)
    ax.set_xlabel("scattered blocks in the request (n, log scale)")
    ax.set_ylabel("p-value (log)")
    _title(ax, f"...but p depends on n: {_pct(s['runs_test_share_scattered_strictly_increasing'])} "
                 "of sequences are increasing")
    ax.legend(loc="lower left", fontsize=8, bbox_to_anchor=(0.0, 0.12))


def draw_reuse_distance(ax_req: plt.Axes, ax_s: plt.Axes, o: Outputs) -> None:
    s = o.stats
    a = o.accesses[o.accesses["hit"]]
    if len(a):
        data, w = ecdf_rows(a, "reuse_requests")
        sns.ecdfplot(data=data, x="reuse_requests", weights=w, ax=ax_req, color=BLUE, lw=2, log_scale=True)
        data, w = ecdf_rows(a, "reuse_s")
        sns.ecdfplot(data=data, x="reuse_s", weights=w, ax=ax_s, color=BLUE, lw=2)
        ax_s.set_xscale("symlog", linthresh=max(1.0, s.get("arrival_resolution_s") or 1.0))
        ax_s.set_xlim(left=0)
        _log(ax_req.xaxis)
        _log(ax_s.xaxis)
    d, ds = s["reuse_distance_requests"], s["reuse_distance_s"]
    for ax, q, unit in ((ax_req, d, ""), (ax_s, ds, " s")):
        for k in ("p50", "p90"):
            if q.get(k) is not None:
                ax.axvline(max(q[k], 1e-9), color=GREY, lw=0.8, ls=":")
        _note(ax, "\n".join(f"{k}: {q[k]:,.0f}{unit}" for k in ("p10", "p50", "p90", "p99")
                            if q.get(k) is not None), "lower right")
        ax.set_ylabel("share of re-accesses (CDF)")
    ax_req.set_xlabel("requests since the block's last use (1 = the previous request; log)")
    ax_s.set_xlabel("seconds since the block's last use (linear below the\ntimestamp resolution, log above)")
    _title(ax_req, "In requests")
    _title(ax_s, "In seconds")


def draw_lru(ax: plt.Axes, o: Outputs, title: str | None = None) -> None:
    s = o.stats
    lru = o.lru
    ax.plot(lru["capacity_blocks"], lru["miss_ratio"], color=BLUE, lw=2, label="LRU miss ratio")
    cold = 1.0 - s["lru_unlimited_hit_ratio"]
    ax.axhline(cold, color=RED, lw=1, ls="--", label=f"unlimited cache (cold misses) {_pct(cold)}")
    caps = {k: v for k, v in (s.get("lru_capacity_for_share_of_unlimited") or {}).items() if v}
    for i, (share, cap) in enumerate(caps.items()):
        ax.axvline(cap, color=GREY, lw=0.8, ls=":",
                   label="capacity for 50/90/99% of the\nunlimited cache's hits" if i == 0 else None)
        ax.text(cap, 0.98 - 0.06 * i, f" {float(share):.0%}", fontsize=8, va="top", color="0.3")
    ax.set_xscale("log")
    _log(ax.xaxis)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("cache capacity (blocks of 512 tokens, log)")
    ax.set_ylabel("miss ratio (block accesses)")
    if title:
        _title(ax, title, y=1.13 if s.get("kv_block_bytes") else 1.0)
    ax.legend(loc="lower left", fontsize=8)
    bb = float(s.get("kv_block_bytes") or 0)
    if bb:
        gib = bb / 2**30
        sec = ax.secondary_xaxis("top", functions=(lambda c: np.multiply(c, gib), lambda g: np.divide(g, gib)))
        _log(sec.xaxis)
        sec.set_xlabel(f"KV capacity for {s.get('kv_model')} (GiB)", fontsize=8)


def draw_popularity(ax: plt.Axes, o: Outputs) -> None:
    s = o.stats
    pop = o.popularity.sort_values("accesses", ascending=False)
    counts = np.repeat(pop["accesses"].to_numpy(), pop["blocks"].to_numpy())
    ranks = np.arange(1, counts.size + 1)
    idx = np.unique(np.round(np.logspace(0, np.log10(max(1, counts.size)), 400)).astype(int)) - 1
    ax.plot(ranks[idx], counts[idx], color=BLUE, lw=2, marker=".", ms=3, label="blocks")
    if s.get("zipf_exponent") is not None:
        zs, zc = s["zipf_exponent"], s["zipf_fit_log10_intercept"]
        last = int(np.count_nonzero(counts >= 2))
        rr = np.logspace(0, np.log10(max(2, last)), 50)
        ax.plot(rr, 10**zc * rr ** (-zs), color=RED, ls="--", lw=1.2,
                label=f"fitted Zipf s = {zs:.2f} (r² = {s['zipf_fit_r2']:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log(ax.xaxis)
    _log(ax.yaxis)
    ax.set_xlabel("block rank by access count (log)")
    ax.set_ylabel("accesses to the block (log)")
    _title(ax, "Block popularity (rank-frequency)")
    _note(ax, f"top 1% of blocks ({s['top1pct_blocks']:,}): {_pct(s['top1pct_blocks_access_share'])} "
              f"of accesses\nblocks accessed once: {_pct(s['share_blocks_accessed_once'])}",
          "lower left")
    ax.legend(loc="upper right", fontsize=8)


def draw_hit_by_position(ax: plt.Axes, o: Outputs, max_pos: int = 64) -> None:
    a = o.accesses
    blocks = o.requests["blocks"].to_numpy()
    from_end = blocks[a["request"].to_numpy()] - 1 - a["position"].to_numpy()
    df = pd.DataFrame({"hit": a["hit"].to_numpy(), "start": a["position"].to_numpy(), "end": from_end})
    for col, color, label in (("start", BLUE, "k-th block from the start (0 = first)"),
                              ("end", ORANGE, "k-th block from the end (0 = last)")):
        g = df[df[col] < max_pos].groupby(col)["hit"].mean()
        ax.plot(g.index, g.to_numpy(), color=color, lw=2, marker=".", label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("position k in the request")
    ax.set_ylabel("hit rate (seen in an earlier request)")
    _title(ax, "Block hit rate by position in the request")
    ax.legend(loc="upper right", fontsize=8)


# --- figure files ----------------------------------------------------------------------
def _theme() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def _suptitle(fig: plt.Figure, o: Outputs, what: str) -> None:
    s = o.stats
    fig.suptitle(f"{what}\n{o.label}: {s['requests']:,} requests, {s['block_accesses']:,} block "
                 f"accesses, {s['unique_blocks']:,} blocks, {s['span_s'] / 60:.0f} min",
                 fontsize=10)


# Fixed margins per figure shape. Written for speed: tight_layout and bbox_inches="tight"
# each measure every text element once more, and together were half of the figures' time.
ONE = {"left": 0.1, "right": 0.97, "bottom": 0.11, "top": 0.86}
TWO = {"left": 0.06, "right": 0.985, "bottom": 0.13, "top": 0.85, "wspace": 0.2}


def _save(fig: plt.Figure, path: Path, adjust: dict[str, float], dpi: int = 130) -> Path:
    fig.subplots_adjust(**adjust)
    write_with(path, lambda p: fig.savefig(p, dpi=dpi, format="png"))
    plt.close(fig)
    return path


def plot_all(run_dir: str | Path, overview: bool = True) -> list[Path]:
    """Draw every figure of a trace-analysis run directory; return the paths written."""
    o = load(run_dir)
    d = o.dir
    _theme()
    paths = []

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    draw_hit_rate_cdf(ax, o)
    _suptitle(fig, o, "Fig. 1a  Per-request block hit rate (unlimited cache)")
    paths.append(_save(fig, d / "fig1a_hit_rate_cdf.png", ONE))

    fig, (ax, mg, cax) = plt.subplots(1, 3, figsize=(10.5, 5.8),
                                      gridspec_kw={"width_ratios": [6, 1.1, 0.18]})
    draw_block_ids_over_time(ax, o, marginal=mg, cax=cax)
    _suptitle(fig, o, "Fig. 1b  Which blocks are re-accessed, and when")
    paths.append(_save(fig, d / "fig1b_block_ids_over_time.png",
                       {"left": 0.08, "right": 0.93, "bottom": 0.14, "top": 0.87, "wspace": 0.06}))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5))
    draw_sequential_over_time(a1, o)
    draw_sequential_hist(a2, o)
    _suptitle(fig, o, "Fig. 2a  Share of each request's blocks in runs of consecutive ids "
              "(id[i+1] = id[i] + 1)")
    paths.append(_save(fig, d / "fig2a_sequential_fraction.png", TWO))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5))
    draw_runs_pvalue_hist(a1, o)
    draw_runs_pvalue_by_n(a2, o)
    _suptitle(fig, o, "Fig. 2b  Wald-Wolfowitz runs test (median split) on each request's "
              "scattered block ids")
    paths.append(_save(fig, d / "fig2b_runs_test_pvalues.png", TWO))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    draw_reuse_distance(a1, a2, o)
    _suptitle(fig, o, "Fig. 3  Reuse distance: from the latest earlier request holding the "
              "block to this access")
    paths.append(_save(fig, d / "fig3_reuse_distance.png", {**TWO, "bottom": 0.17}))

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    draw_lru(ax, o)
    _suptitle(fig, o, "Fig. 4  LRU miss ratio vs capacity (exact for every capacity, one pass)")
    paths.append(_save(fig, d / "fig4_lru_miss_ratio.png", {**ONE, "top": 0.8}))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    draw_popularity(a1, o)
    draw_hit_by_position(a2, o)
    _suptitle(fig, o, "Fig. 5  Popularity skew, and where in a request the reuse is")
    paths.append(_save(fig, d / "fig5_popularity_position.png", TWO))

    if overview:
        paths.append(plot_overview(o, d / "overview.png"))
    return paths


def plot_overview(o: Outputs, path: Path, dpi: int = 90) -> Path:
    """Four panels (hit-rate CDF, block ids over time, sequential fraction, LRU) in one PNG."""
    _theme()
    fig, axs = plt.subplots(2, 2, figsize=(12, 8.8))
    draw_hit_rate_cdf(axs[0, 0], o, title="Fig. 1a  Per-request hit rate (unlimited cache)")
    draw_block_ids_over_time(axs[0, 1], o, title="Fig. 1b  Re-accessed blocks by id and time")
    draw_sequential_hist(axs[1, 0], o, title="Fig. 2a  Sequential fraction per request")
    draw_lru(axs[1, 1], o, title="Fig. 4  LRU miss ratio (exact, one pass)")
    axs[0, 0].set_xlabel("request hit rate (blocks seen in an earlier request / blocks)")
    _suptitle(fig, o, "KV-cache block access patterns")
    return _save(fig, path, {"left": 0.06, "right": 0.97, "bottom": 0.07, "top": 0.895,
                             "wspace": 0.2, "hspace": 0.4}, dpi=dpi)
