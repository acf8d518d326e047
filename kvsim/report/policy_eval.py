"""The policy evaluation's figure (``+experiment=policy_eval``), drawn from the files its run
saved (``policy_eval_cells.csv``, ``summary.json``): per trace family, the share of LRU's gap
to OPT that each shown policy and the best classic policy close, by capacity.

    python -m kvsim.report.policy_eval RUN_DIR      # redraw policy_eval.png
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kvsim.errors import InputFileError, UserError, cli

# The families' names in tables and figures.
NAMES = {
    "conversation": "conversation (Mooncake)",
    "agentic": "agentic sessions",
    "tool_use": "tool use (generated)",
    "long_sessions": "long sessions (generated)",
    "zipf_docs": "Zipf documents (generated)",
    "bailian": "Qwen-Bailian (Alibaba)",
}


def evaluated(policies: Sequence[str], classic: Sequence[str]) -> list[str]:
    """The policies judged against the classic ones: neither classic nor OPT."""
    return [p for p in policies if p not in classic and p != "opt"]


def shown_policies(policies: Sequence[str], classic: Sequence[str]) -> list[str]:
    """The policies a run's table and figure show: kvsim's own (hotness, look-ahead) when
    evaluated, else every evaluated one."""
    others = evaluated(policies, classic)
    return [p for p in ("hotness", "lookahead") if p in others] or others


def plot_policy_eval(run_dir: str | Path) -> Path:
    """``policy_eval.png`` of a run folder."""
    from kvsim.report.plots import plain_log_ticks, plt, save_figure  # matplotlib only when drawing

    d = Path(run_dir)
    summary = json.loads((d / "summary.json").read_text())
    table = pd.read_csv(d / "policy_eval_cells.csv")
    policies = shown_policies(summary["policies"], summary["classic"])
    families = list(dict.fromkeys(table["family"]))
    fig, axes = plt.subplots(1, len(families), figsize=(3.2 * len(families), 3.2), sharey=True, squeeze=False)
    for ax, fam in zip(axes[0], families, strict=True):
        rs = table[table["family"] == fam].sort_values("capacity_frac")
        x = rs["capacity_frac"].to_numpy()
        for p in policies:
            ax.plot(x, rs[f"{p}_gap_closed"].to_numpy(), marker="o", label=p)
        gap = (rs["opt"] - rs["lru"]).to_numpy()
        best = np.divide((rs["best_classic_hits"] - rs["lru"]).to_numpy(), gap,
                         out=np.full(len(rs), np.nan), where=gap > 0)
        ax.plot(x, best, ls="--", color="grey", label="best classic")
        ax.axhline(0, color="black", lw=0.5)
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
        ax.set_title(NAMES.get(fam, fam) + (" (tuned)" if bool(rs["tuned_here"].iloc[0]) else ""), fontsize=9)
        ax.set_xlabel("capacity (share of unique blocks)")
    axes[0][0].set_ylabel("share of LRU's gap to OPT closed")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, d / "policy_eval.png", laid_out=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise UserError("usage: python -m kvsim.report.policy_eval RUN_DIR")
    d = Path(argv[0])
    missing = [f for f in ("policy_eval_cells.csv", "summary.json") if not (d / f).is_file()]
    if missing:
        raise InputFileError(f"{d}: not a policy_eval run folder (missing {', '.join(missing)})")
    print(plot_policy_eval(d))
    return 0


if __name__ == "__main__":
    cli(lambda: main(sys.argv[1:]), prog="kvsim.report.policy_eval")
