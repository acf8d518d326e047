"""What every trace reader shares beyond its format: which files a trace path holds, what
identifies their contents (for caches of traces read), requests' rows put in arrival order,
and ids renumbered in first-seen order. Light: pandas is imported only by :func:`first_seen_dense`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def session_files(path: str | os.PathLike[str], what: str = "trace") -> list[Path]:
    """The session files of ``path`` sorted by name (a folder), or ``[path]`` (a file);
    ``what`` names the trace in the messages (the format whose reader asks)."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"{what} not found: {p} (a folder of *.json / *.json.gz sessions, or one file)")
    files = sorted(f for f in p.iterdir() if f.is_file() and (f.name.endswith(".json") or f.name.endswith(".json.gz")))
    if not files:
        raise FileNotFoundError(f"{what}: no *.json or *.json.gz session files in {p}")
    return files


def files_stamp(path: str | os.PathLike[str]) -> tuple[tuple[str, int, int], ...]:
    """What a trace path's contents are known by: the name, size and modification time of
    each of its files (:func:`session_files`: a folder's sessions, or the one file)."""
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in session_files(path))


def reorder_rows(values: np.ndarray, offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``order`` of a ragged array (row i is ``values[offsets[i]:offsets[i + 1]]``), in
    that order: ``(values, offsets)`` of the result. Rows already in order (a file in time
    order, the usual case) are sliced, not copied."""
    lens = np.diff(offsets)[order]
    out_off = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lens, out=out_off[1:])
    if np.array_equal(order, np.arange(len(order))):
        return values[: int(out_off[-1])], out_off
    # position i of the result comes from its row's old start + (i - its new start)
    gather = np.repeat(np.asarray(offsets[:-1])[order] - out_off[:-1], lens) + np.arange(int(out_off[-1]), dtype=np.int64)
    return values[gather], out_off


def first_seen_dense(codes: np.ndarray) -> np.ndarray:
    """Renumber ``codes`` to 0, 1, 2, ... in order of first appearance (a hash table in C:
    pandas.factorize numbers values in the order it meets them)."""
    import pandas as pd

    dense, _ = pd.factorize(codes, sort=False)
    return np.asarray(dense, dtype=np.int64)
