"""Typed config schemas: every mistake fails when the config is composed, naming the key.

The pattern, for anyone adding a key:

* A key lives in a schema and declares its type and range in the type, with
  :mod:`kvsim.ranges`: ``layers: PosInt``, ``mfu: Annotated[float, Range(gt=0, le=1)]``,
  ``kind: Annotated[str, OneOf("tiered", "single_tier")]``. Floats are finite unless the
  range says ``finite=False``; ints are never bools; flags are ``bool``.
* Groups with one shape (``trace``, ``system``, ``model``, ``gpu``, ``calibration``) are
  the dataclasses below, registered with Hydra (a misspelled key or a wrong type fails
  while Hydra composes).
* ``policy`` and ``index`` are ``_target_`` nodes: the class's constructor signature is the
  schema (annotate its parameters with the same aliases). Adding a policy stays one file
  + one YAML + one test.
* An experiment's settings (``experiment.*``) are one dataclass per mode, in the mode's
  own module (its defaults written there, once); the experiment YAML selects it with
  ``defaults: [/settings@experiment: <mode>]`` and lists only what it changes.
* A field used only for some values of another (``system.capacity_blocks`` only when
  ``system.kind=single_tier``) says so with ``UsedWhen``; a mode lists the config roots it
  reads in :data:`MODES`, and an override of another root is refused.

:func:`check_config` walks the composed config against all of that (the ``+key=`` that
Hydra lets through, NaN, ranges, keys a mode ignores, the index and policy parameters,
tier paths). :class:`kvsim.checks.CheckConfigCallback` runs it (and reads the trace) before a run
starts, and for every job of a multirun before the first job starts, so nothing is written
before a mistake is found.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from kvsim.errors import ConfigError
from kvsim.interp_cache import install as install_interp_cache
from kvsim.ranges import (
    Bytes,
    NonNegFloat,
    NonNegInt,
    OneOf,
    PosFloat,
    PosInt,
    Range,
    Rate,
    Seconds,
    Seed,
    UsedWhen,
    check,
    check_fields,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("kvsim")
T = TypeVar("T")


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
    if not OmegaConf.has_resolver("kvsim_trace"):
        OmegaConf.register_new_resolver("kvsim_trace", public_trace)
    if not OmegaConf.has_resolver("kvsim_job"):
        # a sweep's job number, three digits at least, so its folders list in job order
        OmegaConf.register_new_resolver("kvsim_job", lambda n: f"{int(n):03d}")


TRACE_DIRS = ("traces/public", "../shared/traces/mooncake")  # under the project root


def public_trace(name: str) -> str:
    """Where a public trace is: ``traces/public/`` (``make traces``) or the shared copy
    beside the checkout, plain or gzipped; else where ``make traces`` would put it."""
    for d in TRACE_DIRS:
        for candidate in (PROJECT_ROOT / d / name, PROJECT_ROOT / d / f"{name}.gz"):
            if candidate.is_file():
                return str(candidate.resolve())
    return str(PROJECT_ROOT / TRACE_DIRS[0] / name)


# --- groups ------------------------------------------------------------------------------
AGENTIC = UsedWhen("format", "agentic")
GENERATED = UsedWhen("format", "generated")


@dataclass
class TraceConfig:
    name: str = MISSING
    # mooncake: a JSONL file; bailian: a Qwen-Bailian JSONL file; agentic: a folder of
    # kv-cache-tester sessions (or one); generated: a family of kvsim.trace.families, made
    # from the run's seed (path unused)
    format: Annotated[str, OneOf("mooncake", "bailian", "agentic", "generated")] = "mooncake"
    path: str = MISSING
    block_tokens: PosInt = 512
    max_requests: PosInt | None = None  # replay only the first N requests
    description: str = ""
    # agentic: session k starts at k * session_interval_s, or at Poisson times
    session_starts: Annotated[str, OneOf("interval", "poisson"), AGENTIC] = "interval"
    session_interval_s: Annotated[Seconds, AGENTIC] = 60.0
    sessions_per_hour: Annotated[Rate, AGENTIC] = 60.0
    # generated: which family, and a multiplier of its duration
    family: Annotated[str, OneOf("tool_use", "long_sessions", "zipf_docs"), GENERATED] = "tool_use"
    scale: Annotated[PosFloat, GENERATED] = 1.0
    # tick: spread the requests of a timestamp tick uniformly over it | none: the literal replay
    spread: Annotated[str, OneOf("tick", "none")] = "tick"
    tick_s: Annotated[float, Range(gt=0)] | None = None  # the tick (s); null: inferred from the timestamps


@dataclass
class TierConfig:
    device: str = MISSING
    capacity_gib: NonNegFloat | None = 0.0  # per copy; null (top tier only): HBM - weights - reserve
    access_latency_s: Seconds = 0.0
    read_Bps: Rate | None = None  # the device's medium as a queue of its own (an SSD); null: none
    write_Bps: Rate | None = None
    parallelism: PosInt = 1  # medium: transfers served at once


@dataclass
class LinkConfig:
    a: str = MISSING
    b: str = MISSING
    bandwidth_Bps: Rate = MISSING  # a -> b
    latency_s: Seconds = 0.0
    parallelism: PosInt = 1
    reverse_bandwidth_Bps: Rate | None = None  # b -> a; null: bandwidth_Bps


SINGLE = UsedWhen("kind", "single_tier")
TIERED = UsedWhen("kind", "tiered")
Scope = Annotated[str, OneOf("instance", "host", "cluster")]


@dataclass
class SystemConfig:
    kind: Annotated[str, OneOf("tiered", "single_tier")] = "tiered"
    capacity_blocks: Annotated[NonNegInt, SINGLE] = 0  # the one cache of single_tier mode
    capacity_scale: Annotated[PosFloat, TIERED] = 1.0  # multiplies every tier's capacity (sweeps)
    promote_on_hit: Annotated[bool, TIERED] = True
    instances_per_host: Annotated[PosInt, TIERED] = 4  # gpu.instances are spread over hosts of this many
    devices: Annotated[dict[str, Scope], TIERED] = field(default_factory=dict)  # device -> its scope
    tiers: Annotated[dict[str, TierConfig], TIERED] = field(default_factory=dict)
    links: Annotated[dict[str, LinkConfig], TIERED] = field(default_factory=dict)
    nic_link: Annotated[str, TIERED] = "rdma"  # the host's NIC link: an RDMA index's client queues on it
    full_duplex: Annotated[bool, TIERED] = True  # one queue per link direction (false: one per link)
    priorities: Annotated[bool, TIERED] = True  # foreground transfers before background ones at every queue
    every_hop: Annotated[bool, TIERED] = True  # a transfer queues at every hop (false: at its slowest only)
    overlap_load: Annotated[bool, TIERED] = True  # KV loads overlap compute layer by layer
    # auto: recompute a reused run when loading it would be slower | load: always load
    load_or_recompute: Annotated[str, OneOf("auto", "load"), TIERED] = "auto"


@dataclass
class ModelConfig:
    name: str = MISSING
    params: PosFloat = MISSING
    layers: PosInt = MISSING
    q_heads: PosInt = MISSING
    kv_heads: PosInt = MISSING
    head_dim: PosInt = MISSING
    dtype_bytes: PosInt = 2
    context_tokens: PosInt = MISSING  # longest input the model takes; longer trace inputs warn


@dataclass
class GPUConfig:
    name: str = MISSING
    peak_flops: PosFloat = MISSING
    hbm_gib: PosFloat = MISSING
    mfu: Annotated[float, Range(gt=0, le=1)] = 0.5
    tensor_parallel: PosInt = 1
    instances: PosInt = 1  # prefill instances, each with its own GPU tier, queue and PCIe link
    activation_reserve_gib: NonNegFloat = 8.0  # per GPU, not for weights or KV


@dataclass
class SchedulerConfig:
    _target_: str = "kvsim.system.scheduler.Scheduler"
    name: Annotated[str, OneOf("fcfs", "chunked")] = MISSING
    max_batch_tokens: PosInt = 8192  # tokens per iteration (chunked)
    chunk_tokens: PosInt = 8192  # tokens of one request per iteration (chunked)


# --- calibration (conf/calibration/*.yaml: every file has every key) -----------------------
Tail = Annotated[float, Range(ge=1.0)]  # a p99 or p99.9 as a multiple of the median


@dataclass
class TcpCalibration:
    rtt_s: Seconds = MISSING
    rtt_p99_s: Seconds = MISSING  # tails beside the median (kvsim.index.costs)
    rtt_p999_s: Seconds = MISSING


@dataclass
class RdmaCalibration:
    read_rtt_s: Seconds = MISSING
    read_rtt_p99_s: Seconds = MISSING
    read_rtt_p999_s: Seconds = MISSING
    write_one_way_s: Seconds = MISSING
    write_one_way_p99_s: Seconds = MISSING
    write_one_way_p999_s: Seconds = MISSING
    atomic_rtt_s: Seconds = MISSING
    atomic_rtt_p99_s: Seconds = MISSING
    atomic_rtt_p999_s: Seconds = MISSING
    one_way_s: Seconds = MISSING
    bandwidth_Bps: Rate = MISSING
    message_rate_per_s: Rate = MISSING


@dataclass
class RedisCalibration:
    get_s: Seconds = MISSING
    mget_base_s: Seconds = MISSING
    mget_per_key_s: Seconds = MISSING
    mset_base_s: Seconds = MISSING
    mset_per_key_s: Seconds = MISSING
    del_base_s: Seconds = MISSING
    del_per_key_s: Seconds = MISSING
    zrange_base_s: Seconds = MISSING
    zrange_per_key_s: Seconds = MISSING
    io_s: Seconds = MISSING  # the server thread's event loop per command
    io_per_key_s: Seconds = MISSING
    service_p99_x: Tail = MISSING
    service_p999_x: Tail = MISSING
    keys_held: NonNegFloat = MISSING  # the *_s values hold at this many keys (0: no growth)
    scale_1k_keys: PosFloat = MISSING
    scale_1m_keys: PosFloat = MISSING


@dataclass
class PcieCalibration:
    h2d_Bps: Rate = MISSING
    latency_s: Seconds = MISSING


@dataclass
class HostCalibration:
    dram_latency_s: Seconds = MISSING
    memcpy_Bps: Rate = MISSING


@dataclass
class SsdCalibration:
    read_Bps: Rate = MISSING
    read_latency_s: Seconds = MISSING
    write_Bps: Rate = MISSING


@dataclass
class RdmaClientCalibration:
    mmio_s: Seconds = MISSING
    nic_message_rate_per_s: Rate = MISSING
    nic_quantum_bytes: PosInt = MISSING
    local_lookup_s: Seconds = MISSING


@dataclass
class ShermanCalibration:
    node_bytes: PosInt = MISSING
    cache_bytes: Bytes = MISSING
    range_parallel: PosInt = MISSING
    lock_slots: NonNegInt = MISSING
    max_handover: PosInt = MISSING
    cas_backoff_s: Seconds = MISSING


@dataclass
class ChimeCalibration:
    leaf_span: PosInt = MISSING
    internal_span: PosInt = MISSING
    neighborhood: PosInt = MISSING
    cache_bytes: Bytes = MISSING
    hotspot_bytes: Bytes = MISSING
    hotspot_entry_bytes: PosInt = MISSING
    sort_entry_s: Seconds = MISSING
    cas_backoff_s: Seconds = MISSING


@dataclass
class MooncakeCalibration:
    shards: PosInt = MISSING
    rpc_base_s: Seconds = MISSING
    per_key_s: Seconds = MISSING
    rpc_threads: PosInt = MISSING


@dataclass
class RadixCalibration:
    per_node_s: Seconds = MISSING
    per_block_s: Seconds = MISSING
    lock_s: Seconds = MISSING


@dataclass
class ExtentCalibration:
    max_extent: PosInt = MISSING
    cache_bytes: Bytes = MISSING


@dataclass
class CalibrationConfig:
    name: str = MISSING
    tails: bool = True  # false: every cost its calibrated value (no distributions)
    tcp: TcpCalibration = field(default_factory=TcpCalibration)
    rdma: RdmaCalibration = field(default_factory=RdmaCalibration)
    redis: RedisCalibration = field(default_factory=RedisCalibration)
    pcie: PcieCalibration = field(default_factory=PcieCalibration)
    host: HostCalibration = field(default_factory=HostCalibration)
    ssd: SsdCalibration = field(default_factory=SsdCalibration)
    rdma_client: RdmaClientCalibration = field(default_factory=RdmaClientCalibration)
    sherman: ShermanCalibration = field(default_factory=ShermanCalibration)
    chime: ChimeCalibration = field(default_factory=ChimeCalibration)
    mooncake: MooncakeCalibration = field(default_factory=MooncakeCalibration)
    radix: RadixCalibration = field(default_factory=RadixCalibration)
    extent: ExtentCalibration = field(default_factory=ExtentCalibration)


# --- modes ---------------------------------------------------------------------------------
# Config roots a mode may or may not read; an override of one its mode does not read fails.
# (seed, progress and memory_limit_gib are for every mode: no mode is wrong to be given them.)
CHECKED_ROOTS = frozenset(
    {"trace", "system", "model", "gpu", "policy", "index", "calibration", "experiment",
     "check_invariants", "save_requests", "figures", "router", "scheduler"}
)


@dataclass(frozen=True)
class Mode:
    run: str  # "module:function" taking (cfg, out_dir): the mode's Hydra edge (kvsim.modes)
    settings: str | None  # "module:Class": the dataclass of its experiment.* settings
    uses: frozenset[str]  # the roots of CHECKED_ROOTS it reads
    check: str | None = None  # "module:function" (cfg) -> None: cross-checks before the run


_SIM = frozenset({"trace", "system", "model", "gpu", "policy", "index", "calibration",
                  "check_invariants", "save_requests", "figures", "router", "scheduler"})
MODES: dict[str, Mode] = {
    "simulate": Mode("kvsim.app:run_simulation", None, _SIM, "kvsim.app:validate"),
    "trace_analysis": Mode(
        "kvsim.modes:trace_analysis", "kvsim.analysis.settings:TraceAnalysisSettings",
        frozenset({"trace", "model", "experiment", "figures"}),
    ),
    "metadata_bench": Mode(
        "kvsim.modes:metadata_bench", "kvsim.bench.settings:MetadataBenchSettings",
        frozenset({"trace", "index", "calibration", "experiment", "figures"}),
        "kvsim.bench.settings:check_config",
    ),
    "policy_eval": Mode(
        "kvsim.modes:policy_eval", "kvsim.bench.policy_eval_settings:PolicyEvalSettings",
        frozenset({"experiment", "figures"}),
        "kvsim.bench.policy_eval_settings:check_config",
    ),
    "redis_validation": Mode(
        "kvsim.modes:redis_validation",
        "kvsim.bench.validation_settings:RedisValidationSettings",
        frozenset({"trace", "index", "calibration", "experiment", "figures"}),
        "kvsim.bench.validation_settings:check_config",
    ),
}
# simulate with system.kind=single_tier replays block accesses against one policy only
SINGLE_TIER_USES = frozenset({"trace", "system", "policy"})


def experiment_settings(exp: Any, cls: type[T]) -> T:
    """An ``experiment`` node (typed by the mode's schema, or plain as a saved config.yaml
    holds it; None: the defaults) as an instance of its settings dataclass ``cls``."""
    node = OmegaConf.structured(cls)
    merged = OmegaConf.merge(node, exp) if exp is not None else node
    out = OmegaConf.to_object(merged)
    assert isinstance(out, cls)
    return out


def load(path: str) -> Any:
    """``"module:attr"`` -> the object."""
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class KvsimConfig:
    trace: TraceConfig = MISSING
    system: SystemConfig = MISSING
    model: ModelConfig = MISSING
    gpu: GPUConfig = MISSING
    policy: Any = MISSING  # a _target_ node: its class's constructor is its schema
    index: Any = MISSING  # likewise
    router: Any = MISSING  # likewise
    scheduler: SchedulerConfig = MISSING
    calibration: CalibrationConfig = MISSING
    mode: Annotated[str, OneOf(*MODES)] = "simulate"  # set by experiments
    seed: Seed = 0
    progress: bool = True  # a run: the replay's bar; a sweep: jobs done / total with an ETA
    overwrite: bool = False  # replace a complete run of another config in the run's folder
    check_invariants: bool = False
    save_requests: bool = True
    figures: bool = True
    # stop a run whose resident memory passes this (GiB); null: half of this machine's memory
    memory_limit_gib: Annotated[float | None, Range(gt=0)] = None
    experiment: Any = None  # the mode's settings (MODES[mode].settings), selected by the experiment


# --- the check -------------------------------------------------------------------------------
_OVERRIDE_ROOT = re.compile(r"^[~+]*([A-Za-z_][\w-]*)")


def task_overrides(hydra_node: Any) -> list[str]:
    """The command line's overrides as given (``hydra.overrides.task``), unresolved: an
    override may itself hold an interpolation (``trace.path=${nope}``)."""
    raw = OmegaConf.to_container(hydra_node.overrides.task, resolve=False)
    return [str(o) for o in raw] if isinstance(raw, list) else []


def override_roots(overrides: Iterable[str]) -> dict[str, str]:
    """{root config key: the first override touching it} (``hydra.*`` left out; selecting
    an experiment is how a mode is chosen, so ``+experiment=NAME`` is left out too)."""
    out: dict[str, str] = {}
    for o in overrides:
        m = _OVERRIDE_ROOT.match(o)
        if not m:
            continue
        root = m.group(1)
        head = o.split("=", 1)[0].lstrip("~+")
        if root == "hydra" or head == "experiment":
            continue
        out.setdefault(root, o)
    return out


def _culprit(cfg: DictConfig, e: BaseException) -> str | None:
    """The key whose own value names a missing interpolation key. OmegaConf names the key
    being resolved, which may only interpolate the culprit (``trace.name: ${stem:${.path}}``
    fails for ``trace.path=${nope}``)."""
    m = re.match(r"Interpolation key '([^']+)' not found", str(e))
    if not m:
        return None
    ref = "${" + m.group(1)

    def walk(node: Any, prefix: str) -> str | None:
        if isinstance(node, DictConfig):
            items: Any = ((str(k), node._get_node(k)) for k in node if k != "hydra")
        elif isinstance(node, ListConfig):
            items = ((str(i), node._get_node(i)) for i in range(len(node)))
        else:
            raw = node._value() if hasattr(node, "_value") else node
            return prefix if isinstance(raw, str) and ref in raw else None
        for k, child in items:
            found = walk(child, f"{prefix}.{k}" if prefix else k)
            if found:
                return found
        return None

    try:
        return walk(cfg, "")
    except Exception:  # noqa: BLE001 - a better name is a nicety; never hide the error
        return None


def _plain(cfg: DictConfig) -> dict[str, Any]:
    """The config resolved into plain containers; a missing value or a broken
    interpolation fails here, naming its key."""
    c: dict[str, Any] = {}
    try:
        # Without the hydra node (its run-time values are not set while a run is checked),
        # group by group in place: a masked copy of the whole config first cost a third of
        # a check (a sweep checks every job before the first runs). Interpolations resolve
        # through each node's parents as they would in the whole config.
        for k in cfg:
            if k == "hydra":
                continue
            v = cfg[k]
            c[str(k)] = OmegaConf.to_container(v, resolve=True, throw_on_missing=True) if OmegaConf.is_config(v) else v
    except OmegaConfBaseException as e:
        key = _culprit(cfg, e) or getattr(e, "full_key", "") or ""
        raise ConfigError(f"{key + ': ' if key else ''}{str(e).splitlines()[0]}") from None
    return c


def mode_of(c: dict[str, Any]) -> str:
    mode = c.get("mode", "simulate")
    if mode == "simulate" and (c.get("system") or {}).get("kind") == "single_tier":
        return "single_tier"
    return str(mode)


def _check_bool_overrides(cfg: DictConfig, overrides: Iterable[str]) -> None:
    """A switch set to anything but true/false (``overwrite=2``): OmegaConf would take any
    number as a bool, so a typo'd value would pass for a decision."""
    for o in overrides:
        key, sep, value = o.lstrip("~+").partition("=")
        if not sep or key.startswith("hydra") or "${" in value:
            continue
        try:
            got = OmegaConf.select(cfg, key, throw_on_missing=False)
        except OmegaConfBaseException:
            continue
        if isinstance(got, bool) and value.strip().lower() not in ("true", "false"):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")


def check_config(cfg: DictConfig, overrides: Iterable[str] | None = None) -> str:
    """Everything that can be checked before a run reads its trace; raises
    :class:`ConfigError` naming the first wrong key. ``overrides``: the command line's
    (``hydra.overrides.task``), to refuse keys the chosen mode would ignore. Returns the
    config's check key (:func:`remember_checked`)."""
    if overrides is None and "hydra" in cfg:
        overrides = task_overrides(cfg.hydra)
    c = _plain(cfg)
    # A config checked before in this process is not checked again (a sweep's job: the
    # sweeper checked it before the first job ran, then the run checks it): the check
    # depends only on the resolved config and the overrides. The key is their digest (a few
    # dozen bytes, not the whole config: it is also pickled with each job of a sweep).
    memo = hashlib.sha256(json.dumps([c, list(overrides or [])], sort_keys=True, default=repr).encode()).hexdigest()
    if memo in _CHECKED:
        _CHECKED.move_to_end(memo)
        return memo
    _check_plain(cfg, c, overrides)
    remember_checked(memo)
    return memo


_CHECKED: OrderedDict[str, None] = OrderedDict()  # configs (resolved) + overrides that passed


def remember_checked(key: str) -> None:
    """Take a config as checked by its key (:func:`check_config`'s return value): a sweep's
    job checked by the sweeper in another process (a joblib or submitit worker) is not
    checked again in the one that runs it."""
    _CHECKED[key] = None
    _CHECKED.move_to_end(key)
    while len(_CHECKED) > 256:
        _CHECKED.popitem(last=False)


def _check_plain(cfg: DictConfig, c: dict[str, Any], overrides: Iterable[str] | None) -> None:
    from kvsim.targets import check_target_node

    # calibration first: other groups take its values by interpolation, and a bad value
    # should be named where it was set
    check(c.get("calibration"), CalibrationConfig, "calibration")
    # policy and index: their classes' signatures; experiment: the mode's settings
    check_fields(c, KvsimConfig, "", skip=("policy", "index", "router", "experiment"))
    _check_trace_blocks(c.get("trace") or {})
    check_target_node(c["policy"], "policy", later=("capacity",))
    check_target_node(c["index"], "index")
    if c.get("router") is not None:
        check_target_node(c["router"], "router")
    mode = MODES[c["mode"]]
    exp = c.get("experiment")
    if mode.settings is None:
        if exp not in (None, {}):
            raise ConfigError(f"experiment: mode {c['mode']} takes no experiment settings, got {exp!r}")
    else:
        settings = load(mode.settings)
        check(exp if exp is not None else {}, settings, "experiment")
    _check_bool_overrides(cfg, overrides or [])
    name = mode_of(c)
    uses = SINGLE_TIER_USES if name == "single_tier" else mode.uses
    for root, override in override_roots(overrides or []).items():
        if root in CHECKED_ROOTS and root not in uses:
            users = sorted(m for m, md in MODES.items() if root in md.uses)
            raise ConfigError(
                f"{override}: mode {name} does not use '{root}' (used by: {', '.join(users) or 'none'})"
            )
    if mode.check and name != "single_tier":
        load(mode.check)(cfg)


def _check_trace_blocks(t: dict[str, Any]) -> None:
    """A format whose files have blocks of their own size takes multiples of it."""
    if t.get("format") == "bailian":
        from kvsim.trace.bailian import check_block_tokens

        check_block_tokens(int(t.get("block_tokens", 0)))


def memory_limit_bytes(limit_gib: float | None) -> int:
    """The run's memory limit: the configured GiB, or half of this machine's memory."""
    if limit_gib is not None:
        return int(limit_gib * 2**30)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        total = 16 * 2**30
    return int(total // 2)


def register_configs() -> None:
    _register_resolvers()
    install_interp_cache()  # each interpolation parsed once per process (kvsim.interp_cache)
    cs = ConfigStore.instance()
    cs.store(name="kvsim_schema", node=KvsimConfig)
    cs.store(group="trace", name="trace_schema", node=TraceConfig)
    cs.store(group="system", name="system_schema", node=SystemConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="gpu", name="gpu_schema", node=GPUConfig)
    cs.store(group="scheduler", name="scheduler_schema", node=SchedulerConfig)
    for name, mode in MODES.items():
        if mode.settings:
            cs.store(group="settings", name=name, node=load(mode.settings))

register_configs()
# conf/hydra/launcher/{joblib,submitit_*}.yaml are validated against the plugins' schemas of
# the same name (a misspelled launcher key fails at compose time); Hydra 1.3 warns that this
# matching is deprecated. The cluster extra pins hydra-core 1.3.8, where it works. Set here,
# where every process that composes a config (a sweep's joblib workers too) passes.
warnings.filterwarnings("ignore", message=r"(?s).*validated against ConfigStore schema with the same name")
