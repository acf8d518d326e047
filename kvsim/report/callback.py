"""The Hydra callback that gathers a multirun (``hydra.callbacks.sweep_report`` in
conf/config.yaml): :func:`kvsim.report.sweep.report_launched` at the multirun's end.

A module of its own, without pandas: Hydra builds the callbacks before the sweep starts,
and a sweep's own process has nothing to tabulate until its jobs are done. Importing the
report there (pandas, pyarrow: about 0.8 s here) kept a joblib sweep's workers from
starting for that long while the second vCPU sat idle; now the report is imported when
the jobs are done."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from kvsim.sweepjobs import JOBS_FILE

log = logging.getLogger("kvsim")


class SweepCallback(Callback):
    """At the end of a multirun whose jobs all completed (the kvsim sweeper reports, then
    fails, otherwise), gather the sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        d = Path(config.hydra.sweep.dir)
        if (d / JOBS_FILE).is_file():
            from kvsim.report.sweep import report_launched

            report_launched(d, config.hydra.launcher)
        else:
            log.warning("%s: no %s (sweeper %s): not gathered", d, JOBS_FILE, config.hydra.sweeper.get("_target_"))
