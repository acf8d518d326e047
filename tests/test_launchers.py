"""Sweeps through every launcher give the basic launcher's table row for row; a killed sweep
resumes without rerunning finished jobs; a failing job is a row, and the sweep fails.

The Slurm test needs a Slurm whose node is idle (`.ci/slurm-setup.sh` makes a one-node one);
it skips when there is none, unless KVSIM_REQUIRE_SLURM=1 (set by .ci/run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from kvsim.runfolder import MARKER

from .conftest import CONF_DIR, ROOT, require_resource, site_probe_env

SWEEP = ["policy=lru,opt", "system.capacity_scale=0.05,0.5", "trace.max_requests=200", "figures=false"]
WALL_CLOCK = ("wall_time_s", "accesses_per_s")


def kvsim(*args: str, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kvsim", "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def table(sweep: Path) -> pd.DataFrame:
    df = pd.read_parquet(sweep / "sweep.parquet")
    return df.drop(columns=[c for c in df.columns if c.endswith(WALL_CLOCK) or c.startswith("trace.path")])


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    sweep = tmp_path_factory.mktemp("basic") / "sweep"
    p = kvsim(*SWEEP, f"hydra.sweep.dir={sweep}")
    assert p.returncode == 0, p.stderr
    df = table(sweep)
    assert len(df) == 4 and (df["status"] == "complete").all()
    assert "sweep: 4/4 jobs done" in p.stderr + p.stdout  # progress
    return df


def assert_same_table(sweep: Path, basic: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(table(sweep), basic, check_like=False)


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_give_the_basic_table(tmp_path: Path, basic: pd.DataFrame, launcher: str) -> None:
    require_resource("KVSIM_REQUIRE_CLUSTER")
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    p = kvsim(*SWEEP, f"hydra/launcher={launcher}", *extra, f"hydra.sweep.dir={tmp_path / 's'}")
    assert p.returncode == 0, p.stderr
    assert_same_table(tmp_path / "s", basic)
    # the figures (joblib's workers draw them) are those a serial report draws, byte for byte
    drawn = {f.name: f.read_bytes() for f in (tmp_path / "s").glob("*.png")}
    assert {"sweep.png", "hit_ratio_ttft.png", "gap_to_opt.png", "link_bytes.png"} <= set(drawn)
    from kvsim.report.sweep import report

    report(tmp_path / "s")
    assert {f.name: f.read_bytes() for f in (tmp_path / "s").glob("*.png")} == drawn


LAUNCHERS = sorted(f.stem for f in (CONF_DIR / "hydra" / "launcher").glob("*.yaml"))
PLUGIN = {"joblib": "hydra_plugins.hydra_joblib_launcher", "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
          "submitit_local": "hydra_plugins.hydra_submitit_launcher"}
SETTABLE = {"submitit_slurm": ["partition=debug", "timeout_min=5", "mem_gb=2", "cpus_per_task=2", "array_parallelism=3"]}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_composes_and_a_typo_fails_at_compose(launcher: str) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    assert {"joblib", "submitit_slurm", "submitit_local"} <= set(LAUNCHERS)
    require_resource("KVSIM_REQUIRE_CLUSTER")
    settings = SETTABLE.get(launcher, [])
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"] + [f"hydra.launcher.{s}" for s in settings],
                      return_hydra_config=True)
        assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")
        assert cfg.hydra.sweeper._target_.endswith("KvsimSweeper")
        for s in settings:
            key, value = s.split("=")
            assert str(cfg.hydra.launcher[key]) == value
        with pytest.raises(ConfigCompositionException):
            compose("config", overrides=[f"hydra/launcher={launcher}", "hydra.launcher.n_jbos=2"], return_hydra_config=True)


def test_slurm_sweep_gives_the_basic_table(tmp_path: Path, basic: pd.DataFrame) -> None:
    require_resource("KVSIM_REQUIRE_SLURM")
    require_resource("KVSIM_REQUIRE_CLUSTER")
    p = kvsim(*SWEEP, "hydra/launcher=submitit_slurm", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10",
              "progress=false", f"hydra.sweep.dir={tmp_path / 's'}")
    assert p.returncode == 0, p.stderr
    assert_same_table(tmp_path / "s", basic)
    assert list((tmp_path / "s" / ".submitit").iterdir())  # it really went through sbatch


def mtimes(sweep: Path, jobs: list[str]) -> dict[str, int]:
    return {str(f.relative_to(sweep)): f.stat().st_mtime_ns for j in jobs for f in (sweep / j).rglob("*") if f.is_file()}


def complete_jobs(sweep: Path) -> list[str]:
    # A job's marker is written last into its staging folder (``.NAME.staging-HOST-PID``),
    # which is then renamed: a poll between the two sees the marker in a hidden folder that
    # is not (yet) a job. Only visible job folders count.
    return sorted(p.parent.name for p in sweep.glob(f"*/{MARKER}") if not p.parent.name.startswith("."))


def test_killed_sweep_resumes_and_leaves_finished_jobs_untouched(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    args = ["policy=lru,fifo,hotness,opt", "system.capacity_scale=0.1,0.5", "trace.max_requests=800",
            "figures=false", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen([sys.executable, "-m", "kvsim", "-m", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and len(complete_jobs(sweep)) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # the hardest stop: no handler runs
    proc.wait(timeout=60)
    done = complete_jobs(sweep)
    assert 2 <= len(done) < 8, f"the sweep was not stopped midway ({len(done)} of 8 jobs complete)"
    before = mtimes(sweep, done)
    p = kvsim(*args)
    assert p.returncode == 0, p.stderr
    assert (p.stdout + p.stderr).count("skip: complete") == len(done)
    assert mtimes(sweep, done) == before  # finished jobs were not rerun
    assert len(complete_jobs(sweep)) == 8
    df = pd.read_csv(sweep / "sweep.csv")
    assert len(df) == 8 and (df["status"] == "complete").all()
    assert not [p for p in sweep.iterdir() if ".staging-" in p.name or p.name.endswith(".lock")]


def test_sweep_with_a_failing_job_writes_the_table_and_fails(tmp_path: Path) -> None:
    """Job 2's folder holds a complete run of another config (a run that fails once the
    sweep has started: config and trace were checked before the first job): it fails, the
    others run, the table and figures are written, and the command fails naming the job."""
    sweep = tmp_path / "s"
    (sweep / "002_fifo_x0.5").mkdir(parents=True)
    (sweep / "002_fifo_x0.5" / MARKER).write_text(json.dumps({"config_hash": "an older run"}))
    # one instance: OPT is an upper bound on the hits only in one chain of tiers
    p = kvsim("policy=lru,opt,fifo", "system.capacity_scale=0.5", "trace.max_requests=200", "gpu.instances=1",
              f"hydra.sweep.dir={sweep}")
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip().splitlines()[-1]
    assert err.startswith("kvsim: error: sweep ") and "1 of 3 jobs failed" in err and "002_fifo_x0.5" in err
    df = pd.read_csv(sweep / "sweep.csv")
    assert list(df["status"]) == ["complete", "complete", "failed"]
    assert "holds a complete run of another config" in df.loc[2, "error"] and df.loc[2, "policy"] == "fifo"
    assert df.loc[0, "gap_to_opt"] >= 0
    for fig in ("sweep.png", "hit_ratio_ttft.png", "gap_to_opt.png", "link_bytes.png"):
        assert (sweep / fig).is_file(), fig
    jobs = json.loads((sweep / "sweep_jobs.json").read_text())["jobs"]
    assert [j["subdir"] for j in jobs] == list(df["job"])
    assert json.loads((sweep / "002_fifo_x0.5" / MARKER).read_text()) == {"config_hash": "an older run"}
    r = subprocess.run([sys.executable, "-m", "kvsim.report", str(sweep)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "002_fifo_x0.5: failed" in r.stdout + r.stderr


def test_two_sweeps_cannot_share_a_folder(tmp_path: Path) -> None:
    from kvsim.runfolder import FolderLock

    sweep = tmp_path / "s"
    lock = FolderLock(sweep)
    lock.acquire()  # another sweep is running into it
    try:
        p = kvsim("policy=lru,opt", "trace.max_requests=50", f"hydra.sweep.dir={sweep}")
    finally:
        lock.release()
    assert p.returncode == 2 and "another run is writing into this folder" in p.stderr
    assert not (sweep / "sweep_jobs.json").exists() and not complete_jobs(sweep)


def counting(module: str, name: str, label: str) -> str:
    """A script for ``python -c``: ``python -m kvsim ARGS`` with the calls of ``module``'s
    ``name`` (a function, or ``Class.method``) counted in this process, ``label: N`` printed
    last on stderr."""
    return f"""
import importlib, runpy, sys
owner, *path = [importlib.import_module({module!r}), *{name!r}.split(".")]
for part in path[:-1]:
    owner = getattr(owner, part)
n = [0]
counted_fn = getattr(owner, path[-1])
def counted(*a, **k):
    n[0] += 1
    return counted_fn(*a, **k)
setattr(owner, path[-1], counted)
sys.argv = ["kvsim", *sys.argv[1:]]
try:
    runpy.run_module("kvsim", run_name="__main__")
finally:
    print("{label}:", n[0], file=sys.stderr)
"""


COUNT_COMPOSITIONS = counting("hydra._internal.config_loader_impl", "ConfigLoaderImpl.load_sweep_config", "compositions")
COUNT_CHECKS = counting("kvsim.config", "_check_plain", "checks")


def test_each_job_is_checked_once_with_the_progress_bar_on(tmp_path: Path) -> None:
    """progress=true (the default) shows the sweep's progress; each job runs without its own
    bar, and the sweeper checks the job as it runs (progress off), so the run's check is the
    sweeper's memo, not a second check (it was, per job: 0.1-0.3 s each)."""
    p = subprocess.run([sys.executable, "-c", COUNT_CHECKS, "-m", *SWEEP, "progress=true",
                        f"hydra.sweep.dir={tmp_path / 's'}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "checks: 4" in p.stderr.splitlines()[-1]


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_each_job_is_composed_once(tmp_path: Path, basic: pd.DataFrame, launcher: str) -> None:
    """The sweeper composes and checks every job before the first runs (with joblib, in its
    workers: none in the sweeper's process), Hydra composing one job per policy (the other
    capacity is a copy: GroupComposer); the launcher gets those configs instead of
    composing each job again (the table is the same)."""
    extra = [] if launcher == "basic" else ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    if extra:
        require_resource("KVSIM_REQUIRE_CLUSTER")
    p = subprocess.run([sys.executable, "-c", COUNT_COMPOSITIONS, "-m", *SWEEP, *extra, "progress=false",
                        "hydra.verbose=[kvsim]", f"hydra.sweep.dir={tmp_path / 's'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert f"compositions: {0 if extra else 2}" in p.stderr.splitlines()[-1]
    # joblib: one describe task per policy, so each worker's GroupComposer composes it once
    assert "composed 4 jobs (2 by Hydra, the others copies)" in p.stdout + p.stderr
    assert "validated against ConfigStore schema" not in p.stderr  # workers filter it too
    assert_same_table(tmp_path / "s", basic)
    assert not (tmp_path / "s" / ".kvsim" / "composed").exists()  # the hand-over is removed


def test_parallel_composition_names_the_first_bad_job(tmp_path: Path) -> None:
    """Jobs composed in joblib's workers: a mistake stops the sweep before any job runs and
    the error is the first bad job's, as with the serial sweeper (jobs 1 and 2 are bad)."""
    require_resource("KVSIM_REQUIRE_CLUSTER")
    sweep = tmp_path / "s"
    for extra in ([], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]):
        p = kvsim("system.capacity_scale=0.5,-1,-2", "trace.max_requests=50", *extra, f"hydra.sweep.dir={sweep}")
        assert p.returncode == 2, p.stderr
        assert p.stderr.strip().splitlines()[-1] == "kvsim: error: system.capacity_scale: must be > 0, got -1.0"
        assert not sweep.exists()


def _pid() -> int:

    return os.getpid()


def test_the_sweeps_idle_workers_are_stopped_and_a_later_sweep_gets_new_ones() -> None:
    """release_workers (called once a joblib sweep's report is drawn) stops the reusable
    executor's workers, instead of leaving their teardown to the interpreter's exit."""
    require_resource("KVSIM_REQUIRE_CLUSTER")

    from joblib import Parallel, delayed

    from kvsim.sweepjobs import release_workers

    first = set(Parallel(n_jobs=2, backend="loky")(delayed(_pid)() for _ in range(8)))
    assert first and os.getpid() not in first
    release_workers()
    for pid in first:  # killed and reaped: no such process any more
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    second = set(Parallel(n_jobs=2, backend="loky")(delayed(_pid)() for _ in range(8)))
    assert second and not second & first
    release_workers()
    release_workers()  # nothing left to stop: a no-op


def test_a_joblib_sweeps_processes_exit_without_the_last_collection(tmp_path: Path) -> None:
    """The sweep's process and its workers (whose teardown the report waits for) skip the
    interpreter's last garbage collection at exit (kvsim.errors.quick_exit): about 0.5 s
    each after kvsim's imports. The probe (tests/test_errors.py) sees it in every process."""
    require_resource("KVSIM_REQUIRE_CLUSTER")
    from .test_errors import collected, exit_probe_env, run

    env, out = exit_probe_env(tmp_path)
    p = kvsim(*SWEEP, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 's'}", env=env)
    assert p.returncode == 0, p.stderr
    assert not collected(out)
    assert run("pass", env).returncode == 0 and len(collected(out)) == 1  # the probe itself works


SCAN_PROBE = """
import os
if os.environ.get("KVSIM_SCAN_PROBE"):
    import hydra.core.plugins as _plugins
    _scan = _plugins.Plugins._initialize
    def _counted(self, *a, **k):
        with open(os.path.join(os.environ["KVSIM_SCAN_PROBE"], f"scans-{os.getpid()}"), "a") as f:
            f.write("1")
        return _scan(self, *a, **k)
    _plugins.Plugins._initialize = _counted
"""


def test_a_joblib_worker_scans_hydras_plugins_once(tmp_path: Path) -> None:
    """Hydra's joblib launcher has each job scan the plugins again in its worker (Hydra's
    Singleton.set_state); kvsim's workers keep the registry of their first scan
    (kvsim.sweepjobs.keep_plugin_registry): eight jobs on two workers, at most one scan a
    process."""
    require_resource("KVSIM_REQUIRE_CLUSTER")
    env, out = site_probe_env(tmp_path, SCAN_PROBE, "KVSIM_SCAN_PROBE")
    p = kvsim("policy=lru,fifo,lfu,opt", "system.capacity_scale=0.05,0.5", "trace.max_requests=100", "figures=false",
              "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 's'}", env=env)
    assert p.returncode == 0, p.stderr
    scans = {f.name: len(f.read_text()) for f in out.glob("scans-*")}
    assert len(scans) >= 3  # the sweep's process and its two workers
    assert max(scans.values()) == 1, scans


def test_a_sweep_rerun_on_a_rewritten_trace_mixes_nothing(tmp_path: Path) -> None:
    """A complete sweep over a trace file; the file is rewritten under its name; the same
    sweep again does not skip its jobs as complete (that would be a table of results from
    the old file): every job fails naming the file, the table says so, and the old runs stay
    as they were until ``overwrite=true``."""
    trace = tmp_path / "t.jsonl"
    lines = (ROOT / "traces" / "synthetic_conversation.jsonl").read_text().splitlines(keepends=True)
    trace.write_text("".join(lines[:200]))
    sweep = tmp_path / "s"
    args = ["policy=lru,fifo", f"trace.path={trace}", "figures=false", f"hydra.sweep.dir={sweep}"]
    assert kvsim(*args).returncode == 0
    done = complete_jobs(sweep)
    assert len(done) == 2
    before = mtimes(sweep, done)
    trace.write_text("".join(lines[:100]))
    p = kvsim(*args)
    assert p.returncode == 2 and "skip: complete" not in p.stdout + p.stderr
    df = pd.read_csv(sweep / "sweep.csv")
    assert list(df["status"]) == ["failed", "failed"]
    assert df["error"].str.contains("made from input files that changed since \\(t.jsonl size ").all()
    assert mtimes(sweep, done) == before
    assert kvsim(*args, "overwrite=true").returncode == 0
    df = pd.read_csv(sweep / "sweep.csv")
    assert (df["status"] == "complete").all() and (df["requests"] == 100).all()
