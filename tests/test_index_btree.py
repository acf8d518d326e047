"""The shared B+tree against known answers: height and leaf count, leaves a range spans."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.index.btree import BPlusTree, SortedLeaf


def analytic_shape(n: int, leaf_fill: int, internal_fill: int) -> tuple[int, int]:
    """(leaves, height) of a bottom-up build: ceil(n / f) nodes per level until one."""
    leaves = max(1, math.ceil(n / leaf_fill))
    height, width = 1, leaves
    while width > 1:
        width = math.ceil(width / internal_fill)
        height += 1
    return leaves, height


@pytest.mark.parametrize("n", [1, 21, 22, 23, 1000, 10_000, 183_000])
@pytest.mark.parametrize(("leaf_fill", "internal_fill"), [(21, 23), (11, 12), (54, 62)])
def test_bulk_load_height_and_leaves_match_formula(n: int, leaf_fill: int, internal_fill: int) -> None:
    t = BPlusTree(internal_capacity=64, layout=SortedLeaf(64))
    t.bulk_load(list(range(n)), leaf_fill=leaf_fill, internal_fill=internal_fill)
    leaves, height = analytic_shape(n, leaf_fill, internal_fill)
    assert t.n_leaves == leaves
    assert t.height == height
    assert height == 1 + math.ceil(math.log(leaves, internal_fill) - 1e-12) if leaves > 1 else height == 1
    t.check()


@pytest.mark.parametrize("cap", [4, 5, 22, 54])
@pytest.mark.parametrize("n", [1, 3, 22, 23, 500, 20_000])
def test_ascending_inserts_leave_half_full_leaves(cap: int, n: int) -> None:
    """Sherman splits a leaf at cnt/2 when it reaches its cardinality. Ascending keys
    (remapped order: new blocks get the largest ids) only ever fill the rightmost leaf,
    so after the first split every cap//2 inserts add one leaf:
    leaves = 1 if n < cap else 2 + (n - cap) // (cap // 2)."""
    t = BPlusTree(internal_capacity=cap, layout=SortedLeaf(cap))
    for k in range(n):
        t.insert(k)
    expected = 1 if n < cap else 2 + (n - cap) // (cap // 2)
    assert t.n_leaves == expected
    assert t.n_keys == n
    t.check()


@pytest.mark.parametrize("k", [1, 2, 7, 21, 22, 100])
def test_range_over_k_adjacent_keys_touches_ceil_many_leaves(k: int) -> None:
    f = 21
    t = BPlusTree(internal_capacity=23, layout=SortedLeaf(22))
    t.bulk_load(list(range(10_000)), leaf_fill=f)
    for start in range(0, 200, 7):
        leaves = t.range_leaves(start, start + k - 1)
        offset = start % f
        assert len(leaves) == math.ceil((offset + k) / f)
        assert leaves[0].keys[0] <= start and start + k - 1 <= leaves[-1].keys[-1]
    # aligned on a leaf boundary: exactly ceil(k / f)
    assert len(t.range_leaves(f * 10, f * 10 + k - 1)) == math.ceil(k / f)


def test_random_inserts_and_deletes_keep_invariants() -> None:
    rng = random.Random(7)
    t = BPlusTree(internal_capacity=5, layout=SortedLeaf(4))
    keys = rng.sample(range(100_000), 3000)
    for k in keys:
        assert t.insert(k)
        assert not t.insert(k)  # present: no change
    t.check()
    assert all(t.contains(k) for k in keys)
    for k in keys[::2]:
        assert t.delete(k)
    assert not t.delete(-1)
    t.check()
    assert t.n_keys == len(keys) - len(keys[::2])
    assert not any(t.contains(k) for k in keys[::2])
    assert all(t.contains(k) for k in keys[1::2])


def test_split_log_and_parents() -> None:
    t = BPlusTree(internal_capacity=3, layout=SortedLeaf(3))
    for k in range(3):
        t.insert(k)
    assert [(a.level, b.level) for a, b in t.split_log] == [(0, 0)]
    assert t.height == 2
    for leaf in t.leaves():
        assert leaf.parent is t.root


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=400, unique=True))
def test_any_insert_order_builds_a_valid_tree(keys: list[int]) -> None:
    t = BPlusTree(internal_capacity=4, layout=SortedLeaf(5))
    for k in keys:
        t.insert(k)
    t.check()
    lo, hi = min(keys), max(keys)
    covered = [k for leaf in t.range_leaves(lo, hi) for k in leaf.keys]
    assert covered == sorted(keys)
