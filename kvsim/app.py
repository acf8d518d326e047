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
from typing import Any

import numpy as np
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from kvsim.index.base import IndexModel
from kvsim.io import write_json, write_with
from kvsim.policy.base import EvictionPolicy
from kvsim.system.compute import GPUSpec, ModelSpec, PrefillModel
from kvsim.system.hierarchy import TierHierarchy, TierSpec
from kvsim.system.topology import Link, Topology
from kvsim.trace.schema import Trace

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
        child = node.get(key)
        if isinstance(child, DictConfig) and "_target_" in child:
            check_target_keys(child, f"{where}.{key}")  # a component node (an index's client)
        if key in _META_KEYS or takes_kwargs:
            continue
        if key not in params:
            allowed = sorted(k for k in params if k not in ("self", "capacity", "rng"))
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


def build_index(cfg: DictConfig, rng: np.random.Generator | None = None) -> IndexModel:
    """The index of ``cfg``; its costs are drawn from ``rng`` (default: a generator seeded
    with ``cfg.seed``, so every index of a run draws the same stream)."""
    check_target_keys(cfg.index, "index")
    node = _strip_meta(cfg.index)
    kw: dict[str, Any] = {}
    if "rng" in inspect.signature(get_class(str(node._target_))).parameters:
        kw["rng"] = rng if rng is not None else np.random.default_rng(int(cfg.seed))
    index: IndexModel = instantiate(node, **kw)
    return index


def build_model(cfg: DictConfig) -> ModelSpec:
    m = cfg.model
    return ModelSpec(m.name, m.params, m.layers, m.q_heads, m.kv_heads, m.head_dim, m.dtype_bytes)


def build_prefill(cfg: DictConfig) -> PrefillModel:
    g = cfg.gpu
    gpu = GPUSpec(g.name, g.peak_flops, g.hbm_gib * GIB, g.mfu, g.tensor_parallel, g.instances)
    return PrefillModel(build_model(cfg), gpu)


def build_topology(cfg: DictConfig) -> Topology:
    s = cfg.system
    links = [
        Link(ln.a, ln.b, float(ln.bandwidth_Bps), float(ln.latency_s), int(ln.parallelism), name)
        for name, ln in s.links.items()
    ]
    devices = sorted({ln.a for ln in links} | {ln.b for ln in links} | {t.device for t in s.tiers.values()})
    return Topology(devices, links)


def tier_specs(cfg: DictConfig, block_bytes: int) -> list[TierSpec]:
    s = cfg.system
    if not s.tiers:
        raise ConfigError("system.tiers: at least one tier is needed")
    return [
        TierSpec(name, t.device, int(t.capacity_gib * s.capacity_scale * GIB // block_bytes), t.access_latency_s)
        for name, t in s.tiers.items()
    ]


def validate(cfg: DictConfig) -> None:
    """Everything that can be checked without reading the trace: run before any work."""
    OmegaConf.resolve(cfg)  # interpolation errors now, not mid-run
    build_policy_factory(cfg)
    if cfg.system.kind not in ("tiered", "single_tier"):
        raise ConfigError(f"system.kind: {cfg.system.kind!r} is not 'tiered' or 'single_tier'")
    if cfg.system.kind == "tiered":
        build_index(cfg)
        build_prefill(cfg)
        topo = build_topology(cfg)
        for spec in tier_specs(cfg, build_model(cfg).block_bytes(cfg.trace.block_tokens)):
            topo.path(spec.device, cfg.system.gpu_device)


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
    from kvsim.metrics import summarize
    from kvsim.system.cluster import Cluster

    t0 = time.perf_counter()
    trace = build_trace(cfg)
    prefill = build_prefill(cfg)
    block_bytes = prefill.model.block_bytes(trace.block_tokens)
    tiers = tier_specs(cfg, block_bytes)
    hier = TierHierarchy(tiers, build_policy_factory(cfg), promote_on_hit=cfg.system.promote_on_hit)
    cluster = Cluster(
        trace,
        hier,
        build_topology(cfg),
        build_index(cfg),
        prefill,
        gpu_device=cfg.system.gpu_device,
        check_invariants=cfg.check_invariants,
    )
    log.info(
        "trace %s: %d requests, %d block accesses; tiers %s (blocks of %.0f MiB)",
        trace.name, len(trace), trace.num_block_accesses,
        ", ".join(f"{t.name}={t.capacity_blocks}" for t in tiers), block_bytes / 2**20,
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
        "capacity_scale": float(cfg.system.capacity_scale),
        "tier_capacity_blocks": {t.name: t.capacity_blocks for t in tiers},
        "block_bytes": block_bytes,
        **summary,
    }
    if cfg.save_requests:
        import pandas as pd

        df = pd.DataFrame(res.records)
        write_with(out / "requests.parquet", lambda p: df.to_parquet(p, index=False))
    write_json(out / "summary.json", summary)
    if cfg.figures and cfg.save_requests:
        from kvsim.report.plots import plot_run

        plot_run(out)
    log.info(
        "hit ratio %.3f, TTFT p50 %.2f ms p99 %.2f ms, metadata p99 %.1f us; wall %.2f s -> %s",
        summary["hit_ratio"], summary["ttft_p50_s"] * 1e3, summary["ttft_p99_s"] * 1e3,
        summary["metadata_p99_s"] * 1e6, wall, out,
    )
    return summary


MODES: dict[str, str] = {
    "simulate": "kvsim.app:run_simulation",
    "trace_analysis": "kvsim.analysis.run:run_trace_analysis",
    "metadata_bench": "kvsim.bench.metadata:run_metadata_bench",
    "redis_validation": "kvsim.bench.redis_validation:run_redis_validation",
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
