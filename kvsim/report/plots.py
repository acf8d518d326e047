"""Figures of one simulation run, drawn from its saved requests.parquet and summary.json."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

if "ipykernel" not in sys.modules:  # a notebook's kernel keeps its own (inline) backend
    matplotlib.use("Agg")  # files only; no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from kvsim.io import write_with  # noqa: E402

# The parts of TTFT, in the order a request meets them (they add up to ttft_s).
COMPONENTS = [
    ("metadata_s", "metadata lookup"),
    ("queue_s", "instance queue"),
    ("load_s", "KV load (not hidden by compute)"),
    ("compute_s", "prefill compute (own chunks)"),
    ("batch_wait_s", "batch wait (others' chunks)"),
    ("store_s", "store (index insert)"),
]


def report_theme() -> None:
    """kvsim's figure theme, set by each figure before it draws: a figure drawn in a fresh
    worker process (a parallel report) looks as one drawn after any other."""
    sns.set_theme(style="whitegrid", context="paper")


def policy_colours(policies: Iterable[Any]) -> dict[str, Any]:
    """Each policy's colour, in the order figures list them (by name, ``opt`` last): tab10's
    colours in that order, evenly spaced husl hues past ten (a cycled palette would give two
    policies one colour). One mapping for every figure of a sweep, so a policy keeps its
    colour from one figure to the next."""
    order = sorted({str(p) for p in policies}, key=lambda p: (p == "opt", p))
    return dict(zip(order, sns.color_palette("tab10" if len(order) <= 10 else "husl", len(order)), strict=True))


# seaborn's markers for ``style=``, in its order (``seaborn._base.unique_markers``): a policy
# drawn by :func:`policy_lines` keeps the marker a seaborn style mapping would give it
MARKERS: tuple[str | tuple[int, int, float], ...] = ("o", "X", (4, 0, 45), "P", (4, 0, 0), (4, 1, 0), "^", (4, 1, 45), "v")


def policy_lines(ax: plt.Axes, data: pd.DataFrame, x: str, y: str, order: list[str], palette: dict[str, Any],
                 legend: bool = True) -> list[Any]:
    """One line per policy of ``order`` against ``x`` (the mean of the runs at each x; NaNs
    left out), in its colour and marker, and a legend of every policy of ``order`` (also
    those without data here: each panel of a figure names the same ones). What seaborn's
    ``lineplot(hue=, style=, markers=True, dashes=False)`` draws from one row per point,
    without its per-call statistics: 0.2-0.3 s a panel, most of a sweep report's time.
    Returns the legend's handles (``legend=False``: for one legend of the whole figure)."""
    means = data.groupby(["policy", x], observed=True, sort=True)[y].mean().dropna()
    have = set(means.index.get_level_values(0))
    handles = []
    for i, p in enumerate(order):
        style = {"color": palette[p], "marker": MARKERS[i % len(MARKERS)], "markeredgecolor": "white", "label": str(p)}
        if p in have:
            s = means.loc[p]
            handles.append(ax.plot(s.index.to_numpy(dtype=float), s.to_numpy(dtype=float), **style)[0])
        else:
            handles.append(Line2D([], [], **style))
    if legend:
        ax.legend(handles=handles, fontsize=7, ncol=2)
    return handles


LEGEND_IN = 1.3  # inches on the right of a figure for its one legend of the policies


def policy_legend(fig: Any, handles: list[Any]) -> None:
    """One legend of the policies for a figure of :func:`policy_lines` panels (drawn with
    ``legend=False``), in a column on its right (figures made ``LEGEND_IN`` wider), and
    the panels laid out beside it."""
    if handles:
        fig.legend(handles=handles, title="policy", loc="center right", frameon=False, fontsize=8)
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - LEGEND_IN / fig.get_figwidth(), 1.0))


def plain_log_ticks(axis: Any) -> None:
    """A log axis labelled at 1, 2 and 5 per decade in plain numbers, without minor labels:
    an axis spanning less than a decade otherwise gets matplotlib's minor labels ("2x10^2
    3x10^2 ..."), which overlap."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def save_figure(fig: plt.Figure, path: Path, laid_out: bool = False) -> Path:
    """``laid_out``: the caller ran ``tight_layout``, so the figure is saved as it is (one
    drawing); else cut to what it shows (``bbox_inches="tight"`` draws it twice)."""
    bbox = None if laid_out else "tight"
    write_with(path, lambda p: fig.savefig(p, dpi=130, bbox_inches=bbox, format="png"))
    plt.close(fig)
    return path


#: An ECDF drawn from more values than this is drawn exactly at this many evenly spaced
#: order statistics (and the largest), each weighted by the values it stands for: at most
#: 1/ECDF_POINTS of a step off anywhere, under a pixel; a million-request run's figure then
#: takes a fraction of a second, not seconds (the legend's "best" place scans every vertex).
ECDF_POINTS = 2000


def ecdf_rows(df: pd.DataFrame, x: str, hue: str | None = None,
              points: int = ECDF_POINTS) -> tuple[pd.DataFrame, str | None]:
    """``(data, weights)`` for ``sns.ecdfplot(data=data, x=x, hue=hue, weights=weights)``
    that draws ``df``'s ECDF of ``x`` per ``hue`` group: every row with a value (weights
    None) when no group has more than ``points``; else, per larger group, the rows at ``points``
    evenly spaced ranks (the first and the last included) with a column ``weight``: the
    number of values up to that rank since the previous one, so the cumulative weight at a
    kept value is its exact rank (groups in order of first appearance, as seaborn orders
    them)."""
    cols = [x] if hue is None else [x, hue]
    df = df[cols]
    df = df[df[x].notna()]  # as seaborn does
    keys = df[hue].to_numpy() if hue is not None else None
    if keys is None:
        groups = [np.arange(len(df))]
    else:
        groups = [np.flatnonzero(keys == k) for k in pd.unique(keys)]
    if all(len(g) <= points for g in groups):
        return df, None
    vals = df[x].to_numpy(dtype=float)
    keep, weight = [], []
    for rows in groups:
        order = rows[np.argsort(vals[rows], kind="stable")]
        if len(order) <= points:
            keep.append(order)
            weight.append(np.ones(len(order)))
            continue
        idx = np.unique(np.linspace(0, len(order) - 1, points).round().astype(np.int64))
        keep.append(order[idx])
        weight.append(np.diff(idx, prepend=-1).astype(float))
    return df.iloc[np.concatenate(keep)].assign(weight=np.concatenate(weight)), "weight"


def _read_requests(path: Path) -> pd.DataFrame:
    """The columns of requests.parquet that the run's figures use (a 1 M-request run's
    file has about 30; reading them all took longer than drawing)."""
    import pyarrow.parquet as pq

    want = {"blocks", "prefix_hits", "ttft_s", "real_ttft_s", *(c for c, _ in COMPONENTS)}
    names = [n for n in pq.read_schema(path).names if n in want]
    return pd.read_parquet(path, columns=names)


def reuse_class(requests: pd.DataFrame) -> pd.Series:
    """Each request's share of blocks reused (its prefix found in a tier), in four classes."""
    reuse = requests["prefix_hits"] / requests["blocks"]
    return pd.cut(reuse, [-0.01, 0.25, 0.5, 0.75, 1.0], labels=["reused <= 25%", "25-50%", "50-75%", "> 75%"])


def plot_run(run_dir: str | Path) -> Path:
    """``ttft.png``: TTFT CDF by reuse class, and where the time goes (every stage of TTFT,
    mean per request size)."""
    d = Path(run_dir)
    df = _read_requests(d / "requests.parquet")
    summary = json.loads((d / "summary.json").read_text())
    report_theme()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))

    df = df.assign(reuse=reuse_class(df), ttft_ms=df["ttft_s"] * 1e3)
    data, weights = ecdf_rows(df, "ttft_ms", "reuse")
    sns.ecdfplot(data=data, x="ttft_ms", hue="reuse", weights=weights, ax=ax1, log_scale=True)
    ax1.set_xlabel("time to first token (ms, log)")
    ax1.set_ylabel("share of requests")
    ax1.set_title(f"TTFT  p50 {summary['ttft_p50_s']*1e3:.1f} ms, p99 {summary['ttft_p99_s']*1e3:.1f} ms")

    bins = pd.cut(df["blocks"], [0, 4, 8, 16, 32, 64, np.inf], labels=["1-4", "5-8", "9-16", "17-32", "33-64", ">64"])
    comps = [(c, label) for c, label in COMPONENTS if c in df]  # runs saved before a stage existed
    parts = df.groupby(bins, observed=True)[[c for c, _ in comps]].mean() * 1e3
    bottom = np.zeros(len(parts))
    for col, label in comps:
        ax2.bar(parts.index.astype(str), parts[col], bottom=bottom, label=label)
        bottom += parts[col].to_numpy()
    ax2.set_xlabel("blocks per request")
    ax2.set_ylabel("mean time (ms)")
    ax2.set_title("where TTFT goes")
    if comps:  # (a run saved without the stage columns has nothing to name)
        ax2.legend(fontsize=7)
    node = ""
    if "instances" in summary:
        node = (f" | {summary['instances']} instances, router {summary.get('router')}, "
                f"scheduler {summary.get('scheduler')}")
    fig.suptitle(
        f"{summary.get('trace')} | policy {summary.get('policy')} | index {summary.get('index')}{node} | "
        f"hit ratio {summary['hit_ratio']:.3f}",
        fontsize=9,
    )
    path = save_figure(fig, d / "ttft.png")
    if "real_ttft_s" in df and np.isfinite(df["real_ttft_s"]).any():
        plot_real_ttft(d, df, summary)
    return path


def plot_real_ttft(d: Path, df: pd.DataFrame, summary: dict) -> Path:
    """``ttft_vs_real.png``: the simulation's TTFT against the TTFT measured on the real
    service, request by request (where the trace has it), and both distributions."""
    have = df[np.isfinite(df["real_ttft_s"])]
    report_theme()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.scatter(have["real_ttft_s"], have["ttft_s"], s=4, alpha=0.4)
    lo = max(1e-4, float(min(have["real_ttft_s"].min(), have["ttft_s"].min())))
    hi = float(max(have["real_ttft_s"].max(), have["ttft_s"].max()))
    ax1.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="simulated = real")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("real TTFT (s, measured on the service)")
    ax1.set_ylabel("simulated TTFT (s)")
    ax1.set_title(f"{len(have):,} requests with a measured TTFT")
    ax1.legend(fontsize=7)
    long = pd.concat([
        pd.DataFrame({"ttft_s": have["ttft_s"], "which": "simulated"}),
        pd.DataFrame({"ttft_s": have["real_ttft_s"], "which": "real"}),
    ])
    data, weights = ecdf_rows(long, "ttft_s", "which")
    sns.ecdfplot(data=data, x="ttft_s", hue="which", weights=weights, ax=ax2, log_scale=True)
    ax2.set_xlabel("time to first token (s, log)")
    ax2.set_ylabel("share of those requests")
    ax2.set_title(
        f"p50 simulated {have['ttft_s'].median():.2f} s, real {have['real_ttft_s'].median():.2f} s"
    )
    fig.suptitle(
        f"{summary.get('trace')} | policy {summary.get('policy')} | model {summary.get('model')} "
        "(the real service ran other models, hardware and load: compare shapes, not values)",
        fontsize=9,
    )
    return save_figure(fig, d / "ttft_vs_real.png")
