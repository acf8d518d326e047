"""Gather the jobs of a multirun into one tidy table and one figure.

Used as a Hydra callback (``hydra.callbacks.sweep_report`` in conf/config.yaml) and as a
command: ``python -m kvsim.report.sweep DIR`` re-draws from the saved files.

Per configuration (trace x capacity x policy) the table has the hit ratio (all tiers and
``tier_hit_ratio.<tier>``), the gap to OPT, TTFT p50/p99, metadata p99 and the bytes moved
on the links. The gap to OPT compares each run with the ``opt`` run of the same trace and
capacities (same everything but the policy):

    gap_to_opt     = hit_ratio(opt) - hit_ratio            (absolute, in hit-ratio units)
    gap_to_opt_rel = gap_to_opt / hit_ratio(opt)           (share of OPT's hits missed)

NaN where the sweep has no ``opt`` run for that configuration.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from kvsim.errors import InputFileError, UserError, cli
from kvsim.io import write_with

log = logging.getLogger("kvsim")

OPT = "opt"


def _flatten(summary: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for k, v in summary.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                row[f"{k}.{k2}"] = v2
        else:
            row[k] = v
    return row


def gather(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job directory holding a summary.json (job dir name in ``job``)."""
    d = Path(sweep_dir)
    rows = []
    for f in sorted(d.glob("*/summary.json")):
        row = _flatten(json.loads(f.read_text()))
        row["job"] = f.parent.name
        rows.append(row)
    return pd.DataFrame(rows)


def _config_columns(df: pd.DataFrame) -> list[str]:
    """The columns that name a configuration apart from its policy."""
    cols = [c for c in ("trace", "mode", "model", "gpu", "index", "capacity_scale", "capacity_blocks") if c in df]
    cols += sorted(c for c in df.columns if c.startswith("tier_capacity_blocks."))
    return cols


def add_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Total capacity, bytes moved on all links, and the gap to OPT of every row."""
    df = df.copy()
    cap_cols = [c for c in df.columns if c.startswith("tier_capacity_blocks.")]
    if cap_cols:
        df["capacity_total_blocks"] = df[cap_cols].sum(axis=1)
    elif "capacity_blocks" in df:
        df["capacity_total_blocks"] = df["capacity_blocks"]
    link_cols = [c for c in df.columns if c.startswith("link_bytes.")]
    if link_cols:
        df["bytes_moved"] = df[link_cols].fillna(0).sum(axis=1)
    df["opt_hit_ratio"] = np.nan
    if "policy" in df and "hit_ratio" in df:
        keys = _config_columns(df)
        opt = df[df["policy"] == OPT]
        if not opt.empty:
            if keys:
                best = opt.groupby(keys, dropna=False)["hit_ratio"].max().rename("_opt").reset_index()
                df = df.drop(columns="opt_hit_ratio").merge(best, on=keys, how="left")
                df = df.rename(columns={"_opt": "opt_hit_ratio"})
            else:
                df["opt_hit_ratio"] = opt["hit_ratio"].max()
    df["gap_to_opt"] = df["opt_hit_ratio"] - df.get("hit_ratio", np.nan)
    df["gap_to_opt_rel"] = df["gap_to_opt"] / df["opt_hit_ratio"].where(df["opt_hit_ratio"] > 0)
    return df


def plot_sweep(df: pd.DataFrame, path: Path) -> Path | None:
    """Against total capacity, one line per policy: the gap to OPT (first panel), hit ratio,
    TTFT p99, metadata p99, bytes moved; and the hit ratio per tier (stacked, per policy, at
    the middle capacity). One row of panels per trace."""
    if df.empty or "policy" not in df or "capacity_total_blocks" not in df:
        return None
    from kvsim.report.plots import plt, save_figure, sns

    df = df.copy()
    x, xlabel = "capacity_total_blocks", "KV-cache capacity, all tiers (blocks)"
    panels: list[tuple[str, str]] = []
    if df["gap_to_opt"].notna().any():
        df["gap_pp"] = df["gap_to_opt"] * 100
        panels.append(("gap_pp", "gap to OPT (hit-ratio points)"))
    panels.append(("hit_ratio", "block hit ratio, all tiers"))
    tier_cols = [c for c in df.columns if c.startswith("tier_hit_ratio.")]
    for col, label, scale in (
        ("ttft_p99_s", "TTFT p99 (ms)", 1e3),
        ("metadata_p99_s", "metadata lookup p99 (us)", 1e6),
        ("bytes_moved", "bytes moved on links (TiB)", 1 / 2**40),
    ):
        if col in df and df[col].notna().any():
            df[col + "_plot"] = df[col] * scale
            panels.append((col + "_plot", label))
    traces = list(df["trace"].dropna().unique()) if "trace" in df else [""]
    traces = traces or [""]
    n_panels = len(panels) + (1 if tier_cols else 0)
    ncol = min(3, n_panels)
    per = -(-n_panels // ncol)  # rows of panels per trace
    fig, grid = plt.subplots(
        per * len(traces), ncol, figsize=(4.6 * ncol, 3.5 * per * len(traces)), squeeze=False
    )
    sns.set_theme(style="whitegrid", context="paper")
    order = sorted(df["policy"].unique(), key=lambda p: (p == OPT, p))
    palette = dict(zip(order, sns.color_palette("tab10", len(order)), strict=True))
    for r, trace in enumerate(traces):
        axes = [ax for row in grid[r * per : (r + 1) * per] for ax in row]
        for ax in axes[n_panels:]:
            ax.set_visible(False)
        sub = df[df["trace"] == trace] if trace else df
        for ax, (col, label) in zip(axes, panels, strict=False):
            data = sub[sub["policy"] != OPT] if col == "gap_pp" else sub
            sns.lineplot(
                data=data.sort_values(x), x=x, y=col, hue="policy", style="policy", hue_order=order,
                style_order=order, palette=palette, markers=True, dashes=False, ax=ax,
            )
            ax.set_xscale("log", base=2)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
            ax.legend(fontsize=7, ncol=2)
            if trace:
                ax.set_title(trace, fontsize=9)
        if tier_cols:
            ax = axes[len(panels)]
            caps = sorted(sub[x].unique())
            mid = caps[len(caps) // 2]
            at = sub[sub[x] == mid].set_index("policy").reindex(order)[tier_cols].fillna(0)
            bottom = np.zeros(len(at))
            for col in tier_cols:
                ax.bar(at.index.astype(str), at[col], bottom=bottom, label=col.split(".", 1)[1])
                bottom += at[col].to_numpy()
            ax.set_ylim(0, max(1e-9, float(bottom.max())) * 1.3)
            ax.set_ylabel("block hit ratio by tier")
            ax.set_title(f"{trace} at {mid:,.0f} blocks".strip(), fontsize=9)
            ax.tick_params(axis="x", rotation=45, labelsize=7)
            ax.legend(fontsize=7, ncol=len(tier_cols), loc="upper left")
    fig.suptitle("placement sweep: gap to OPT and costs per policy", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def report(sweep_dir: str | Path) -> pd.DataFrame:
    d = Path(sweep_dir)
    df = gather(d)
    if df.empty:
        log.warning("no job summaries under %s", d)
        return df
    df = add_derived(df)
    write_with(d / "sweep.csv", lambda p: df.to_csv(p, index=False))
    fig = plot_sweep(df, d / "sweep.png")
    cols = [
        c
        for c in ("trace", "policy", "capacity_scale", "capacity_blocks", "hit_ratio", "gap_to_opt",
                  "ttft_p50_s", "ttft_p99_s", "metadata_p99_s", "bytes_moved")
        if c in df and df[c].notna().any()
    ]
    if cols:
        sort = [c for c in ("trace", "capacity_scale", "capacity_blocks", "policy") if c in cols]
        log.info("sweep of %d runs:\n%s", len(df), df[cols].sort_values(sort).to_string(index=False))
    log.info("sweep table: %s; figure: %s", d / "sweep.csv", fig)
    return df


class SweepCallback(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        report(config.hydra.sweep.dir)


def main(argv: list[str]) -> int:
    """``python -m kvsim.report.sweep SWEEP_DIR``: a missing folder, or one that holds no
    job, is a one-line error (exit 2), not an empty table."""
    if len(argv) != 1:
        raise UserError("usage: python -m kvsim.report.sweep SWEEP_DIR")
    d = Path(argv[0])
    if not d.is_dir():
        raise InputFileError(f"{d}: no such folder (give a multirun's folder: outputs/sweeps/DATE/TIME)")
    if gather(d).empty:
        raise UserError(f"{d}: no job summaries (*/summary.json): not the folder of a finished multirun")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report(d)
    return 0


if __name__ == "__main__":
    cli(lambda: main(sys.argv[1:]), prog="kvsim.report.sweep")
