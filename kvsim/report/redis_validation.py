"""The figure of ``+experiment=redis_validation``, drawn from its saved files:
real vs simulated latency CDFs, one panel per op kind (rows) and speed-up (columns); with
several replays per speed-up (``experiment.replays``) each replay's measured CDF is drawn
faintly under the pooled one.

    python -m kvsim.report.redis_validation RUN_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kvsim.report.plots import plain_log_ticks, plt, report_theme, save_figure

OPS = ("get", "range", "insert", "delete")


def plot_cdfs(run_dir: str | Path) -> Path | None:
    """``redis_validation_cdf.png`` in ``run_dir``, from its saved files (None: no commands)."""
    d = Path(run_dir)
    lat = pd.read_parquet(d / "redis_validation_latency.parquet")
    if lat.empty:
        return None
    fig = cdf_figure(lat, pd.read_csv(d / "redis_validation.csv"))
    return save_figure(fig, d / "redis_validation_cdf.png", laid_out=True)


def cdf_figure(lat: pd.DataFrame, table: pd.DataFrame) -> plt.Figure:
    """The figure from a run's per-command latencies and its cells (``notebooks/`` shows it
    without writing into the run's folder)."""
    ops = [o for o in OPS if o in set(lat["op"])]
    speeds = sorted(set(lat["speedup"]))
    report_theme()
    fig, axes = plt.subplots(len(ops), len(speeds), figsize=(3.6 * len(speeds), 2.8 * len(ops)), squeeze=False)
    colors = {"real": "black", "sim": "tab:orange"}
    for i, op in enumerate(ops):
        for j, sp in enumerate(speeds):
            ax = axes[i][j]
            cell = lat[(lat["op"] == op) & (lat["speedup"] == sp) & (lat["source"] == "real")]
            if "replay" in cell and cell["replay"].nunique() > 1:
                # each replay's own, faint, under the pooled lines: the measurement's spread
                for k, (_, one) in enumerate(cell.groupby("replay")):
                    x = np.sort(one["latency_s"].to_numpy())
                    ax.plot(x * 1e6, np.arange(1, len(x) + 1) / len(x), color="0.7", lw=0.6, ls="-",
                            label="one replay" if k == 0 else "_nolegend_")
            for src in ("real", "sim"):
                x = np.sort(lat.loc[(lat["op"] == op) & (lat["speedup"] == sp) & (lat["source"] == src), "latency_s"].to_numpy())
                if len(x):
                    ax.plot(x * 1e6, np.arange(1, len(x) + 1) / len(x), color=colors[src], lw=1.2,
                            ls="-" if src == "real" else "--", label="real redis-server" if src == "real" else "simulated")
            row = table[(table["op"] == op) & (table["speedup"] == sp)]
            if len(row):
                r = row.iloc[0]
                ax.set_title(f"{op}, x{sp:g}: p50 {100 * r.err_p50:+.0f}%, p99 {100 * r.err_p99:+.0f}%", fontsize=8)
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
            ax.set_xlabel("latency (us, log)", fontsize=7)
            ax.set_ylabel("CDF", fontsize=7)
            ax.axhline(0.99, color="grey", lw=0.6, ls=":")
            if i == 0 and j == 0:
                ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Redis model vs a real redis-server: the same commands at the trace's arrival times", fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m kvsim.report.redis_validation RUN_DIR")
    print(plot_cdfs(sys.argv[1]))
