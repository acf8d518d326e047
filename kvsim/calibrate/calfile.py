"""Calibration files: the default file's text with measured values put in place.

A calibration file written here is the whole of ``conf/calibration/default.yaml`` (every key,
every source comment), with three changes: a header that says what was measured, where and
how; ``name`` set to the new name; and each measured key's value replaced, its comment
saying ``# [M] measured <date> on <host>: <what>; default <old value>``. Editing the text
line by line, rather than loading and dumping YAML, keeps every unmeasured key's source
comment, so a reader sees where each number comes from.

A measured median whose tail was not measured (``tcp.rtt_s`` without ``tcp.rtt_p99_s``) gets
the default's tail *shape*: its ``_p99_s`` / ``_p999_s`` siblings become the default's times
the measured / default median ratio, marked ``[I]``, so a tail never sits below its median.

A file is rendered from the *current* default file. Measured lines of an earlier file of
the same name are carried over (:func:`measured_lines`), so `refresh` re-renders a file
after the default file gains keys, and successive measurements (Redis, then the shim)
accumulate in one file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from kvsim.config import PROJECT_ROOT
from kvsim.errors import UserError
from kvsim.io import atomic_path

CALIBRATION_DIR = PROJECT_ROOT / "conf" / "calibration"
DEFAULT_FILE = CALIBRATION_DIR / "default.yaml"
MARK = "[M] measured"
COMMENT_COLUMN = 26  # where the default file's comments start
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_KEY_RE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_-]*):(?P<rest>.*)$")


@dataclass(frozen=True)
class Measured:
    """One measured value: ``key`` is the dotted path in the calibration file."""

    key: str
    value: float
    note: str  # what was measured and how, e.g. "GET usec_per_call over 10000 calls"


@dataclass(frozen=True)
class Source:
    """Where and when a set of measurements was taken, and by which command."""

    date: str  # UTC, to the minute: 2026-11-27T21:58Z
    host: str
    what: str  # what was run, for the header, e.g. "redis-server 7.0.15 at 127.0.0.1:6379, ..."

    @property
    def tag(self) -> str:
        """``<date> on <host>``: in the header line and in each measured key's comment."""
        return f"{self.date} on {self.host}"


@dataclass(frozen=True)
class _Leaf:
    line: int
    path: str
    indent: str
    key: str
    value: str
    comment: str  # "" or the comment text including '#'
    comment_col: int
    continuation: tuple[int, ...]  # comment-only lines that continue this key's comment


class CalibrationError(UserError, ValueError):
    """A calibration file or name is wrong (one line, exit 2)."""


def format_value(v: float) -> str:
    """A float as YAML both PyYAML and OmegaConf read as a float: ``54.3e-6``, ``11.5e+9``.

    Engineering notation, 4 significant digits, always a dot and a signed exponent (PyYAML's
    YAML 1.1 resolver reads ``1e-6`` or ``11.5e9`` as strings).
    """
    if not math.isfinite(v):
        raise CalibrationError(f"not a finite number: {v}")
    if v == 0:
        return "0.0"
    exp = math.floor(math.log10(abs(v)))
    exp -= exp % 3
    mant = f"{v / 10.0**exp:.4g}"
    if "e" in mant:  # rounding reached 1000: renormalise
        exp += 3
        mant = f"{v / 10.0**exp:.4g}"
    if "." not in mant:
        mant += ".0"
    return mant if exp == 0 else f"{mant}e{exp:+d}"


def _split_comment(rest: str) -> tuple[str, str, int]:
    """``rest`` after 'key:' -> (value, comment, offset of '#' in rest or -1)."""
    s = rest
    i = 0
    quote = ""
    while i < len(s):
        c = s[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].strip(), s[i:].rstrip(), i
        i += 1
    return s.strip(), "", -1


def parse_leaves(text: str) -> dict[str, _Leaf]:
    """Every scalar key of a block-style YAML mapping, by dotted path, with its line."""
    lines = text.splitlines()
    stack: list[tuple[int, str]] = []
    leaves: dict[str, _Leaf] = {}
    last: _Leaf | None = None
    cont: list[int] = []

    def close() -> None:
        nonlocal last, cont
        if last is not None:
            leaves[last.path] = replace(last, continuation=tuple(cont))
        last, cont = None, []

    for n, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("#"):
            col = len(line) - len(line.lstrip())
            prev = cont[-1] if cont else (last.line if last is not None else -2)
            if last is not None and col > len(last.indent) and n == prev + 1:
                cont.append(n)  # an indented comment right under a key continues its comment
                continue
            close()
            continue
        if not stripped:
            close()
            continue
        m = _KEY_RE.match(line)
        if not m:
            raise CalibrationError(f"line {n + 1}: not a 'key: value' line this writer understands: {line!r}")
        close()
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        value, comment, at = _split_comment(m["rest"])
        path = ".".join([k for _, k in stack] + [m["key"]])
        if value == "":
            stack.append((indent, m["key"]))
            continue
        col = len(m["indent"]) + len(m["key"]) + 1 + at if at >= 0 else COMMENT_COLUMN
        last = _Leaf(n, path, m["indent"], m["key"], value, comment, col, ())
    close()
    return leaves


def measured_lines(text: str) -> dict[str, str]:
    """The ``[M] measured`` lines of an earlier calibration file, by dotted key path."""
    lines = text.splitlines()
    return {p: lines[leaf.line] for p, leaf in parse_leaves(text).items() if MARK in leaf.comment}


def header_sources(text: str) -> list[str]:
    """The 'Measurements:' and 'Note:' lines of an earlier file's header (to carry over)."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   ") or line.startswith("# Note: "):
            out.append(line)
    return out


def _comment_line(head: str, comment: str, col: int) -> str:
    pad = max(col, len(head) + 1)
    return f"{head}{' ' * (pad - len(head))}{comment}"


def render(
    default_text: str,
    name: str,
    measured: Sequence[Measured],
    source: Source | None,
    *,
    previous_text: str | None = None,
    note: str | None = None,
) -> str:
    """The calibration file ``name``: the default text with ``measured`` put in place.

    Measured lines of ``previous_text`` (an earlier file of the same name) are kept for the
    keys not measured now; its header's list of measurements is kept and extended.
    """
    if not NAME_RE.match(name) or name == "default":
        raise CalibrationError(f"bad calibration name {name!r}: letters, digits, '_', '-', '.'; not 'default'")
    leaves = parse_leaves(default_text)
    new = {m.key: m for m in measured}
    unknown = sorted(set(new) - set(leaves))
    if unknown:
        raise CalibrationError(f"keys not in the default calibration file: {unknown}")
    if "name" not in leaves:
        raise CalibrationError("the default calibration file has no top-level 'name'")
    kept = measured_lines(previous_text) if previous_text else {}
    kept = {k: v for k, v in kept.items() if k in leaves and k not in new}
    dropped = sorted(set(measured_lines(previous_text or "")) - set(leaves))
    if dropped:
        raise CalibrationError(f"the earlier file measured keys the default file no longer has: {dropped}")

    lines = default_text.splitlines()
    out_lines: dict[int, str | None] = {}
    derived = _scaled_tails(leaves, new, kept, previous_text)
    for path, leaf in leaves.items():
        if path in derived:
            value, why = derived[path]
            out_lines[leaf.line] = _comment_line(f"{leaf.indent}{leaf.key}: {format_value(value)}", f"# {why}", leaf.comment_col)
            for c in leaf.continuation:
                out_lines[c] = None
            continue
        if path in new:
            m = new[path]
            assert source is not None, "measured values need a source"
            if not math.isfinite(m.value) or m.value < 0:
                raise CalibrationError(f"{path}: measured value {m.value} is not a finite number >= 0")
            comment = f"# {MARK} {source.tag}: {m.note}; default {leaf.value}"
            out_lines[leaf.line] = _comment_line(f"{leaf.indent}{leaf.key}: {format_value(m.value)}", comment, leaf.comment_col)
        elif path in kept:
            out_lines[leaf.line] = kept[path]
        elif path == "name":
            out_lines[leaf.line] = _comment_line(f"{leaf.indent}name: {name}", f"# calibration={name}", leaf.comment_col)
            continue
        else:
            continue
        for c in leaf.continuation:  # the default's reasoning no longer applies
            out_lines[c] = None

    first_key = next(i for i, ln in enumerate(lines) if _KEY_RE.match(ln))  # the default's header ends
    body = [out_lines.get(i, ln) for i, ln in enumerate(lines) if i >= first_key]
    sources = header_sources(previous_text) if previous_text else []
    notes = [s for s in sources if s.startswith("# Note: ")]
    if note:
        notes = [f"# Note: {note}"]
    # an earlier measurement stays in the header while one of its values is still in the file
    still = "\n".join(kept.values())
    meas = [s for s in sources if s.startswith("#   ") and f"{MARK} {s[4:].split(':', 1)[0]}:" in still]
    if source is not None:
        meas.append(f"#   {source.tag}: {source.what}")
    header = [
        f"# Calibration '{name}': conf/calibration/default.yaml with measured values in place.",
        f"# Select it with `python -m kvsim calibration={name}`. Written by `python -m kvsim.calibrate`",
        "# (conf/calibration/README.md): lines marked [M] measured say when, where and how; every",
        "# other key keeps the default and its source ([R] read in a source, [I] inferred, [M] on the",
        "# VM the defaults came from). Re-measure rather than edit [M] lines; after default.yaml",
        f"# changes, `python -m kvsim.calibrate refresh {name}` carries the measured values over.",
        *notes,
        "# Measurements:",
        *(meas or ["#   (none: every value is the default)"]),
    ]
    text = "\n".join(header + [ln for ln in body if ln is not None]) + "\n"
    check(text, default_text, new)
    return text


def _scaled_tails(
    leaves: Mapping[str, _Leaf], new: Mapping[str, Measured], kept: Mapping[str, str], previous_text: str | None
) -> dict[str, tuple[float, str]]:
    """Tails for measured medians whose tails were not measured: the default's shape."""
    medians: dict[str, float] = {k: m.value for k, m in new.items()}
    if kept and previous_text:
        prev = parse_leaves(previous_text)
        medians.update({k: float(prev[k].value) for k in kept if k in prev})
    out: dict[str, tuple[float, str]] = {}
    for path, value in medians.items():
        if not path.endswith("_s"):
            continue
        default = float(leaves[path].value)
        for q in ("p99", "p999"):
            tail = f"{path[:-2]}_{q}_s"
            if tail in leaves and tail not in medians and default > 0:
                x = float(leaves[tail].value) / default
                out[tail] = (value * x, f"[I] the default's shape ({q} = {x:.3g} x the median) on the measured {path}")
    return out


def _leaf_keys(cfg: DictConfig, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for k, v in cfg.items():
        path = f"{prefix}{k!s}"
        if isinstance(v, DictConfig):
            keys |= _leaf_keys(v, path + ".")
        else:
            keys.add(path)
    return keys


def check(text: str, default_text: str, measured: Mapping[str, Measured] | None = None) -> None:
    """Fail unless ``text`` has exactly the default file's keys and the measured values."""
    cfg = OmegaConf.create(text)
    ref = OmegaConf.create(default_text)
    assert isinstance(cfg, DictConfig) and isinstance(ref, DictConfig)
    missing = sorted(_leaf_keys(ref) - _leaf_keys(cfg))
    extra = sorted(_leaf_keys(cfg) - _leaf_keys(ref))
    if missing or extra:
        raise CalibrationError(f"calibration keys differ from the default file: missing {missing}, extra {extra}")
    for key, m in (measured or {}).items():
        got = OmegaConf.select(cfg, key)
        if not isinstance(got, float) or not math.isclose(got, m.value, rel_tol=1e-3, abs_tol=1e-15):
            raise CalibrationError(f"{key}: wrote {got!r}, meant {m.value!r}")


def target_path(name: str, out: str | os.PathLike[str] | None = None) -> Path:
    return Path(out) if out is not None else CALIBRATION_DIR / f"{name}.yaml"


def write(
    name: str,
    measured: Iterable[Measured],
    source: Source | None,
    *,
    out: str | os.PathLike[str] | None = None,
    defaults: str | os.PathLike[str] = DEFAULT_FILE,
    fresh: bool = False,
    note: str | None = None,
) -> Path:
    """Render and write the calibration file atomically (a reader never sees half of it)."""
    path = target_path(name, out)
    if Path(defaults).resolve() == path.resolve():
        raise CalibrationError("refusing to overwrite the default calibration file")
    previous = None if fresh or not path.is_file() else path.read_text()
    text = render(Path(defaults).read_text(), name, list(measured), source, previous_text=previous, note=note)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
