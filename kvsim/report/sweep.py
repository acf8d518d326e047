"""Gather the jobs of a multirun into one tidy table and one figure.

Used as a Hydra callback (``hydra.callbacks.sweep_report`` in conf/config.yaml) and as a
command: ``python -m kvsim.report.sweep DIR`` re-draws from the saved files.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from kvsim.io import write_with

log = logging.getLogger("kvsim")


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


def plot_sweep(df: pd.DataFrame, path: Path) -> Path | None:
    """Hit ratio and TTFT p99 against total cache capacity, one line per policy."""
    if df.empty or "policy" not in df:
        return None
    from kvsim.report.plots import plt, save_figure, sns

    df = df.copy()
    cap_cols = [c for c in df.columns if c.startswith("tier_capacity_blocks.")]
    if cap_cols:
        df["capacity_blocks"] = df[cap_cols].sum(axis=1)
        x, xlabel = "capacity_blocks", "KV-cache capacity, all tiers (blocks)"
    elif "capacity_blocks" in df:
        x, xlabel = "capacity_blocks", "cache capacity (blocks)"
    else:
        return None
    sns.set_theme(style="whitegrid", context="paper")
    panels = [("hit_ratio", "block hit ratio")]
    if "ttft_p99_s" in df:
        df["ttft_p99_ms"] = df["ttft_p99_s"] * 1e3
        panels.append(("ttft_p99_ms", "TTFT p99 (ms)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (col, label) in zip(axes[0], panels, strict=True):
        sns.lineplot(data=df.sort_values(x), x=x, y=col, hue="policy", style="policy", markers=True, ax=ax)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
    trace = df["trace"].iloc[0] if "trace" in df else ""
    fig.suptitle(f"placement sweep on {trace}", fontsize=10)
    return save_figure(fig, path)


def report(sweep_dir: str | Path) -> pd.DataFrame:
    d = Path(sweep_dir)
    df = gather(d)
    if df.empty:
        log.warning("no job summaries under %s", d)
        return df
    write_with(d / "sweep.csv", lambda p: df.to_csv(p, index=False))
    fig = plot_sweep(df, d / "sweep.png")
    cols = [c for c in ("policy", "capacity_scale", "hit_ratio", "ttft_p50_s", "ttft_p99_s", "metadata_p99_s") if c in df]
    if cols:
        log.info("sweep of %d runs:\n%s", len(df), df[cols].sort_values(cols[:2]).to_string(index=False))
    log.info("sweep table: %s; figure: %s", d / "sweep.csv", fig)
    return df


class SweepCallback(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        report(config.hydra.sweep.dir)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m kvsim.report.sweep SWEEP_DIR")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report(sys.argv[1])
