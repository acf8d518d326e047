"""kvsim/checks.py: the check before anything runs -- the config, then the trace -- as
Hydra's callback (a run; a multirun under the basic sweeper) and as the sweeper calls it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from kvsim.checks import CheckConfigCallback, check_inputs, job_overrides
from kvsim.config import check_config
from kvsim.errors import ConfigError, InputFileError, Stop
from tests.conftest import CONF_DIR


def test_check_inputs_checks_the_config_then_reads_the_trace(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_cfg(["trace.max_requests=20"])
    assert check_inputs(cfg) == check_config(cfg)  # the config's check key
    with pytest.raises(ConfigError, match="system.capacity_scale: must be > 0"):
        check_inputs(compose_cfg(["system.capacity_scale=-1", f"trace.path={tmp_path}/nope.jsonl"]))  # config first
    with pytest.raises((ConfigError, InputFileError), match="trace.path: file not found"):
        check_inputs(compose_cfg([f"trace.path={tmp_path}/nope.jsonl"]))


def test_the_callback_stops_a_run_before_it_starts(compose_cfg) -> None:  # type: ignore[no-untyped-def]
    """Hydra turns an Exception raised in a callback into a warning: the error travels as
    Stop (a BaseException) up to the command line's one-line report."""
    with pytest.raises(Stop) as stop:
        CheckConfigCallback().on_run_start(compose_cfg(["gpu.tensor_parallel=0"]))
    assert isinstance(stop.value.error, ConfigError)
    assert "gpu.tensor_parallel: must be >= 1, got 0" in str(stop.value.error)
    CheckConfigCallback().on_run_start(compose_cfg(["trace.max_requests=20"]))  # a good one passes


def test_job_overrides_expand_a_sweep_as_the_basic_sweeper_does() -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=placement_sweep"], return_hydra_config=True)
        jobs = job_overrides(cfg)
    assert len(jobs) == 8 * 5  # policies x capacity scales
    assert jobs[0] == ["trace=embedded", "policy=lru", "system.capacity_scale=0.0625", "+experiment=placement_sweep"]
    assert jobs[-1][1:3] == ["policy=opt", "system.capacity_scale=1.0"]
