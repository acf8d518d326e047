"""``python -m kvsim.calibrate {redis,shim,refresh} ...``: measure, then write a calibration file.

  python -m kvsim.calibrate redis [--host 127.0.0.1 --port 6379 --name NAME --requests N --keys K --key-scaling]
  python -m kvsim.calibrate shim --run [--name NAME] [-- SHIM ARGS...]   (builds shim/ if needed)
  python -m kvsim.calibrate shim --json FILE [--name NAME]
  python -m kvsim.calibrate refresh NAME

The file is ``conf/calibration/NAME.yaml`` (or ``--out DIR/calibration/NAME.yaml``: Hydra
finds ``calibration=NAME`` as ``calibration/NAME.yaml`` under a search path); measured values
of an earlier file of that name are kept unless ``--fresh``. The command prints the
``python -m kvsim`` line that uses the file. Errors are one line, exit code 2
(``KVSIM_TRACEBACK=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from kvsim.calibrate import calfile
from kvsim.calibrate.calfile import Measured, Source
from kvsim.errors import USER_ERROR, UserError, cli
from kvsim.io import write_json


def _default_name() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", platform.node() or "testbed")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=None, help="calibration name (file NAME.yaml; default: this host's name)")
    p.add_argument("--out", default=None, help="write here instead of conf/calibration/NAME.yaml")
    p.add_argument("--defaults", default=str(calfile.DEFAULT_FILE), help="the default file to start from")
    p.add_argument("--fresh", action="store_true", help="drop measured values of an earlier file of this name")
    p.add_argument("--note", default=None, help="one line for the header, e.g. 'ConnectX-6 Dx, 100 GbE, one switch'")


def _name(args: argparse.Namespace) -> str:
    """The calibration's name, checked against ``--out`` before anything is measured:
    Hydra finds ``calibration=NAME`` only as ``calibration/NAME.yaml`` under a search path."""
    if args.out is None:
        return str(args.name or _default_name())
    out = Path(args.out)
    if out.suffix != ".yaml" or out.parent.name != "calibration":
        raise UserError(
            f"--out {out}: give DIR/calibration/NAME.yaml (Hydra finds calibration=NAME as "
            "calibration/NAME.yaml under a search path)"
        )
    if args.name and args.name != out.stem:
        raise UserError(f"--out {out} names the calibration '{out.stem}', --name says '{args.name}': give one")
    return out.stem


def use_command(name: str, path: Path) -> str:
    """The ``python -m kvsim`` line that runs with the calibration file at ``path``."""
    folder = path.resolve().parent
    if folder == calfile.CALIBRATION_DIR.resolve():
        return f"python -m kvsim calibration={name}"
    return f"python -m kvsim calibration={name} 'hydra.searchpath=[file://{folder.parent}]'"


def _write(args: argparse.Namespace, measured: Sequence[Measured], source: Source) -> Path:
    name = _name(args)
    before = calfile.parse_leaves(Path(args.defaults).read_text())
    out = calfile.write(name, measured, source, out=args.out, defaults=args.defaults, fresh=args.fresh, note=args.note)
    width = max((len(m.key) for m in measured), default=0)
    for m in measured:
        print(f"  {m.key:<{width}}  {before[m.key].value:>10} -> {calfile.format_value(m.value)}")
    print(f"wrote {out}; use it with: {use_command(name, out)}")
    return out


def cmd_redis(args: argparse.Namespace) -> int:
    from kvsim.calibrate.redis_bench import measure_redis

    try:
        res = measure_redis(
            args.host, args.port, requests=args.requests, keys=args.keys, batch=args.batch,
            password=args.password, db=args.db, progress=lambda s: print(s, file=sys.stderr),
            scale_keys=(1000, 1_000_000) if args.key_scaling else (),
        )
    except OSError as e:
        raise UserError(
            f"cannot reach Redis at {args.host}:{args.port}: {e} (start one with: "
            f"redis-server --port {args.port} --save '' --appendonly no)"
        ) from None
    others = {k: t.other_calls for k, t in res.timings.items() if t.other_calls}
    if others:
        print(f"warning: other clients ran the same commands meanwhile ({others}); "
              "service times mix theirs in", file=sys.stderr)
    if args.json_out:
        write_json(args.json_out, res.summary())
    print(f"redis-server {res.redis_version} at {args.host}:{args.port}: PING p50 {res.ping_p50_s * 1e6:.1f} us, "
          f"p99 {res.ping_p99_s * 1e6:.1f} us, p99.9 {res.ping_p999_s * 1e6:.1f} us; client round trips p50 GET "
          f"{res.timings['get'].client_p50_s * 1e6:.1f} us, MGET{args.batch} "
          f"{res.timings[f'mget{args.batch}'].client_p50_s * 1e6:.1f} us")
    _write(args, res.measured(), res.source())
    return 0


def cmd_shim(args: argparse.Namespace) -> int:
    from kvsim.calibrate import shim

    if args.run:
        binary = Path(args.shim) if args.shim else shim.SHIM_BIN
        if not args.shim and (args.build or not binary.exists()):
            print("building the shim: make -C shim", file=sys.stderr)
            binary = shim.build()
        print(f"running {binary} {' '.join(args.shim_args)}", file=sys.stderr)
        doc, err = shim.run(binary, args.shim_args)
        sys.stderr.write(err)
        if args.save_json:
            write_json(args.save_json, doc)
    else:
        doc = json.loads(Path(args.json).read_text())
    reading = shim.parse_shim(doc)
    for sec, why in reading.skipped.items():
        print(f"  {sec}: skipped ({why})", file=sys.stderr)
    for sec, why in reading.errors.items():
        print(f"  {sec}: ERROR ({why}); not used", file=sys.stderr)
    if not reading.measured:
        raise UserError("nothing measured: no calibration file written")
    _write(args, reading.measured, reading.source)
    return 1 if reading.errors else 0


def cmd_refresh(args: argparse.Namespace) -> int:
    path = calfile.target_path(args.name, args.out)
    if not path.is_file():
        raise UserError(f"no calibration file {path}")
    text = calfile.render(
        Path(args.defaults).read_text(), args.name, [], None, previous_text=path.read_text(), note=args.note
    )
    with calfile.atomic_path(path) as tmp:
        tmp.write_text(text)
    print(f"rewrote {path} from {args.defaults}, keeping {len(calfile.measured_lines(text))} measured values")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m kvsim.calibrate", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("redis", help="measure a real Redis server")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=6379)
    r.add_argument("--password", default=None)
    r.add_argument("--db", type=int, default=0, help="database to load the calibration keys into")
    r.add_argument("--requests", type=int, default=10_000, help="timed calls per command (default 10000)")
    r.add_argument("--keys", type=int, default=200_000,
                   help="keys loaded before timing: about the blocks the simulated index holds (default 200000)")
    r.add_argument("--batch", type=int, default=16, help="keys per MGET/MSET/DEL/ZRANGEBYLEX (default 16)")
    r.add_argument("--key-scaling", action="store_true",
                   help="also time the commands with 1,000 and 1,000,000 keys loaded (redis.scale_*_keys)")
    r.add_argument("--json-out", default=None, help="also save every raw number as JSON")
    _common(r)
    r.set_defaults(func=cmd_redis)

    s = sub.add_parser("shim", help="turn kvsim-shim's JSON into a calibration file")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--json", help="a saved kvsim-shim JSON file")
    src.add_argument("--run", action="store_true", help="run the shim (arguments after --)")
    s.add_argument("--shim", default=None, help="the kvsim-shim binary (default shim/build/kvsim-shim)")
    s.add_argument("--build", action="store_true", help="rebuild the shim first (make -C shim)")
    s.add_argument("--save-json", default=None, help="keep the shim's JSON here")
    s.add_argument("shim_args", nargs="*", help="arguments for kvsim-shim, after --")
    _common(s)
    s.set_defaults(func=cmd_shim)

    f = sub.add_parser("refresh", help="re-render NAME.yaml from the current default file")
    f.add_argument("name")
    f.add_argument("--out", default=None, help="the file, if not conf/calibration/NAME.yaml")
    f.add_argument("--defaults", default=str(calfile.DEFAULT_FILE))
    f.add_argument("--note", default=None, help="replace the header's note")
    f.set_defaults(func=cmd_refresh)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an error is one line on stderr and exit code 2."""
    args = parser().parse_args(argv)
    if getattr(args, "json", None) is None and args.command == "shim" and not args.run:
        parser().error("shim: give --json FILE or --run")
    try:
        if args.command in ("redis", "shim"):
            _name(args)  # a bad --out fails before anything is measured
        rc: int = args.func(args)
    except UserError as e:  # what the user gave, or a server's reply (CalibrationError, ShimError, RespError)
        print(f"kvsim.calibrate: error: {e}", file=sys.stderr)
        return USER_ERROR
    return rc


if __name__ == "__main__":
    cli(main, prog="kvsim.calibrate")
