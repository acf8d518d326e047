"""Build ``notebooks/trace_analysis.ipynb`` (run: ``python notebooks/make_trace_analysis_notebook.py``).

The notebook walks through a trace-analysis run from its saved files. It reads the run
directory from ``KVSIM_ANALYSIS_DIR``; without it, it takes the newest run under
``outputs/trace_analysis/``, or analyses the embedded trace into ``outputs/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbcells import notebook, write

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "trace_analysis.ipynb"

CELLS: list[tuple[str, str]] = [
    ("md", """# KV-cache block access patterns of a trace

This notebook walks through the output of

```
python -m kvsim +experiment=trace_analysis trace.path=FILE hydra.run.dir=DIR
```

from the files saved in `DIR` (set `KVSIM_ANALYSIS_DIR=DIR`; without it the newest run under
`outputs/trace_analysis/` is used, or the embedded trace is analysed first). It reproduces the
trace study of *kvc-metadata-study* (section II: Fig. 1a, 1b, 2a, 2b), checks each number
against the saved per-access table, and says what each number measures."""),
    ("code", """import numpy as np
import pandas as pd
from IPython.display import Markdown, display

%matplotlib inline
import matplotlib.pyplot as plt

from kvsim.analysis.runs_test import monotone_pvalue
from kvsim.config import PROJECT_ROOT
from kvsim.report import trace_figures as figures
from kvsim.report.saved import saved_run

RUN = saved_run("KVSIM_ANALYSIS_DIR", "trace_analysis/**/trace_stats.json")
if RUN is None:  # nothing saved yet: analyse the embedded trace
    from kvsim.analysis.run import analyze_to_dir
    from kvsim.report.trace_report import report_trace_analysis
    from kvsim.trace.mooncake import read_mooncake_jsonl

    RUN = PROJECT_ROOT / "outputs" / "trace_analysis" / "notebook_embedded"
    analyze_to_dir(read_mooncake_jsonl(PROJECT_ROOT / "traces" / "synthetic_conversation.jsonl"), RUN)
    report_trace_analysis(RUN)
o = figures.load(RUN)
s = o.stats
figures._theme()


def show(fig):
    display(fig)
    plt.close(fig)


print(f"{RUN}\\n{o.label}: {s['requests']:,} requests, {s['block_accesses']:,} block accesses, "
      f"{s['unique_blocks']:,} unique blocks, {s['span_s']:.0f} s; analysis took "
      f"{s['timing_s']['analysis']:.2f} s, figures {s['timing_s'].get('figures', 0):.2f} s")"""),
    ("md", """## Headline numbers beside the study's

The study's numbers are for the trace named in its text (mostly tool&agent); `study_trace` says
which kind this trace is, when known from its file name."""),
    ("code", """from kvsim.report.trace_report import STUDY_TEXT

rows = [
    ("requests with hit rate > 0.5", s["share_requests_hit_gt_50"], STUDY_TEXT["share_requests_hit_gt_50"]),
    ("requests with hit rate >= 0.5", s["share_requests_hit_ge_50"], ""),
    ("requests with hit rate > 0.8", s["share_requests_hit_gt_80"], STUDY_TEXT["share_requests_hit_gt_80"]),
    ("block hit ratio (unlimited cache)", s["block_hit_ratio"], ""),
    ("mean sequential fraction", s["mean_sequential_fraction"], STUDY_TEXT["mean_sequential_fraction"]),
    ("block-weighted sequential fraction", s["block_weighted_sequential_fraction"], ""),
    ("runs test: requests with p > 0.05", s["runs_test_share_p_gt_005"], STUDY_TEXT["runs_test_share_p_gt_005"]),
]
pd.DataFrame([(k, "n/a" if v is None else f"{v:.1%}", st) for k, v, st in rows],
             columns=["statistic", o.label, "study"])"""),
    ("md", """## 1. Reuse (Fig. 1a)

A block *hits* when its id appeared in an earlier request (an unlimited cache). First check the
saved summary against the per-access table, then draw the CDF of per-request hit rates."""),
    ("code", """acc, req = o.accesses, o.requests
assert np.isclose(acc["hit"].mean(), s["block_hit_ratio"])
per_req = acc.groupby("request")["hit"].mean()
assert np.allclose(per_req.to_numpy(), req.set_index("request").loc[per_req.index, "hit_rate"])
print(f"block hit ratio {s['block_hit_ratio']:.3f}; prefix-only {s['prefix_hit_ratio']:.3f}; "
      f"hit blocks == longest seen prefix in every request: {s['set_equals_prefix']}")
print(f"hit rate exactly 0.5 in {s['share_requests_hit_eq_50']:.1%} of requests: "
      f"'> 0.5' gives {s['share_requests_hit_gt_50']:.1%}, '>= 0.5' gives {s['share_requests_hit_ge_50']:.1%}")
fig, ax = plt.subplots(figsize=(7.5, 5))
figures.draw_hit_rate_cdf(ax, o, title="Fig. 1a  Per-request block hit rate")
show(fig)"""),
    ("md", """## Which blocks are re-used, and when (Fig. 1b)

Re-accesses by block id and arrival time. The ids of these traces are numbered in first-seen
order (checked below), so the y axis is the order in which blocks were created: the edge of the
triangle is where new blocks appear, density just under it is reuse of recent blocks, and the
bottom row is the shared first block."""),
    ("code", """fig, (ax, mg, cax) = plt.subplots(1, 3, figsize=(11, 5.5), gridspec_kw={"width_ratios": [6, 1.1, 0.18]})
figures.draw_block_ids_over_time(ax, o, marginal=mg, cax=cax, title="Fig. 1b  Re-accessed blocks")
show(fig)
pd.Series({k: s[k] for k in ["hit_rate_first_block", "hit_rate_first_four", "hit_rate_last_four",
                             "hit_rate_last_block", "hits_share_most_accessed_block"]})"""),
    ("md", """## 2. Sequential and scattered blocks (Fig. 2a)

A block is *sequential* when it lies in a run of two or more positions with `id[i+1] == id[i] + 1`.
Whether that says anything about an index depends on how ids were assigned, so check that first."""),
    ("code", """checks = {k: s[k] for k in ["ids_strictly_increasing_within_requests", "ids_dense_first_seen_order",
                           "ids_prefix_chained", "set_equals_prefix"]}
display(pd.Series(checks, name="holds on this trace"))
print(f"lookups per request with the trace's ids: {s['lookups_per_request_remapped']:.2f}; "
      f"with keys in hash order: {s['lookups_per_request_hashed']:.2f} "
      f"(blocks per request: {s['blocks_per_request']['mean']:.2f})")
fig, ax = plt.subplots(figsize=(7.5, 4.5))
figures.draw_sequential_hist(ax, o, title="Fig. 2a  Sequential fraction per request")
show(fig)"""),
    ("md", """## The runs test on scattered blocks (Fig. 2b)

`runs_test_definition` states the test exactly. The scattered ids of a request are strictly
increasing when ids are, so every tested sequence has 2 runs; whether it "passes" depends only
on its length."""),
    ("code", """print(s["runs_test_definition"])
display(pd.DataFrame(s["runs_test_by_n"]))
print("p-value of any increasing sequence of n ids:",
      {n: round(monotone_pvalue(n), 4) for n in (2, 4, 6, 8, 9, 12, 20)})
tested = req.dropna(subset=["runs_pvalue"])
if len(tested):
    i = int(tested.sort_values("scattered").iloc[-1]["request"])
    a = acc[acc["request"] == i]
    print(f"request {i}: scattered ids {a.loc[~a['sequential'], 'block_id'].tolist()[:20]}")
fig, ax = plt.subplots(figsize=(7.5, 4.5))
figures.draw_runs_pvalue_by_n(ax, o)
show(fig)"""),
    ("md", """## 3. Beyond the study: reuse distance, popularity, LRU

The LRU curve comes from exact stack distances (one pass), so every capacity is exact."""),
    ("code", """display(pd.DataFrame({"in requests": s["reuse_distance_requests"], "in seconds": s["reuse_distance_s"]}))
print(f"top 1% of blocks get {s['top1pct_blocks_access_share']:.1%} of accesses; Zipf s = {s['zipf_exponent']}")
sd = acc["stack_distance"].to_numpy()
for cap in (100, 1000, 10000):
    print(f"LRU with {cap:>6} blocks: hit ratio {np.mean((sd > 0) & (sd <= cap)):.3f}")
print("capacity for a share of the unlimited cache's hits:", s["lru_capacity_for_share_of_unlimited"])
fig, ax = plt.subplots(figsize=(7.5, 4.8))
figures.draw_lru(ax, o, title="Fig. 4  LRU miss ratio")
show(fig)"""),
    ("md", "## The run's report"),
    ("code", """display(Markdown((RUN / "report.md").read_text()))"""),
]


def build() -> nbformat.NotebookNode:
    return notebook(CELLS)


def main(path: Path = NOTEBOOK) -> Path:
    return write(build(), path)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else NOTEBOOK))
