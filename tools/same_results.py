"""Do two checkouts simulate the same thing? Runs a list of configurations on the conversation
trace from each checkout and compares their results bit for bit (the check of speed work).

    python tools/same_results.py run CHECKOUT DEST        # every configuration, into DEST/<name>/
    python tools/same_results.py compare DIR_A DIR_B      # summary.json and requests.parquet

``run`` runs ``python -m kvsim trace=mooncake_conversation figures=false progress=false`` with
each configuration's overrides (below) in CHECKOUT (so ``-m kvsim`` imports that checkout's
code, e.g. a ``git archive`` of main unpacked in /tmp) with this interpreter. ``compare`` says
``same`` or ``DIFF`` per configuration: every summary value except the wall-clock ones, and
requests.parquet read back as a DataFrame, must be equal (no tolerance). Exit 1 on any DIFF.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRACE = os.environ.get("KVSIM_REAL_TRACE", str(ROOT.parent / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl"))

CONFIGS: dict[str, list[str]] = {
    "default": [],
    "rr": ["router=round_robin"],
    "ll": ["router=least_loaded"],
    "fcfs": ["scheduler=fcfs"],
    "nooverlap": ["system.overlap_load=false"],
    "hosts2": ["gpu.instances=8", "system.instances_per_host=4"],
    "mooncake": ["index=mooncake"],
    "sherman": ["index=sherman"],
    "chime": ["index=chime"],
    "radix": ["index=radix"],
    "extent": ["index=extent"],
    "fifo": ["policy=fifo"],
    "lfu": ["policy=lfu"],
    "s3fifo": ["policy=s3fifo"],
    "arc": ["policy=arc"],
    "prefix_lru": ["policy=prefix_lru"],
    "hotness": ["policy=hotness"],
    "lookahead": ["policy=lookahead"],
    "opt": ["policy=opt"],
    "nospread": ["trace.spread=none"],
    "loadonly": ["system.load_or_recompute=load"],
    "inst1": ["gpu.instances=1"],
    "nodup": ["system.full_duplex=false", "system.priorities=false", "system.every_hop=false"],
    "scale025": ["system.capacity_scale=0.25"],
    "embedded": ["trace=embedded"],
    "sherman_hosts2": ["index=sherman", "gpu.instances=8", "system.instances_per_host=4"],
}
WALL = ("wall_time", "cpu_time", "peak_rss", "elapsed", "compiled_modules")  # the machine and the build, not the model


def run(checkout: Path, dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KVSIM_REAL_TRACE": TRACE}
    failed = 0
    for name, overrides in CONFIGS.items():
        cmd = [sys.executable, "-m", "kvsim", "trace=mooncake_conversation", "figures=false", "progress=false",
               f"hydra.run.dir={dest.resolve() / name}", *overrides]
        rc = subprocess.run(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if rc.returncode:
            failed += 1
            print(f"FAIL {name}: {rc.stderr.decode(errors='replace').strip().splitlines()[-1:]}", flush=True)
        else:
            print(f"ran {name}", flush=True)
    return 1 if failed else 0


def _flat(x: Any, p: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _flat(v, f"{p}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _flat(v, f"{p}[{i}]")
    else:
        yield p, x


def compare(a: Path, b: Path) -> int:
    import pandas as pd

    bad = 0
    for name in CONFIGS:
        fa, fb = a / name, b / name
        if not (fa / "summary.json").is_file() or not (fb / "summary.json").is_file():
            print(f"MISSING {name}")
            bad += 1
            continue
        sa = dict(_flat(json.loads((fa / "summary.json").read_text())))
        sb = dict(_flat(json.loads((fb / "summary.json").read_text())))
        diffs = [k for k in sa.keys() | sb.keys() if sa.get(k) != sb.get(k) and not any(w in k for w in WALL)]
        same_rows = pd.read_parquet(fa / "requests.parquet").equals(pd.read_parquet(fb / "requests.parquet"))
        if diffs or not same_rows:
            bad += 1
            print(f"DIFF {name}: summary {sorted(diffs)[:8]}, requests.parquet equal: {same_rows}")
        else:
            print(f"same {name}")
    print(f"{len(CONFIGS) - bad} of {len(CONFIGS)} configurations the same")
    return 1 if bad else 0


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in ("run", "compare"):
        print(__doc__, file=sys.stderr)
        return 2
    a, b = Path(sys.argv[2]), Path(sys.argv[3])
    return run(a, b) if sys.argv[1] == "run" else compare(a, b)


if __name__ == "__main__":
    sys.exit(main())
