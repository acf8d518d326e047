"""A seeded generator of traces with the structure of Mooncake's conversation trace.

What it reproduces (checked in tests/test_trace_generate.py):

* chained prefix blocks: block ``i`` of a request is identified by everything before
  it, so two requests share block ``i`` only if they share blocks ``0..i-1`` too;
* a partial last block (``len(hash_ids) == ceil(input_length / 512)``) whose id changes
  when the next turn extends it, as a real prefix hash would;
* a root system prompt shared by every request (block 0 is everybody's first block),
  a few prompt variants after it, then per-session history;
* multi-turn sessions: turn ``t`` re-sends the whole history of turns ``< t`` plus a new
  user message, after a think time; sessions start as a Poisson process;
* ids renumbered in first-seen order, so within a request ids strictly increase and a
  request's new blocks take the next free consecutive ids, as in the public traces;
* timestamps rounded to a resolution (the conversation trace has about 3 s).
"""

from __future__ import annotations

import gzip
import heapq
import os
import sys
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kvsim.trace.schema import Trace


@dataclass(frozen=True)
class GeneratorConfig:
    duration_s: float = 900.0
    session_rate_per_s: float = 1.5  # Poisson arrivals of new sessions
    mean_turns: float = 1.6  # geometric number of turns per session
    think_time_mean_s: float = 90.0  # exponential gap between turns of a session
    root_prompt_tokens: int = 640  # shared by every request: block 0 is common
    prompt_variants: int = 6  # system-prompt variants after the root
    variant_tokens_mean: float = 2000.0
    first_message_tokens_mean: float = 9000.0  # documents / history pasted in turn 1
    message_tokens_mean: float = 900.0  # later user messages
    output_tokens_mean: float = 350.0
    max_input_tokens: int = 128_000
    timestamp_resolution_s: float = 3.0
    block_tokens: int = 512
    seed: int = 0


def _lognormal(rng: np.random.Generator, mean: float, sigma: float = 0.8) -> int:
    mu = np.log(mean) - sigma * sigma / 2.0  # so that E[X] == mean
    return max(1, int(rng.lognormal(mu, sigma)))


class GeneratedRequest(NamedTuple):
    arrival_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: list[int]


def iter_requests(
    cfg: GeneratorConfig = GeneratorConfig(), max_requests: int | None = None, stats: dict[str, int] | None = None
) -> Iterator[GeneratedRequest]:
    """The generated requests in arrival order, one at a time, in memory bounded by the
    sessions in progress (not by the trace's length): sessions are drawn in start order and
    their turns wait in a heap until no later session can come before them. The draws are
    in the order of the original one-pass generator, so a trace is the same however it is
    consumed; ``max_requests`` stops after that many (the duration then only ends sessions).
    ``stats`` (if given) gets the number of sessions started."""
    rng = np.random.default_rng(cfg.seed)
    bt = cfg.block_tokens
    variant_len = [
        cfg.root_prompt_tokens + _lognormal(rng, cfg.variant_tokens_mean, 0.5)
        for _ in range(cfg.prompt_variants)
    ]
    # (time, session, turn, input_tokens, output_tokens, prompt_len, variant)
    heap: list[tuple[float, int, int, int, int, int, int]] = []
    shared: dict[tuple[int, ...], int] = {}  # root and prompt-variant blocks: few, kept
    own: dict[int, dict[tuple[int, int], int]] = {}  # per session in progress: its blocks
    pending: dict[int, int] = {}  # requests of a session still in the heap
    res = cfg.timestamp_resolution_s
    next_id = 0
    emitted = 0
    t = 0.0
    session = 0

    def emit(r: tuple[float, int, int, int, int, int, int]) -> GeneratedRequest:
        nonlocal next_id
        when, sess, _turn, n_in, n_out, plen, variant = r
        blocks = own.setdefault(sess, {})
        ids = []
        for i in range(-(-n_in // bt)):
            lo, hi = i * bt, min((i + 1) * bt, n_in)
            # Content identity of the block; the chain is implicit because a block's key
            # pins its position and the tokens before it come from the same source.
            if hi <= plen:
                key: tuple[int, ...] = (0, i, hi - lo) if hi <= cfg.root_prompt_tokens else (1, variant, i, hi - lo)
                bid = shared.get(key)
                if bid is None:
                    bid = shared[key] = next_id
                    next_id += 1
            else:
                bid = blocks.get((i, hi - lo), -1)
                if bid < 0:
                    bid = blocks[(i, hi - lo)] = next_id
                    next_id += 1
            ids.append(bid)
        pending[sess] -= 1
        if not pending[sess]:  # the session's last request: its blocks are never seen again
            del pending[sess]
            own.pop(sess, None)
        arrival = float(np.floor(when / res) * res) if res > 0 else when
        return GeneratedRequest(arrival, n_in, n_out, ids)

    while True:
        t += rng.exponential(1.0 / cfg.session_rate_per_s)
        while heap and heap[0][0] <= t:  # nothing drawn from now on comes before these
            yield emit(heapq.heappop(heap))
            emitted += 1
            if max_requests is not None and emitted >= max_requests:
                return
        if t >= cfg.duration_s:
            break
        variant = int(rng.integers(cfg.prompt_variants))
        history = variant_len[variant]
        turns = int(rng.geometric(1.0 / cfg.mean_turns))
        when = t
        for turn in range(turns):
            msg = _lognormal(rng, cfg.first_message_tokens_mean if turn == 0 else cfg.message_tokens_mean)
            n_in = history + msg
            if n_in > cfg.max_input_tokens or when >= cfg.duration_s:
                break
            n_out = _lognormal(rng, cfg.output_tokens_mean)
            heapq.heappush(heap, (when, session, turn, n_in, n_out, variant_len[variant], variant))
            pending[session] = pending.get(session, 0) + 1
            history = n_in + n_out
            when += rng.exponential(cfg.think_time_mean_s)
        session += 1
        if stats is not None:
            stats["sessions"] = session
    while heap and (max_requests is None or emitted < max_requests):
        yield emit(heapq.heappop(heap))
        emitted += 1


def generate_trace(cfg: GeneratorConfig = GeneratorConfig(), name: str = "synthetic") -> Trace:
    arrival, n_in, n_out = array("d"), array("q"), array("q")
    hash_ids, offsets = array("q"), array("q", [0])
    stats = {"sessions": 0}
    for r in iter_requests(cfg, stats=stats):
        arrival.append(r.arrival_s)
        n_in.append(r.input_tokens)
        n_out.append(r.output_tokens)
        hash_ids.extend(r.hash_ids)
        offsets.append(len(hash_ids))
    return Trace(
        arrival_s=np.frombuffer(arrival, dtype=np.float64).copy(),
        input_tokens=np.frombuffer(n_in, dtype=np.int64).copy(),
        output_tokens=np.frombuffer(n_out, dtype=np.int64).copy(),
        offsets=np.frombuffer(offsets, dtype=np.int64).copy(),
        hash_ids=np.frombuffer(hash_ids, dtype=np.int64).copy(),
        block_tokens=cfg.block_tokens,
        name=name,
        meta={"generator": "kvsim.trace.generate", "seed": cfg.seed, "sessions": stats["sessions"]},
    )


# The public conversation trace: 12,031 requests in one hour.
CONVERSATION_RATE_PER_S = 12_031 / 3600.0
REQUESTS_PER_SESSION = 1.59  # measured: 10 h of the default config (1 + geometric turns, truncated)


def write_generated(
    path: str | os.PathLike[str], cfg: GeneratorConfig, max_requests: int | None = None, progress: bool = False
) -> dict[str, int]:
    """Stream the generated trace to ``path`` in Mooncake format (gzip if it ends in .gz),
    atomically: a temporary file renamed when complete. Memory does not grow with length."""
    from kvsim.io import atomic_path

    out = Path(path)
    n = blocks = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=max_requests, unit="req", desc=f"generate {out.name}", mininterval=1.0)
    with atomic_path(out) as tmp:
        opener = gzip.open if out.suffix == ".gz" else open
        with opener(tmp, "wt", encoding="utf-8") as fh:
            for r in iter_requests(cfg, max_requests=max_requests):
                fh.write(
                    f'{{"timestamp": {int(round(r.arrival_s * 1000.0))}, "input_length": {r.input_tokens}, '
                    f'"output_length": {r.output_tokens}, "hash_ids": [{", ".join(map(str, r.hash_ids))}]}}\n'
                )
                n += 1
                blocks += len(r.hash_ids)
                if bar is not None and n % 10_000 == 0:
                    bar.update(10_000)
    if bar is not None:
        bar.update(n % 10_000)
        bar.close()
    return {"requests": n, "block_accesses": blocks}


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m kvsim.trace.generate",
        description="Write a trace with the structure of Mooncake's conversation trace (shared root "
        "prompt, prompt variants, multi-turn sessions, chained prefix ids in first-seen order, 3 s "
        "timestamps) at any length and rate, streamed to disk.",
        epilog="Examples: --requests 1000000 --hours 24 (1 M requests over a day); --requests 120310 "
        "(10x the conversation trace at its rate); --hours 2 --rate 10.",
    )
    ap.add_argument("out", help="output file (.jsonl, or .jsonl.gz for gzip)")
    ap.add_argument("--requests", type=int, help="number of requests (the trace ends there)")
    ap.add_argument("--hours", type=float, help="length of the trace in hours (with --requests: sets the rate)")
    ap.add_argument("--rate", type=float, help="requests per second (default: the conversation trace's, 3.34)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--progress", action="store_true", help="show a progress bar")
    a = ap.parse_args(argv)
    if a.requests is None and a.hours is None:
        ap.error("give --requests N and/or --hours H")
    if (a.requests is not None and a.requests < 1) or (a.hours is not None and a.hours <= 0) or (
        a.rate is not None and a.rate <= 0
    ):
        ap.error("--requests, --hours and --rate must be positive")
    rate = a.rate
    if rate is None:
        rate = a.requests / (a.hours * 3600.0) if a.requests and a.hours else CONVERSATION_RATE_PER_S
    duration = a.hours * 3600.0 if a.hours is not None and a.requests is None else float("inf")
    cfg = GeneratorConfig(duration_s=duration, session_rate_per_s=rate / REQUESTS_PER_SESSION, seed=a.seed)
    t0 = time.perf_counter()
    counts = write_generated(a.out, cfg, max_requests=a.requests, progress=a.progress)
    print(f"{a.out}: {counts['requests']:,} requests, {counts['block_accesses']:,} block accesses "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
