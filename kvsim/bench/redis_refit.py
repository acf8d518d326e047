"""A Redis validation simulated again on its captured replays, with other model parameters.

    python -m kvsim.bench.redis_refit RUN_DIR [--set KEY=VALUE ...] [--out FILE.csv]

``RUN_DIR``: the folder of a ``+experiment=redis_validation experiment.capture=true`` run,
whose ``redis_validation_replays.pkl`` holds each speed-up's replays and fit inputs (a
pickle: read only folders you made). Each ``--set`` gives a parameter of the model
(:class:`kvsim.index.redis.RedisIndex`) a value (a Python literal, or YAML) over what the
run fitted:
``--set turn_extra_s=5e-6``, ``--set 'idle_knots=[[0.03,0],[0.3,4e-6],[3,8e-6]]'``. Without
any, the run's own table comes out again (its simulations are seeded; a speed-up's replays
pooled as the run pooled them). Prints each cell's
errors beside the run's; ``--out`` writes the new table (``redis_validation.csv``'s columns).

Why: a replay against a real server takes minutes and is never the same twice; a change to
the model is judged on the same replays here in seconds (docs/redis_validation.md, ninth
pass, scaled the idle connections' term on a captured replay this way).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import pickle
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from kvsim.bench.redis_validation import CAPTURE_FILE, CSV_COLUMNS, Capture, refit_all
from kvsim.errors import InputFileError, UserError, cli
from kvsim.index.redis import RedisIndex
from kvsim.io import write_with


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs for :class:`RedisIndex`'s parameters (the value a Python literal or YAML)."""
    known = set(inspect.signature(RedisIndex.__init__).parameters) - {"self"}
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        if key not in known:
            raise UserError(f"--set {key}: not a parameter of the Redis model (one of {', '.join(sorted(known))})")
        try:  # a Python literal (PyYAML reads 1e-3 as a string), else YAML (null, true)
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            try:
                out[key] = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise UserError(f"--set {key}: {text!r} is not a value ({str(e).splitlines()[0]})") from None
    return out


def load(run_dir: Path) -> list[Capture]:
    path = run_dir / CAPTURE_FILE
    if not path.is_file():
        raise InputFileError(f"{path}: not found (run +experiment=redis_validation with experiment.capture=true)")
    captures = pickle.loads(path.read_bytes())
    if not isinstance(captures, list) or not all(isinstance(c, Capture) for c in captures):
        raise InputFileError(f"{path}: not a list of captured speed-ups")
    return captures


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m kvsim.bench.redis_refit", description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    overrides = parse_sets(a.sets)
    table = pd.DataFrame([cell for r in refit_all(load(a.run_dir), overrides).values() for cell in r.cells],
                         columns=CSV_COLUMNS)
    before = a.run_dir / "redis_validation.csv"
    run = {(r["op"], float(r["speedup"])): r for r in pd.read_csv(before).to_dict("records")} if before.is_file() else {}
    for r in table.to_dict("records"):
        o = run.get((r["op"], float(r["speedup"])))
        was = f"   (run: {100 * o['err_p50']:+6.1f}% / {100 * o['err_p99']:+6.1f}%)" if o else ""
        print(f"x{r['speedup']:<6g} {r['op']:<6} n={r['count']:5d}  p50 {100 * r['err_p50']:+6.1f}%  "
              f"p99 {100 * r['err_p99']:+6.1f}%{was}")
    if a.out is not None:
        write_with(a.out, lambda p: table.to_csv(p, index=False))
        print(a.out)
    return 0


if __name__ == "__main__":
    cli(lambda: main(sys.argv[1:]), prog="kvsim.bench.redis_refit")
