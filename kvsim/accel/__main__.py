"""``python -m kvsim.accel build|status|clean`` (see :mod:`kvsim.accel`)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence

from kvsim.accel import BUILD_DIR, ENV, build, current, enabled, status


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kvsim.accel",
                                 description="The compiled build of kvsim's hot modules (Cython).")
    ap.add_argument("command", choices=("build", "status", "clean"))
    ap.add_argument("-j", "--jobs", type=int, default=None, help="parallel compilations (default: every core)")
    ap.add_argument("--if-stale", action="store_true", help="build only if a module is not compiled from its current source")
    ap.add_argument("--optional", action="store_true",
                    help="a failed build is a one-line notice, exit 0 (the sources are used): for set-up scripts")
    args = ap.parse_args(argv)
    if args.command == "clean":
        shutil.rmtree(BUILD_DIR, ignore_errors=True)
        print(f"removed {BUILD_DIR}")
        return 0
    if args.command == "build" and args.if_stale and current():
        print(f"kvsim.accel: the compiled build in {BUILD_DIR} is current")
        return 0
    if args.command == "build":
        try:
            manifest = build(jobs=args.jobs)
        except (Exception, SystemExit) as e:  # a missing compiler or Cython, a compile error
            if not args.optional:
                raise
            msg = " ".join(str(e).split())[:300]
            print(f"kvsim.accel: no compiled build ({type(e).__name__}: {msg}); a module without a current build runs from its source", file=sys.stderr)
            return 0
        print(f"compiled {len(manifest['modules'])} modules into {BUILD_DIR} (Cython {manifest['cython']})")
    for m, s in status():
        print(f"  {m:28s} {s}")
    if not enabled():
        print(f"  ({ENV}=0: the sources are imported)")
    return 0


def _main() -> int:
    try:
        return main()
    except BrokenPipeError:  # `... status | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    from kvsim.errors import cli

    cli(_main, prog="kvsim.accel")
