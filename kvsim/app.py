"""The Hydra edge: turn a composed config into objects, run the chosen mode, write outputs.

Everything below this module takes plain typed arguments; only this module (and the
report callbacks) knows about OmegaConf.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from kvsim.index.base import IndexModel
from kvsim.io import write_json, write_with
from kvsim.policy.base import EvictionPolicy
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
from kvsim.system.servers import PriorityServer
from kvsim.system.topology import SCOPES, Device, Layout, Link, Topology, expand
from kvsim.trace.schema import Trace
from kvsim.workload import Arrivals, arrivals

if TYPE_CHECKING:
    from kvsim.system.cluster import Cluster

log = logging.getLogger("kvsim")

GIB = 2**30
# Keys of a `_target_` node that describe it rather than configure the class.
_META_KEYS = ("name", "_target_", "_partial_", "_convert_", "_recursive_", "_args_")


class ConfigError(ValueError):
    pass


def check_target_keys(node: DictConfig, where: str) -> None:
    """Fail early, naming the key, if a `_target_` node has a key its class does not take."""
    target = str(node._target_)
    cls: type = get_class(target)
    params = inspect.signature(cls).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for raw in node:
        key = str(raw)
        if key in _META_KEYS or takes_kwargs:
            continue
        if key not in params:
            allowed = sorted(k for k in params if k not in ("self", "capacity"))
            raise ConfigError(f"{where}: unknown key '{key}' for {target} (allowed: {allowed})")


def _strip_meta(node: DictConfig) -> DictConfig:
    d = OmegaConf.to_container(node, resolve=True)
    assert isinstance(d, dict)
    d.pop("name", None)
    return OmegaConf.create(d)


# --- builders --------------------------------------------------------------------------
def build_trace(cfg: DictConfig) -> Trace:
    t = cfg.trace
    if t.format != "mooncake":
        raise ConfigError(f"trace.format: unknown format {t.format!r} (known: mooncake)")
    from kvsim.trace.mooncake import read_mooncake_jsonl

    path = Path(t.path)
    if not path.is_file():
        raise FileNotFoundError(
            f"trace '{t.name}': file not found: {path}. Give trace.path=FILE, or run `make traces` "
            "to download the public Mooncake traces."
        )
    return read_mooncake_jsonl(path, block_tokens=t.block_tokens, max_requests=t.max_requests, name=t.name)


def build_policy_factory(cfg: DictConfig) -> Callable[[int], EvictionPolicy]:
    check_target_keys(cfg.policy, "policy")
    factory: Callable[[int], EvictionPolicy] = instantiate(_strip_meta(cfg.policy))
    return factory


def build_index(cfg: DictConfig) -> IndexModel:
    check_target_keys(cfg.index, "index")
    index: IndexModel = instantiate(_strip_meta(cfg.index))
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
    """Instantiate a `_target_` node; a constructor's ValueError (a range) is a config error."""
    check_target_keys(node, where)
    try:
        return instantiate(OmegaConf.create(OmegaConf.to_container(node, resolve=True)) if keep_name else _strip_meta(node))
    except InstantiationException as exc:
        if isinstance(exc.__cause__, ValueError):
            raise ConfigError(str(exc.__cause__)) from None
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
    nic = _nic_queue(cfg, layout, topo)
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


def _nic_queue(cfg: DictConfig, layout: Layout, topo: Topology) -> PriorityServer | None:
    """Host 0's NIC link, in the direction that brings data in (READ replies, KV loads)."""
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
    suffix = layout.device(narrow, 0)[len(narrow) :]
    return topo.queue(f"{name}{suffix}", layout.device(far, 0))


def check_ranges(cfg: DictConfig) -> None:
    """One line naming the key for every value out of its range (before any work)."""
    s, g, t = cfg.system, cfg.gpu, cfg.trace
    checks = [
        ("gpu.instances", g.instances >= 1, ">= 1"),
        ("gpu.tensor_parallel", g.tensor_parallel >= 1, ">= 1"),
        ("gpu.hbm_gib", g.hbm_gib > 0, "> 0"),
        ("gpu.activation_reserve_gib", g.activation_reserve_gib >= 0, ">= 0"),
        ("gpu.mfu", 0 < g.mfu <= 1, "in (0, 1]"),
        ("system.instances_per_host", s.instances_per_host >= 1, ">= 1"),
        ("system.capacity_scale", s.capacity_scale >= 0, ">= 0"),
        ("system.load_or_recompute", s.load_or_recompute in ("auto", "load"), "auto or load"),
        ("trace.spread", t.spread in ("tick", "none"), "tick or none"),
        ("trace.tick_s", t.tick_s is None or t.tick_s >= 0, ">= 0 or null"),
    ]
    for name, tier in s.tiers.items():
        checks += [
            (f"system.tiers.{name}.capacity_gib", tier.capacity_gib is None or tier.capacity_gib >= 0, ">= 0 or null"),
            (f"system.tiers.{name}.access_latency_s", tier.access_latency_s >= 0, ">= 0"),
            (f"system.tiers.{name}.read_Bps", tier.read_Bps is None or tier.read_Bps > 0, "> 0 or null"),
            (f"system.tiers.{name}.write_Bps", tier.write_Bps is None or tier.write_Bps > 0, "> 0 or null"),
            (f"system.tiers.{name}.parallelism", tier.parallelism >= 1, ">= 1"),
        ]
    for name, ln in s.links.items():
        checks += [
            (f"system.links.{name}.bandwidth_Bps", ln.bandwidth_Bps > 0, "> 0"),
            (f"system.links.{name}.reverse_bandwidth_Bps", ln.reverse_bandwidth_Bps is None or ln.reverse_bandwidth_Bps > 0, "> 0 or null"),
            (f"system.links.{name}.latency_s", ln.latency_s >= 0, ">= 0"),
            (f"system.links.{name}.parallelism", ln.parallelism >= 1, ">= 1"),
        ]
    for key, ok, rule in checks:
        if not ok:
            raise ConfigError(f"{key}: {OmegaConf.select(cfg, key)!r} is out of range (must be {rule})")


def validate(cfg: DictConfig) -> None:
    """Everything that can be checked without reading the trace: run before any work."""
    OmegaConf.resolve(cfg)  # interpolation errors now, not mid-run
    build_policy_factory(cfg)
    if cfg.system.kind not in ("tiered", "single_tier"):
        raise ConfigError(f"system.kind: {cfg.system.kind!r} is not 'tiered' or 'single_tier'")
    if cfg.system.kind == "tiered":
        check_ranges(cfg)
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
            _nic_queue(cfg, layout, topo)
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
        **summary,
    }
    if summary["overloaded"]:
        log.warning(
            "overloaded: prefill utilisation %.3f > %.2f (per instance %s): queues grow without bound "
            "and TTFT reflects the backlog, not the system",
            summary["utilization"]["prefill"], OVERLOAD_UTILIZATION,
            ", ".join(f"{u:.2f}" for u in summary["per_instance"]["utilization"]),
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
        "hit ratio %.3f, TTFT p50 %.2f ms p99 %.2f ms, load p99 %.2f ms, metadata p99 %.1f us; wall %.2f s -> %s",
        summary["hit_ratio"], summary["ttft_p50_s"] * 1e3, summary["ttft_p99_s"] * 1e3,
        summary["load_p99_s"] * 1e3, summary["metadata_p99_s"] * 1e6, wall, out,
    )
    return summary


MODES: dict[str, str] = {
    "simulate": "kvsim.app:run_simulation",
    "trace_analysis": "kvsim.analysis.run:run_trace_analysis",
    "metadata_bench": "kvsim.bench.metadata:run_metadata_bench",
}


def run(cfg: DictConfig, out: Path) -> dict[str, Any]:
    mode = cfg.mode
    if mode == "simulate" and cfg.system.kind == "single_tier":
        validate(cfg)
        return run_single_tier(cfg, out)
    if mode not in MODES:
        raise ConfigError(f"mode: unknown mode {mode!r} (known: {sorted(MODES)})")
    if mode == "simulate":
        validate(cfg)
    module, func = MODES[mode].split(":")
    import importlib

    fn = getattr(importlib.import_module(module), func)
    write_with(out / "config.yaml", lambda p: OmegaConf.save(cfg, p, resolve=True))
    result: dict[str, Any] = fn(cfg, out)
    return result
