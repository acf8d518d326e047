"""The study's metadata benchmark, in simulation: a trace's metadata operations replayed
at their timestamps against every index model (``+experiment=metadata_bench``).

Per request, one SimPy process started at its arrival time, against one index:

    lookup   index.plan_lookup(blocks): a range query per run of contiguous ids, a get
             per scattered id (the study's benchmark), executed with queueing
    insert   the request's blocks not yet in the index, one plan_insert
    delete   only with ``experiment.capacity_blocks``: the least recently used blocks
             beyond the bound are deleted (plan_delete) after the insert

No tiers, no KV transfers, no prefill: only the index and its shared resources. Each
index replays the same trace on its own simulated clock.

Parts (``experiment.parts``):

    bench       every index in ``experiment.indexes`` (+ ``experiment.variants``) ->
                metadata_ops.parquet, metadata_summary.csv, metadata_requests.csv,
                metadata_intervals.csv, fig3_p99_normalized.png (p99 per interval
                normalized to ``experiment.baseline``, range and get panels, as the
                study's Fig. 3), metadata_normalized.csv
    key_order   ``experiment.key_order_indexes`` under remapped and hashed keys ->
                metadata_key_order.csv
    cache_sweep ``experiment.cache_sweep.indexes`` x ``cache_bytes`` ->
                metadata_cache_sweep.csv, metadata_cache_sweep.png
    random_gets ``experiment.random_get_indexes``: after the whole trace is loaded
                (untimed), ``experiment.random_gets`` point gets of random resident
                blocks with no chain context -> metadata_random_gets.csv (where an
                index built for chains, like the extent index, pays more)

``python -m kvsim.bench.metadata RUN_DIR`` re-draws the figures from the saved files;
given the directory of a Hydra multirun over index models (``-m index=redis,sherman,...
experiment.indexes=null``), it first gathers the jobs' op rows into one set of tables.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from collections import OrderedDict
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import simpy
from omegaconf import DictConfig, OmegaConf

from kvsim.bench.settings import (  # noqa: F401  (re-exported: the mode's schema and check)
    PARTS,
    CacheSweepSettings,
    MetadataBenchSettings,
    check_config,
    resolve_label,
    settings_from,
)
from kvsim.errors import InputFileError, UserError, cli
from kvsim.index.base import OP_KINDS, IndexModel, OpRecorder
from kvsim.io import write_json, write_with
from kvsim.trace.schema import Trace
from kvsim.workload import Arrivals

log = logging.getLogger("kvsim")

SUMMARY_COLUMNS = [
    "index", "op", "count", "mean_s", "p50_s", "p99_s", "round_trips_per_op", "bytes_per_op",
    "lock_wait_p99_s", "cas_retries_per_op",
]


# --- the replay ------------------------------------------------------------------------
@dataclass
class BenchResult:
    name: str
    ops: pd.DataFrame  # one row per op (OpRecorder.to_frame)
    lookup_s: np.ndarray  # per request: time of its whole lookup
    lookup_round_trips: np.ndarray  # per request
    stats: dict[str, Any]
    wall_s: float


def preload_trace(trace: Trace, index: IndexModel) -> list[int]:
    """One untimed pass of ``trace`` through ``index``: each request's lookup, then the
    insert of its blocks not yet in; writes applied, nothing timed or recorded. Returns the
    blocks inserted, in insertion order (the first use of each)."""
    present: dict[int, None] = {}
    hid, off = trace.hash_ids, trace.offsets
    for i in range(len(trace)):
        blocks = hid[off[i] : off[i + 1]].tolist()
        index.plan_lookup(blocks)
        new = [k for k in blocks if k not in present]
        present.update(dict.fromkeys(new))
        index.apply(index.plan_insert(new))
    return list(present)


def replay(
    trace: Trace,
    index: IndexModel,
    name: str,
    capacity_blocks: int | None = None,
    preload: bool = False,
) -> BenchResult:
    """Replay ``trace``'s metadata operations against ``index`` at its arrival times
    (``run_metadata_bench`` gives it the workload's arrivals: ``trace.spread``)."""
    t0 = time.perf_counter()
    present: OrderedDict[int, None] = OrderedDict()  # blocks in the index, LRU order
    hid, off = trace.hash_ids, trace.offsets
    n = len(trace)
    if preload:  # the structure (and caches) as after one replay
        present.update(dict.fromkeys(preload_trace(trace, index)))
    rec = OpRecorder()
    index.recorder = rec
    env = simpy.Environment()
    lookup_s = np.zeros(n)
    lookup_rt = np.zeros(n, dtype=np.int64)
    arrival = trace.arrival_s - (trace.arrival_s[0] if n else 0.0)

    def request(i: int) -> Generator[simpy.Event, Any, None]:
        blocks = hid[off[i] : off[i + 1]].tolist()
        start = env.now
        ops = index.plan_lookup(blocks)
        lookup_rt[i] = sum(op.round_trips for op in ops)
        yield from index.execute(env, ops)
        lookup_s[i] = env.now - start
        new = []
        for b in blocks:
            if b in present:
                present.move_to_end(b)
            else:
                present[b] = None
                new.append(b)
        if new:
            yield from index.execute(env, index.plan_insert(new))
        if capacity_blocks is not None and len(present) > capacity_blocks:
            dropped = [present.popitem(last=False)[0] for _ in range(len(present) - capacity_blocks)]
            yield from index.execute(env, index.plan_delete(dropped))

    def source() -> Generator[simpy.Event, Any, None]:
        for i in range(n):
            delay = float(arrival[i]) - env.now
            if delay > 0:
                yield env.timeout(delay)
            env.process(request(i))

    env.process(source())
    env.run()
    index.recorder = None
    stats: dict[str, Any] = dict(index.stats())
    span = float(arrival.max()) if n else 0.0
    for k, s in index.servers().items():
        stats[f"utilization.{k}"] = s.utilization(max(env.now, span))
    return BenchResult(name, rec.to_frame(name), lookup_s, lookup_rt, stats, time.perf_counter() - t0)


# --- tables ----------------------------------------------------------------------------
def summarize_ops(ops: pd.DataFrame, warmup_s: float = 0.0) -> pd.DataFrame:
    """Per index and op kind: count, mean, p50, p99, round trips and bytes per op."""
    rows = []
    for (name, kind), g in ops.groupby(["index", "op"], observed=True, sort=False):
        lat = g["latency_s"].to_numpy()
        post = g.loc[g["time_s"] >= warmup_s, "latency_s"].to_numpy()
        rows.append(
            {
                "index": name,
                "op": kind,
                "count": len(g),
                "mean_s": float(lat.mean()),
                "p50_s": float(np.quantile(lat, 0.5)),
                "p99_s": float(np.quantile(lat, 0.99)),
                "round_trips_per_op": float(g["round_trips"].mean()),
                "bytes_per_op": float(g["bytes"].mean()),
                "lock_wait_p99_s": float(np.quantile(g["lock_wait_s"], 0.99)) if "lock_wait_s" in g else 0.0,
                "cas_retries_per_op": float(g["cas_retries"].mean()) if "cas_retries" in g else 0.0,
                "keys_per_op": float(g["keys"].mean()),
                "p99_after_warmup_s": float(np.quantile(post, 0.99)) if len(post) else math.nan,
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    order = {k: i for i, k in enumerate(OP_KINDS)}
    names = list(dict.fromkeys(ops["index"]))
    df["_i"] = df["index"].map({n: i for i, n in enumerate(names)})
    df["_o"] = df["op"].map(order)
    return df.sort_values(["_i", "_o"]).drop(columns=["_i", "_o"]).reset_index(drop=True)


def interval_p99(ops: pd.DataFrame, interval_s: float, baseline: str | None) -> pd.DataFrame:
    """p99 latency of gets and ranges per time interval, and divided by the baseline's."""
    d = ops[ops["op"].isin(["get", "range"])].copy()
    d["bin_s"] = (d["time_s"] // interval_s) * interval_s
    p = d.groupby(["index", "op", "bin_s"], observed=True)["latency_s"].quantile(0.99).rename("p99_s").reset_index()
    p["op"] = p["op"].astype(str)
    if baseline is not None and baseline in set(p["index"]):
        base = p[p["index"] == baseline][["op", "bin_s", "p99_s"]].rename(columns={"p99_s": "base_p99_s"})
        p = p.merge(base, on=["op", "bin_s"], how="left")
        p["normalized"] = p["p99_s"] / p["base_p99_s"]
        p["baseline"] = baseline
    else:
        p["base_p99_s"] = math.nan
        p["normalized"] = math.nan
        p["baseline"] = ""
    return p


def normalized_means(intervals: pd.DataFrame, warmup_s: float) -> pd.DataFrame:
    """Mean over the intervals after warm-up of each index's normalized p99 (the study's
    "on average, excluding the first 10 minutes")."""
    post = intervals[intervals["bin_s"] >= warmup_s]
    g = post.groupby(["index", "op"], sort=False)
    out = g.agg(mean_normalized_p99=("normalized", "mean"), mean_p99_s=("p99_s", "mean"), intervals=("p99_s", "size")).reset_index()
    out["warmup_s"] = warmup_s
    return out


def request_summary(results: list[BenchResult], warmup_s: float, arrival: np.ndarray) -> pd.DataFrame:
    rows = []
    keep = arrival >= warmup_s
    for r in results:
        x = r.lookup_s[keep] if keep.any() else r.lookup_s
        rows.append(
            {
                "index": r.name,
                "requests": len(x),
                "mean_s": float(x.mean()),
                "p50_s": float(np.quantile(x, 0.5)),
                "p99_s": float(np.quantile(x, 0.99)),
                "round_trips_per_request": float(r.lookup_round_trips[keep].mean() if keep.any() else r.lookup_round_trips.mean()),
                "wall_s": r.wall_s,
            }
        )
    return pd.DataFrame(rows)


# --- the indexes ---------------------------------------------------------------------------
class IndexCatalog(Protocol):
    """The index models a bench may build: a config name (``conf/index/<name>.yaml``) with
    overrides. Built once at the edge from the run's config (:class:`kvsim.modes.ConfigIndexes`);
    tests and notebooks may pass their own."""

    @property
    def default(self) -> str:
        """The run's own index (``experiment.indexes=null``: a multirun over ``index=``)."""
        ...

    def key(self, name: str, overrides: Mapping[str, Any]) -> str:
        """One string per distinct resolved index config (two labels of the same config
        replay once)."""
        ...

    def build(self, name: str, overrides: Mapping[str, Any]) -> IndexModel: ...

    def key_order_override(self, name: str, order: str) -> dict[str, Any]:
        """The override that sets index ``name``'s key order (on its RDMA client, if any)."""
        ...


@dataclass
class Bench:
    """One metadata bench: what its parts share."""

    trace: Trace
    indexes: IndexCatalog
    s: MetadataBenchSettings
    out: Path
    seed: int = 0
    replayed: dict[str, BenchResult] = field(default_factory=dict)  # resolved index config -> its replay

    def replay_once(self, label: str, name: str, overrides: Mapping[str, Any]) -> BenchResult:
        """Replay the trace against index ``name`` with ``overrides``, unless this run already
        replayed the same resolved index config (the key-order part's remapped rows are the
        bench part's runs: written for speed, the result is the same seeded replay)."""
        key = self.indexes.key(name, overrides)
        r = self.replayed.get(key)
        if r is None:
            s = self.s
            r = replay(self.trace, self.indexes.build(name, overrides), label, s.capacity_blocks, s.preload)
            self.replayed[key] = r
        elif r.name != label:
            r = dataclasses.replace(r, name=label, ops=r.ops.assign(index=label))
        return r


# --- the experiment ------------------------------------------------------------------------
def run_bench(b: Bench) -> dict[str, Any]:
    trace, s, out = b.trace, b.s, b.out
    labels = list(s.indexes or [b.indexes.default])
    labels += [v for v in (s.variants or {}) if v not in labels]
    results = []
    for label in labels:
        r = b.replay_once(label, *resolve_label(s, label))
        log.info("metadata_bench: %-14s %6d ops, lookup p99 %8.2f us, wall %.1f s", label, len(r.ops), np.quantile(r.lookup_s, 0.99) * 1e6, r.wall_s)
        results.append(r)
    ops = pd.concat([r.ops for r in results], ignore_index=True)
    ops["index"] = ops["index"].astype(str)
    write_with(out / "metadata_ops.parquet", lambda p: ops.to_parquet(p, index=False))
    arrival = trace.arrival_s - (trace.arrival_s[0] if len(trace) else 0.0)
    req = request_summary(results, s.warmup_s, arrival)
    write_with(out / "metadata_requests.csv", lambda p: req.to_csv(p, index=False))
    head = report_ops(ops, out, s)  # the edge draws from the saved files
    head["index_stats"] = {r.name: r.stats for r in results}
    return head


def report_ops(ops: pd.DataFrame, out: Path, s: MetadataBenchSettings) -> dict[str, Any]:
    """The tables of op rows: metadata_summary.csv, metadata_intervals.csv,
    metadata_normalized.csv (figures: :func:`kvsim.report.metadata.draw_metadata_bench`)."""
    summary = summarize_ops(ops, s.warmup_s)
    write_with(out / "metadata_summary.csv", lambda p: summary.to_csv(p, index=False))
    baseline = s.baseline if s.baseline in set(ops["index"]) else None
    intervals = interval_p99(ops, float(s.interval_s), baseline)
    write_with(out / "metadata_intervals.csv", lambda p: intervals.to_csv(p, index=False))
    norm = normalized_means(intervals, float(s.warmup_s))
    write_with(out / "metadata_normalized.csv", lambda p: norm.to_csv(p, index=False))
    head: dict[str, Any] = {"figure": None}  # drawn from these tables afterwards
    nm = {(r["index"], r["op"]): r["mean_normalized_p99"] for _, r in norm.iterrows()}
    for kind in ("range", "get"):
        sh, ch = nm.get(("sherman", kind)), nm.get(("chime", kind))
        if sh is not None and ch is not None and ch > 0 and sh > 0:
            # positive: Sherman faster than CHIME by that share of CHIME's p99
            head[f"sherman_vs_chime_{kind}_pct"] = 100.0 * (1.0 - sh / ch)
    head["mean_normalized_p99"] = {f"{i}.{o}": v for (i, o), v in nm.items()}
    return head


def _draw(d: Path) -> dict[str, str | None]:
    """The figures the saved tables of ``d`` allow (report/ imports matplotlib only now)."""
    from kvsim.report.metadata import draw_metadata_bench

    return {k: str(v) if v else None for k, v in draw_metadata_bench(d).items()}


def gather(sweep_dir: str | Path) -> dict[str, Any]:
    """After a Hydra multirun over index models (one index per job), gather every job's
    metadata_ops.parquet into the tables and figure of one run, in ``sweep_dir``. The jobs are
    the complete ones of the sweep's own job list (``sweep_jobs.json``), never other folders."""
    from kvsim.sweepjobs import statuses

    d = Path(sweep_dir)
    files = [d / s.job.subdir / "metadata_ops.parquet" for s in statuses(d) if s.status == "complete"]
    files = [f for f in files if f.is_file()]
    if not files:
        raise FileNotFoundError(f"no complete job of {d} has metadata_ops.parquet")
    ops = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    ops["index"] = ops["index"].astype(str)
    exp = None
    job_cfg = files[0].parent / "config.yaml"
    if job_cfg.is_file():
        job = OmegaConf.load(job_cfg)
        exp = job.get("experiment") if isinstance(job, DictConfig) else None
    s = settings_from(exp if isinstance(exp, DictConfig) else None)
    write_with(d / "metadata_ops.parquet", lambda p: ops.to_parquet(p, index=False))
    head = report_ops(ops, d, s)
    head.update(_draw(d))
    write_json(d / "metadata_gathered.json", {"jobs": [str(f.parent.name) for f in files], **head})
    return head


def run_key_order(b: Bench) -> dict[str, Any]:
    s, out = b.s, b.out
    rows = []
    for name in s.key_order_indexes:
        for order in s.key_orders:
            r = b.replay_once(name, *resolve_label(s, name, b.indexes.key_order_override(name, order)))
            summ = summarize_ops(r.ops, s.warmup_s)
            for _, row in summ.iterrows():
                rows.append({"key_order": order, **row.to_dict()})
            log.info("metadata_bench: key order %-8s %-8s lookup p99 %.2f us", order, name, np.quantile(r.lookup_s, 0.99) * 1e6)
    df = pd.DataFrame(rows)
    write_with(out / "metadata_key_order.csv", lambda p: df.to_csv(p, index=False))
    return {"key_order_rows": len(df)}


def run_cache_sweep(b: Bench) -> dict[str, Any]:
    trace, s, out = b.trace, b.s, b.out
    sizes = [float(x) for x in s.cache_sweep.cache_bytes]
    arrival = trace.arrival_s - (trace.arrival_s[0] if len(trace) else 0.0)
    keep = arrival >= float(s.warmup_s)
    rows = []
    for name in s.cache_sweep.indexes:
        for cb in sizes:
            index = b.indexes.build(*resolve_label(s, name, {"cache_bytes": cb}))
            r = replay(trace, index, name, s.capacity_blocks, s.preload)
            post = r.ops[r.ops["time_s"] >= float(s.warmup_s)]
            row: dict[str, Any] = {"index": name, "cache_bytes": cb}
            for kind in ("range", "get"):
                g = post[post["op"] == kind]
                row[f"{kind}_p99_s"] = float(np.quantile(g["latency_s"], 0.99)) if len(g) else math.nan
                row[f"{kind}_mean_s"] = float(g["latency_s"].mean()) if len(g) else math.nan
                row[f"{kind}_round_trips_per_op"] = float(g["round_trips"].mean()) if len(g) else math.nan
            x = r.lookup_s[keep] if keep.any() else r.lookup_s
            row["request_p99_s"] = float(np.quantile(x, 0.99))
            row["request_mean_s"] = float(x.mean())
            row["cache_hit_ratio"] = r.stats.get("cache_hit_ratio", math.nan)
            rows.append(row)
            log.info(
                "metadata_bench: cache sweep %-8s %12.0f B: range p99 %.2f us, get p99 %.2f us, hit %.3f",
                name, cb, row["range_p99_s"] * 1e6, row["get_p99_s"] * 1e6, row["cache_hit_ratio"],
            )
    df = pd.DataFrame(rows)
    write_with(out / "metadata_cache_sweep.csv", lambda p: df.to_csv(p, index=False))
    return {"cache_sweep_rows": len(df), "cache_sweep_figure": None}  # drawn by the edge


def run_random_gets(b: Bench) -> dict[str, Any]:
    trace, s, out = b.trace, b.s, b.out
    ids = np.unique(trace.hash_ids)
    rng = np.random.default_rng(b.seed)
    sample = rng.choice(ids, size=min(int(s.random_gets), len(ids)), replace=False).tolist()
    rows = []
    for name in s.random_get_indexes:
        index = b.indexes.build(*resolve_label(s, name))
        preload_trace(trace, index)
        ops = [index.plan_get(b) for b in sample]
        t = np.array([index.unloaded_s(op) for op in ops])
        rt = np.array([op.round_trips for op in ops])
        rows.append(
            {
                "index": name,
                "gets": len(ops),
                "round_trips_per_op": float(rt.mean()),
                "two_or_more_round_trips": float((rt >= 2).mean()),
                "bytes_per_op": float(np.mean([op.bytes_sent + op.bytes_received for op in ops])),
                "mean_s": float(t.mean()),
                "p99_s": float(np.quantile(t, 0.99)),
            }
        )
        log.info("metadata_bench: random gets %-8s %.2f round trips/op, mean %.2f us", name, rt.mean(), t.mean() * 1e6)
    df = pd.DataFrame(rows)
    write_with(out / "metadata_random_gets.csv", lambda p: df.to_csv(p, index=False))
    return {"random_get_rows": len(df)}


def run_metadata_bench(
    trace: Trace, arrivals: Arrivals, indexes: IndexCatalog, settings: MetadataBenchSettings, out_dir: Path,
    seed: int = 0,
) -> dict[str, Any]:
    """The mode: ``trace`` (timed by ``arrivals``, whose summary is recorded) against the
    index models of ``indexes`` the ``settings`` name (:func:`kvsim.bench.settings.settings_of`),
    every part of ``settings.parts``, tables into ``out_dir`` (figures are drawn from them:
    :func:`kvsim.report.metadata.draw_metadata_bench`). The Hydra edge builds the arguments
    and draws: :func:`kvsim.modes.metadata_bench`."""
    out = Path(out_dir)
    s = settings
    t0 = time.perf_counter()
    log.info("metadata_bench: trace %s, %d requests, %d block accesses, parts %s", trace.name, len(trace), trace.num_block_accesses, s.parts)
    summary: dict[str, Any] = {
        "mode": "metadata_bench",
        "trace": trace.name,
        "requests": len(trace),
        "block_accesses": trace.num_block_accesses,
        "interval_s": s.interval_s,
        "warmup_s": s.warmup_s,
        "workload": arrivals.summary(),
    }
    parts = {"bench": run_bench, "key_order": run_key_order, "cache_sweep": run_cache_sweep, "random_gets": run_random_gets}
    bench = Bench(trace, indexes, s, out, seed=seed)  # its replays are shared by the parts
    for part in s.parts:
        summary.update(parts[part](bench))
    summary["wall_time_s"] = time.perf_counter() - t0
    write_json(out / "summary.json", summary)
    return summary


def main(argv: list[str]) -> int:
    """``python -m kvsim.bench.metadata RUN_DIR``: re-draw a run's figures (or gather a
    multirun's jobs first); a folder with nothing to draw is a one-line error."""
    if len(argv) != 1:
        raise UserError("usage: python -m kvsim.bench.metadata RUN_DIR")
    d = Path(argv[0])
    if not d.is_dir():
        raise InputFileError(f"{d}: no such folder (give a metadata_bench run's folder)")
    if not (d / "metadata_ops.parquet").is_file() and (d / "sweep_jobs.json").is_file():
        print(gather(d))  # gathers, then draws
        return 0
    drawn = _draw(d)
    for path in drawn.values():
        print(path)
    if not drawn:
        raise UserError(f"{d}: no metadata_bench tables (metadata_intervals.csv, metadata_cache_sweep.csv, or a sweep's sweep_jobs.json)")
    return 0


if __name__ == "__main__":
    cli(lambda: main(sys.argv[1:]), prog="kvsim.bench.metadata")
