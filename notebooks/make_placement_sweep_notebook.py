"""Build ``notebooks/placement_sweep.ipynb`` (run: ``python notebooks/make_placement_sweep_notebook.py``).

The notebook reads a placement sweep from its saved files: ``KVSIM_SWEEP_DIR``, or the
newest ``outputs/sweeps/*/*/sweep.csv`` (run ``make run`` first).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbcells import notebook, write

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "placement_sweep.ipynb"

CELLS: list[tuple[str, str]] = [
    ("md", """# Placement policies across the tiers: a sweep, read from its saved files

`make run` (or `python -m kvsim +experiment=placement_sweep [trace=...]`) runs every policy at
several capacities and gathers the jobs into `sweep.csv`. This notebook reads that table and
the per-request records the jobs saved, and shows: how far each policy is from Belady's OPT,
which tiers serve the hits, what that does to TTFT, and what it costs in bytes moved.
Set `KVSIM_SWEEP_DIR=DIR` to read a given sweep; otherwise the newest one is used."""),
    ("code", """import pandas as pd
import seaborn as sns

%matplotlib inline
import matplotlib.pyplot as plt

from kvsim.report.saved import saved_run

SWEEP = saved_run("KVSIM_SWEEP_DIR", "sweeps/*/*/sweep.csv")
if SWEEP is None:
    raise SystemExit("no sweep found: run `make run` first, or set KVSIM_SWEEP_DIR")
df = pd.read_csv(SWEEP / "sweep.csv")
sns.set_theme(style="whitegrid", context="notebook")
print(f"{SWEEP}: {len(df)} runs, policies {sorted(df.policy.unique())}, traces {sorted(df.trace.unique())}")"""),
    ("md", """## Hit ratio and the gap to OPT

`gap_to_opt` is OPT's hit ratio minus the policy's at the same trace and capacities (in
hit-ratio points); `gap_to_opt_rel` is the share of OPT's hits the policy misses."""),
    ("code", """pivot = df.pivot_table(index="policy", columns="capacity_total_blocks", values="gap_to_opt_rel")
display((100 * pivot).round(1).rename_axis(columns="capacity (blocks); % of OPT's hits missed"))
fig, ax = plt.subplots(figsize=(7, 4))
sns.lineplot(data=df[df.policy != "opt"], x="capacity_total_blocks", y="gap_to_opt", hue="policy",
             style="policy", markers=True, ax=ax)
ax.set_xscale("log", base=2)
ax.set_xlabel("KV-cache capacity, all tiers (blocks)")
ax.set_ylabel("gap to OPT (hit-ratio points)")
ax.set_title("how far each policy is from the optimum");"""),
    ("md", "## Which tier serves the hits"),
    ("code", """tiers = [c.split(".", 1)[1] for c in df.columns if c.startswith("tier_hit_ratio.")]
long = df.melt(id_vars=["policy", "capacity_total_blocks"], value_vars=[f"tier_hit_ratio.{t}" for t in tiers],
               var_name="tier", value_name="tier_hit_ratio")
long["tier"] = long["tier"].str.removeprefix("tier_hit_ratio.")
g = sns.catplot(data=long, x="policy", y="tier_hit_ratio", hue="tier", col="capacity_total_blocks", kind="bar",
                col_wrap=3, height=3, aspect=1.3, hue_order=tiers)
for ax in g.axes.flat:
    ax.tick_params(axis="x", labelbottom=True, rotation=45)
g.set_axis_labels("", "share of block accesses hit")
g.figure.tight_layout()"""),
    ("md", """## Time to first token and bytes moved

More hits mean less prefill; but hits in slow tiers cost load time, and every demotion moves
a whole block over the links."""),
    ("code", """fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for ax, (col, label, scale) in zip(axes, [("ttft_p50_s", "TTFT p50 (ms)", 1e3), ("ttft_p99_s", "TTFT p99 (ms)", 1e3),
                                          ("bytes_moved", "bytes moved on links (TiB)", 2.0**-40)], strict=True):
    sns.lineplot(data=df.assign(v=df[col] * scale), x="capacity_total_blocks", y="v", hue="policy",
                 style="policy", markers=True, ax=ax, legend=ax is axes[0])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("capacity (blocks)")
    ax.set_ylabel(label)"""),
    ("md", """## One capacity, request by request

The jobs saved `requests.parquet`; here the TTFT of every request at the smallest capacity,
by policy, and where its time goes."""),
    ("code", """cap = df.capacity_total_blocks.min()
rows = []
for _, r in df[df.capacity_total_blocks == cap].iterrows():
    f = SWEEP / r["job"] / "requests.parquet"
    if f.is_file():
        rows.append(pd.read_parquet(f).assign(policy=r["policy"]))
req = pd.concat(rows, ignore_index=True)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
sns.ecdfplot(data=req.assign(ttft_ms=req.ttft_s * 1e3), x="ttft_ms", hue="policy", log_scale=True, ax=ax1)
ax1.set_xlabel("TTFT (ms, log)")
ax1.set_title(f"TTFT at {cap:,} blocks")
parts = req.groupby("policy")[["metadata_s", "load_s", "queue_s", "compute_s", "store_s"]].mean() * 1e3
parts.plot.barh(stacked=True, ax=ax2).legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
ax2.set_xlabel("mean time per request (ms)")
ax2.set_title("where TTFT goes");"""),
]


def build() -> nbformat.NotebookNode:
    return notebook(CELLS)


if __name__ == "__main__":
    print(write(build(), NOTEBOOK))
