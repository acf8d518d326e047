"""The generator reproduces the structure of Mooncake traces, deterministically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kvsim.trace.generate import GeneratorConfig, generate_trace
from kvsim.trace.mooncake import read_mooncake_jsonl

from .conftest import EMBEDDED, shared

SMALL = GeneratorConfig(duration_s=300.0, session_rate_per_s=1.0, seed=7)


@pytest.fixture(scope=shared("module"))
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


def test_embedded_trace_is_the_generator_output(tmp_path) -> None:
    """traces/synthetic_conversation.jsonl is exactly what `make_embedded` writes."""
    from kvsim.trace.make_embedded import DEFAULT, main

    assert DEFAULT == EMBEDDED
    out = main(tmp_path / "embedded.jsonl")
    assert out == tmp_path / "embedded.jsonl"
    assert out.read_bytes() == EMBEDDED.read_bytes()


def test_structure_with_constant_sizes_by_hand(monkeypatch) -> None:
    """Every size fixed (the lognormal draw returns its mean), two prompt variants:
    root prompt 1,024 tokens (blocks 0-1, shared by every request), variant 2,048 (blocks
    2-3, shared by the requests of one variant), first message 1,024, later messages and
    outputs 512. Turn t of a session has 3,072 + 1,024 t tokens, so 6 + 2t blocks, each turn
    extending the previous one. max_input_tokens = 4,096 admits turn 1 exactly."""
    monkeypatch.setattr("kvsim.trace.generate._lognormal", lambda rng, mean, sigma=0.8: int(mean))
    cfg = GeneratorConfig(
        duration_s=600.0, session_rate_per_s=0.05, mean_turns=4.0, root_prompt_tokens=1024,
        prompt_variants=2, variant_tokens_mean=1024, first_message_tokens_mean=1024,
        message_tokens_mean=512, output_tokens_mean=512, max_input_tokens=4096,
        timestamp_resolution_s=0.0, seed=3,
    )
    tr = generate_trace(cfg, name="hand")
    assert tr.name == "hand" and tr.block_tokens == 512
    sizes = tr.input_tokens.tolist()
    assert set(sizes) == {3072, 4096}  # turn 2 (5,120 tokens) is over the limit
    assert tr.output_tokens.tolist() == [512] * len(tr)
    firsts = [tr.blocks(i).tolist() for i in range(len(tr)) if sizes[i] == 3072]
    seconds = [tr.blocks(i).tolist() for i in range(len(tr)) if sizes[i] == 4096]
    assert firsts and seconds
    assert all(len(b) == 6 and b[:2] == [0, 1] for b in firsts)
    assert len({tuple(b[2:4]) for b in firsts}) == 2  # the two variants' blocks
    assert all(len(b) == 8 and b[:6] in firsts for b in seconds)  # turn 1 extends turn 0
    assert len({tuple(b[4:]) for b in firsts}) == len(firsts)  # each session its own blocks
    assert tr.meta == {"generator": "kvsim.trace.generate", "seed": 3, "sessions": len(firsts)}
    # resolution 0: times as drawn (distinct, finite, not on a grid)
    assert np.isfinite(tr.arrival_s).all() and (np.diff(tr.arrival_s) > 0).all()
    assert not np.allclose(tr.arrival_s % 3.0, 0.0)


def test_timestamp_resolution_and_small_draws() -> None:
    from kvsim.trace.generate import _lognormal

    half = generate_trace(GeneratorConfig(duration_s=120.0, timestamp_resolution_s=0.5, seed=1))
    assert np.allclose(half.arrival_s % 0.5, 0.0) and not np.allclose(half.arrival_s % 1.0, 0.0)
    assert generate_trace(GeneratorConfig(duration_s=60.0, seed=1)).name == "synthetic"
    assert generate_trace(GeneratorConfig(duration_s=60.0, block_tokens=256, seed=1)).block_tokens == 256
    rng = np.random.default_rng(0)
    assert {_lognormal(rng, 0.01) for _ in range(20)} == {1}  # never fewer than 1 token


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
