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


@dataclass
class TraceConfig:
    name: str = MISSING
    format: str = "mooncake"  # mooncake
    path: str = MISSING
    block_tokens: int = 512
    max_requests: int | None = None  # replay only the first N requests
    description: str = ""
    spread: str = "tick"  # tick: spread the requests of a timestamp tick over it | none: literal
    tick_s: float | None = None  # the tick (s); null: inferred from the timestamps


@dataclass
class TierConfig:
    device: str = MISSING
    capacity_gib: float | None = 0.0  # per copy; null (top tier only): HBM - weights - reserve
    access_latency_s: float = 0.0
    read_Bps: float | None = None  # the device's medium as a queue of its own (an SSD); null: none
    write_Bps: float | None = None
    parallelism: int = 1  # medium: transfers served at once


@dataclass
class LinkConfig:
    a: str = MISSING
    b: str = MISSING
    bandwidth_Bps: float = MISSING
    latency_s: float = 0.0
    parallelism: int = 1
    reverse_bandwidth_Bps: float | None = None  # b -> a; null: bandwidth_Bps


@dataclass
class SystemConfig:
    kind: str = "tiered"  # tiered | single_tier
    capacity_blocks: int = 0  # single_tier only
    capacity_scale: float = 1.0  # multiplies every tier's capacity (sweeps)
    promote_on_hit: bool = True
    gpu_device: str = "gpu"
    instances_per_host: int = 4  # gpu.instances are spread over hosts of this many
    devices: dict[str, str] = field(default_factory=dict)  # device -> scope: instance | host | cluster
    tiers: dict[str, TierConfig] = field(default_factory=dict)
    links: dict[str, LinkConfig] = field(default_factory=dict)
    nic_link: str = "rdma"  # the host's NIC link: an RDMA index's client queues on it
    full_duplex: bool = True  # one queue per link direction (false: one per link)
    priorities: bool = True  # foreground transfers before background ones at every queue
    every_hop: bool = True  # a transfer queues at every hop of its path (false: at its slowest only)
    overlap_load: bool = True  # KV loads overlap compute layer by layer
    load_or_recompute: str = "auto"  # auto: recompute a reused run when loading it is slower | load


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
    activation_reserve_gib: float = 8.0  # per GPU, not for weights or KV


@dataclass
class SchedulerConfig:
    _target_: str = "kvsim.system.scheduler.Scheduler"
    name: str = MISSING  # fcfs | chunked
    max_batch_tokens: int = 8192  # tokens per iteration (chunked)
    chunk_tokens: int = 8192  # tokens of one request per iteration (chunked)


@dataclass
class KvsimConfig:
    trace: TraceConfig = MISSING
    system: SystemConfig = MISSING
    model: ModelConfig = MISSING
    gpu: GPUConfig = MISSING
    policy: Any = MISSING
    index: Any = MISSING
    router: Any = MISSING  # a _target_ node (keys checked against the class, like policy)
    scheduler: SchedulerConfig = MISSING
    calibration: Any = MISSING
    mode: str = "simulate"  # simulate | trace_analysis | metadata_bench (set by experiments)
    seed: int = 0
    progress: bool = True
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
    cs.store(group="scheduler", name="scheduler_schema", node=SchedulerConfig)


register_configs()
