"""`python -m kvsim [overrides]`: compose the config with Hydra and run it.

Errors come back as one line on stderr with exit code 2 (a user error: a config key, a
trace line, a path) or 1 (a bug); ``KVSIM_TRACEBACK=1`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from kvsim.app import run
from kvsim.config import task_overrides  # (importing kvsim.config registers the schemas)
from kvsim.errors import cli, describe

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
log = logging.getLogger("kvsim")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    try:
        summary = run(cfg, out, overrides=task_overrides(hc))
    except Exception as e:
        if hc.mode == RunMode.MULTIRUN:  # say which job, in the job's own log too
            log.error("job %s (%s) failed: %s", hc.job.num, " ".join(task_overrides(hc)), describe(e)[0])
        raise
    ratio = summary.get("hit_ratio") if isinstance(summary, dict) else None
    return float(ratio) if ratio is not None else None


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
    cli(_main)


if __name__ == "__main__":
    main()
