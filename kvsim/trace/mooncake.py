"""Reader and writer for the Mooncake FAST'25 trace format (JSON lines).

Each line: ``{"timestamp": ms, "input_length": tokens, "output_length": tokens,
"hash_ids": [ids of 512-token prefix blocks]}``. The reader streams the file line by
line into growable typed buffers, so memory is the columnar size of the trace, not the
size of its JSON objects, and it validates as it goes: the first bad line stops the
read with a :class:`TraceFormatError` naming the file, the line and the field.

A gzip file (``.gz``, recognized by its magic bytes) is read the same way, decompressed
as it streams. Ids must fit in int64. The format's ids are chained prefix hashes
renumbered in first-seen order (block k's hash covers blocks 0..k), so within a request
they strictly increase: a repeated or decreasing id is refused, since it means the file
is not what its format says.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from array import array
from operator import lt
from pathlib import Path

import numpy as np

from kvsim.trace.jsonl import int_field, number_field
from kvsim.trace.jsonl import records as json_records
from kvsim.trace.schema import Trace, TraceFormatError

REQUIRED_FIELDS = ("timestamp", "input_length", "output_length", "hash_ids")
INT64_MAX = 2**63 - 1
_INT_ONLY = {int}
CHAINED = "Mooncake hash_ids are chained prefix hashes numbered in first-seen order, so they strictly increase within a request"


def _bad_id_of(h: list[object]) -> str:
    """What is wrong with the first bad element of ``h`` (a list the fast check refused)."""
    prev = -1
    for j, v in enumerate(h):
        if v.__class__ is not int or v <= prev or v > INT64_MAX:
            return _bad_id(h, j)
        prev = v
    raise AssertionError("a list the fast check refused has a bad element")


def _bad_id(h: list[object], j: int) -> str:
    v = h[j]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        return f"element {j} is not a non-negative integer: {v!r}"
    if v > INT64_MAX:
        return f"element {j} ({v}) does not fit in int64 (at most {INT64_MAX})"
    what = "repeats an earlier id" if v in h[:j] else f"is less than element {j - 1} ({h[j - 1]})"
    return f"element {j} ({v}) {what}: {CHAINED}"


def read_mooncake_jsonl(
    path: str | os.PathLike[str],
    block_tokens: int = 512,
    *,
    check_block_count: bool = True,
    max_requests: int | None = None,
    name: str | None = None,
) -> Trace:
    """Read a Mooncake-format JSONL trace into a :class:`Trace`.

    Raises :class:`TraceFormatError` on the first malformed line, and
    ``FileNotFoundError`` if the file does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"trace file not found: {p}")
    arrays = _read_columnar(p, block_tokens, check_block_count, max_requests)
    if arrays is None:  # anything in doubt: the line reader, which names the first bad line
        arrays = _read_lines(p, block_tokens, check_block_count, max_requests)
    arrival, n_in, n_out, offsets, hash_ids = arrays
    return Trace(arrival_s=arrival, input_tokens=n_in, output_tokens=n_out, offsets=offsets, hash_ids=hash_ids,
                 block_tokens=block_tokens, name=name or (Path(p.stem).stem if p.suffix == ".gz" else p.stem),
                 source=str(p))


_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # arrival s, in, out, offsets, ids


def _read_lines(p: Path, block_tokens: int, check_block_count: bool, max_requests: int | None) -> _Arrays:
    """The file line by line, every field checked; the first bad line raises
    :class:`TraceFormatError` naming it."""
    ts = array("d")
    inp = array("q")
    out = array("q")
    offs = array("q", [0])
    ids = array("q")
    prev_ts = -math.inf
    for lineno, rec in json_records(p, REQUIRED_FIELDS):
        t_val = number_field(p, lineno, rec, "timestamp")
        if t_val < 0:
            raise TraceFormatError(p, lineno, "timestamp", f"negative ({t_val!r})")
        if t_val < prev_ts:
            raise TraceFormatError(
                p, lineno, "timestamp", f"decreases ({t_val!r} after {prev_ts!r})"
            )
        prev_ts = t_val
        n_in = int_field(p, lineno, rec, "input_length", 1)
        n_out = int_field(p, lineno, rec, "output_length", 0)
        h = rec["hash_ids"]
        if not isinstance(h, list) or not h:
            raise TraceFormatError(p, lineno, "hash_ids", "expected a non-empty list of integers")
        # Fast path in C for the common all-good list (ints only, bool and float excluded;
        # strictly increasing, so the first is the least and the last the largest); the
        # element loop only runs to name the bad element.
        if set(map(type, h)) != _INT_ONLY or h[0] < 0 or h[-1] > INT64_MAX or not all(map(lt, h, h[1:])):
            raise TraceFormatError(p, lineno, "hash_ids", _bad_id_of(h))
        if check_block_count and len(h) != math.ceil(n_in / block_tokens):
            raise TraceFormatError(
                p,
                lineno,
                "hash_ids",
                f"has {len(h)} blocks but input_length={n_in} needs "
                f"ceil({n_in}/{block_tokens}) = {math.ceil(n_in / block_tokens)}",
            )
        ts.append(float(t_val) / 1000.0)
        inp.append(n_in)
        out.append(n_out)
        ids.extend(h)
        offs.append(len(ids))
        if max_requests is not None and len(ts) >= max_requests:
            break
    if not ts:
        raise TraceFormatError(p, 0, "<file>", "no requests")
    return (
        np.frombuffer(ts, dtype=np.float64).copy(),
        np.frombuffer(inp, dtype=np.int64).copy(),
        np.frombuffer(out, dtype=np.int64).copy(),
        np.frombuffer(offs, dtype=np.int64).copy(),
        # No copy: the numpy array keeps the buffer alive, and a 100x trace's ids are 235 MB.
        np.frombuffer(ids, dtype=np.int64),
    )


def _read_columnar(p: Path, block_tokens: int, check_block_count: bool, max_requests: int | None) -> _Arrays | None:
    """The file parsed by pyarrow's streaming JSON reader (C++, block by block) and checked
    with numpy: the arrays the line reader builds, or None when anything is in doubt -- a
    value of another type (pyarrow refuses ``12.0`` for an integer, ``true`` for a number, an
    id past int64), a field missing or null or not one of the four, a byte-order mark, any
    check failing -- and then the line reader reads the file and names the first bad line.
    So this path never decides that a file is bad, and it accepts only what the line reader
    accepts, with the same values (written for speed: the line reader costs 5-6 us a line in
    Python; tests/test_trace_mooncake.py holds the two equal)."""
    try:
        import pyarrow as pa
        import pyarrow.json as pj
    except ImportError:
        return None
    with p.open("rb") as fh:
        head = fh.read(3)
    if head.startswith(b"\xef\xbb\xbf"):
        return None
    schema = pa.schema([("timestamp", pa.float64()), ("input_length", pa.int64()), ("output_length", pa.int64()),
                        ("hash_ids", pa.list_(pa.int64()))])
    # another field declines (the line reader ignores it): pyarrow would skip its text
    # unchecked, where the line reader refuses a line whose bytes are not UTF-8
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    try:
        with pa.input_stream(str(p), compression="gzip" if head.startswith(b"\x1f\x8b") else None) as source:
            reader = pj.open_json(source, parse_options=options)
            batches, rows = [], 0
            for batch in reader:  # block by block: a prefix (max_requests) stops early
                batches.append(batch)
                rows += batch.num_rows
                if max_requests is not None and rows >= max_requests:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
    except Exception:  # not JSON as pyarrow reads it: the line reader decides
        return None
    del batches
    if max_requests is not None:
        table = table.slice(0, max_requests)
    if table.num_rows == 0 or any(c.null_count for c in table.columns):
        return None
    ts = table.column("timestamp").to_numpy()
    n_in = table.column("input_length").to_numpy()
    n_out = table.column("output_length").to_numpy()
    lists = table.column("hash_ids").combine_chunks()
    ids_arrow = lists.flatten()  # (respects the slice)
    if ids_arrow.null_count:
        return None
    lengths = lists.value_lengths().to_numpy()
    ids = ids_arrow.to_numpy()
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # the line reader's checks, each on every line at once
    if not (np.isfinite(ts).all() and ts.min() >= 0 and ts.max() < 2.0**53):  # (ints exact as floats)
        return None
    if (np.diff(ts) < 0).any() or n_in.min() < 1 or n_out.min() < 0 or lengths.min() < 1 or ids.min() < 0:
        return None
    rising = np.diff(ids) > 0
    rising[offsets[1:-1] - 1] = True  # a request's first id need not exceed the last one's
    if not rising.all():
        return None
    if check_block_count and (lengths != -(-n_in // block_tokens)).any():
        return None
    out = (ts / 1000.0, np.ascontiguousarray(n_in, dtype=np.int64), np.ascontiguousarray(n_out, dtype=np.int64),
           offsets, np.ascontiguousarray(ids, dtype=np.int64))
    del table, lists, ids_arrow
    # the parse's buffers back to the system: the simulation that follows grows from here
    # (a 1.2 M-line file: 0.75 -> 0.44 GB resident after the read)
    pa.default_memory_pool().release_unused()
    return out


def write_mooncake_jsonl(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write ``trace`` in Mooncake format, atomically (temp file then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name, suffix=".tmp", dir=p.parent)
    os.chmod(tmp, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for i in range(len(trace)):
                rec = {
                    "timestamp": int(round(trace.arrival_s[i] * 1000.0)),
                    "input_length": int(trace.input_tokens[i]),
                    "output_length": int(trace.output_tokens[i]),
                    "hash_ids": trace.blocks(i).tolist(),
                }
                fh.write(json.dumps(rec) + "\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
