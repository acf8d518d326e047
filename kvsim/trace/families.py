"""Generated trace families whose structure differs from the conversation trace and from each
other, for judging placement policies on data they were not shaped on.

Each family is a seeded generator of prefix-chained requests (512-token blocks, the last block
partial, ids renumbered to dense integers in first-seen order, as in the Mooncake traces):

``tool_use``       shared-prefix heavy tool use. A few long tool-suite prefixes (system prompt +
                   tool schemas, 4k-30k tokens) with Zipf popularity; agent tasks arrive as a
                   Poisson process and run a geometric number of quick steps, each re-sending
                   the suite prefix, the task and the tool results so far. Most tokens of a
                   request are a prefix shared with many other tasks.
``long_sessions``  long multi-turn sessions with no sharing between them (beyond a one-block
                   system prompt): tens of turns, each appending a user message and an answer
                   to the history and re-sending all of it after a think time of about a
                   minute; a history past the context limit is compacted into a new chain.
                   Many sessions are active at once, so their histories compete in the cache.
``zipf_docs``      independent documents with Zipf popularity: each request is one document
                   (its own chain, no common head) followed by a fresh question. Reuse is
                   whole-document and frequency-driven; sessions and recency play no part.

Parameters are written once here (not tuned to any policy); ``scale`` multiplies the duration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kvsim.trace.schema import Trace

BLOCK_TOKENS = 512


def _lognormal(rng: np.random.Generator, mean: float, sigma: float = 0.8) -> int:
    mu = np.log(mean) - sigma * sigma / 2.0  # E[X] == mean
    return max(1, int(rng.lognormal(mu, sigma)))


class _Builder:
    """Collects requests as lists of content segments and turns them into a Trace.

    A request's prompt is a sequence of segments ``(source, tokens)`` (a source always has the
    same length); a block's identity is the sequence of sources up to the segment holding its
    last token and its end offset in that segment (a chained prefix hash), so two requests
    share block i exactly when their tokens up to the end of block i come from the same
    segments."""

    def __init__(self) -> None:
        self.reqs: list[tuple[float, int, tuple[tuple[object, int], ...], int]] = []

    def add(self, t: float, order: int, segments: tuple[tuple[object, int], ...], n_out: int) -> None:
        self.reqs.append((t, order, segments, n_out))

    def build(self, name: str, meta: dict[str, object]) -> Trace:
        self.reqs.sort(key=lambda r: (r[0], r[1]))
        ids: dict[tuple[int, int], int] = {}
        chains: dict[tuple[int, object], int] = {}  # (chain of the segments before, source) -> chain id
        hash_ids: list[int] = []
        offsets = [0]
        n_in_col: list[int] = []
        for _, _, segments, _ in self.reqs:
            # chain[j]: id of the segment sequence segments[:j+1]; start[j]: its first token
            chain, start, prev, pos = [], [], -1, 0
            for src, n in segments:
                prev = chains.setdefault((prev, src), len(chains))
                chain.append(prev)
                start.append(pos)
                pos += n
            n_in = pos
            n_in_col.append(n_in)
            j = 0
            for i in range(-(-n_in // BLOCK_TOKENS)):
                end = min((i + 1) * BLOCK_TOKENS, n_in)  # block i: tokens [i*B, end)
                while start[j] + segments[j][1] < end:
                    j += 1  # segment holding token end - 1
                key = (chain[j], end - start[j])
                bid = ids.get(key)
                if bid is None:
                    bid = ids[key] = len(ids)
                hash_ids.append(bid)
            offsets.append(len(hash_ids))
        return Trace(
            arrival_s=np.array([r[0] for r in self.reqs], dtype=np.float64),
            input_tokens=np.array(n_in_col, dtype=np.int64),
            output_tokens=np.array([r[3] for r in self.reqs], dtype=np.int64),
            offsets=np.array(offsets, dtype=np.int64),
            hash_ids=np.array(hash_ids, dtype=np.int64),
            block_tokens=BLOCK_TOKENS,
            name=name,
            meta={"generator": "kvsim.trace.families", **meta},
        )


@dataclass(frozen=True)
class ToolUse:
    duration_s: float = 900.0
    task_rate_per_s: float = 2.0
    suites: int = 24  # distinct tool-suite prefixes
    suite_zipf: float = 1.0
    suite_tokens_mean: float = 12000.0
    task_tokens_mean: float = 800.0
    mean_steps: float = 8.0
    step_gap_mean_s: float = 4.0  # tool latency + model time between steps
    tool_result_tokens_mean: float = 500.0
    output_tokens_mean: float = 150.0


def tool_use(seed: int = 0, scale: float = 1.0, p: ToolUse = ToolUse()) -> Trace:
    rng = np.random.default_rng(seed)
    suite_len = [max(BLOCK_TOKENS * 8, _lognormal(rng, p.suite_tokens_mean, 0.6)) for _ in range(p.suites)]
    w = 1.0 / np.arange(1, p.suites + 1) ** p.suite_zipf
    w /= w.sum()
    b = _Builder()
    t, task = 0.0, 0
    while True:
        t += rng.exponential(1.0 / p.task_rate_per_s)
        if t >= p.duration_s * scale:
            break
        s = int(rng.choice(p.suites, p=w))
        segs: list[tuple[object, int]] = [(("suite", s), suite_len[s]), (("task", task), _lognormal(rng, p.task_tokens_mean))]
        when = t
        for step in range(int(rng.geometric(1.0 / p.mean_steps))):
            n_out = _lognormal(rng, p.output_tokens_mean)
            b.add(when, task, tuple(segs), n_out)
            segs.append((("step", task, step), n_out + _lognormal(rng, p.tool_result_tokens_mean)))
            when += rng.exponential(p.step_gap_mean_s)
        task += 1
    return b.build("tool_use", {"family": "tool_use", "seed": seed, "tasks": task})


@dataclass(frozen=True)
class LongSessions:
    duration_s: float = 7200.0
    session_rate_per_s: float = 1.0 / 30.0
    mean_turns: float = 40.0
    think_time_mean_s: float = 60.0
    system_tokens: int = 512
    first_message_tokens_mean: float = 3000.0
    message_tokens_mean: float = 400.0
    output_tokens_mean: float = 600.0
    context_limit_tokens: int = 64000
    summary_tokens_mean: float = 4000.0


def long_sessions(seed: int = 0, scale: float = 1.0, p: LongSessions = LongSessions()) -> Trace:
    rng = np.random.default_rng(seed)
    b = _Builder()
    t, sess = 0.0, 0
    while True:
        t += rng.exponential(1.0 / p.session_rate_per_s)
        if t >= p.duration_s * scale:
            break
        segs: list[tuple[object, int]] = [(("system",), p.system_tokens), (("msg", sess, 0), _lognormal(rng, p.first_message_tokens_mean))]
        when, chain = t, 0
        for turn in range(int(rng.geometric(1.0 / p.mean_turns))):
            if when >= p.duration_s * scale:
                break
            if sum(n for _, n in segs) > p.context_limit_tokens:  # compaction: a new chain
                chain += 1
                segs = [(("system",), p.system_tokens), (("summary", sess, chain), _lognormal(rng, p.summary_tokens_mean))]
            n_out = _lognormal(rng, p.output_tokens_mean)
            b.add(when, sess, tuple(segs), n_out)
            segs += [(("answer", sess, turn), n_out), (("msg", sess, turn + 1), _lognormal(rng, p.message_tokens_mean))]
            when += rng.exponential(p.think_time_mean_s)
        sess += 1
    return b.build("long_sessions", {"family": "long_sessions", "seed": seed, "sessions": sess})


@dataclass(frozen=True)
class ZipfDocs:
    duration_s: float = 1800.0
    request_rate_per_s: float = 20.0
    documents: int = 20000
    zipf: float = 0.9
    doc_tokens_mean: float = 6000.0
    question_tokens_mean: float = 200.0
    output_tokens_mean: float = 300.0


def zipf_docs(seed: int = 0, scale: float = 1.0, p: ZipfDocs = ZipfDocs()) -> Trace:
    rng = np.random.default_rng(seed)
    doc_len = [_lognormal(rng, p.doc_tokens_mean, 0.7) for _ in range(p.documents)]
    w = 1.0 / np.arange(1, p.documents + 1) ** p.zipf
    w /= w.sum()
    rank = rng.permutation(p.documents)  # popularity is unrelated to the document's number
    b = _Builder()
    times: list[float] = []
    t = rng.exponential(1.0 / p.request_rate_per_s)
    while t < p.duration_s * scale:
        times.append(t)
        t += rng.exponential(1.0 / p.request_rate_per_s)
    docs = rank[rng.choice(p.documents, size=len(times), p=w)]
    for q, (t, d) in enumerate(zip(times, docs.tolist(), strict=True)):
        b.add(t, q, ((("doc", d), doc_len[d]), (("question", q), _lognormal(rng, p.question_tokens_mean))),
              _lognormal(rng, p.output_tokens_mean))
    return b.build("zipf_docs", {"family": "zipf_docs", "seed": seed, "requests": len(times)})


FAMILIES: dict[str, Callable[..., Trace]] = {
    "tool_use": tool_use,
    "long_sessions": long_sessions,
    "zipf_docs": zipf_docs,
}


def generate_family(family: str, seed: int = 0, scale: float = 1.0) -> Trace:
    if family not in FAMILIES:
        raise ValueError(f"trace.family: unknown family {family!r} (known: {sorted(FAMILIES)})")
    return FAMILIES[family](seed=seed, scale=scale)
