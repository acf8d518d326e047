"""Before anything runs: the config (:func:`kvsim.config.check_config`), then the trace.

Hydra's callback for a run and for a multirun under another sweeper (kvsim's own sweeper
calls :func:`check_inputs` for every job itself). Kept apart from :mod:`kvsim.config` (which
builds nothing) because reading the trace needs the edge's builders.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from kvsim.app import build_trace, memory_guard
from kvsim.config import check_config, task_overrides
from kvsim.errors import Stop

log = logging.getLogger("kvsim")


def check_inputs(cfg: DictConfig) -> str:
    """The config, then the trace: found, read (and so checked line by line) and kept for
    the run. Returns the config's check key (:func:`check_config`)."""
    key = check_config(cfg)
    with memory_guard(cfg):
        build_trace(cfg)
    return key


class CheckConfigCallback(Callback):
    """Check the config, then read the trace, before anything is written: a run before its
    folder is made, a multirun's every job before the first starts (a bad value in job 37
    stops job 1 from running). The trace read here is the one the run uses."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_inputs(config)
        except Exception as e:
            raise Stop(e) from e  # Hydra would turn an Exception here into a warning

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            jobs = list(job_configs(config))
            for job in jobs:
                check_config(job)
            for job in jobs:
                check_inputs(job)
        except Exception as e:
            raise Stop(e) from e


def job_overrides(config: DictConfig) -> list[list[str]]:
    """The override lists of a multirun's jobs, as Hydra's basic sweeper expands them
    (its ``hydra.sweeper.params`` and the command line's sweeps)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    params += task_overrides(config.hydra)
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    batches = BasicSweeper.split_arguments(parser.parse_overrides(params), None)
    return [list(job) for batch in batches for job in batch]


def job_configs(config: DictConfig) -> Iterable[DictConfig]:
    from hydra.core.global_hydra import GlobalHydra

    target = str(config.hydra.sweeper.get("_target_", ""))
    if "KvsimSweeper" in target:
        return  # kvsim's sweeper composes every job itself and checks each (check_inputs) first
    if "BasicSweeper" not in target:
        log.warning("sweeper %s: jobs are checked as each starts, not all before the first",
                    config.hydra.sweeper.get("_target_"))
        return
    loader = GlobalHydra.instance().config_loader()
    for overrides in job_overrides(config):
        yield loader.load_sweep_config(config, overrides)
