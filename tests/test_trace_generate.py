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


def test_embedded_trace_is_the_generator_output() -> None:
    """traces/synthetic_conversation.jsonl is exactly what `make_embedded` writes."""
    shipped = read_mooncake_jsonl(EMBEDDED)
    fresh = generate_trace(GeneratorConfig(seed=0))
    np.testing.assert_array_equal(shipped.hash_ids, fresh.hash_ids)
    np.testing.assert_array_equal(shipped.input_tokens, fresh.input_tokens)
    np.testing.assert_allclose(shipped.arrival_s, fresh.arrival_s)
