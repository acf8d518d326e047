"""Build ``notebooks/serving_run.ipynb`` (run: ``python notebooks/make_serving_run_notebook.py``).

The notebook reads one simulation run (``python -m kvsim ...``) from its saved files:
``KVSIM_RUN_DIR``, or the newest ``outputs/**/requests.parquet`` beside a ``summary.json``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbcells import notebook, write

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "serving_run.ipynb"

CELLS: list[tuple[str, str]] = [
    ("md", """# One serving run: where a request's time goes, per instance, per link, over time

`python -m kvsim` (any trace, policy, index, router and scheduler) saves one row per request
(`requests.parquet`) and the run's figures (`summary.json`). This notebook reads them and
shows the stages of the time to first token, for the typical and the slow requests, what
reuse buys, how the instances share the load, how busy each link direction was, and whether
the node kept up over time. Set `KVSIM_RUN_DIR=DIR` to read a given run; otherwise the newest
one under `outputs/` is used."""),
    ("code", """import json

import numpy as np
import pandas as pd
import seaborn as sns

%matplotlib inline
import matplotlib.pyplot as plt

from kvsim.report.saved import saved_run

RUN = saved_run("KVSIM_RUN_DIR", "**/requests.parquet", beside="summary.json")
if RUN is None:
    raise SystemExit("no run found: run `python -m kvsim` first, or set KVSIM_RUN_DIR")
summary = json.loads((RUN / "summary.json").read_text())
req = pd.read_parquet(RUN / "requests.parquet")
sns.set_theme(style="whitegrid", context="notebook")
facts = {k: summary.get(k) for k in ("trace", "policy", "index", "router", "scheduler", "instances", "requests",
                                     "hit_ratio", "ttft_p50_s", "ttft_p99_s", "overloaded", "overloaded_peak",
                                     "over_context_requests")}
display(pd.Series(facts, name=str(RUN)).to_frame())
if summary.get("overloaded") or summary.get("overloaded_peak"):
    print("the node is overloaded (on average or in its busiest ten minutes): queueing dominates TTFT")"""),
    ("md", """## Where the time goes

A request's TTFT is its metadata lookup, its wait for the instance, the KV load not hidden by
compute, its own compute, the wait for the rest of its batch, and the store of its new blocks
(`queue_s` + `batch_wait_s` + ... as the README's Outputs section defines them). The table
gives each stage's mean, p50 and p99; the bars split the mean TTFT of each tenth of the
requests (written above each), from the fastest to the slowest, into the stages' shares, so
the stages that make a request slow stand out."""),
    ("code", """from kvsim.report.plots import COMPONENTS, ecdf_rows, reuse_class

STAGES = [c for c, _ in COMPONENTS if c in req]  # ttft.png's stages
table = pd.DataFrame({"mean": req[STAGES + ["ttft_s"]].mean(), "p50": req[STAGES + ["ttft_s"]].median(),
                      "p99": req[STAGES + ["ttft_s"]].quantile(0.99)}) * 1e3
display(table.round(3).rename_axis("ms"))
decile = pd.qcut(req.ttft_s.rank(method="first"), 10, labels=[f"{10 * i}-{10 * i + 10}%" for i in range(10)])
parts = req.groupby(decile, observed=True)[STAGES].mean()
ax = parts.div(parts.sum(axis=1), axis=0).plot.bar(stacked=True, figsize=(11, 4), rot=0, width=0.8)
for i, total in enumerate(parts.sum(axis=1) * 1e3):  # each tenth's mean TTFT on top of its bar
    ax.text(i, 1.01, f"{total:,.0f} ms" if total >= 100 else f"{total:.3g} ms", ha="center", va="bottom",
            fontsize="small")
ax.set_ylim(0, 1.1)
ax.set_xlabel("requests by TTFT, fastest tenth to slowest")
ax.set_ylabel("share of the mean TTFT")
ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
ax.set_title("the stages of TTFT, by how slow the request was", pad=18);"""),
    ("md", """## What reuse buys

Requests by the share of their blocks found in a tier (the reused prefix; the classes of the
run's `ttft.png`), and where the hits were served from."""),
    ("code", """fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
data, weights = ecdf_rows(req.assign(reuse=reuse_class(req), ttft_ms=req.ttft_s * 1e3), "ttft_ms", "reuse")
sns.ecdfplot(data=data, x="ttft_ms", hue="reuse", weights=weights, log_scale=True, ax=ax1)
ax1.set_xlabel("TTFT (ms, log)")
ax1.set_title("TTFT by the share of the request reused")
hits = req[[c for c in req.columns if c.startswith("hits_")]].sum()
(hits / req.blocks.sum()).rename(lambda c: c.removeprefix("hits_")).plot.bar(ax=ax2, rot=0)
ax2.set_ylabel("share of all block accesses")
ax2.set_title(f"hits by tier (hit ratio {summary['hit_ratio']:.3f})");"""),
    ("md", "## The instances"),
    ("code", """per = pd.DataFrame(summary["per_instance"]).rename_axis("instance")
display(per.round(3))
# about 120 windows over the arrivals, each a whole number of minutes (empty ones kept)
WINDOW_MIN = max(1, int(np.ceil(req.arrival_s.max() / 60 / 120)))
window = (req.arrival_s // (60 * WINDOW_MIN)).astype(int)
every = pd.RangeIndex(window.max() + 1)
fig, ax = plt.subplots(figsize=(10, 3.5))
routed = req.groupby([window, "instance"]).size().unstack(fill_value=0).reindex(every, fill_value=0)
routed.set_axis(every * WINDOW_MIN).plot(ax=ax, lw=1)
ax.set_xlabel("arrival (minute of the run)")
ax.set_ylabel(f"requests routed per {WINDOW_MIN} min")
ax.set_title(f"requests per instance ({summary['router']} routing)");"""),
    ("md", """## Links and devices

Each queue's busy share over the run (`summary.json`'s `utilization`: one entry per link
direction, device, prefill instance and index server) and the bytes each link direction
carried."""),
    ("code", """util = pd.Series(summary["utilization"]).sort_values(ascending=False)
display((100 * util).round(2).rename("busy %").to_frame().head(20))
moved = pd.Series(summary["link_bytes"]).sort_values() / 2**40
ax = moved.plot.barh(figsize=(9, 0.3 * len(moved) + 1))
ax.set_xlabel("TiB carried")
ax.set_title("bytes per link direction");"""),
    ("md", """## Over time

TTFT percentiles of the requests that arrived in each window (about 120 over the run) beside
how many arrived: a node that falls behind shows TTFT climbing while arrivals stay high."""),
    ("code", """by_window = req.groupby(window).ttft_s
over = pd.DataFrame({"p50": by_window.median(), "p99": by_window.quantile(0.99), "requests": by_window.size()})
over = over.reindex(every).fillna({"requests": 0}).set_axis(every * WINDOW_MIN)
fig, ax = plt.subplots(figsize=(11, 4))
(over[["p50", "p99"]] * 1e3).plot(ax=ax, logy=True)
ax.set_xlabel("arrival (minute of the run)")
ax.set_ylabel("TTFT (ms, log)")
ax2 = ax.twinx()
ax2.bar(over.index, over.requests, color="grey", alpha=0.25, width=WINDOW_MIN)
ax2.set_ylabel(f"requests arrived per {WINDOW_MIN} min")
ax2.grid(False)
ax.set_zorder(ax2.get_zorder() + 1)  # the percentiles in front of the arrivals' bars
ax.patch.set_visible(False)
ax.set_title("TTFT over the run");"""),
]


def build() -> nbformat.NotebookNode:
    return notebook(CELLS)


if __name__ == "__main__":
    print(write(build(), NOTEBOOK))
