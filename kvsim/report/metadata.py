"""The metadata benchmark's figures, drawn from the files its run saved (``+experiment=metadata_bench``):
the study's Fig. 3 (p99 per interval over the baseline's) and the compute-side cache sweep.

    python -m kvsim.bench.metadata RUN_DIR      # redraw (or gather a multirun first)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from kvsim.report.plots import plain_log_ticks, plt, report_theme, save_figure, sns


def plot_fig3(run_dir: str | Path) -> Path | None:
    """``fig3_p99_normalized.png`` from ``metadata_intervals.csv``: one panel for range
    queries, one for gets; p99 per interval divided by the baseline's (= 1)."""
    d = Path(run_dir)
    df = pd.read_csv(d / "metadata_intervals.csv")
    meta = pd.read_csv(d / "metadata_normalized.csv") if (d / "metadata_normalized.csv").is_file() else None
    df = df.dropna(subset=["normalized"])
    if df.empty:
        return None
    baseline = str(df["baseline"].iloc[0])
    others = df[df["index"] != baseline].copy()
    others["minute"] = others["bin_s"] / 60.0
    names = list(dict.fromkeys(others["index"]))
    report_theme()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    warm = float(meta["warmup_s"].iloc[0]) if meta is not None and len(meta) else 0.0
    palette = dict(zip(names, sns.color_palette("tab10", len(names)), strict=True))
    for ax, kind, title in zip(axes, ["range", "get"], ["(a) range query", "(b) get (search)"], strict=True):
        means = {}
        if meta is not None:
            m = meta[meta["op"] == kind]
            means = dict(zip(m["index"], m["mean_normalized_p99"], strict=True))
        for name in names:
            sub = others[(others["op"] == kind) & (others["index"] == name)]
            if sub.empty:
                continue
            label = f"{name} ({means[name]:.3f})" if name in means else name
            ax.plot(sub["minute"], sub["normalized"], label=label, color=palette[name], linewidth=1.1)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1.0, label=f"{baseline} = 1")
        ax.axvspan(0, warm / 60.0, color="grey", alpha=0.12, lw=0)
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
        ax.set_xlabel("time in trace (min); shaded: warm-up")
        ax.set_ylabel(f"p99 latency / {baseline} p99")
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False,
                  title="index (mean after warm-up)", title_fontsize=7)
    steps = np.diff(np.unique(df["bin_s"].to_numpy()))  # none when the trace spans one interval
    per = f"per {steps.min():g} s interval" if len(steps) else "in one interval"
    fig.suptitle(f"Normalized p99 metadata latency {per} ({baseline} = 1)", fontsize=10)
    return save_figure(fig, d / "fig3_p99_normalized.png")


def plot_cache_sweep(run_dir: str | Path) -> Path | None:
    d = Path(run_dir)
    df = pd.read_csv(d / "metadata_cache_sweep.csv")
    if df.empty:
        return None
    long = df.melt(
        id_vars=["index", "cache_bytes"],
        value_vars=["range_p99_s", "get_p99_s", "request_p99_s"],
        var_name="metric",
        value_name="p99_s",
    )
    long["p99_us"] = long["p99_s"] * 1e6
    pos = long.loc[long["cache_bytes"] > 0, "cache_bytes"]
    zero_at = (pos.min() / 4 if len(pos) else 1024.0) / 2**10
    long["cache_KiB"] = (long["cache_bytes"] / 2**10).where(long["cache_bytes"] > 0, zero_at)
    report_theme()
    titles = {"range_p99_s": "range query p99", "get_p99_s": "get p99", "request_p99_s": "whole lookup per request, p99"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (metric, title) in zip(axes, titles.items(), strict=True):
        sub = long[long["metric"] == metric]
        sns.lineplot(data=sub, x="cache_KiB", y="p99_us", hue="index", style="index", markers=True, ax=ax)
        ax.set_xscale("log")
        ticks = sorted(set(sub["cache_KiB"]))
        shown = [t for t in ticks if t == zero_at or math.log(t, 4).is_integer() or t >= 1024]
        ax.set_xticks(shown)
        ax.set_xticklabels(["0" if t == zero_at else (f"{t / 1024:g}M" if t >= 1024 else f"{t:g}K") for t in shown], fontsize=7)
        ax.set_xlabel("compute-side cache (bytes, log; 0 = none)")
        ax.set_ylabel("p99 (us)")
        ax.set_title(title)
    fig.suptitle("Where each index's p99 turns as its compute-side cache shrinks (after warm-up)", fontsize=10)
    return save_figure(fig, d / "metadata_cache_sweep.png")


def draw_metadata_bench(run_dir: str | Path) -> dict[str, Path | None]:
    """Every figure a metadata bench's saved tables allow: ``figure`` (Fig. 3, when a
    baseline index was replayed) and ``cache_sweep_figure`` (when the part ran)."""
    d = Path(run_dir)
    out: dict[str, Path | None] = {}
    if (d / "metadata_intervals.csv").is_file():
        out["figure"] = plot_fig3(d)
    if (d / "metadata_cache_sweep.csv").is_file():
        out["cache_sweep_figure"] = plot_cache_sweep(d)
    return out
