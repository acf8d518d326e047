"""Gather the jobs of a multirun into one tidy table and its figures.

Used by the kvsim sweeper and the Hydra callback (``hydra.callbacks.sweep_report`` in
conf/config.yaml: :mod:`kvsim.report.callback`) at the end of a multirun, and as a
command: ``python -m kvsim.report DIR`` (``python -m kvsim.report.sweep DIR`` is the same)
re-draws from the saved files. The jobs are the sweep's own job list (``sweep_jobs.json``),
never whatever folders are there.

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

from kvsim.io import write_with
from kvsim.report.callback import SweepCallback  # noqa: F401  (its old name)
from kvsim.sweepjobs import SweepDirError, statuses

log = logging.getLogger("kvsim")

OPT = "opt"
_CONFIG_GROUPS = ("trace", "system", "model", "gpu", "index", "calibration", "experiment", "config")
_CONFIG_SCALARS = ("seed",)


# Summary keys that name what a run was; failed and missing jobs get them from their config.
IDENTITY = {"trace": "trace.name", "policy": "policy.name", "index": "index.name", "model": "model.name",
            "gpu": "gpu.name", "capacity_scale": "system.capacity_scale"}


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
    """One row per job of the sweep's own job list (``sweep_jobs.json``), in job order:
    ``job`` (its folder), ``job_num``, ``status`` (complete / failed / missing), ``error``,
    its config flattened to dotted names, and every metric of its summary.json."""
    d = Path(sweep_dir)
    rows = []
    for st in statuses(d):
        j = st.job
        row: dict[str, Any] = {"job": j.subdir, "job_num": j.num, "status": st.status, "error": st.error}
        summary: dict[str, Any] = {}
        if st.status == "complete":
            f = d / j.subdir / "summary.json"
            try:
                summary = _flatten(json.loads(f.read_text()))
            except (OSError, ValueError) as exc:
                row.update(status="failed", error=f"{f}: unreadable summary ({exc})")
        for k, v in j.config.items():
            # A config key that is also a summary metric (``mode``) keeps the summary's value.
            row[k if k not in summary else f"config.{k}"] = v
        row.update(summary)
        for key, cfg_key in IDENTITY.items():
            if row.get(key) is None and cfg_key in j.config:
                row[key] = j.config[cfg_key]
        rows.append(row)
    return pd.DataFrame(rows)


def _config_columns(df: pd.DataFrame) -> list[str]:
    """The columns that name a configuration apart from its policy: every config key of the
    job (dotted) but the policy's own and the reporting switches; from the summaries' keys
    when the table has no config columns."""
    cfg_cols = [
        c for c in df.columns
        if "." in c and c.split(".", 1)[0] in _CONFIG_GROUPS and not c.startswith("policy.")
    ] + [c for c in df.columns if c in _CONFIG_SCALARS]
    if cfg_cols:
        return cfg_cols
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
    # Runs with a topology report each link direction ("name:a->b") and each device ("ssd")
    # that the same bytes pass through: count the links only, or the bytes count twice.
    if any("->" in c for c in link_cols):
        link_cols = [c for c in link_cols if "->" in c]
    if link_cols:
        df["bytes_moved"] = df[link_cols].fillna(0).sum(axis=1)
    df["opt_hit_ratio"] = np.nan
    if "policy" in df and "hit_ratio" in df:
        keys = _config_columns(df)
        opt = df[df["policy"] == OPT]
        if not opt.empty:
            if keys:
                # One text key per configuration, so that keys absent in some rows (NaN: a
                # single-tier run has no tiers, a tiered one no capacity_blocks) still match.
                group = df[keys].astype(object).where(df[keys].notna(), "<none>").astype(str).agg("|".join, axis=1)
                best = df.loc[df["policy"] == OPT, "hit_ratio"].groupby(group[df["policy"] == OPT]).max()
                df["opt_hit_ratio"] = group.map(best).astype(float)
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
    from kvsim.report.plots import (
        LEGEND_IN,
        plt,
        policy_colours,
        policy_legend,
        policy_lines,
        report_theme,
        save_figure,
    )

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
    # the theme first: a figure made before it would look different in a fresh process
    # than after any other figure of kvsim's
    report_theme()
    fig, grid = plt.subplots(  # one legend of the policies, on the right (policy_legend)
        per * len(traces), ncol, figsize=(4.6 * ncol + LEGEND_IN, 3.5 * per * len(traces)), squeeze=False
    )
    handles: list[Any] = []
    palette = policy_colours(df["policy"])
    order = list(palette)
    for r, trace in enumerate(traces):
        axes = [ax for row in grid[r * per : (r + 1) * per] for ax in row]
        for ax in axes[n_panels:]:
            ax.set_visible(False)
        sub = df[df["trace"] == trace] if trace else df
        for ax, (col, label) in zip(axes, panels, strict=False):
            data = sub[sub["policy"] != OPT] if col == "gap_pp" else sub
            handles = policy_lines(ax, data, x, col, order, palette, legend=False)
            if data[x].min() > 0:
                ax.set_xscale("log", base=2)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
            if trace:
                ax.set_title(trace, fontsize=9)
        if tier_cols:
            ax = axes[len(panels)]
            caps = sorted(sub[x].unique())
            mid = caps[len(caps) // 2]
            # several configurations per policy (a sweep over indexes or models too): their
            # mean, as the line panels draw it (a policy indexed twice cannot be reindexed)
            at = sub[sub[x] == mid].groupby("policy")[tier_cols].mean().reindex(order).fillna(0)
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
    policy_legend(fig, handles)
    return save_figure(fig, path, laid_out=True)


def draw_figures(done: pd.DataFrame, d: Path, parallel: dict[str, Any] | None = None) -> list[Path]:
    """``sweep.png`` and the standard figures of a sweep's complete jobs; one figure per
    task through ``joblib.Parallel(**parallel)`` when given (a joblib sweep's settings: its
    idle workers draw them), else here. Either way in the same order."""
    from kvsim.report import sweep_figures

    if parallel is None:
        made = [plot_sweep(done, d / "sweep.png"), *sweep_figures.standard_figures(done, d)]
    else:
        from joblib import Parallel, delayed

        # the dearest first (sweep.png, then link_bytes.png: about 2.3 and 1.9 s of the 6 s
        # of a 40-job sweep's figures), so that two workers end about together
        tasks = [(plot_sweep, d / "sweep.png"), *((f, d) for f in reversed(sweep_figures.FIGURES))]
        drawn = Parallel(**parallel)(delayed(f)(done, where) for f, where in tasks)
        made = [drawn[0], *reversed(drawn[1:])]
    return [p for p in made if p is not None]


def report(sweep_dir: str | Path, parallel: dict[str, Any] | None = None) -> pd.DataFrame:
    """Gather the sweep's jobs into ``sweep.parquet`` and ``sweep.csv`` and draw its figures
    from the complete ones; failed and missing jobs are rows with their status and error,
    and are listed in the log. Works on a sweep that is still running or was cut short.
    ``parallel``: see :func:`draw_figures`."""
    d = Path(sweep_dir)
    df = gather(d)
    if df.empty:
        log.warning("sweep %s lists no jobs", d)
        return df
    df = add_derived(df)
    write_with(d / "sweep.parquet", lambda p: _to_parquet(df, p))
    write_with(d / "sweep.csv", lambda p: df.to_csv(p, index=False))
    done = df[df["status"] == "complete"]
    figures = draw_figures(done, d, parallel) if not done.empty else []
    cols = [
        c
        for c in ("trace", "policy", "capacity_scale", "capacity_blocks", "hit_ratio", "gap_to_opt",
                  "ttft_p50_s", "ttft_p99_s", "metadata_p99_s", "bytes_moved")
        if c in done and done[c].notna().any()
    ]
    if cols:
        sort = [c for c in ("trace", "capacity_scale", "capacity_blocks", "policy") if c in cols]
        log.info("sweep of %d runs:\n%s", len(done), done[cols].sort_values(sort).to_string(index=False))
    for _, r in df[df["status"] != "complete"].iterrows():
        log.warning("job %s: %s%s", r["job"], r["status"], f": {r['error']}" if r["error"] else "")
    counts = df["status"].value_counts().to_dict()
    log.info(
        "sweep %s: %s; table %s (.parquet); figures: %s", d,
        ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), d / "sweep.csv",
        ", ".join(p.name for p in figures) or "none",
    )
    return df


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    # Config columns can mix types across jobs (a key null in one, a number in another):
    # such a column is written as text so that the table is always writable.
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            kinds = {type(v) for v in out[c].dropna()}
            if len(kinds) > 1 or (kinds and not kinds <= {str}):
                out[c] = out[c].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    out.to_parquet(path, index=False)


def report_launched(sweep_dir: str | Path, launcher: Any) -> pd.DataFrame:
    """:func:`report` at the end of a sweep run by ``launcher`` (the launcher, or its config
    node): a joblib launcher's idle workers draw the figures, and are then let go
    (:func:`kvsim.sweepjobs.release_workers`) rather than at the interpreter's exit."""
    from kvsim.sweepjobs import joblib_settings, release_workers

    parallel = joblib_settings(launcher)
    try:
        return report(sweep_dir, parallel=parallel)
    finally:
        if parallel is not None:
            release_workers()


def main(argv: list[str] | None = None) -> int:
    """``python -m kvsim.report DIR``: exit 1 if any job failed, 0 otherwise (missing jobs of
    a sweep still running are listed, not an error)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m kvsim.report SWEEP_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        df = report(args[0])
    except SweepDirError as exc:
        print(f"kvsim.report: error: {exc}", file=sys.stderr)
        return 2
    return 1 if (not df.empty and (df["status"] == "failed").any()) else 0


if __name__ == "__main__":
    sys.exit(main())
