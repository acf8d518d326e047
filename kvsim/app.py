"""The Hydra edge: turn a composed config into objects, run the chosen mode, write outputs.

Everything below this module takes plain typed arguments: only the edge -- this module,
:mod:`kvsim.modes` (the other modes' builders) and :mod:`kvsim.checks` -- builds objects
from a composed config (elsewhere OmegaConf only checks configs and reads YAML files:
calibration files, a sweep job's saved config). No model or mode module imports the edge
(tests/test_modes.py).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from kvsim.config import MODES, check_config, load, memory_limit_bytes
from kvsim.errors import ConfigError, InputFileError
from kvsim.index.base import IndexModel
from kvsim.io import write_json, write_with
from kvsim.memory import MemoryGuard
from kvsim.policy.base import EvictionPolicy
from kvsim.servers import PriorityServer
from kvsim.system.compute import (
    GPUSpec,
    KVBudget,
    ModelDoesNotFit,
    ModelSpec,
    PrefillModel,
    kv_budget,
)
from kvsim.system.hierarchy import TierHierarchy, TierSpec
from kvsim.system.node import TierTemplate, node_tiers
from kvsim.system.router import Router
from kvsim.system.scheduler import Scheduler
from kvsim.system.topology import SCOPES, Device, Layout, Link, Topology, expand
from kvsim.targets import check_target_node
from kvsim.trace.files import files_stamp
from kvsim.trace.schema import Trace
from kvsim.workload import Arrivals, arrivals

if TYPE_CHECKING:
    from kvsim.system.cluster import Cluster

log = logging.getLogger("kvsim")

GIB = 2**30


__all__ = ["ConfigError", "build_index", "build_trace", "check_target_node", "run", "validate"]


def _strip_meta(node: DictConfig) -> DictConfig:
    d = OmegaConf.to_container(node, resolve=True)
    assert isinstance(d, dict)
    d.pop("name", None)
    return OmegaConf.create(d)


# --- builders --------------------------------------------------------------------------
def trace_file(cfg: DictConfig) -> Path:
    """``trace.path``, which must be a file (an agentic trace: a folder of sessions or one
    file); checked before a run starts."""
    t = cfg.trace
    path = Path(t.path)
    if t.format == "agentic":
        if not (path.is_file() or path.is_dir()):
            raise InputFileError(
                f"trace.path: not found: {path} (trace '{t.name}'). Give trace.path=DIR, a folder "
                "of agentic session files (*.json, *.json.gz), or one such file."
            )
        return path
    if not path.is_file():
        where = "is a folder, not a file" if path.is_dir() else "file not found"
        fetch = (
            "set KVSIM_BAILIAN_TRACE=FILE (the traces: github.com/alibaba-edu/qwen-bailian-usagetraces-anon)"
            if t.format == "bailian" else "run `make traces` to download the public Mooncake traces"
        )
        raise InputFileError(f"trace.path: {where}: {path} (trace '{t.name}'). Give trace.path=FILE, or {fetch}.")
    return path


# Traces read in this process, newest last: a run's trace is read (and checked) before its
# folder is made, and a multirun's jobs share theirs. The arrays are made read-only.
_TRACES: OrderedDict[tuple[Any, ...], Trace] = OrderedDict()
_TRACES_KEPT = 4
_WARNED: set[tuple[Any, ...]] = set()  # (trace, model, context) pairs already warned about


def _trace_reader(cfg: DictConfig) -> tuple[tuple[Any, ...], Callable[[], Trace]]:
    """The cache key of ``cfg.trace`` and how to read it."""
    t = cfg.trace
    seed = int(cfg.get("seed", 0))
    common = (t.format, t.block_tokens, t.max_requests, t.name)
    if t.format == "generated":
        from kvsim.trace.families import BLOCK_TOKENS, generate_family

        if t.block_tokens != BLOCK_TOKENS:
            raise ConfigError(f"trace.block_tokens: generated traces have {BLOCK_TOKENS}-token blocks, got {t.block_tokens}")

        def generated() -> Trace:
            tr = generate_family(t.family, seed=seed, scale=float(t.scale))
            tr = tr.head(t.max_requests) if t.max_requests else tr
            return dataclasses.replace(tr, name=t.name)

        return (*common, t.family, float(t.scale), seed), generated
    path = trace_file(cfg)
    if t.format == "agentic":
        from kvsim.trace.agentic import read_agentic

        stamp = files_stamp(path)
        starts = (t.session_starts, float(t.session_interval_s), float(t.sessions_per_hour), seed)

        def agentic() -> Trace:
            import numpy as np

            return read_agentic(
                path, t.block_tokens, session_starts_mode=t.session_starts,
                session_interval_s=t.session_interval_s, sessions_per_hour=t.sessions_per_hour,
                rng=np.random.default_rng(seed), max_requests=t.max_requests, name=t.name,
            )

        return (*common, str(path.resolve()), stamp, starts), agentic
    if t.format == "bailian":
        from kvsim.trace.bailian import read_bailian_jsonl

        def bailian() -> Trace:
            return read_bailian_jsonl(path, block_tokens=t.block_tokens, max_requests=t.max_requests, name=t.name)

        return (*common, str(path.resolve()), files_stamp(path)), bailian
    from kvsim.trace.mooncake import read_mooncake_jsonl

    def mooncake() -> Trace:
        return read_mooncake_jsonl(path, block_tokens=t.block_tokens, max_requests=t.max_requests, name=t.name)

    return (*common, str(path.resolve()), files_stamp(path)), mooncake


def build_trace(cfg: DictConfig) -> Trace:
    key, read = _trace_reader(cfg)
    if key in _TRACES:
        _TRACES.move_to_end(key)
        trace = _TRACES[key]
    else:
        trace = read()
        for a in (trace.arrival_s, trace.input_tokens, trace.output_tokens, trace.offsets, trace.hash_ids):
            a.flags.writeable = False
        _TRACES[key] = trace
        while len(_TRACES) > _TRACES_KEPT:
            _TRACES.popitem(last=False)
    model = cfg.get("model")
    if model is not None and model.get("context_tokens") and (key, model.name, model.context_tokens) not in _WARNED:
        _WARNED.add((key, model.name, model.context_tokens))
        warn_context(trace, int(model.context_tokens), str(model.name))
    return trace


def warn_context(trace: Trace, context_tokens: int, model: str) -> int:
    """Warn (once per trace) if inputs are longer than the model's context window; the
    simulation still charges their full prefill. Returns how many are."""
    over = trace.input_tokens > context_tokens
    n = int(over.sum())
    if n:
        i = int(trace.input_tokens.argmax())
        log.warning(
            "trace %s: %d of %d requests have an input longer than %s's context window "
            "(model.context_tokens=%d); the longest, request %d, has %d tokens",
            trace.name, n, len(trace), model, context_tokens, i, int(trace.input_tokens[i]),
        )
    return n


def build_policy_factory(cfg: DictConfig) -> Callable[[int], EvictionPolicy]:
    check_target_node(cfg.policy, "policy", later=("capacity",))
    factory: Callable[[int], EvictionPolicy] = instantiate(_strip_meta(cfg.policy))
    return factory


def build_index(cfg: DictConfig, rng: np.random.Generator | None = None) -> IndexModel:
    """The index of ``cfg``; its costs are drawn from ``rng`` (default: a generator seeded
    with ``cfg.seed``, so every index of a run draws the same stream)."""
    check_target_node(cfg.index, "index")
    node = _strip_meta(cfg.index)
    kw: dict[str, Any] = {}
    if "rng" in inspect.signature(get_class(str(node._target_))).parameters:
        kw["rng"] = rng if rng is not None else np.random.default_rng(int(cfg.seed))
    index: IndexModel = instantiate(node, **kw)
    return index


def build_model(cfg: DictConfig) -> ModelSpec:
    m = cfg.model
    return ModelSpec(m.name, m.params, m.layers, m.q_heads, m.kv_heads, m.head_dim, m.dtype_bytes)


def build_gpu(cfg: DictConfig) -> GPUSpec:
    g = cfg.gpu
    return GPUSpec(
        g.name, g.peak_flops, g.hbm_gib * GIB, g.mfu, g.tensor_parallel, g.instances,
        g.activation_reserve_gib * GIB,
    )


def build_prefill(cfg: DictConfig) -> PrefillModel:
    return PrefillModel(build_model(cfg), build_gpu(cfg))


def build_budget(cfg: DictConfig) -> KVBudget:
    """HBM left for the KV cache per instance; a model that does not fit is a config error."""
    try:
        return kv_budget(build_model(cfg), build_gpu(cfg))
    except ModelDoesNotFit as exc:
        raise ConfigError(str(exc)) from None


def build_layout(cfg: DictConfig) -> Layout:
    s = cfg.system
    return Layout(int(cfg.gpu.instances), int(s.instances_per_host), dict(s.devices))


def build_topology(cfg: DictConfig, layout: Layout | None = None) -> Topology:
    """The devices and links of every instance and host (templates expanded by scope)."""
    s = cfg.system
    layout = layout or build_layout(cfg)
    links = [
        Link(ln.a, ln.b, float(ln.bandwidth_Bps), float(ln.latency_s), int(ln.parallelism), name,
             None if ln.reverse_bandwidth_Bps is None else float(ln.reverse_bandwidth_Bps))
        for name, ln in s.links.items()
    ]
    media = []
    for name, t in s.tiers.items():
        if t.read_Bps is None and t.write_Bps is None:
            continue
        if t.read_Bps is None or t.write_Bps is None:
            raise ConfigError(f"system.tiers.{name}: give both read_Bps and write_Bps (or neither)")
        media.append(Device(t.device, float(t.read_Bps), float(t.write_Bps), int(t.parallelism)))
    templates = sorted({ln.a for ln in links} | {ln.b for ln in links} | {t.device for t in s.tiers.values()})
    devices, links, media = expand(layout, templates, links, media)
    return Topology(devices, links, media, full_duplex=bool(s.full_duplex), priorities=bool(s.priorities),
                    every_hop=bool(s.every_hop))


def tier_templates(cfg: DictConfig, block_bytes: int, budget: KVBudget | None = None) -> list[TierTemplate]:
    """One template per tier, capacity per copy in blocks (the top tier's derived from the
    HBM left after weights and reserve unless ``capacity_gib`` is given)."""
    s = cfg.system
    if not s.tiers:
        raise ConfigError("system.tiers: at least one tier is needed")
    out = []
    for lvl, (name, t) in enumerate(s.tiers.items()):
        if t.capacity_gib is None:
            if lvl:
                raise ConfigError(f"system.tiers.{name}.capacity_gib: null (derived from HBM) is for the top tier only")
            nbytes = (budget or build_budget(cfg)).kv_bytes
        else:
            nbytes = float(t.capacity_gib) * GIB
        out.append(TierTemplate(name, t.device, int(nbytes * s.capacity_scale // block_bytes), float(t.access_latency_s)))
    return out


def tier_specs(cfg: DictConfig, block_bytes: int) -> list[TierSpec]:
    """Every tier of the node (one per copy: a GPU tier per instance, a DRAM tier per host...)."""
    tiers, _ = node_tiers(build_layout(cfg), tier_templates(cfg, block_bytes))
    return tiers


def build_hierarchy(cfg: DictConfig, block_bytes: int, budget: KVBudget | None = None) -> TierHierarchy:
    tiers, views = node_tiers(build_layout(cfg), tier_templates(cfg, block_bytes, budget))
    return TierHierarchy(tiers, build_policy_factory(cfg), promote_on_hit=cfg.system.promote_on_hit, views=views)


def _build_component(node: DictConfig, where: str, keep_name: bool = False) -> Any:
    """Instantiate a `_target_` node checked against its class; a constructor's
    ValueError (a cross-field rule) is a config error naming the node."""
    check_target_node(node, where)
    try:
        return instantiate(OmegaConf.create(OmegaConf.to_container(node, resolve=True)) if keep_name else _strip_meta(node))
    except InstantiationException as exc:
        if isinstance(exc.__cause__, ValueError):
            raise ConfigError(f"{where}: {exc.__cause__}") from None
        raise


def build_router(cfg: DictConfig) -> Router:
    router: Router = _build_component(cfg.router, "router")
    return router


def build_scheduler(cfg: DictConfig) -> Scheduler:
    scheduler: Scheduler = _build_component(cfg.scheduler, "scheduler", keep_name=True)
    return scheduler


def build_arrivals(cfg: DictConfig, trace: Trace, rng: np.random.Generator) -> Arrivals:
    try:
        return arrivals(trace.arrival_s, cfg.trace.spread, cfg.trace.tick_s, rng)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_timed_trace(cfg: DictConfig) -> tuple[Trace, Arrivals]:
    """The trace with its arrivals as the workload module times them (``trace.spread``,
    ``trace.tick_s``, seeded by the run): what the benchmarks replay."""
    import dataclasses

    trace = build_trace(cfg)
    arr = build_arrivals(cfg, trace, np.random.default_rng(cfg.seed))
    return dataclasses.replace(trace, arrival_s=arr.times_s), arr


def build_cluster(
    cfg: DictConfig, trace: Trace, rng: np.random.Generator | None = None, check_invariants: bool | None = None
) -> tuple[Cluster, Arrivals]:
    """The whole simulated node for ``trace`` (what ``python -m kvsim`` runs)."""
    from kvsim.system.cluster import Cluster

    rng = rng if rng is not None else np.random.default_rng(cfg.seed)
    prefill = build_prefill(cfg)
    budget = build_budget(cfg)
    layout = build_layout(cfg)
    topo = build_topology(cfg, layout)
    hier = build_hierarchy(cfg, prefill.model.block_bytes(trace.block_tokens), budget)
    arr = build_arrivals(cfg, trace, rng)
    nic = _nic_queues(cfg, layout, topo)
    cluster = Cluster(
        trace,
        hier,
        topo,
        build_index(cfg),
        prefill,
        scheduler=build_scheduler(cfg),
        router=build_router(cfg),
        arrival_s=arr.times_s,
        overlap_load=bool(cfg.system.overlap_load),
        load_or_recompute=str(cfg.system.load_or_recompute),
        nic=nic,
        check_invariants=bool(cfg.check_invariants if check_invariants is None else check_invariants),
    )
    return cluster, arr


def _nic_queues(cfg: DictConfig, layout: Layout, topo: Topology) -> list[PriorityServer] | None:
    """Each instance's host NIC link, in the direction that brings data in (READ replies,
    KV loads)."""
    name = str(cfg.system.nic_link)
    if not name:
        return None
    if name not in cfg.system.links:
        raise ConfigError(f"system.nic_link: {name!r} is not one of system.links ({sorted(cfg.system.links)})")
    ln = cfg.system.links[name]
    # The copy of the link that instance 0 reaches (named after its narrower end, as
    # expand() names it) and its end away from the host.
    rank = {s: i for i, s in enumerate(SCOPES)}
    narrow, far = (ln.a, ln.b) if rank[layout.scope(ln.a)] <= rank[layout.scope(ln.b)] else (ln.b, ln.a)
    out = []
    for i in range(layout.instances):
        suffix = layout.device(narrow, i)[len(narrow) :]
        out.append(topo.queue(f"{name}{suffix}", layout.device(far, i)))
    return out


def validate(cfg: DictConfig) -> None:
    """What the simulate mode builds, built once without the trace: the policy, the index,
    the prefill model, and a path from every tier to the GPU (after :func:`check_config`
    has checked every key and range)."""
    build_policy_factory(cfg)
    if cfg.system.kind == "tiered":
        build_index(cfg)
        build_prefill(cfg)
        build_router(cfg)
        build_scheduler(cfg)
        budget = build_budget(cfg)
        try:
            layout = build_layout(cfg)
            topo = build_topology(cfg, layout)
            tiers, views = node_tiers(layout, tier_templates(cfg, build_model(cfg).block_bytes(cfg.trace.block_tokens), budget))
            for path in views:
                for t in path:
                    topo.path(tiers[t].device, tiers[path[0]].device)
            _nic_queues(cfg, layout, topo)
        except ConfigError:
            raise
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"system: {exc}") from None


# --- modes -----------------------------------------------------------------------------
def run_single_tier(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Every block access in request order against one cache; a miss inserts the block."""
    trace = build_trace(cfg)
    factory = build_policy_factory(cfg)
    cap = int(cfg.system.capacity_blocks)
    policy = factory(cap)
    policy.bind(trace)  # offline facts for the policy (block chains; OPT: next uses)
    t0 = time.perf_counter()
    hits = policy.replay(trace.hash_ids.tolist())
    wall = time.perf_counter() - t0
    n = trace.num_block_accesses
    summary = {
        "mode": "single_tier",
        # What a sweep tells runs apart by (a sweep over traces compares each with its own OPT).
        "trace": trace.name,
        "trace_path": str(cfg.trace.path),
        "block_tokens": trace.block_tokens,
        "policy": cfg.policy.name,
        "capacity_blocks": cap,
        "requests": len(trace),
        "block_accesses": n,
        "block_hits": hits,
        "block_misses": n - hits,
        "hit_ratio": hits / n if n else 0.0,
        "wall_time_s": wall,
        "accesses_per_s": n / wall if wall > 0 else float("inf"),
    }
    write_json(out / "summary.json", summary)
    return summary


def run_simulation(cfg: DictConfig, out: Path) -> dict[str, Any]:
    from kvsim import accel
    from kvsim.metrics import OVERLOAD_UTILIZATION, summarize

    t0 = time.perf_counter()
    trace = build_trace(cfg)
    rng = np.random.default_rng(cfg.seed)  # the run's one generator
    cluster, arr = build_cluster(cfg, trace, rng)
    budget = build_budget(cfg)
    layout = build_layout(cfg)
    tiers = cluster.hier.tiers
    block_bytes = cluster.block_bytes
    caps: dict[str, int] = {}
    for t in tiers:
        caps[t.name] = caps.get(t.name, 0) + t.capacity_blocks
    log.info(
        "trace %s: %d requests, %d block accesses, arrivals spread=%s tick %.3f s; %d instances on %d hosts; "
        "tiers %s (blocks of %.0f MiB; GPU tier per instance %.1f GiB = HBM %.0f - weights %.1f - reserve %.0f)",
        trace.name, len(trace), trace.num_block_accesses, arr.spread, arr.tick_s, layout.instances, layout.hosts,
        ", ".join(f"{t.label}={t.capacity_blocks}" for t in tiers), block_bytes / 2**20,
        budget.kv_bytes / GIB, budget.hbm_bytes / GIB, budget.weights_bytes / GIB, budget.reserve_bytes / GIB,
    )
    res = cluster.run(progress=cfg.progress)
    wall = time.perf_counter() - t0
    summary = summarize(
        res.records,
        res.tier_names,
        sim_time_s=res.sim_time_s,
        wall_time_s=wall,
        link_bytes=res.link_bytes,
        utilization=res.server_utilization,
    )
    summary = {
        "mode": "simulate",
        "trace": trace.name,
        "policy": cfg.policy.name,
        "index": cfg.index.name,
        "model": cfg.model.name,
        # requests longer than the model's window: simulated as if it took them (a real
        # engine refuses them); counted here so that a table of runs shows it, not only a log
        "over_context_requests": int((trace.input_tokens > int(cfg.model.context_tokens)).sum()),
        "gpu": cfg.gpu.name,
        "router": cfg.router.name,
        "scheduler": cfg.scheduler.name,
        "instances": layout.instances,
        "hosts": layout.hosts,
        "workload": arr.summary(),
        "overlap_load": bool(cfg.system.overlap_load),
        "load_or_recompute": str(cfg.system.load_or_recompute),
        "capacity_scale": float(cfg.system.capacity_scale),
        "gpu_kv_budget": {**budget.summary(), "tensor_parallel": int(cfg.gpu.tensor_parallel)},
        "tier_capacity_blocks": caps,
        "tier_copy_capacity_blocks": {t.label: t.capacity_blocks for t in tiers},
        "block_bytes": block_bytes,
        # how many of the hot modules ran compiled (python -m kvsim.accel): wall times differ
        # by about 1.4x between builds, results do not
        "compiled_modules": len(accel.in_use()),
        **summary,
    }
    summary.update(real_ttft_columns(trace, res.records))
    if summary["overloaded"]:
        log.warning(
            "overloaded: prefill utilisation %.3f > %.2f (per instance %s): queues grow without bound "
            "and TTFT reflects the backlog, not the system",
            summary["utilization"]["prefill"], OVERLOAD_UTILIZATION,
            ", ".join(f"{u:.2f}" for u in summary["per_instance"]["utilization"]),
        )
    if summary.get("overloaded_peak") and not summary["overloaded"]:
        log.warning(
            "overloaded at times: the busiest %.0f s bring %.2fx the prefill work the instances can do "
            "in them (mean utilisation %.3f): TTFT in those waves reflects the backlog",
            summary["peak_window_s"], summary["peak_prefill_load"], summary["utilization"]["prefill"],
        )
    if cfg.save_requests:
        import pandas as pd

        df = pd.DataFrame(res.records)
        write_with(out / "requests.parquet", lambda p: df.to_parquet(p, index=False))
    write_json(out / "summary.json", summary)
    if cfg.figures and cfg.save_requests:
        from kvsim.report.plots import plot_run

        plot_run(out)
    log.info(
        "hit ratio %.3f, TTFT p50 %.2f ms p99 %.2f ms, load p99 %.2f ms, metadata p99 %.1f us; wall %.2f s",
        summary["hit_ratio"], summary["ttft_p50_s"] * 1e3, summary["ttft_p99_s"] * 1e3,
        summary["load_p99_s"] * 1e3, summary["metadata_p99_s"] * 1e6, wall,
    )
    return summary


def real_ttft_columns(trace: Trace, records: dict[str, Any]) -> dict[str, Any]:
    """Traces measured on a real service (agentic sessions) carry each request's real TTFT
    and API time: add them to the per-request records (NaN where a request has none) and
    return the summary's comparison of simulated and real TTFT over the requests that have one."""
    import numpy as np

    out: dict[str, Any] = {}
    for col in ("real_ttft_s", "real_api_time_s"):
        values = getattr(trace, col)
        if values is not None:
            records[col] = np.asarray(values, dtype=np.float64)
    real = records.get("real_ttft_s")
    if real is None:
        return out
    have = np.isfinite(real)
    out["real_ttft_requests"] = int(have.sum())
    if have.any():
        sim = np.asarray(records["ttft_s"])[have]
        out.update({
            "real_ttft_p50_s": float(np.percentile(real[have], 50)),
            "real_ttft_p99_s": float(np.percentile(real[have], 99)),
            "sim_ttft_p50_s_where_real": float(np.percentile(sim, 50)),
            "sim_ttft_p99_s_where_real": float(np.percentile(sim, 99)),
        })
    return out


def run(cfg: DictConfig, out: Path, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Check ``cfg`` (every key, range and structure: :func:`kvsim.config.check_config`),
    then run its mode into ``out``."""
    check_config(cfg, overrides)
    with memory_guard(cfg):
        if cfg.mode == "simulate" and cfg.system.kind == "single_tier":
            return run_single_tier(cfg, out)
        fn = load(MODES[cfg.mode].run)
        write_with(out / "config.yaml", lambda p: OmegaConf.save(cfg, p, resolve=True))
        result: dict[str, Any] = fn(cfg, out)
    return result


def memory_guard(cfg: DictConfig) -> MemoryGuard:
    """The run's guard on resident memory (``memory_limit_gib``; null: half the machine's)."""
    return MemoryGuard(memory_limit_bytes(cfg.get("memory_limit_gib")))
