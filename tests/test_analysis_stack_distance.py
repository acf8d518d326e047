"""One-pass LRU stack distances against a naive LRU stack and direct LRU simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.analysis.stack_distance import (
    log_capacities,
    lru_hits_by_capacity,
    previous_occurrence,
    stack_distances,
)
from kvsim.trace.mooncake import read_mooncake_jsonl

from .conftest import examples, reference_lru_hits

EMBEDDED = Path(__file__).resolve().parents[1] / "traces" / "synthetic_conversation.jsonl"


def naive_stack_distances(ids) -> list[int]:
    """The LRU stack as a list: O(n * distinct), obviously right."""
    stack: list[int] = []
    out = []
    for x in ids:
        if x in stack:
            i = stack.index(x)
            out.append(len(stack) - i)
            stack.pop(i)
        else:
            out.append(-1)
        stack.append(x)
    return out


def test_golden_small() -> None:
    ids = [1, 2, 3, 1, 1, 4, 2, 3, 4]
    assert stack_distances(np.array(ids)).tolist() == [-1, -1, -1, 3, 1, -1, 4, 4, 3]
    assert previous_occurrence(np.array(ids)).tolist() == [-1, -1, -1, 0, 3, -1, 1, 2, 5]
    assert stack_distances(np.array([], dtype=np.int64)).tolist() == []
    assert stack_distances(np.array([5])).tolist() == [-1]


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(0, 12), max_size=80))
def test_matches_naive_stack(ids: list[int]) -> None:
    assert stack_distances(np.array(ids, dtype=np.int64)).tolist() == naive_stack_distances(ids)


def test_random_long_sequence_matches_naive() -> None:
    # long enough to exercise many bit levels, sizes not a power of two
    rng = np.random.default_rng(3)
    ids = (rng.zipf(1.3, size=3001) % 400).astype(np.int64)
    assert stack_distances(ids).tolist() == naive_stack_distances(ids.tolist())


@pytest.mark.parametrize("capacity", [1, 2, 3, 10, 50, 400])
def test_curve_equals_direct_lru_random(capacity: int) -> None:
    rng = np.random.default_rng(11)
    ids = (rng.zipf(1.2, size=5000) % 1000).astype(np.int64)
    sd = stack_distances(ids)
    assert lru_hits_by_capacity(sd, [capacity])[0] == reference_lru_hits(ids.tolist(), capacity)


def test_curve_equals_direct_lru_on_embedded_trace() -> None:
    ids = read_mooncake_jsonl(EMBEDDED).hash_ids
    sd = stack_distances(ids)
    caps = [1, 16, 256, 2048, 10**9]
    got = lru_hits_by_capacity(sd, caps).tolist()
    want = [reference_lru_hits(ids.tolist(), c) for c in caps]
    assert got == want
    assert got[-1] == int(np.count_nonzero(sd > 0))  # unlimited = every re-access


def test_log_capacities() -> None:
    c = log_capacities(182_790, 200)
    assert c[0] == 1 and c[-1] == 182_790
    assert np.all(np.diff(c) > 0)
    assert log_capacities(0).tolist() == [1]
