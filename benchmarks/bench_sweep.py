"""The placement sweep through Hydra's basic launcher (serial) and the joblib launcher.

    python benchmarks/bench_sweep.py [--n-jobs 2] [--rounds 1] [-- EXTRA OVERRIDES]

Runs ``python -m kvsim +experiment=placement_sweep`` (8 policies x 5 capacities on the
embedded trace) into fresh folders, alternating basic and joblib (``--rounds`` times each,
so both see the same machine load), prints each wall time, the speedup of the best of each,
and the load average before and after: this machine is shared, so say it with the number.
Both sweeps' tables must be equal but for wall-clock columns (checked here).

``-- trace=mooncake_conversation`` sweeps the real conversation trace instead (issue 12's
measurement: jobs of about 1.3 s each); the embedded trace's 40 jobs take about 0.26 s each,
so the sweep's serial start and report (about 4.5 s, the same in both launchers) are a third
of it there and cap joblib's speed-up near 1.5x on two cores.

Each round also prints the two launchers' ratio in that round (the VM's speed moves by a
quarter within minutes, so the median of those paired ratios says more than the best of
each), the most it could be (basic's wall time over joblib's CPU time shared out over its
workers: joblib's workers each import what basic imports once, so its CPU is larger), and
the CPU time the hypervisor took from this VM while it ran (``steal`` in ``/proc/stat``:
time a vCPU was ready to run but not running).

Each round also says where its time went, from the sweep folder's file times: the start
(Python, Hydra, composing and checking every job: to ``multirun.yaml``), the jobs (to the
last job's ``summary.json``), the report (the table and figures: to the last figure) and the
exit (the workers stopped, the process gone).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def steal_s() -> float:
    """Seconds of CPU stolen from this VM so far, all vCPUs (0 where /proc/stat has none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def sweep(out: Path, extra: list[str]) -> tuple[float, float, dict[str, float]]:
    """(wall seconds, CPU seconds of the sweep and the worker processes it reaped, its phases)."""
    t0 = time.time()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kvsim", "+experiment=placement_sweep", f"hydra.sweep.dir={out}", *extra],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the {extra or 'basic'} sweep failed")
    wall = time.perf_counter() - t
    return wall, usage.ru_utime + usage.ru_stime, phases(out, t0, t0 + wall)


def phases(d: Path, start: float, end: float) -> dict[str, float]:
    """Seconds of the sweep's start, jobs, report and exit, from its files' modification times."""
    def last(pattern: str) -> float:
        return max(p.stat().st_mtime for p in d.glob(pattern))

    marks = [start, (d / "multirun.yaml").stat().st_mtime, last("*/summary.json"), last("*.png"), end]
    return {name: b - a for name, a, b in zip(("start", "jobs", "report", "exit"), marks, marks[1:], strict=False)}


def table(d: Path) -> pd.DataFrame:
    df = pd.read_parquet(d / "sweep.parquet")
    return df.drop(columns=[c for c in df.columns if c.endswith(("wall_time_s", "accesses_per_s"))])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("extra", nargs="*", help="more overrides for both sweeps")
    a = ap.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    times: dict[str, list[float]] = {"basic": [], "joblib": []}
    cpus: dict[str, list[float]] = {"basic": [], "joblib": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for name, launcher in (("basic", []), ("joblib", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={a.n_jobs}"])):
                stolen = steal_s()
                t, cpu, ph = sweep(Path(tmp) / f"{name}{r}", launcher + a.extra)
                stolen = steal_s() - stolen
                times[name].append(t)
                cpus[name].append(cpu)
                split = ", ".join(f"{k} {v:.1f}" for k, v in ph.items())
                print(f"round {r} {name:>6}: {t:6.1f} s wall, {cpu:6.1f} s CPU, {stolen:4.1f} s stolen "
                      f"(load {os.getloadavg()[0]:.1f}); {split} s", flush=True)
            # joblib's floor: its CPU shared out over the workers with no core ever idle
            floor = cpus["joblib"][-1] / a.n_jobs
            print(f"round {r}: {times['basic'][-1] / times['joblib'][-1]:.2f}x (joblib's CPU over {a.n_jobs} cores: "
                  f"{floor:.1f} s, so at most {times['basic'][-1] / floor:.2f}x)", flush=True)
        basic0 = table(Path(tmp) / "basic0")
        pd.testing.assert_frame_equal(basic0, table(Path(tmp) / "joblib0"))
        compiled = sorted({int(v) for v in basic0.get("compiled_modules", pd.Series([0]))})
    b, j = min(times["basic"]), min(times["joblib"])
    paired = statistics.median(x / y for x, y in zip(times["basic"], times["joblib"], strict=True))
    print(f"basic {b:.1f} s, joblib (n_jobs={a.n_jobs}) {j:.1f} s: speedup {b / j:.2f}x (best of {a.rounds}), "
          f"{paired:.2f}x (median of the rounds' ratios); tables equal; load average after: {os.getloadavg()}; "
          f"modules compiled in the jobs: {compiled} (KVSIM_ACCEL=0 for none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
