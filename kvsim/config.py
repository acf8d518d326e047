"""Typed config schemas, registered with Hydra so that mistakes fail at compose time.

Hydra merges every YAML file of a group into the dataclass of that group: a misspelled
key or a value of the wrong type is an error when the config is composed, before any
simulation starts. ``policy`` and ``index`` are ``_target_`` nodes (one class each); their
keys are checked against the class signature by :func:`kvsim.app.build` before a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("kvsim_root"):
        OmegaConf.register_new_resolver("kvsim_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("stem"):
        # A trace is named after its file, so `trace.path=FILE` renames it too.
        OmegaConf.register_new_resolver("stem", lambda p: Path(str(p)).name.split(".")[0])
    if not OmegaConf.has_resolver("gib"):
        OmegaConf.register_new_resolver("gib", lambda x: int(float(x) * 2**30))
    if not OmegaConf.has_resolver("kvsim_staging"):
        # Hydra's own files (.hydra/, the job log) go to the run's staging folder, so that
        # nothing is written into the final folder before kvsim has locked and checked it.
        from kvsim.runfolder import stage

        OmegaConf.register_new_resolver("kvsim_staging", lambda out: str(stage(str(out))))


@dataclass
class TraceConfig:
    name: str = MISSING
    format: str = "mooncake"  # mooncake
    path: str = MISSING
    block_tokens: int = 512
    max_requests: int | None = None  # replay only the first N requests
    description: str = ""


@dataclass
class TierConfig:
    device: str = MISSING
    capacity_gib: float = 0.0
    access_latency_s: float = 0.0


@dataclass
class LinkConfig:
    a: str = MISSING
    b: str = MISSING
    bandwidth_Bps: float = MISSING
    latency_s: float = 0.0
    parallelism: int = 1


@dataclass
class SystemConfig:
    kind: str = "tiered"  # tiered | single_tier
    capacity_blocks: int = 0  # single_tier only
    capacity_scale: float = 1.0  # multiplies every tier's capacity (sweeps)
    promote_on_hit: bool = True
    gpu_device: str = "gpu"
    tiers: dict[str, TierConfig] = field(default_factory=dict)
    links: dict[str, LinkConfig] = field(default_factory=dict)


@dataclass
class ModelConfig:
    name: str = MISSING
    params: float = MISSING
    layers: int = MISSING
    q_heads: int = MISSING
    kv_heads: int = MISSING
    head_dim: int = MISSING
    dtype_bytes: int = 2


@dataclass
class GPUConfig:
    name: str = MISSING
    peak_flops: float = MISSING
    hbm_gib: float = MISSING
    mfu: float = 0.5
    tensor_parallel: int = 1
    instances: int = 1


@dataclass
class KvsimConfig:
    trace: TraceConfig = MISSING
    system: SystemConfig = MISSING
    model: ModelConfig = MISSING
    gpu: GPUConfig = MISSING
    policy: Any = MISSING
    index: Any = MISSING
    calibration: Any = MISSING
    mode: str = "simulate"  # simulate | trace_analysis | metadata_bench (set by experiments)
    seed: int = 0
    progress: bool = True  # a run: the replay's bar; a sweep: jobs done / total with an ETA
    overwrite: bool = False  # replace a complete run of another config in the run's folder
    check_invariants: bool = False
    save_requests: bool = True
    figures: bool = True
    experiment: Any = None  # experiment-specific settings (gathered by callbacks)


def register_configs() -> None:
    _register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="kvsim_schema", node=KvsimConfig)
    cs.store(group="trace", name="trace_schema", node=TraceConfig)
    cs.store(group="system", name="system_schema", node=SystemConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="gpu", name="gpu_schema", node=GPUConfig)


register_configs()
