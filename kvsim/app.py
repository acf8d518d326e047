"""The Hydra edge: turn a composed config into objects, run the chosen mode, write outputs.

Everything below this module takes plain typed arguments; only this module (and the
report callbacks) knows about OmegaConf.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from kvsim.config import MODES, check_config, load, memory_limit_bytes
from kvsim.errors import ConfigError, InputFileError
from kvsim.index.base import IndexModel
from kvsim.io import write_json, write_with
from kvsim.memory import MemoryGuard
from kvsim.policy.base import EvictionPolicy
from kvsim.ranges import check_call
from kvsim.system.compute import GPUSpec, ModelSpec, PrefillModel
from kvsim.system.hierarchy import TierHierarchy, TierSpec
from kvsim.system.topology import Link, Topology
from kvsim.trace.schema import Trace

log = logging.getLogger("kvsim")

GIB = 2**30
# Keys of a `_target_` node that describe it rather than configure the class.
_META_KEYS = ("name", "_target_", "_partial_", "_convert_", "_recursive_", "_args_")


__all__ = ["ConfigError", "build_index", "build_trace", "check_target_node", "run", "validate"]


def check_target_node(node: Any, where: str, later: Sequence[str] = ()) -> None:
    """A `_target_` node against its class's constructor: every key a parameter, each of
    the parameter's annotated type and range (:func:`kvsim.ranges.check_call`), every
    required one given (``later``: the ones a `_partial_` node's caller passes)."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(f"{where}: expected a node with a _target_ class, got {node!r}")
    try:
        cls: type = get_class(str(node["_target_"]))
    except Exception as e:
        raise ConfigError(f"{where}._target_: cannot load {node['_target_']!r} ({e})") from None
    kwargs = {str(k): v for k, v in node.items() if k not in _META_KEYS}
    check_call(cls, kwargs, where, later=later if node.get("_partial_") else ())


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
        raise InputFileError(
            f"trace.path: {where}: {path} (trace '{t.name}'). Give trace.path=FILE, or run "
            "`make traces` to download the public Mooncake traces."
        )
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
        from kvsim.trace.agentic import read_agentic, session_files

        stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in session_files(path))
        starts = (t.session_starts, float(t.session_interval_s), float(t.sessions_per_hour), seed)

        def agentic() -> Trace:
            import numpy as np

            return read_agentic(
                path, t.block_tokens, session_starts_mode=t.session_starts,
                session_interval_s=t.session_interval_s, sessions_per_hour=t.sessions_per_hour,
                rng=np.random.default_rng(seed), max_requests=t.max_requests, name=t.name,
            )

        return (*common, str(path.resolve()), stamp, starts), agentic
    from kvsim.trace.mooncake import read_mooncake_jsonl

    st = path.stat()

    def mooncake() -> Trace:
        return read_mooncake_jsonl(path, block_tokens=t.block_tokens, max_requests=t.max_requests, name=t.name)

    return (*common, str(path.resolve()), st.st_size, st.st_mtime_ns), mooncake


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


def build_index(cfg: DictConfig) -> IndexModel:
    check_target_node(cfg.index, "index")
    index: IndexModel = instantiate(_strip_meta(cfg.index))
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
    """What the simulate mode builds, built once without the trace: the policy, the index,
    the prefill model, and a path from every tier to the GPU (after :func:`check_config`
    has checked every key and range)."""
    build_policy_factory(cfg)
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
    summary.update(real_ttft_columns(trace, res.records))
    if cfg.save_requests:
        import pandas as pd

        df = pd.DataFrame(res.records)
        write_with(out / "requests.parquet", lambda p: df.to_parquet(p, index=False))
    write_json(out / "summary.json", summary)
    if cfg.figures and cfg.save_requests:
        from kvsim.report.plots import plot_run

        plot_run(out)
    log.info(
        "hit ratio %.3f, TTFT p50 %.2f ms p99 %.2f ms, metadata p99 %.1f us; wall %.2f s",
        summary["hit_ratio"], summary["ttft_p50_s"] * 1e3, summary["ttft_p99_s"] * 1e3,
        summary["metadata_p99_s"] * 1e6, wall,
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
