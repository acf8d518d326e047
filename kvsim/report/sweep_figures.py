"""The standard figures of a sweep, drawn from its table (complete jobs only).

* ``hit_ratio_ttft.png``: hit ratio and TTFT p50 / p99 against capacity, one line per policy;
* ``gap_to_opt.png``: the gap to OPT against capacity, one line per policy;
* ``metadata_p99.png``: metadata lookup p99 per index (bars per policy);
* ``link_bytes.png``: bytes per link direction (summary keys ``link:NAME:A->B``, top level
  or in ``link_bytes``; the per-link ``link_bytes.NAME`` where a summary has no directions),
  per policy and capacity.

A figure whose columns the sweep does not have is left out (a single-tier sweep has no TTFT).
Each function imports matplotlib and seaborn itself (about 3 s): a parallel report's own
process, which only hands the figures to its workers, never does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

X, XLABEL = "capacity_total_blocks", "KV-cache capacity (blocks)"


def _traces(df: pd.DataFrame) -> list[str]:
    return sorted(df["trace"].dropna().astype(str).unique()) if "trace" in df else [""]


def _lines(df: pd.DataFrame, panels: list[tuple[str, str, float]], path: Path, title: str) -> Path | None:
    panels = [p for p in panels if p[0] in df and df[p[0]].notna().any()]
    if not panels or X not in df or "policy" not in df:
        return None
    from kvsim.report.plots import (
        LEGEND_IN,
        plt,
        policy_colours,
        policy_legend,
        policy_lines,
        save_figure,
    )

    traces = _traces(df) or [""]
    fig, axes = plt.subplots(len(traces), len(panels), figsize=(4.6 * len(panels) + LEGEND_IN, 3.4 * len(traces)),
                             squeeze=False)
    handles: list[Any] = []
    palette = policy_colours(df["policy"])
    order = list(palette)
    for r, trace in enumerate(traces):
        sub = df[df["trace"].astype(str) == trace] if trace else df
        for ax, (col, label, scale) in zip(axes[r], panels, strict=True):
            data = sub.assign(_y=sub[col] * scale)
            handles = policy_lines(ax, data, X, "_y", order, palette, legend=False)
            if data[X].min() > 0:
                ax.set_xscale("log", base=2)
            ax.set_xlabel(XLABEL)
            ax.set_ylabel(label)
            ax.set_title(trace, fontsize=9)
    fig.suptitle(title, fontsize=10)
    policy_legend(fig, handles)
    return save_figure(fig, path, laid_out=True)


def _link_columns(df: pd.DataFrame) -> list[str]:
    """Bytes per link direction (``link:NAME:A->B``, or ``link_bytes.NAME:A->B`` as nested in
    a summary's ``link_bytes``); the per-link ``link_bytes.NAME`` of older summaries else."""
    links = [c for c in df.columns if c.startswith(("link:", "link_bytes.")) and df[c].notna().any()]
    return [c for c in links if "->" in c] or [c for c in links if c.startswith("link_bytes.")]


def hit_ratio_ttft(df: pd.DataFrame, out: Path) -> Path | None:
    """``hit_ratio_ttft.png``."""
    from kvsim.report.plots import report_theme

    report_theme()
    return _lines(df, [("hit_ratio", "block hit ratio", 1.0), ("ttft_p50_s", "TTFT p50 (ms)", 1e3),
                       ("ttft_p99_s", "TTFT p99 (ms)", 1e3)], out / "hit_ratio_ttft.png",
                  "hit ratio and TTFT against capacity, per policy")


def gap_to_opt(df: pd.DataFrame, out: Path) -> Path | None:
    """``gap_to_opt.png`` (OPT's own rows left out)."""
    from kvsim.report.plots import report_theme

    report_theme()
    return _lines(df[df["policy"] != "opt"] if "policy" in df else df,
                  [("gap_to_opt", "gap to OPT (hit-ratio points)", 100.0), ("gap_to_opt_rel", "share of OPT's hits missed (%)", 100.0)],
                  out / "gap_to_opt.png", "gap to Belady's OPT at the same configuration")


def metadata_p99(df: pd.DataFrame, out: Path) -> Path | None:
    """``metadata_p99.png``."""
    if not ({"index", "metadata_p99_s", "policy"} <= set(df.columns) and df["metadata_p99_s"].notna().any()):
        return None
    from kvsim.report.plots import plt, policy_colours, report_theme, save_figure, sns

    report_theme()
    data = df.assign(p99_us=df["metadata_p99_s"] * 1e6)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * data["index"].nunique() + 2), 3.4))
    sns.barplot(data=data, x="index", y="p99_us", hue="policy", ax=ax, errorbar=("pi", 100),
                palette=policy_colours(data["policy"]), saturation=1.0)  # the lines' colours, not dimmed
    ax.set_ylabel("metadata lookup p99 (us; bar: mean over capacities, line: range)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(fig, out / "metadata_p99.png", laid_out=True)


def link_bytes(df: pd.DataFrame, out: Path) -> Path | None:
    """``link_bytes.png``."""
    links = _link_columns(df)
    if not links or "policy" not in df:
        return None
    from kvsim.report.plots import plt, policy_colours, report_theme, save_figure

    report_theme()
    idv = ["policy"] + ([X] if X in df else [])
    long = df.melt(id_vars=idv, value_vars=links, var_name="link", value_name="bytes").dropna(subset=["bytes"])
    long["link"] = long["link"].str.removeprefix("link:").str.removeprefix("link_bytes.")
    long["TiB"] = long["bytes"] / 2**40
    caps = sorted(long[X].unique()) if X in long else []
    # a panel per capacity for two to six of them; else one panel, the mean over capacities
    panels: list[Any] = caps if 1 < len(caps) <= 6 else [None]
    order = list(dict.fromkeys(long["link"]))
    palette = policy_colours(long["policy"])
    policies = list(palette)
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    # panels 3.2 inches high at 1.4 : 1, and room on the right for the figure's legend
    fig, grid = plt.subplots(nrow, ncol, figsize=(3.2 * 1.4 * ncol + 1.2, 3.2 * nrow), squeeze=False)
    axes = list(grid.flat)
    width = 0.8 / len(policies)
    at = np.arange(len(order))
    for ax, cap in zip(axes, panels, strict=False):
        means = (long if cap is None else long[long[X] == cap]).groupby(["policy", "link"], sort=False)["TiB"].mean()
        for j, pol in enumerate(policies):
            heights = np.array([means.get((pol, link), np.nan) for link in order], dtype=float)
            have = np.isfinite(heights)
            ax.bar(at[have] - 0.4 + width * (j + 0.5), heights[have], width, color=palette[pol], label=str(pol))
        # the names given, not read back from the axes (empty before the figure is drawn)
        ax.set_xticks(at, order, rotation=60, ha="right", fontsize=7)
        if cap is not None:
            ax.set_title(f"{X} = {cap}")
    for ax in axes[len(panels):]:
        ax.remove()  # a row's unused places
    for k, ax in enumerate(axes[: len(panels)]):
        ax.set_xlabel("link direction" if k >= len(panels) - ncol else "")
        ax.set_ylabel("bytes moved (TiB)" if k % ncol == 0 else "")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="policy", loc="center right", frameon=False)
    fig.suptitle("bytes per link direction", fontsize=10)
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - 1.2 / fig.get_figwidth(), 1.0))
    return save_figure(fig, out / "link_bytes.png", laid_out=True)


# the standard figures in their order; each draws one figure (or None when the sweep lacks
# its columns), so a parallel report can hand them to different workers
FIGURES: tuple[Callable[[pd.DataFrame, Path], Path | None], ...] = (hit_ratio_ttft, gap_to_opt, metadata_p99, link_bytes)


def standard_figures(df: pd.DataFrame, out: Path) -> list[Path]:
    made = [f(df, out) for f in FIGURES]
    return [p for p in made if p is not None]
