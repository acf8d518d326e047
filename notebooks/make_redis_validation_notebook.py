"""Build ``notebooks/redis_validation.ipynb`` (run: ``python notebooks/make_redis_validation_notebook.py``).

The notebook reads one ``+experiment=redis_validation`` run from its saved files:
``KVSIM_VALIDATION_DIR``, or the newest ``outputs/**/redis_validation.csv``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbcells import notebook, write

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "redis_validation.ipynb"

CELLS: list[tuple[str, str]] = [
    ("md", """# The Redis model against a real Redis server, read from a validation run

`python -m kvsim +experiment=redis_validation` replays the simulated Redis index's exact
commands against a real `redis-server` at several speed-ups, simulates the same stream, and
saves every command's measured and simulated latency (`redis_validation_latency.parquet`,
paired by `cmd`) beside the table of cells (`redis_validation.csv`). This notebook reads
those files and shows each cell against the issue's bounds, the two distributions, and
command by command where the model is early or late. Set `KVSIM_VALIDATION_DIR=DIR` to read
a given run; otherwise the newest one under `outputs/` is used."""),
    ("code", """import json

import numpy as np
import pandas as pd
import seaborn as sns

%matplotlib inline

from kvsim.report.saved import saved_run

RUN = saved_run("KVSIM_VALIDATION_DIR", "**/redis_validation.csv")
if RUN is None:
    raise SystemExit("no validation run found: run `python -m kvsim +experiment=redis_validation`, "
                     "or set KVSIM_VALIDATION_DIR")
cells = pd.read_csv(RUN / "redis_validation.csv")
lat = pd.read_parquet(RUN / "redis_validation_latency.parquet")
lat["us"] = lat.latency_s * 1e6
SPEEDUPS = [f"x{sp:g}" for sp in sorted(lat.speedup.unique())]


def speedup_label(speedups: pd.Series) -> pd.Categorical:
    return pd.Categorical([f"x{sp:g}" for sp in speedups], categories=SPEEDUPS, ordered=True)


lat["speed-up"] = speedup_label(lat.speedup)
fit_file = RUN / "redis_validation_fit.json"
fit = json.loads(fit_file.read_text()) if fit_file.is_file() else {}
sns.set_theme(style="whitegrid", context="notebook")
real, sim = lat[lat.source == "real"], lat[lat.source == "sim"]
print(f"{RUN}: {len(real):,} commands measured, {len(sim):,} simulated ({sim.run.nunique()} seeded runs), "
      f"speed-ups {', '.join(SPEEDUPS)}")"""),
    ("md", """## The cells against the bounds

Error = simulated / measured - 1 of each cell's p50 and p99; the bounds are the issue's
(p50 within 10%, p99 within 20%). The experiment's own `compare` recomputes the table here
from the per-command file, checked against the saved one, so the two files cannot disagree
unnoticed."""),
    ("code", """from kvsim.bench.redis_validation import compare

BOUNDS = {"p50": 0.10, "p99": 0.20}
mine = pd.DataFrame([row for sp in sorted(lat.speedup.unique())
                     for row in compare(real[real.speedup == sp], sim[sim.speedup == sp], sp)]).set_index(["op", "speedup"])
saved = cells.set_index(["op", "speedup"])
assert np.allclose(mine.loc[saved.index, ["err_p50", "err_p99"]], saved[["err_p50", "err_p99"]]), \\
    "the per-command file and redis_validation.csv disagree"
show = saved.assign(**{
    "real p50 (us)": saved.real_p50_s * 1e6, "sim p50 (us)": saved.sim_p50_s * 1e6,
    "p50 error (%)": saved.err_p50 * 100, "real p99 (us)": saved.real_p99_s * 1e6,
    "sim p99 (us)": saved.sim_p99_s * 1e6, "p99 error (%)": saved.err_p99 * 100,
    "inside": (saved.err_p50.abs() <= BOUNDS["p50"]) & (saved.err_p99.abs() <= BOUNDS["p99"]),
})[["count", "real p50 (us)", "sim p50 (us)", "p50 error (%)", "real p99 (us)", "sim p99 (us)", "p99 error (%)",
    "inside"]]
display(show.round(1))
print(f"{int(show.inside.sum())} of {len(show)} cells inside the bounds")"""),
    ("md", """## The two distributions

Each op at each speed-up: the measured latencies against the simulated ones (every seeded
run pooled), on a log axis (the run's own `redis_validation_cdf.png`, drawn again here). A p50 that falls between two modes of a distribution (the GETs'
lookups answered in one server turn or not) moves a lot with a small change in the share of
each mode: the ECDF shows whether a cell's error is that or a shift of the whole curve."""),
    ("code", """from kvsim.report.redis_validation import cdf_figure

fig = cdf_figure(lat, cells)
for ax in fig.axes:
    ax.axhline(0.5, color="grey", lw=0.6, ls=":")"""),
    ("md", """## Command by command

The same commands were measured and simulated, so each command's simulated latency (median
over the seeded runs) less its measured one says where the model is early (below 0) or late
(above 0). By op, speed-up and the command's size (keys, in powers of two): an error that
grows with the size is a per-key or per-byte term; one that does not is per command."""),
    ("code", """paired = (sim.groupby(["speedup", "cmd"]).latency_s.median().rename("sim_s").reset_index()
          .merge(real[["speedup", "cmd", "op", "keys", "latency_s"]], on=["speedup", "cmd"]))
paired["late_us"] = (paired.sim_s - paired.latency_s) * 1e6
size = 2 ** np.ceil(np.log2(paired["keys"].clip(lower=1))).astype(int)
order = [str(k) for k in sorted(size.unique())]
paired["keys up to"] = pd.Categorical(size.astype(str), categories=order, ordered=True)
paired["speed-up"] = speedup_label(paired.speedup)
grouped = paired.groupby(["op", "keys up to", "speed-up"], observed=True).late_us
display(pd.concat({"late p50 (us)": grouped.median().unstack("speed-up"),
                   "commands": grouped.size().unstack("speed-up")}, axis=1).round(1))
multi = paired[paired.op != "get"]  # (a GET is one key: its row of the table says it all)
g = sns.catplot(data=multi, x="keys up to", y="late_us", col="speed-up", row="op", kind="box", order=order,
                height=2.8, aspect=1.6, showfliers=False, sharey=False, color="tab:blue")
g.set_axis_labels("keys in the command (up to)", "simulated - measured (us)")
g.set_titles("{row_name} at {col_name}")
for ax in g.axes.flat:
    ax.axhline(0, color="black", lw=0.8)"""),
    ("md", """## Quantiles side by side

Where along each distribution the two part: the measured and simulated latency at a few
quantile levels, in microseconds."""),
    ("code", """levels = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
qt = (lat.groupby(["op", "speed-up", "source"], observed=True).us.quantile(levels).unstack().unstack("source"))
qt.columns = [f"p{round(100 * q)} {src}" for q, src in qt.columns]
display(qt[[f"p{round(100 * q)} {src}" for q in levels for src in ("real", "sim")]].round(1))"""),
    ("md", """## What the run calibrated

The server's measured command times and the client's fitted terms per speed-up, as the
simulation used them (`redis_validation_fit.json`; the README's Redis validation section
explains each term)."""),
    ("code", """if fit:
    server = {k: v for k, v in fit["server"].items() if isinstance(v, (int, float))}
    display(pd.Series(server, name="server").to_frame())
    client = pd.DataFrame({sp: {k: v for k, v in f.items() if isinstance(v, (int, float))}
                           for sp, f in fit.get("client_by_speedup", {}).items()})
    display(client.rename_axis(columns="speed-up"))
else:
    print("no redis_validation_fit.json in this run")"""),
]


def build() -> nbformat.NotebookNode:
    return notebook(CELLS)


if __name__ == "__main__":
    print(write(build(), NOTEBOOK))
