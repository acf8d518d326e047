"""The default sweeper of `python -m kvsim -m ...` (``hydra/sweeper: kvsim``).

Hydra's basic sweeper (the cartesian product of the sweep's values, in batches), with what a
trustworthy sweep needs around it, whatever the launcher (basic, joblib, submitit):

* the sweep folder is locked for the sweep's duration, so two sweeps cannot share it;
* before launching, every job's config is composed (a mistake fails before any job runs)
  and the job list, with each job's folder name and config hash, is written to
  ``sweep_jobs.json`` (:mod:`kvsim.sweepjobs`): the report reads the sweep's jobs from it;
* each job is composed once, and Hydra composes only the first job of each set of
  config-group choices (:class:`~hydra_plugins.kvsim_sweeper.composer.GroupComposer`: the
  others are copies with their own values, about 0.01 s against 0.2-0.25 s); the launcher
  is handed the configs composed for that check (:class:`ComposedJobs`: in memory for an
  in-process launcher, a pickle per job under the sweep's ``.kvsim/composed/`` for worker
  processes, removed at the end), not a second composition per job;
* jobs done / total with an estimate of the time left, from the jobs' completion markers
  (``progress=false`` turns it off, e.g. on a cluster);
* a failed job does not stop the others; at the end, if any job failed or is missing, the
  table and figures are still written and the command fails with one line naming them.
  Otherwise the ``sweep_report`` callback writes them (the same code).
"""

import hashlib
import logging
import pickle
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, cast

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.types import HydraContext
from omegaconf import OmegaConf, open_dict, read_write

from hydra_plugins.kvsim_sweeper.composer import GroupComposer
from kvsim.errors import UserError
from kvsim.sweepjobs import sweep_process_setup

log = logging.getLogger("kvsim")


@dataclass
class KvsimSweeperConf:
    _target_: str = "hydra_plugins.kvsim_sweeper.kvsim_sweeper.KvsimSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="kvsim", node=KvsimSweeperConf, provider="kvsim")


class SweepFailed(UserError):
    """Some jobs of a sweep failed or did not run; the table lists them (one line)."""


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress(threading.Thread):
    """Logs ``sweep: D/N jobs done (F failed), elapsed, ETA`` whenever the count changes,
    from the jobs' completion markers and failure records (works for every launcher)."""

    def __init__(self, sweep_dir: Path, jobs: Sequence[Any], interval_s: float = 2.0) -> None:
        super().__init__(name="kvsim-sweep-progress", daemon=True)
        self.sweep_dir, self.jobs, self.interval_s = sweep_dir, list(jobs), interval_s
        self._stop_event = threading.Event()

    def _count(self) -> tuple[int, int]:
        from kvsim.sweepjobs import job_status

        st = [job_status(self.sweep_dir, j).status for j in self.jobs]
        return st.count("complete"), st.count("failed")

    def run(self) -> None:
        total = len(self.jobs)
        start_done, _ = self._count()
        t0 = time.perf_counter()
        last = (-1, -1)
        while True:
            stopping = self._stop_event.wait(self.interval_s)
            done, failed = self._count()
            if (done, failed) != last or stopping:
                last = (done, failed)
                finished = done + failed
                new = finished - start_done
                elapsed = time.perf_counter() - t0
                eta = f", ETA {_fmt_s(elapsed / new * (total - finished))}" if 0 < new and finished < total else ""
                log.info(
                    "sweep: %d/%d jobs done%s%s, elapsed %s%s", finished, total,
                    f" ({failed} failed)" if failed else "",
                    f" ({start_done} already complete)" if start_done else "", _fmt_s(elapsed), eta,
                )
            if stopping:
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


class ComposedJobs:
    """The launcher's config loader: hands out the configs the sweeper composed (and
    checked) instead of composing each job again; anything else goes to Hydra's loader.

    In this process the composed configs are kept pickled (a fresh copy per load, as a new
    composition would be; at most ``max_bytes`` of them, the rest are composed again); once
    the sweep holds its folder they are also written to ``DIR/<hash of the overrides>.pkl``
    (each records its overrides), where a launcher's worker process (joblib, submitit), which
    gets this object pickled without them, reads them; a job not found is composed as usual.
    Each also records its check key (:func:`kvsim.config.check_config`): the process that
    loads it takes the config as checked, as the sweeper's own process does, instead of
    checking it again (0.1-0.3 s a job)."""

    def __init__(self, loader: Any, store: Path, max_bytes: int = 256 * 2**20) -> None:
        self._loader = loader
        self._store = store
        self._mem: dict[tuple[str, ...], bytes] = {}
        self._room = max_bytes

    @staticmethod
    def _name(overrides: Sequence[str]) -> str:
        return hashlib.sha256("\0".join(overrides).encode()).hexdigest()[:32] + ".pkl"

    @staticmethod
    def pack(overrides: Sequence[str], cfg: Any, checked: str | None = None) -> bytes:
        """A composed config as it is kept: with its overrides (to check on loading) and, if
        the sweeper checked it, its check key."""
        return pickle.dumps((tuple(overrides), cfg, checked), protocol=pickle.HIGHEST_PROTOCOL)

    def put(self, overrides: Sequence[str], blob: bytes) -> None:
        """Keep a config :meth:`pack` made for the launcher (if there is room)."""
        if len(blob) <= self._room:
            self._room -= len(blob)
            self._mem[tuple(overrides)] = blob

    def save(self) -> None:
        """Write the kept configs for worker processes (once the sweep's folder is locked)."""
        self._store.mkdir(parents=True, exist_ok=True)
        for key, blob in self._mem.items():
            tmp = self._store / f".{self._name(key)}.tmp"
            tmp.write_bytes(blob)
            tmp.replace(self._store / self._name(key))

    def load_sweep_config(self, master_config: Any, sweep_overrides: list[str]) -> Any:
        key = tuple(sweep_overrides)
        blob = self._mem.get(key)
        if blob is None:
            try:
                blob = (self._store / self._name(key)).read_bytes()
            except OSError:
                blob = None
        if blob is not None:
            stored, cfg, checked = pickle.loads(blob)
            if stored == key:
                if checked is not None:
                    from kvsim.config import remember_checked

                    remember_checked(checked)
                # as Hydra's loader does: the master's resolved values (timestamps) are kept
                OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
                return cfg
        return self._loader.load_sweep_config(master_config, sweep_overrides)

    def clear(self) -> None:
        self._mem.clear()
        shutil.rmtree(self._store, ignore_errors=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def __getstate__(self) -> dict[str, Any]:
        return {"_loader": self._loader, "_store": self._store, "_mem": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def describe(num: int, overrides: Sequence[str], sweep_dir: Path, composer: GroupComposer) -> tuple[Any, bytes]:
    """Compose job ``num`` as its launcher would (:class:`GroupComposer`), check it (every
    key and range, its trace read), and return its description (folder name, config hash)
    and the composed config packed for the launcher (:meth:`ComposedJobs.pack`)."""
    from kvsim.checks import check_inputs
    from kvsim.sweepjobs import describe_job

    cfg = composer.compose(overrides)
    # the job as it runs: without its own progress bar (kvsim.__main__.run_job); a check of
    # the config with the bar on would not be the job's, which would then be checked again
    cfg.progress = False
    checked = check_inputs(cfg)
    kept = ComposedJobs.pack(overrides, cfg, checked)  # the launcher's copy, before the changes below
    with open_dict(cfg):
        cfg.hydra.job.id = num
        cfg.hydra.job.num = num
    orig = HydraConfig.instance().cfg
    try:
        HydraConfig.instance().set_config(cfg)
        subdir = str(OmegaConf.select(cfg, "hydra.sweep.subdir"))
        with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
            cfg.hydra.runtime.output_dir = str(sweep_dir / subdir)
        HydraConfig.instance().set_config(cfg)
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        container = OmegaConf.to_container(cfg, resolve=True)
    finally:
        HydraConfig.instance().cfg = orig
    assert isinstance(container, dict)
    return describe_job(num, subdir, overrides, {str(k): v for k, v in container.items()}), kept


# A loky worker restarts itself once its memory has grown 300 MB over what it held after its
# first task (``_MAX_MEMORY_LEAK_SIZE``, loky's guard against leaks). A kvsim job grows a fresh
# worker by about 240 MB that stays (numba's LLVM for the hotness policy, pyarrow, OPT's
# arrays), so both workers restarted near the end of a sweep and the report's figures waited
# for two new ones to import kvsim and seaborn again (about 5 s). A bound of 1 GB over the
# first task still restarts a worker that leaks.
WORKER_GROWTH_BYTES = 2**30


def _keep_worker() -> None:
    try:
        from joblib.externals.loky import process_executor
    except ImportError:
        return
    if getattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", WORKER_GROWTH_BYTES) < WORKER_GROWTH_BYTES:
        process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_GROWTH_BYTES


_CONTEXT: dict[str, Any] = {}  # a worker's unpickled sweep context (see _describe_in_worker)


def _describe_in_worker(task: Sequence[tuple[int, Sequence[str]]], sweep_dir: Path,
                        context: bytes) -> list[tuple[int, Any, Any, BaseException | None, int]]:
    """:func:`describe` in a joblib worker, for each ``(num, overrides)`` of ``task`` (jobs
    of one set of group choices: Hydra composes their first, the others are copies): the
    job's description and its config pickled, or the error (raised by the sweeper in job
    order, so the first bad job is named), and how many Hydra composed (0 or 1).

    ``context`` holds Hydra's singletons (as its launchers pass them), the config loader and
    the master config. It is unpickled after Hydra's plugin scan, which re-executes the
    plugin modules, and set without Hydra's ``Singleton.set_state``, which would scan again:
    either way the composed configs would hold a launcher schema's class from before a scan,
    which no longer pickles. (The launcher's own jobs, later in the same worker, set the
    state as usual and unpickle their configs after it.)"""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals
    from omegaconf.basecontainer import BaseContainer

    import kvsim.config  # noqa: F401  (kvsim's schemas and warning filter, as in the sweeper's process)

    sweep_process_setup()  # quick exit; Hydra's plugin registry kept between jobs
    setup_globals()
    _keep_worker()
    plugins = Plugins.instance()  # the scan, once per worker
    # Unpickled once per worker and sweep, not per job (about 2 s of a 40-job sweep's start on
    # 2 workers); again after a plugin scan (a job's set_state, where keep_plugin_registry
    # could not keep the registry), for the reason above.
    digest = hashlib.sha256(context).digest()
    if _CONTEXT.get("digest") != digest or _CONTEXT.get("plugins") is not plugins:
        _CONTEXT.clear()
        _CONTEXT.update(digest=digest, plugins=plugins, unpickled=pickle.loads(context))
    state, loader, master = _CONTEXT["unpickled"]
    if "composer" not in _CONTEXT:
        _CONTEXT["composer"] = GroupComposer(loader, master)
    Singleton._instances = {**state["instances"], Plugins: cast(Any, plugins)}
    BaseContainer._resolvers = state["omegaconf_resolvers"]
    out: list[tuple[int, Any, Any, BaseException | None, int]] = []
    composer = _CONTEXT["composer"]
    for num, overrides in task:
        by_hydra = composer.composed
        try:
            job, blob = describe(num, overrides, sweep_dir, composer)
        except Exception as e:
            try:
                pickle.dumps(e)
            except Exception:
                from kvsim.errors import describe as one_line

                e = UserError(one_line(e)[0])
            out.append((num, None, None, e, composer.composed - by_hydra))
        else:
            out.append((num, job, blob, None, composer.composed - by_hydra))
    return out


class KvsimSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.by_hydra = 0  # jobs of the last sweep that Hydra composed (GroupComposer)

    def _describe_all(self, flat_jobs: Sequence[Sequence[str]], sweep_dir: Path, composed: ComposedJobs) -> list[Any]:
        """Every job described (:func:`describe`), in the launcher's joblib workers when it
        has some (composing is a sequential 0.3-0.6 s per job otherwise), else here."""
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        from kvsim.sweepjobs import joblib_settings

        settings = joblib_settings(self.launcher) if len(flat_jobs) > 1 else None
        if settings is None:
            jobs = []
            composer = GroupComposer(loader, self.config)
            for i, o in enumerate(flat_jobs):
                job, blob = describe(i, o, sweep_dir, composer)
                composed.put(o, blob)
                jobs.append(job)
            self.by_hydra = composer.composed
            return jobs
        import cloudpickle  # (as loky does) the singletons hold local functions: the resolvers
        from hydra.core.singleton import Singleton
        from joblib import Parallel, delayed, effective_n_jobs

        context = cloudpickle.dumps((Singleton.get_state(), loader, self.config))
        # One task per set of group choices (a worker's GroupComposer then composes each set
        # once, not once per worker that gets one of its jobs), cut so that every worker has
        # about two tasks, but not below 4 jobs (Hydra's composition costs about 3 jobs' check).
        signature = GroupComposer(loader, self.config).signature
        groups: dict[Any, list[tuple[int, Sequence[str]]]] = {}
        for i, o in enumerate(flat_jobs):
            sig = signature(o)
            groups.setdefault(("job", i) if sig is None else sig, []).append((i, o))
        size = max(4, -(-len(flat_jobs) // (2 * effective_n_jobs(settings.get("n_jobs", -1)))))
        tasks = [g[k:k + size] for g in groups.values() for k in range(0, len(g), size)]
        parts = Parallel(**settings)(delayed(_describe_in_worker)(t, sweep_dir, context) for t in tasks)
        done = sorted((r for part in parts for r in part), key=lambda r: r[0])
        for _num, _job, _blob, error, _h in done:
            if error is not None:
                raise error
        for (_num, _job, blob, _error, _h), o in zip(done, flat_jobs, strict=True):
            composed.put(o, blob)
        self.by_hydra = sum(h for *_, h in done)
        return [job for _num, job, _blob, _error, _h in done]

    def sweep(self, arguments: list[str]) -> Any:
        from kvsim.runfolder import FolderLock
        from kvsim.sweepjobs import statuses, write_jobs

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params_conf = self._parse_config()
        params_conf.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params_conf), self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir).absolute()
        # Every job composed and checked before anything is written or launched: a mistake
        # in job 37 stops the sweep before job 0 runs.
        t0 = time.perf_counter()
        flat_jobs = [o for batch in self.overrides for o in batch]
        from kvsim.sweepjobs import STATE_DIR

        composed = ComposedJobs(self.hydra_context.config_loader, sweep_dir / STATE_DIR / "composed")
        jobs = self._describe_all(flat_jobs, sweep_dir, composed)
        names = [j.subdir for j in jobs]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise SweepFailed(f"hydra.sweep.subdir gives several jobs one folder ({dup[0]}): include ${{hydra.job.num}}")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(sweep_dir)
        lock.acquire()
        try:
            log.debug("composed %d jobs (%d by Hydra, the others copies) in %.2f s", len(jobs), self.by_hydra,
                      time.perf_counter() - t0)
            from kvsim.io import write_with

            write_with(sweep_dir / "multirun.yaml", lambda p: OmegaConf.save(self.config, p))
            write_jobs(sweep_dir, jobs, arguments=list(arguments))
            progress = Progress(sweep_dir, jobs) if bool(self.config.get("progress", True)) else None
            # the launcher composes no job again: it gets the configs composed above
            launcher: Any = self.launcher  # Hydra's launchers keep their context here
            launcher_context = getattr(launcher, "hydra_context", None)
            if launcher_context is not None:
                composed.save()
                launcher.hydra_context = HydraContext(config_loader=cast(Any, composed), callbacks=launcher_context.callbacks)
            if progress is not None:
                progress.start()
            returns: list[Sequence[JobReturn]] = []
            launch_error: Exception | None = None
            idx = 0
            try:
                while not self.is_done():
                    batch = self.get_job_batch()
                    results = self.launcher.launch(batch, initial_job_idx=idx)
                    idx += len(batch)
                    returns.append(results)
            except Exception as exc:  # e.g. a Slurm job killed: report what there is
                launch_error = exc
            finally:
                if progress is not None:
                    progress.stop()
                if launcher_context is not None:
                    composed.clear()
                    launcher.hydra_context = launcher_context
            bad = [s for s in statuses(sweep_dir) if s.status != "complete"]
            if not bad and launch_error is None:
                return returns
            from kvsim.report.sweep import report_launched

            report_launched(sweep_dir, self.launcher)
        finally:
            lock.release()
        failed = [s for s in bad if s.status == "failed"]
        first = failed[0] if failed else (bad[0] if bad else None)
        what = f"{len(failed)} of {len(jobs)} jobs failed" if failed else f"{len(bad)} of {len(jobs)} jobs did not finish"
        detail = f"first: {first.job.subdir}: {first.error or first.status}" if first else ""
        if launch_error is not None:
            detail = (detail + "; " if detail else "") + f"launcher: {' '.join(str(launch_error).split())[:300]}"
        raise SweepFailed(f"sweep {sweep_dir}: {what} ({detail}); see {sweep_dir / 'sweep.csv'}")
