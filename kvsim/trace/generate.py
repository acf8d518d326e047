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

from dataclasses import dataclass

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


def generate_trace(cfg: GeneratorConfig = GeneratorConfig(), name: str = "synthetic") -> Trace:
    rng = np.random.default_rng(cfg.seed)
    bt = cfg.block_tokens
    variant_len = [
        cfg.root_prompt_tokens + _lognormal(rng, cfg.variant_tokens_mean, 0.5)
        for _ in range(cfg.prompt_variants)
    ]
    # (time, session, turn, input_tokens, output_tokens, prompt_len, variant)
    reqs: list[tuple[float, int, int, int, int, int, int]] = []
    t = 0.0
    session = 0
    while True:
        t += rng.exponential(1.0 / cfg.session_rate_per_s)
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
            reqs.append((when, session, turn, n_in, n_out, variant_len[variant], variant))
            history = n_in + n_out
            when += rng.exponential(cfg.think_time_mean_s)
        session += 1
    reqs.sort(key=lambda r: (r[0], r[1], r[2]))

    ids: dict[tuple[int, ...], int] = {}
    hash_ids: list[int] = []
    offsets = [0]
    res = cfg.timestamp_resolution_s
    arrival = np.array([r[0] for r in reqs], dtype=np.float64)
    if res > 0:
        arrival = np.floor(arrival / res) * res
    for _, sess, _turn, n_in, _n_out, plen, variant in reqs:
        for i in range(-(-n_in // bt)):
            lo, hi = i * bt, min((i + 1) * bt, n_in)
            # Content identity of the block; the chain is implicit because a block's
            # key pins its position and the tokens before it come from the same source.
            if hi <= cfg.root_prompt_tokens:
                key: tuple[int, ...] = (0, i, hi - lo)
            elif hi <= plen:
                key = (1, variant, i, hi - lo)
            else:
                key = (2, sess, i, hi - lo)
            bid = ids.get(key)
            if bid is None:
                bid = ids[key] = len(ids)
            hash_ids.append(bid)
        offsets.append(len(hash_ids))
    return Trace(
        arrival_s=arrival,
        input_tokens=np.array([r[3] for r in reqs], dtype=np.int64),
        output_tokens=np.array([r[4] for r in reqs], dtype=np.int64),
        offsets=np.array(offsets, dtype=np.int64),
        hash_ids=np.array(hash_ids, dtype=np.int64),
        block_tokens=bt,
        name=name,
        meta={"generator": "kvsim.trace.generate", "seed": cfg.seed, "sessions": session},
    )
