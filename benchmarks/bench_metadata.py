"""metadata_bench on the conversation trace: this checkout against a baseline checkout,
measured in one run, interleaved (the machine is shared and noisy).

    git worktree add /tmp/idx-base <commit>        # the code to compare against
    python benchmarks/bench_metadata.py --base /tmp/idx-base [--rounds 3] [--trace FILE]

Runs ``python -m kvsim +experiment=metadata_bench trace=mooncake_conversation figures=false``
from each checkout in turn (base, new, base, new, ...; PYTHONPATH points at the checkout),
and prints each run's wall time and CPU time (user + system of the child), the best of each
side and the ratios new / base. CPU time is the steadier figure on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = os.environ.get(
    "KVSIM_REAL_TRACE", str(ROOT.parent / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl")
)


def run_once(checkout: Path, trace: str, extra: list[str]) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(checkout), KVSIM_REAL_TRACE=trace)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "kvsim", "+experiment=metadata_bench", "trace=mooncake_conversation",
               f"trace.path={trace}", "figures=false", f"hydra.run.dir={out}", *extra]
        t = time.perf_counter()
        subprocess.run(cmd, cwd=checkout, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="a checkout of the code to compare against")
    ap.add_argument("--trace", default=DEFAULT_TRACE)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("extra", nargs="*", help="extra overrides for both runs")
    args = ap.parse_args()
    if not Path(args.trace).is_file():
        print(f"trace not found: {args.trace} (set KVSIM_REAL_TRACE or --trace)", file=sys.stderr)
        return 2
    sides = {"base": Path(args.base).resolve(), "new": ROOT}
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for r in range(args.rounds):
        for name, path in sides.items():
            wall, cpu = run_once(path, args.trace, args.extra)
            got[name].append((wall, cpu))
            print(f"round {r + 1} {name:4s}: wall {wall:6.1f} s, cpu {cpu:6.1f} s", flush=True)
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in got.items()}
    for k, (w, c) in best.items():
        print(f"best {k:4s}: wall {w:6.1f} s, cpu {c:6.1f} s")
    print(f"ratio new/base: wall {best['new'][0] / best['base'][0]:.2f}x, cpu {best['new'][1] / best['base'][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
