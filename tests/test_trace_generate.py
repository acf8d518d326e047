"""The generator reproduces the structure of Mooncake traces, deterministically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kvsim.trace.generate import GeneratorConfig, generate_trace
from kvsim.trace.mooncake import read_mooncake_jsonl

from .conftest import EMBEDDED

SMALL = GeneratorConfig(duration_s=300.0, session_rate_per_s=1.0, seed=7)


@pytest.fixture(scope="module")
def trace():
    return generate_trace(SMALL)


def test_seeded_and_deterministic(trace) -> None:
    again = generate_trace(SMALL)
    np.testing.assert_array_equal(trace.hash_ids, again.hash_ids)
    np.testing.assert_array_equal(trace.arrival_s, again.arrival_s)
    other = generate_trace(GeneratorConfig(duration_s=300.0, session_rate_per_s=1.0, seed=8))
    assert len(other) != len(trace) or not np.array_equal(other.hash_ids, trace.hash_ids)


def test_block_count_matches_input_length(trace) -> None:
    expected = [math.ceil(n / 512) for n in trace.input_tokens]
    np.testing.assert_array_equal(trace.blocks_per_request, expected)


def test_ids_first_seen_order(trace) -> None:
    """Within a request ids strictly increase; new ids are the next free consecutive ones."""
    next_free = 0
    for i in range(len(trace)):
        b = trace.blocks(i)
        assert (np.diff(b) > 0).all()
        new = b[b >= next_free]
        np.testing.assert_array_equal(new, np.arange(next_free, next_free + len(new)))
        next_free += len(new)
    assert next_free == len(np.unique(trace.hash_ids))


def test_shared_first_block_and_chains(trace) -> None:
    assert all(trace.blocks(i)[0] == 0 for i in range(len(trace)))
    # Chained prefixes: if two requests share block id at position j, they share 0..j.
    pos_prefix: dict[int, tuple[int, ...]] = {}
    for i in range(len(trace)):
        b = tuple(trace.blocks(i).tolist())
        for j, x in enumerate(b):
            prev = pos_prefix.setdefault(x, b[: j + 1])
            assert prev == b[: j + 1], f"block {x} reached by two different prefixes"


def test_multi_turn_reuse_and_timestamps(trace) -> None:
    seen: set[int] = set()
    hits = 0
    for b in trace.iter_blocks():
        hits += sum(1 for x in b.tolist() if x in seen)
        seen.update(b.tolist())
    ratio = hits / trace.num_block_accesses
    assert 0.2 < ratio < 0.8  # sessions re-send history; the tail is new
    assert (np.diff(trace.arrival_s) >= 0).all()
    assert np.allclose(trace.arrival_s % SMALL.timestamp_resolution_s, 0.0)
    assert trace.meta["sessions"] > 0


def test_embedded_trace_is_the_generator_output() -> None:
    """traces/synthetic_conversation.jsonl is exactly what `make_embedded` writes."""
    shipped = read_mooncake_jsonl(EMBEDDED)
    fresh = generate_trace(GeneratorConfig(seed=0))
    np.testing.assert_array_equal(shipped.hash_ids, fresh.hash_ids)
    np.testing.assert_array_equal(shipped.input_tokens, fresh.input_tokens)
    np.testing.assert_allclose(shipped.arrival_s, fresh.arrival_s)


def test_streamed_file_is_the_generated_trace(tmp_path) -> None:
    """`python -m kvsim.trace.generate` writes, streaming, what generate_trace builds in memory;
    the reader gives it back."""
    import subprocess
    import sys

    from kvsim.trace.generate import REQUESTS_PER_SESSION, write_generated

    cfg = GeneratorConfig(duration_s=float("inf"), session_rate_per_s=2.0, seed=3)
    counts = write_generated(tmp_path / "t.jsonl", cfg, max_requests=700)
    back = read_mooncake_jsonl(tmp_path / "t.jsonl")
    assert counts == {"requests": 700, "block_accesses": back.num_block_accesses} and len(back) == 700
    whole = generate_trace(GeneratorConfig(duration_s=3600.0, session_rate_per_s=2.0, seed=3)).head(700)
    np.testing.assert_array_equal(back.hash_ids, whole.hash_ids)
    np.testing.assert_array_equal(back.arrival_s, whole.arrival_s)
    np.testing.assert_array_equal(back.input_tokens, whole.input_tokens)
    p = subprocess.run([sys.executable, "-m", "kvsim.trace.generate", str(tmp_path / "day.jsonl"),
                        "--requests", "3000", "--hours", "24"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    day = read_mooncake_jsonl(tmp_path / "day.jsonl")
    assert len(day) == 3000
    # 3000 requests at the rate that fills a day: the trace spans about 24 h
    assert 0.8 * 86400 < day.span_s < 1.2 * 86400, day.span_s
    assert REQUESTS_PER_SESSION > 1
    bad = subprocess.run([sys.executable, "-m", "kvsim.trace.generate", str(tmp_path / "x.jsonl")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--requests" in bad.stderr and not (tmp_path / "x.jsonl").exists()


def test_generator_memory_does_not_grow_with_length() -> None:
    """Streaming: the state kept between requests is the sessions in progress, so 10x the
    requests must not take anywhere near 10x the peak memory."""
    import tracemalloc

    from kvsim.trace.generate import iter_requests

    def peak(n: int) -> int:
        tracemalloc.start()
        for _ in iter_requests(GeneratorConfig(duration_s=float("inf"), seed=1), max_requests=n):
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(1_000), peak(10_000)
    assert large < 2 * small, (small, large)
