"""Reader for the Alibaba Qwen-Bailian usage traces into the canonical Trace.

The traces (alibaba-edu/qwen-bailian-usagetraces-anon: ``qwen_traceA_blksz_16.jsonl``,
``qwen_traceB_...``, ``qwen_coder_...``, ``qwen_thinking_...``; the format as AIPerf's
Bailian tutorial documents it) are JSON lines, one request a line:

    chat_id         an integer naming the request (a string is taken too)
    parent_chat_id  the chat_id of the session's previous turn; -1 (or absent): a first turn
    timestamp       arrival, seconds (a number)
    input_length    tokens in (>= 1);  output_length: tokens out (>= 0)
    type            text | search | image | file (optional; counted in the trace's meta)
    turn            the turn's number in its session (optional)
    hash_ids        one id per 16-token block of the input: a salted SipHash of the block's
                    *own* tokens (unsigned 64-bit; written signed, the same 64 bits; a
                    short input may have none)

What kvsim makes of a file, defined exactly so that anyone can reproduce it:

    order     requests sorted by timestamp, ties in file order (a stable sort)
    time      arrival = timestamp - the first timestamp (kept in meta as ``t0_s``)
    prefixes  a file id names a block's own content, not its prefix, so equal ids under
              different prefixes are different KV (a prefix cache cannot serve them). kvsim
              chains them: the block at position j of a request is the sequence of the
              request's file ids 0..j, so two blocks are one block exactly when their whole
              prefixes are equal -- the meaning of the Mooncake traces' ids and of vLLM's
              chained block hashes
    blocks    block_tokens = g x 16: a request keeps its prefixes at positions g-1, 2g-1, ...
              (floor(len(hash_ids) / g) blocks; a prefix ending on a coarse boundary names
              the coarse block)
    ids       the kept prefixes renumbered 0, 1, 2, ... in first-seen order (request order,
              then position), so that, as in the Mooncake traces, ids strictly increase
              within a request and a request's new blocks take consecutive ids
    session   the first turn reached by following parent_chat_id (a parent absent from the
              file, e.g. before the capture began, starts a session), numbered 0, 1, 2, ...
              in first-seen order: the trace's ``session`` column

The chaining is done level by level over numpy arrays (position j of every request that has
one, then j+1), so memory is a few arrays of the block accesses' size, never a table per
distinct block or anything sized by an id's value. Every malformed field stops the read with
one line naming the file, the line and the field (:class:`TraceFormatError`).
"""

from __future__ import annotations

import os
import re
from array import array
from collections import Counter
from pathlib import Path

import numpy as np

from kvsim.errors import ConfigError
from kvsim.trace.files import first_seen_dense, reorder_rows
from kvsim.trace.jsonl import int_field, number_field, records
from kvsim.trace.schema import Trace, TraceFormatError

SOURCE_BLOCK_TOKENS = 16  # the format's block: every file of the dataset says blksz_16
REQUIRED_FIELDS = ("chat_id", "timestamp", "input_length", "output_length", "hash_ids")
UINT64_MAX = 2**64 - 1
INT64_MIN = -(2**63)
_INTEGER = re.compile(r"-?[0-9]+")


def _chat(path: Path, lineno: int, rec: dict, name: str, default: int | None = None) -> int | str:
    # an integer as the published files have, or a non-empty string (an id is only compared)
    value = rec.get(name, default)
    if isinstance(value, str) and value:
        return int(value) if _INTEGER.fullmatch(value) else value  # "-1" is -1
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise TraceFormatError(path, lineno, name, f"expected an integer or a string, got {value!r}")
    return value


def _ids(path: Path, lineno: int, h: object) -> list[int]:
    """The ids of a line as unsigned 64-bit values: a hash written as a signed 64-bit integer
    is the same 64 bits (ids are only compared)."""
    if not isinstance(h, list):
        raise TraceFormatError(path, lineno, "hash_ids", f"expected a list of integers, got {type(h).__name__}")
    # Fast path in C for an all-good list; the loop only runs to name the bad element.
    if h and (set(map(type, h)) != {int} or min(h) < INT64_MIN or max(h) > UINT64_MAX):
        for j, v in enumerate(h):
            if isinstance(v, bool) or not isinstance(v, int) or not INT64_MIN <= v <= UINT64_MAX:
                raise TraceFormatError(path, lineno, "hash_ids", f"element {j} is not a 64-bit integer: {v!r}")
    return [v & UINT64_MAX for v in h] if h and min(h) < 0 else h


def check_block_tokens(block_tokens: int) -> None:
    """A block of a Bailian trace is a whole number of the file's 16-token blocks (checked
    when a config is composed, and by the reader); :class:`ConfigError` naming the key."""
    if block_tokens <= 0 or block_tokens % SOURCE_BLOCK_TOKENS:
        raise ConfigError(
            f"trace.block_tokens: Bailian traces have {SOURCE_BLOCK_TOKENS}-token blocks, so a block must be a "
            f"positive multiple of {SOURCE_BLOCK_TOKENS} tokens, got {block_tokens}"
        )


def chain_prefixes(raw: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, int]:
    """One id per position of each request's ``raw`` ids (CSR ``offsets``), equal exactly
    when the whole prefixes (raw ids 0..j of their requests) are equal, and how many
    distinct prefixes there are (the ids are 0 .. that - 1, in no particular order: renumber
    them with :func:`first_seen_dense`)."""
    lens = np.diff(offsets)
    out = np.empty(len(raw), dtype=np.int64)
    if len(raw) == 0:
        return out, 0
    by_len = np.argsort(-lens, kind="stable")  # longest first: level j is a prefix of this order
    starts = offsets[:-1][by_len]
    neg = -lens[by_len]  # ascending
    import pandas as pd  # here: the config imports this module for a constant, and pandas takes 0.2 s

    raw64 = raw.view(np.int64)  # the same 64 bits: only equality matters
    base = 0
    for j in range(int(-neg[0])):
        m = int(np.searchsorted(neg, -j, side="left"))  # the requests longer than j
        pos = starts[:m] + j
        codes, _ = pd.factorize(raw64[pos], sort=False)
        if j:
            # the pair (prefix to j-1, id j) as one integer: both factorized first, so the
            # pair fits (< m * m)
            prev, _ = pd.factorize(out[pos - 1], sort=False)
            codes, _ = pd.factorize(prev.astype(np.int64) * m + codes, sort=False)
        out[pos] = codes + base
        base += int(codes.max()) + 1
    return out, base


def read_bailian_jsonl(
    path: str | os.PathLike[str],
    block_tokens: int = SOURCE_BLOCK_TOKENS,
    *,
    max_requests: int | None = None,
    name: str | None = None,
) -> Trace:
    """Read a Qwen-Bailian JSONL trace (plain or gzip) into a :class:`Trace` (see the module
    docstring for what is read and how). ``max_requests``: the first N requests by arrival."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"trace file not found: {p}")
    check_block_tokens(block_tokens)
    g = block_tokens // SOURCE_BLOCK_TOKENS
    ts = array("d")
    inp = array("q")
    out = array("q")
    chats: list[int | str] = []
    parents: list[int | str] = []
    offs = array("q", [0])
    raw = array("Q")
    types: Counter[str] = Counter()
    for lineno, rec in records(p, REQUIRED_FIELDS):
        t_val = number_field(p, lineno, rec, "timestamp", "a number of seconds")
        chat = _chat(p, lineno, rec, "chat_id")
        parent = _chat(p, lineno, rec, "parent_chat_id", -1)
        n_in = int_field(p, lineno, rec, "input_length", 1)
        n_out = int_field(p, lineno, rec, "output_length", 0)
        h = _ids(p, lineno, rec["hash_ids"])
        kind = rec.get("type", "text")
        types[kind if isinstance(kind, str) else repr(kind)] += 1
        ts.append(float(t_val))
        inp.append(n_in)
        out.append(n_out)
        chats.append(chat)
        parents.append(parent)
        raw.extend(h)
        offs.append(len(raw))
    if not ts:
        raise TraceFormatError(p, 0, "<file>", "no requests")

    t = np.frombuffer(ts, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    if max_requests is not None:
        order = order[:max_requests]
    # each request's ids in arrival order
    ids, offsets = reorder_rows(np.frombuffer(raw, dtype=np.uint64), np.frombuffer(offs, dtype=np.int64), order)
    lens = np.diff(offsets)

    prefixes, distinct = chain_prefixes(ids, offsets)
    # what chaining changes: accesses whose file id was seen before (what a reader taking the
    # ids as they are would count as reuse) against those whose whole prefix was
    repeats = {"by_file_id": len(ids) - len(np.unique(ids.view(np.int64))), "by_prefix": len(ids) - distinct}
    if g > 1:  # keep positions g-1, 2g-1, ... of every request
        kept_lens = lens // g
        kept_offsets = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(kept_lens, out=kept_offsets[1:])
        k = np.arange(int(kept_offsets[-1]), dtype=np.int64) - np.repeat(kept_offsets[:-1], kept_lens)
        prefixes = prefixes[np.repeat(offsets[:-1], kept_lens) + (k + 1) * g - 1]
        offsets = kept_offsets
    hash_ids = first_seen_dense(prefixes)

    root: dict[int | str, int] = {}  # chat -> its session, numbered in arrival order
    session = np.empty(len(order), dtype=np.int64)
    sessions = 0
    for i, k in enumerate(order.tolist()):
        c, par = chats[k], parents[k]
        r = root.get(par, -1) if par != -1 else -1
        if r < 0:  # a first turn, or a parent not in the file: a new session
            r, sessions = sessions, sessions + 1
        root[c] = r
        session[i] = r

    t_sorted = t[order]
    t0 = float(t_sorted[0])
    return Trace(
        arrival_s=t_sorted - t0,
        input_tokens=np.frombuffer(inp, dtype=np.int64)[order],
        output_tokens=np.frombuffer(out, dtype=np.int64)[order],
        offsets=offsets,
        hash_ids=hash_ids,
        block_tokens=int(block_tokens),
        name=name or (Path(p.stem).stem if p.suffix == ".gz" else p.stem),
        source=str(p),
        meta={
            "format": "bailian",
            "source_block_tokens": SOURCE_BLOCK_TOKENS,
            "t0_s": t0,
            "sessions": sessions,
            "types": dict(sorted(types.items())),
            "source_block_repeats": repeats,
        },
        session=session,
    )
