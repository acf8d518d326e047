"""The shared B+tree against known answers: height and leaf count, leaves a range spans."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.index.btree import BPlusTree, SortedLeaf

from .conftest import examples


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


@settings(max_examples=examples(40), deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=400, unique=True))
def test_any_insert_order_builds_a_valid_tree(keys: list[int]) -> None:
    t = BPlusTree(internal_capacity=4, layout=SortedLeaf(5))
    for k in keys:
        t.insert(k)
    t.check()
    lo, hi = min(keys), max(keys)
    covered = [k for leaf in t.range_leaves(lo, hi) for k in leaf.keys]
    assert covered == sorted(keys)


def levels(t: BPlusTree) -> list[list[list[int]]]:
    """The tree drawn level by level from the root: each node's keys, left to right."""
    out, row = [], [t.root]
    while row:
        out.append([list(n.keys) for n in row])
        row = [c for n in row for c in n.children]
    return out


def test_shape_after_ascending_inserts_drawn_by_hand() -> None:
    """Leaf and internal capacity 3. A leaf reaching 3 keys splits at keys[1] (the left keeps
    one key); an internal node reaching 3 separators splits at separator 1, which moves up.
        1 2 3   -> [1] [2 3], root (2)
        4       -> [2 3 4] splits at 3: root (2 3)
        5       -> [3 4 5] splits at 4: root (2 3 4) is full -> (2) 3 (4), new root (3)
        6, 7    -> [4 5 6] splits at 5, [5 6 7] at 6: (4 5 6) is full -> (4) 5 (6) up to (3 5)
                    (3 5)
             (2)     (4)     (6)
           [1] [2] [3] [4] [5] [6 7]"""
    t = BPlusTree(internal_capacity=3, layout=SortedLeaf(3))
    for k in range(1, 8):
        t.insert(k)
    assert levels(t) == [[[3, 5]], [[2], [4], [6]], [[1], [2], [3], [4], [5], [6, 7]]]
    assert (t.height, t.n_leaves, t.n_internal, t.n_keys) == (3, 6, 4, 7)
    assert [len(n.children) for n in [t.root, *t.root.children]] == [3, 2, 2, 2]  # fan-out
    assert [n.keys for n in t.path(6)] == [[3, 5], [6], [6, 7]]
    t.check()


def test_internal_split_moves_the_middle_separator_up_by_hand() -> None:
    """Internal capacity 4: a node reaching 4 separators splits at separator 2, which moves up
    (left keeps 2, right 1). Leaf capacity 2: every second key splits a leaf. Keys 1..9:
        1..5  -> leaves [1] .. [5], root (2 3 4 5) is full -> (2 3) 4 (5)
        6..8  -> (5 6 7 8) is full -> (5 6) 7 (8); 9 -> (8 9)
                        (4 7)
          (2 3)         (5 6)         (8 9)
        [1] [2] [3]   [4] [5] [6]   [7] [8] [9]"""
    t = BPlusTree(internal_capacity=4, layout=SortedLeaf(2))
    for k in range(1, 10):
        t.insert(k)
    assert levels(t) == [[[4, 7]], [[2, 3], [5, 6], [8, 9]], [[k] for k in range(1, 10)]]
    assert (t.height, t.n_leaves, t.n_internal) == (3, 9, 4)
    assert [len(n.children) for n in [t.root, *t.root.children]] == [3, 3, 3, 3]
    t.check()


@settings(max_examples=examples(40), deadline=None)
@given(
    keys=st.lists(st.integers(0, 100_000), min_size=1, max_size=600, unique=True),
    leaf_cap=st.integers(2, 9),
    internal_cap=st.integers(3, 9),
)
def test_inserts_keep_nodes_half_full_and_the_tree_short(keys, leaf_cap, internal_cap) -> None:
    """Splits at the middle (Sherman: cnt / 2) and no deletes: every leaf but the root keeps
    at least cap // 2 keys, every internal node but the root at least cap - cap // 2 children,
    so leaves >= 2 x (cap - cap // 2) ^ (height - 2). A split that moves the wrong separator
    up leaves lopsided nodes and a taller tree."""
    t = BPlusTree(internal_capacity=internal_cap, layout=SortedLeaf(leaf_cap))
    for k in keys:
        t.insert(k)
    t.check()
    min_children = internal_cap - internal_cap // 2
    assert all(len(leaf.keys) >= leaf_cap // 2 for leaf in t.leaves() if leaf is not t.root)
    assert all(len(leaf.keys) < leaf_cap for leaf in t.leaves())
    row = [t.root]
    while row[0].level:
        for n in row:
            assert len(n.keys) < internal_cap
            if n is not t.root:
                assert len(n.children) >= min_children, (n, internal_cap)
        row = [c for n in row for c in n.children]
    if t.height >= 2:  # the root has at least 2 children, every other internal node min_children
        assert 2 * min_children ** (t.height - 2) <= t.n_leaves


def test_shape_after_mixed_inserts_drawn_by_hand() -> None:
    """Leaf capacity 4 (a leaf reaching 4 keys splits at keys[2]), internal capacity 3.
        10 20 30 40  -> [10 20] [30 40], root (30)
        25 35 5      -> [5 10 20 25] splits at 20: root (20 30)
        15 45        -> [30 35 40 45] splits at 40: (20 30 40) is full -> (20) 30 (40)
        50 12        -> [5 10 12 15] splits at 12: (12 20)
        22 27        -> [20 22 25 27] splits at 25: (12 20 25) is full -> (12) 20 (25) up
                         (20 30)
              (12)         (25)          (40)
        [5 10] [12 15] [20 22] [25 27] [30 35] [40 45 50]"""
    t = BPlusTree(internal_capacity=3, layout=SortedLeaf(4))
    for k in [10, 20, 30, 40, 25, 35, 5, 15, 45, 50, 12, 22, 27]:
        assert t.insert(k)
    assert levels(t) == [
        [[20, 30]],
        [[12], [25], [40]],
        [[5, 10], [12, 15], [20, 22], [25, 27], [30, 35], [40, 45, 50]],
    ]
    assert (t.height, t.n_leaves, t.n_internal, t.n_keys) == (3, 6, 4, 13)
    assert [leaf.keys for leaf in t.range_leaves(12, 27)] == [[12, 15], [20, 22], [25, 27]]
    assert [leaf.keys for leaf in t.range_leaves(11, 11)] == [[5, 10]]  # absent key: its leaf
    assert t.leaf_of[22].keys == [20, 22] and t.leaf_of[22].parent.keys == [25]
    t.check()


def test_bulk_load_shape_drawn_by_hand() -> None:
    """10 keys, 3 per leaf, 2 children per internal node, grouped left to right; a node's
    separators are the first keys of its children after the first:
                 (6)
          (3)          (9)
    [0 1 2] [3 4 5] [6 7 8] [9]"""
    t = BPlusTree(internal_capacity=8, layout=SortedLeaf(8))
    t.bulk_load(list(range(10)), leaf_fill=3, internal_fill=2)
    assert levels(t) == [[[6]], [[3], [9]], [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]]
    assert t.height == 3
    t.check()
