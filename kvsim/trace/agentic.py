"""Reader for agentic coding-session traces (kv-cache-tester format) into the canonical Trace.

A session file is one JSON document (``*.json`` or gzip-compressed ``*.json.gz``):
``{"block_size": 64, "hash_id_scope": "local", "requests": [...]}``. A request has ``t``
(seconds from its timeline's start), ``model``, ``in``, ``out`` (tokens), ``hash_ids`` (one
chained prefix id per complete source block) and optionally ``ttft`` and ``api_time``
(seconds, measured on the real service). A record with ``"type": "subagent"`` has its own
``t`` in the parent's timeline and its own ``requests``, whose ``t`` counts from its start.

The merged workload, defined exactly so that anyone can reproduce it:

    files       sorted by name (a folder's ``*.json`` and ``*.json.gz``; or the one file given);
                session k is the k-th file
    start(k)    session_starts = interval: k * session_interval_s
                session_starts = poisson:  0 for k = 0, then start(k-1) + Exp(3600 / sessions_per_hour),
                                           the gaps drawn in order from the Generator passed in
    flatten     walk the session's ``requests`` in file order; a sub-agent record is replaced
                by its own requests (recursively), at the record's position; ``pos`` numbers
                the resulting requests 0, 1, 2, ...
    time        a request directly in the session: start(k) + t; in a sub-agent whose record
                has t_sub: (start(k) + t_sub) + t  (sums taken left to right, in float64)
    order       requests sorted by (time, k, pos)
    identity    a block is (k, model, id): sessions have their own id space and different
                models never share KV; ids are renumbered to dense integers 0, 1, 2, ... in
                first-seen order of the merged workload (request order, then position in the
                request)
    blocks      source blocks of b tokens (the file's ``block_size``, 64): a request has
                floor(in / b) ids (checked); with ``block_tokens`` = g * b the request keeps
                ids[g-1], ids[2g-1], ... (a chained id names the whole prefix up to its
                block, so the g-th id names the coarse block), floor(floor(in / b) / g) of them

Every malformed field stops the read with a one-line :class:`SessionFormatError` naming the
file and the request's position in it (``requests[12]``, ``requests[40].requests[3]`` for a
sub-agent's request). The real ``ttft`` and ``api_time`` become the trace's optional
``real_ttft_s`` / ``real_api_time_s`` columns (NaN where a request has none).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvsim.trace.files import first_seen_dense, reorder_rows, session_files
from kvsim.trace.schema import Trace, TraceFormatError

SOURCE_BLOCK_TOKENS = 64  # the format's block size (each file states it in ``block_size``)
SESSION_STARTS = ("interval", "poisson")


class SessionFormatError(TraceFormatError):
    """A session file is malformed: ``FILE:requests[i]...: field 'f': problem`` on one line."""

    def __init__(self, path: str | Path, where: str, field_name: str, problem: str) -> None:
        self.path = str(path)
        self.line = 0
        self.where = where
        self.field = field_name
        self.problem = problem
        ValueError.__init__(self, f"{self.path}:{where}: field '{field_name}': {problem}")


def session_starts(
    n: int,
    mode: str = "interval",
    interval_s: float = 60.0,
    sessions_per_hour: float = 60.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Start times of ``n`` sessions (see the module docstring)."""
    if mode == "interval":
        if not (interval_s >= 0 and math.isfinite(interval_s)):
            raise ValueError(f"trace.session_interval_s must be a finite number >= 0, got {interval_s}")
        return np.arange(n, dtype=np.float64) * float(interval_s)
    if mode == "poisson":
        if not (sessions_per_hour > 0 and math.isfinite(sessions_per_hour)):
            raise ValueError(f"trace.sessions_per_hour must be a finite number > 0, got {sessions_per_hour}")
        if rng is None:
            raise ValueError("session_starts=poisson needs a numpy Generator (the run's seed)")
        gaps = rng.exponential(3600.0 / float(sessions_per_hour), size=max(n - 1, 0))
        return np.concatenate([[0.0], np.cumsum(gaps)]) if n else np.zeros(0)
    raise ValueError(f"trace.session_starts must be one of {SESSION_STARTS}, got {mode!r}")


@dataclass
class _Session:
    """One session's requests in flattened order (before merging)."""

    times: list[float] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    models: list[int] = field(default_factory=list)  # index into the session's model list
    ttft: list[float] = field(default_factory=list)
    api_time: list[float] = field(default_factory=list)
    ids: list[np.ndarray] = field(default_factory=list)
    model_names: list[str] = field(default_factory=list)
    subagents: int = 0
    block_size: int = SOURCE_BLOCK_TOKENS


def _load(path: Path) -> Any:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return json.load(fh)
        with path.open("r", encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise SessionFormatError(path, f"{exc.lineno}", "<json>", f"not valid JSON ({exc.msg})") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SessionFormatError(path, "0", "<file>", f"cannot be read ({exc})") from None


def _number(path: Path, where: str, rec: dict[str, Any], name: str, *, optional: bool = False) -> float:
    if name not in rec or rec[name] is None:
        if optional:
            return math.nan
        raise SessionFormatError(path, where, name, "missing")
    v = rec[name]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise SessionFormatError(path, where, name, f"expected a finite number, got {v!r}")
    if v < 0:
        raise SessionFormatError(path, where, name, f"must be >= 0, got {v!r}")
    return float(v)


def _count(path: Path, where: str, rec: dict[str, Any], name: str) -> int:
    if name not in rec:
        raise SessionFormatError(path, where, name, "missing")
    v = rec[name]
    if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not v.is_integer()):
        raise SessionFormatError(path, where, name, f"expected an integer, got {v!r}")
    if v < 0:
        raise SessionFormatError(path, where, name, f"must be >= 0, got {v!r}")
    return int(v)


def read_session(path: str | os.PathLike[str]) -> _Session:
    """Parse and validate one session file into its flattened requests."""
    p = Path(path)
    doc = _load(p)
    if not isinstance(doc, dict):
        raise SessionFormatError(p, "session", "<json>", "expected a JSON object (one session)")
    s = _Session()
    bs = doc.get("block_size", SOURCE_BLOCK_TOKENS)
    if isinstance(bs, bool) or not isinstance(bs, int) or bs <= 0:
        raise SessionFormatError(p, "session", "block_size", f"expected a positive integer, got {bs!r}")
    s.block_size = bs
    scope = doc.get("hash_id_scope", "local")
    if scope != "local":
        raise SessionFormatError(p, "session", "hash_id_scope", f"only 'local' (ids per session) is supported, got {scope!r}")
    if not isinstance(doc.get("requests"), list):
        raise SessionFormatError(p, "session", "requests", "missing or not a list")
    model_index: dict[str, int] = {}

    def walk(reqs: list[Any], t0: float, prefix: str) -> None:
        for j, r in enumerate(reqs):
            where = f"{prefix}requests[{j}]"
            if not isinstance(r, dict):
                raise SessionFormatError(p, where, "<json>", "expected a JSON object")
            if r.get("type") == "subagent":
                t_sub = _number(p, where, r, "t")
                if not isinstance(r.get("requests"), list):
                    raise SessionFormatError(p, where, "requests", "a sub-agent needs a list of requests")
                s.subagents += 1
                walk(r["requests"], t0 + t_sub, where + ".")
                continue
            t = _number(p, where, r, "t")
            model = r.get("model")
            if not isinstance(model, str) or not model:
                raise SessionFormatError(p, where, "model", f"expected a model name, got {model!r}")
            n_in = _count(p, where, r, "in")
            n_out = _count(p, where, r, "out")
            h = r.get("hash_ids")
            if not isinstance(h, list):
                raise SessionFormatError(p, where, "hash_ids", f"expected a list of integers, got {type(h).__name__}")
            if set(map(type, h)) - {int}:  # bool is not int here: type() is exact
                j_bad = next(i for i, v in enumerate(h) if type(v) is not int)
                raise SessionFormatError(p, where, "hash_ids", f"element {j_bad} is not an integer: {h[j_bad]!r}")
            if h and min(h) < 0:
                j_bad = next(i for i, v in enumerate(h) if v < 0)
                raise SessionFormatError(p, where, "hash_ids", f"element {j_bad} is negative: {h[j_bad]!r}")
            try:
                ids = np.array(h, dtype=np.int64)
            except OverflowError:
                j_bad = next(i for i, v in enumerate(h) if v >= 1 << 63)
                raise SessionFormatError(p, where, "hash_ids", f"element {j_bad} is outside int64: {h[j_bad]!r}") from None
            if len(ids) > 1:
                up = np.diff(ids) > 0
                if not up.all():  # chained prefix hashes renumbered: each id is new in its chain
                    j_bad = int(np.argmin(up)) + 1
                    raise SessionFormatError(
                        p, where, "hash_ids",
                        f"ids must increase along the chain: element {j_bad} ({h[j_bad]}) after {h[j_bad - 1]}",
                    )
            if len(h) != n_in // bs:
                raise SessionFormatError(
                    p, where, "hash_ids",
                    f"has {len(h)} ids but in={n_in} needs floor({n_in}/{bs}) = {n_in // bs}",
                )
            s.times.append(t0 + t)
            s.inputs.append(n_in)
            s.outputs.append(n_out)
            s.models.append(model_index.setdefault(model, len(model_index)))
            s.ttft.append(_number(p, where, r, "ttft", optional=True))
            s.api_time.append(_number(p, where, r, "api_time", optional=True))
            s.ids.append(ids)

    walk(doc["requests"], 0.0, "")
    s.model_names = list(model_index)
    return s


def read_agentic(
    path: str | os.PathLike[str],
    block_tokens: int = SOURCE_BLOCK_TOKENS,
    *,
    session_starts_mode: str = "interval",
    session_interval_s: float = 60.0,
    sessions_per_hour: float = 60.0,
    rng: np.random.Generator | None = None,
    max_requests: int | None = None,
    name: str | None = None,
) -> Trace:
    """Read a folder of agentic sessions (or one session file) as one merged :class:`Trace`."""
    files = session_files(path, "agentic trace")
    sessions = [read_session(f) for f in files]
    bs = sessions[0].block_size
    for f, s in zip(files, sessions, strict=True):
        if s.block_size != bs:
            raise SessionFormatError(f, "session", "block_size", f"{s.block_size} differs from {files[0].name}'s {bs}")
    if block_tokens <= 0 or block_tokens % bs:
        raise ValueError(f"trace.block_tokens must be a positive multiple of the sessions' block_size {bs}, got {block_tokens}")
    g = block_tokens // bs
    starts = session_starts(len(files), session_starts_mode, session_interval_s, sessions_per_hour, rng)

    # Per request, in (session, pos) order: time, session, pos, and its kept ids as block codes
    # that are dense per (session, model): code = base(session, model) + rank of id in it.
    times, sess, pos, n_in, n_out, ttft, api = [], [], [], [], [], [], []
    lens: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    base = 0
    model_names: set[str] = set()
    for k, s in enumerate(sessions):
        n = len(s.times)
        st = float(starts[k])
        times.append(np.array([st + t for t in s.times], dtype=np.float64) if n else np.zeros(0))
        sess.append(np.full(n, k, dtype=np.int64))
        pos.append(np.arange(n, dtype=np.int64))
        n_in.append(np.array(s.inputs, dtype=np.int64))
        n_out.append(np.array(s.outputs, dtype=np.int64))
        ttft.append(np.array(s.ttft, dtype=np.float64))
        api.append(np.array(s.api_time, dtype=np.float64))
        model_names.update(s.model_names)
        kept = [h[g - 1 :: g] for h in s.ids]
        ln = np.array([len(h) for h in kept], dtype=np.int64)
        flat = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
        mod = np.repeat(np.array(s.models, dtype=np.int64), ln)
        code = np.empty(len(flat), dtype=np.int64)
        for m in range(len(s.model_names)):
            sel = mod == m
            local, uniq = pd.factorize(flat[sel])
            code[sel] = base + local
            base += len(uniq)
        lens.append(ln)
        codes.append(code)

    t_all = np.concatenate(times)
    s_all = np.concatenate(sess)
    p_all = np.concatenate(pos)
    order = np.lexsort((p_all, s_all, t_all))
    if max_requests is not None:
        order = order[: max(int(max_requests), 0)]
    if len(order) == 0:
        raise SessionFormatError(files[0], "session", "requests", "no requests in the trace")
    src_off = np.concatenate([[0], np.cumsum(np.concatenate(lens))]).astype(np.int64)
    merged, offsets = reorder_rows(np.concatenate(codes), src_off, order)  # each request's codes, merged order
    hash_ids = first_seen_dense(merged)
    files_meta = [f.name for f in files]
    return Trace(
        arrival_s=t_all[order],
        input_tokens=np.concatenate(n_in)[order],
        output_tokens=np.concatenate(n_out)[order],
        offsets=offsets,
        hash_ids=hash_ids,
        block_tokens=int(block_tokens),
        name=name or Path(path).name.split(".")[0],
        source=str(path),
        meta={
            "format": "agentic",
            "sessions": len(files),
            "session_files": files_meta,
            "subagents": int(sum(s.subagents for s in sessions)),
            "models": sorted(model_names),
            "source_block_tokens": bs,
            "session_starts": session_starts_mode,
            "session_interval_s": float(session_interval_s),
            "sessions_per_hour": float(sessions_per_hour),
        },
        session=s_all[order],
        real_ttft_s=np.concatenate(ttft)[order],
        real_api_time_s=np.concatenate(api)[order],
    )
