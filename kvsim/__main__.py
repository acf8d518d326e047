"""`python -m kvsim [overrides]`: compose the config with Hydra and run it.

Errors come back as one line on stderr with exit code 2 (a user error: a config key, a
trace line, a path) or 1 (a bug); ``KVSIM_TRACEBACK=1`` shows the traceback instead.

Each run (a single run, or one job of a multirun) goes through :class:`RunFolder`: locked,
checked (skipped if its folder holds a complete run of the same config, refused if it holds
another's unless ``overwrite=true``), written into a staging folder and made visible by
one rename. A job of a sweep that fails leaves a one-line failure record for the sweep's
table instead (:mod:`kvsim.sweepjobs`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from kvsim.app import run
from kvsim.config import task_overrides  # (importing kvsim.config registers the schemas)
from kvsim.errors import cli, describe
from kvsim.runfolder import RunFolder, config_hash, discard_staged, input_files
from kvsim.sweepjobs import clear_failure, record_failure, sweep_process_setup

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
log = logging.getLogger("kvsim")


def sigterm_as_interrupt() -> None:
    """SIGTERM (a scheduler's or `kill`'s) unwinds like Ctrl-C: staging folders and temporary
    files are removed on the way out. Only the main thread may set handlers."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def run_job(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    final = Path(hc.runtime.output_dir)
    sweep_dir = Path(hc.sweep.dir).absolute() if hc.mode == RunMode.MULTIRUN else None
    if sweep_dir is not None:
        sweep_process_setup()  # a launcher's worker process too (quick exit, Hydra's plugins kept)
        # One bar per job would garble the sweep's output. Set before the hash, as the
        # sweeper sets it in the job it composes and checks (so the check is not repeated).
        cfg.progress = False
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    task = {str(k): v for k, v in container.items()}
    inputs = input_files(task)
    h = config_hash(task, inputs)
    sigterm_as_interrupt()
    try:
        with RunFolder(final, h, overwrite=bool(cfg.overwrite), inputs=inputs) as rf:
            if rf.skip:
                log.info("skip: complete %s (same config; overwrite=true reruns it)", final)
                summary = json.loads((final / "summary.json").read_text()) if (final / "summary.json").is_file() else {}
            else:
                summary = run(cfg, rf.staging, overrides=task_overrides(hc))
                rf.commit()
                log.info("results: %s", final)
    except Exception as e:
        if sweep_dir is not None:  # say which job, in the job's own log and the sweep's table
            line = describe(e)[0]
            log.error("job %s (%s) failed: %s", hc.job.num, " ".join(task_overrides(hc)), line)
            record_failure(sweep_dir, final.name, int(hc.job.num), h, line)
        raise
    if sweep_dir is not None:
        clear_failure(sweep_dir, final.name)
    ratio = summary.get("hit_ratio") if isinstance(summary, dict) else None
    return float(ratio) if ratio is not None else None


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _main(cfg: DictConfig) -> float | None:
    return run_job(cfg)


def _quiet_failed_runs() -> None:
    """Hydra writes "Error executing job with overrides: [...]" before re-raising a single
    run's error; the one line of kvsim.errors.cli says it all, so that line is left out
    (a multirun's jobs keep it: it says which job failed)."""
    from hydra.core.utils import JobReturn, JobStatus

    prop = JobReturn.__dict__.get("return_value")
    if not isinstance(prop, property) or getattr(prop.fget, "_kvsim", False):
        return
    fget = prop.fget
    assert fget is not None

    def return_value(self: JobReturn) -> Any:
        mode = getattr(getattr(getattr(self, "hydra_cfg", None), "hydra", None), "mode", None)
        if self.status == JobStatus.FAILED and mode == RunMode.RUN:
            raise self._return_value
        return fget(self)

    return_value._kvsim = True  # type: ignore[attr-defined]
    JobReturn.return_value = property(return_value, prop.fset)  # type: ignore[method-assign,assignment]


def main() -> None:
    # Hydra prints its own (multi-line) report of an error unless HYDRA_FULL_ERROR is set;
    # with it set, the error reaches kvsim.errors.cli, which gives the one line.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    _quiet_failed_runs()
    sigterm_as_interrupt()
    try:
        cli(_main)
    finally:
        discard_staged()


if __name__ == "__main__":
    main()
