"""Every option of every config group composes, passes the schema check and builds
(lightning-hydra-template habit); every class a config names declares its parameters'
types, so the check covers every key."""

from __future__ import annotations

import typing

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from kvsim.app import validate
from kvsim.config import MODES, check_config, load
from kvsim.errors import ConfigError
from kvsim.ranges import signature_types

from .conftest import CONF_DIR

GROUPS = ["trace", "system", "model", "gpu", "policy", "index", "calibration", "router", "scheduler"]
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((CONF_DIR / g).glob("*.yaml"))]
# Options that need another setting to be valid: Llama-3-70B (141 GB of weights) needs two
# 80 GB GPUs per instance; on one it is refused (tests/test_app.py checks the message).
NEEDS = {("model", "llama3_70b"): ["gpu.tensor_parallel=2"]}
EXPERIMENTS = sorted(f.stem for f in (CONF_DIR / "experiment").glob("*.yaml"))
TARGETS = [(g, f.stem) for g in ("policy", "index", "router") for f in sorted((CONF_DIR / g).glob("*.yaml"))]


def test_every_group_has_options() -> None:
    assert {g for g, _ in OPTIONS} == set(GROUPS)
    assert {"placement_sweep", "trace_analysis", "metadata_bench"} <= set(EXPERIMENTS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_builds(compose_cfg, group: str, option: str) -> None:
    extra = ["system.capacity_blocks=0"] if (group, option) == ("system", "tiered") else []
    cfg = compose_cfg([f"{group}={option}", *extra, *NEEDS.get((group, option), [])])
    OmegaConf.resolve(cfg)  # every interpolation (calibration keys included) exists
    check_config(cfg)  # every key known, of its type, in its range
    validate(cfg)  # policy and index build; every tier has a path to the GPU


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes(compose_cfg, experiment: str) -> None:
    cfg = compose_cfg([f"+experiment={experiment}"])
    OmegaConf.resolve(cfg)
    assert cfg.mode in MODES
    check_config(cfg)


@pytest.mark.parametrize(("group", "option"), TARGETS, ids=[f"{g}={o}" for g, o in TARGETS])
def test_every_parameter_has_a_declared_type(group: str, option: str) -> None:
    """A policy's or index's constructor is its config schema: every key its YAML sets
    must be a parameter with a type annotation (a range where one applies)."""
    node = OmegaConf.load(CONF_DIR / group / f"{option}.yaml")
    params = signature_types(get_class(node._target_))
    for key in node:
        if str(key) in ("_target_", "_partial_", "name", "defaults"):  # defaults: Hydra's list
            continue
        assert str(key) in params, f"{group}/{option}.yaml: {key} is not a parameter"
        assert params[str(key)][0] is not typing.Any, f"{group}/{option}: {key} has no type annotation"
    # a component node composed from conf/<group>/<sub>/ (an RDMA index's client): its
    # keys, and the ones this file sets on it, are parameters of the component's class
    for entry in node.get("defaults", []):
        if isinstance(entry, str):
            continue
        for spec, sub in entry.items():
            sub_group, _, key = str(spec).partition("@")
            comp = OmegaConf.load(CONF_DIR / group / sub_group / f"{sub}.yaml")
            comp_params = signature_types(get_class(comp._target_))
            for k in list(comp) + list(node.get(key or sub_group, {})):
                if str(k) == "_target_":
                    continue
                assert str(k) in comp_params, f"{group}/{option}.yaml: {key}.{k} is not a parameter"
                assert comp_params[str(k)][0] is not typing.Any, f"{key}.{k} has no type annotation"


@pytest.mark.parametrize("mode", [m for m, md in MODES.items() if md.settings])
def test_mode_settings_are_a_schema(mode: str) -> None:
    cls = load(MODES[mode].settings)  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls, include_extras=True)
    assert hints and all(t is not typing.Any for t in hints.values())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+system.capacity_scal=0.5"], "system.capacity_scal: unknown key; did you mean 'capacity_scale'?"),
        (["+experiment=trace_analysis", "+experiment.runs_alpah=0.1"], "experiment.runs_alpah: unknown key"),
        (["system.capacity_scale=nan"], "system.capacity_scale: is NaN"),
        (["system.capacity_scale=inf"], "system.capacity_scale: must be finite"),
        (["model.layers=0"], "model.layers: must be >= 1"),
        (["trace.block_tokens=0"], "trace.block_tokens: must be >= 1"),
        (["gpu.tensor_parallel=0"], "gpu.tensor_parallel: must be >= 1"),
        (["gpu.mfu=1.5"], "gpu.mfu: must be <= 1"),
        (["calibration.tcp.rtt_s=-1e-6"], "calibration.tcp.rtt_s: must be >= 0"),
        (["calibration.rdma.read_rtt_s=-1e-6"], "calibration.rdma.read_rtt_s: must be >= 0"),
        (["trace.max_requests=0"], "trace.max_requests: must be >= 1"),
        (["system.capacity_blocks=5000"], "system.capacity_blocks: set to 5000, but ignored when system.kind=tiered"),
        (["system=single_tier", "system.capacity_scale=0.5"], "ignored when system.kind=single_tier"),
        (["policy=s3fifo", "policy.small_ratio=1.5"], "policy.small_ratio: must be < 1"),
        (["policy=lfu", "policy.age_every=-1"], "policy.age_every: must be >= 0"),
        (["policy=lru", "policy.inclusive=1"], "policy.inclusive: expected true or false"),
        (["index=sherman", "index.client.key_order=sorted"], "index.client.key_order: 'sorted' is not one of remapped, hashed"),
        (["index=redis", "index.server_threads=0"], "index.server_threads: must be >= 1"),
        (["+experiment=metadata_bench", "experiment.interval_s=0"], "experiment.interval_s: must be > 0"),
        (["+experiment=metadata_bench", "experiment.indexes=[redis,nope]"], "experiment.indexes: no index config 'nope'"),
        (["+experiment=metadata_bench", "experiment.parts=[bench,plots]"], "experiment.parts[1]: 'plots' is not one of"),
        (["+experiment=metadata_bench", "+experiment.index_overrides.sherman={cache_bytes:-1}"],
         "experiment.index_overrides.sherman.cache_bytes: must be >= 0"),
        (["+experiment=metadata_bench", "+experiment.variants.x={index:chime,cache_byts:0}"],
         "experiment.variants.x.cache_byts: unknown key"),
        (["+experiment=trace_analysis", "experiment.runs_alpha=1.5"], "experiment.runs_alpha: must be < 1"),
        (["+experiment=placement_sweep", "+experiment.x=1"], "experiment: mode simulate takes no experiment settings"),
    ],
)
def test_config_mistakes_fail_before_the_run(compose_cfg, overrides: list[str], message: str) -> None:
    cfg = compose_cfg(overrides)
    with pytest.raises(ConfigError, match=None) as e:
        check_config(cfg, overrides)
    assert message in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+experiment=trace_analysis", "policy=fifo"], "policy=fifo: mode trace_analysis does not use 'policy'"),
        (["+experiment=trace_analysis", "index.pipeline=true"], "mode trace_analysis does not use 'index'"),
        (["+experiment=metadata_bench", "system.capacity_scale=0.5"], "mode metadata_bench does not use 'system'"),
        (["system=single_tier", "index=sherman"], "index=sherman: mode single_tier does not use 'index'"),
        (["system=single_tier", "gpu=a100"], "mode single_tier does not use 'gpu'"),
    ],
)
def test_keys_the_mode_ignores_fail(compose_cfg, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        check_config(compose_cfg(overrides), overrides)
    assert message in str(e.value), str(e.value)
    check_config(compose_cfg(overrides))  # without the command line, the same config is fine
