"""A sweep's own job list, and the status of each of its jobs, read from disk.

The kvsim sweeper (``hydra_plugins/kvsim_sweeper``) writes :data:`JOBS_FILE` into the sweep
folder before it launches anything: one entry per job with its number, its folder name
(Hydra's ``hydra.sweep.subdir``), its overrides, the hash of its composed config and the
config itself, flattened to dotted keys. Everything that gathers a sweep reads this list,
never the folder's contents, so a table holds exactly that sweep's jobs, and a job folder
left by another sweep (same name, another config) is not mistaken for one of them.

A job's status:

* ``complete``: its folder holds the completion marker with the job's config hash;
* ``failed``: a failure record ``.kvsim/failed/SUBDIR.json`` with that hash (written by the
  job when it raised: the error in one line);
* ``missing``: neither (not run yet, still running, or killed).
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvsim.errors import UserError, quick_exit
from kvsim.io import write_json
from kvsim.runfolder import RUN_CONTROL_KEYS, config_hash, read_marker

JOBS_FILE = "sweep_jobs.json"
STATE_DIR = ".kvsim"  # sweep-level bookkeeping: failure records, the sweep lock


class SweepDirError(UserError, FileNotFoundError):
    """The folder is not a kvsim sweep (one line)."""


@dataclass(frozen=True)
class Job:
    num: int
    subdir: str
    overrides: list[str]
    config_hash: str
    config: dict[str, Any]  # flattened, dotted keys


@dataclass(frozen=True)
class JobStatus:
    job: Job
    status: str  # complete | failed | missing
    error: str = ""


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists become JSON text (one cell per key)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list | tuple):
            out[key] = json.dumps(v, default=str)
        else:
            out[key] = v
    return out


def describe_job(num: int, subdir: str, overrides: Sequence[str], config: dict[str, Any]) -> Job:
    """A job from its resolved task config: the hash its run folder will carry, and the config
    flattened for the table (run-control keys left out of both)."""
    kept = {str(k): v for k, v in config.items() if k not in RUN_CONTROL_KEYS}
    return Job(num, subdir, list(overrides), config_hash(config), flatten(kept))


def write_jobs(sweep_dir: str | os.PathLike[str], jobs: Iterable[Job], **info: Any) -> Path:
    d = Path(sweep_dir)
    payload = {
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **info,
        "jobs": [
            {"num": j.num, "subdir": j.subdir, "overrides": j.overrides, "config_hash": j.config_hash,
             "config": j.config}
            for j in jobs
        ],
    }
    return write_json(d / JOBS_FILE, payload)


def read_jobs(sweep_dir: str | os.PathLike[str]) -> list[Job]:
    d = Path(sweep_dir)
    if not d.is_dir():
        raise SweepDirError(f"{d}: no such folder")
    f = d / JOBS_FILE
    if not f.is_file():
        raise SweepDirError(
            f"{d}: no {JOBS_FILE}, so not a kvsim sweep folder (a multirun of `python -m kvsim -m ...` "
            "writes it before its first job)"
        )
    try:
        data = json.loads(f.read_text())
        return [Job(int(j["num"]), str(j["subdir"]), list(j["overrides"]), str(j["config_hash"]),
                    dict(j.get("config", {}))) for j in data["jobs"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SweepDirError(f"{f}: unreadable job list ({exc})") from None


def failure_path(sweep_dir: str | os.PathLike[str], subdir: str) -> Path:
    return Path(sweep_dir) / STATE_DIR / "failed" / f"{subdir}.json"


def record_failure(sweep_dir: str | os.PathLike[str], subdir: str, num: int, config_hash: str, error: str) -> None:
    write_json(failure_path(sweep_dir, subdir), {
        "num": num, "subdir": subdir, "config_hash": config_hash, "error": error,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })


def clear_failure(sweep_dir: str | os.PathLike[str], subdir: str) -> None:
    failure_path(sweep_dir, subdir).unlink(missing_ok=True)


def job_status(sweep_dir: str | os.PathLike[str], job: Job) -> JobStatus:
    d = Path(sweep_dir)
    marker = read_marker(d / job.subdir)
    if marker is not None and marker.get("config_hash") == job.config_hash:
        return JobStatus(job, "complete")
    try:
        rec = json.loads(failure_path(d, job.subdir).read_text())
    except (OSError, ValueError):
        rec = None
    if isinstance(rec, dict) and rec.get("config_hash") == job.config_hash:
        return JobStatus(job, "failed", str(rec.get("error", "")))
    if marker is not None:
        return JobStatus(job, "missing", f"{job.subdir} holds a run of another config")
    return JobStatus(job, "missing")


def statuses(sweep_dir: str | os.PathLike[str]) -> list[JobStatus]:
    return [job_status(sweep_dir, j) for j in read_jobs(sweep_dir)]


def joblib_settings(launcher: Any) -> dict[str, Any] | None:
    """``joblib.Parallel``'s settings as Hydra's joblib launcher uses them, from the launcher
    or its config node (``hydra.launcher``); None for any other launcher. Work of the sweep's
    own done with these settings runs in the launcher's worker processes (loky reuses its
    executor when the settings match), which have kvsim imported already."""
    if type(launcher).__name__ == "JoblibLauncher":
        node = dict(launcher.joblib)
    elif isinstance(launcher, Mapping) and str(launcher.get("_target_", "")).endswith(".JoblibLauncher"):
        node = {str(k): v for k, v in launcher.items() if k != "_target_"}
    else:
        return None
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    node["backend"] = "loky"  # as the launcher does
    process_joblib_cfg(node)
    return node


def release_workers() -> None:
    """Stop the joblib workers a sweep leaves idle, once its report is drawn, rather than at
    the interpreter's exit. Not killed: a killed idle worker can leave its queue's lock
    registered, and loky then warns of a leaked semlock at exit (seen in 1 of 7 sweeps when
    they were killed, which saved about 0.8 s more); asked to stop, each tears itself down
    (from the last figure to exit 1.25-1.36 s here, 1.6 s when left to the exit)."""
    try:
        from joblib.externals.loky import reusable_executor
    except ImportError:
        return
    executor = getattr(reusable_executor, "_executor", None)  # the one to reuse, if any was made
    if executor is not None:
        executor.shutdown(wait=True)


def _set_state_keeping_plugins(state: Any) -> None:
    """Hydra's ``Singleton.set_state`` without its plugin scan when this process has
    scanned already: the joblib launcher sets the sweep's singletons before each job, and
    Hydra leaves the plugin registry out of them and scans again (re-executing every
    plugin module: about 0.05 s a job, on the jobs' critical path in both workers, where
    the basic launcher scans once). The registry of a worker's first scan is kept: the
    plugin modules it found are the same files for the whole sweep."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton
    from omegaconf.basecontainer import BaseContainer

    plugins = Singleton._instances.get(Plugins)
    Singleton._instances = state["instances"]
    if plugins is not None:
        Singleton._instances[Plugins] = plugins
    Plugins.instance()
    BaseContainer._resolvers = copy.deepcopy(state["omegaconf_resolvers"])


def keep_plugin_registry() -> None:
    """In a sweep's worker (:func:`sweep_process_setup`, called by the sweeper's describe
    tasks and by each job):
    :func:`_set_state_keeping_plugins` in place of Hydra's, where Hydra's is the one it was
    written against (Hydra 1.3's, whose state is ``instances`` and
    ``omegaconf_resolvers``; any other Hydra is left alone)."""
    import hydra
    from hydra.core.singleton import Singleton

    fn = getattr(Singleton.__dict__.get("set_state"), "__func__", None)
    if fn is None or fn is _set_state_keeping_plugins or not hydra.__version__.startswith("1.3."):
        return
    if list(inspect.signature(fn).parameters) != ["state"]:
        return
    Singleton.set_state = staticmethod(_set_state_keeping_plugins)  # type: ignore[method-assign]


def sweep_process_setup() -> None:
    """What every process that runs a sweep's jobs or describe tasks sets up (idempotent):
    an exit without the last garbage collection (:func:`kvsim.errors.quick_exit`: a joblib
    worker's exit is on its sweep's critical path) and Hydra's plugin registry kept between
    jobs (:func:`keep_plugin_registry`)."""
    quick_exit()
    keep_plugin_registry()
