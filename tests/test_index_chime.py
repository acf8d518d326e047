"""CHIME: sizes from Common.h, hopscotch invariant, neighborhood reads of the configured size."""

from __future__ import annotations

import random

import pytest

from kvsim.index.chime import ChimeGeometry, ChimeIndex, _with_versions

from .index_util import client, execute, load

CLIENT_KEYS = ("key_order", "doorbell_batch", "queue_pairs", "sharers", "tails")


def make(**kw: object) -> ChimeIndex:
    ckw = {k: kw.pop(k) for k in CLIENT_KEYS if k in kw}
    return ChimeIndex(client(**ckw), **kw)  # type: ignore[arg-type]


def test_sizes_match_common_h_with_8_byte_keys() -> None:
    g = ChimeGeometry(key_bytes=8, value_bytes=8)
    assert g.entry == 19
    assert g.leaf_bytes == 1316  # transLeafSize
    assert g.internal_bytes == 1148  # transInternalSize
    msgs, nbytes = g.neighborhood_read(0)
    assert msgs == 1 and nbytes == _with_versions(8 * 19 + 10) == 164  # "about 162 B" + versions


def test_sizes_with_the_studys_keys() -> None:
    g = ChimeGeometry()  # 32 B keys, 8 B values
    assert g.entry == 43
    assert g.leaf_bytes == 2876 and g.internal_bytes == 2758
    assert g.neighborhood_read(0) == (1, _with_versions(8 * 43 + 10))
    assert g.neighborhood_read(3) == (1, _with_versions(8 * 43 + 20))  # spans two groups
    assert g.neighborhood_read(60)[0] == 2  # wraps the leaf end: two READs, one batch


@pytest.mark.parametrize("H", [4, 8, 16])
def test_get_reads_one_neighborhood_of_the_configured_size(H: int) -> None:
    ix = make(neighborhood=H, hotspot_bytes=0)
    keys = random.Random(3).sample(range(10**9), 3000)
    load(ix, keys)
    for k in keys[:200]:
        ix.plan_get(k)  # warm the leaf-parent cache
    for k in keys[:200]:
        op = ix.plan_get(k)
        home = ix.layout.home(k)
        msgs, nbytes = ix.geo.neighborhood_read(home)
        assert op.round_trips == 1
        assert op.bytes_received == nbytes
        groups = (home + H - 1) // H - home // H + 1
        assert nbytes == _with_versions(H * 43 + 10 * groups)


def test_hopscotch_invariant_every_key_within_its_neighborhood() -> None:
    ix = make()
    keys = random.Random(4).sample(range(10**9), 20_000)
    for s in range(0, len(keys), 50):
        load(ix, keys[s : s + 50])
    ix.tree.check()
    span, H = ix.geo.span, ix.geo.H
    n = 0
    for leaf in ix.tree.leaves():
        slots, homes = leaf.slots
        held = [k for k in slots if k is not None]
        assert sorted(held) == leaf.keys
        for i, k in enumerate(slots):
            if k is not None:
                assert homes[i] == ix.layout.home(k)
                assert (i - homes[i]) % span < H
                n += 1
    assert n == 20_000
    # hopscotch leaves split before they fill: load factor well under 1
    assert 0.4 < ix.stats()["leaf_load_factor"] < 0.95


def test_hotspot_buffer_reads_one_entry_then_falls_back_when_moved() -> None:
    ix = make()
    keys = list(range(0, 4000, 3))
    load(ix, keys)
    ix.plan_get(300)
    op = ix.plan_get(300)  # speculative read at the remembered slot
    assert op.bytes_received == ix.geo.entry_read()
    assert ix.hotspot_hits == 1
    leaf, slot = ix.hotspot[300]
    leaf.slots[0][slot] = None  # the entry moved (a hop or a split)
    leaf.slots[0][(slot + 1) % 64] = 300
    op = ix.plan_get(300)
    assert op.round_trips == 2  # the failed entry read, then the neighborhood
    off = make(hotspot_bytes=0)
    load(off, keys)
    off.plan_get(300)
    assert off.plan_get(300).bytes_received == off.geo.neighborhood_read(off.layout.home(300))[1]


def test_range_reads_whole_leaves_and_sorts() -> None:
    ix = make(sort_entry_s=5e-9)
    load(ix, list(range(5000)))
    run = list(range(2000, 2040))
    ix.plan_range(run)  # warm
    op = ix.plan_range(run)
    leaves = ix.tree.range_leaves(2000, 2039)
    assert op.round_trips == 1
    assert op.bytes_received == len(leaves) * ix.geo.leaf_bytes
    assert op.client_s > ix.local_lookup_s  # the client sorts the leaves' entries
    hashed = make(key_order="hashed")
    load(hashed, list(range(5000)))
    hashed.plan_range(run)
    op_h = hashed.plan_range(run)
    assert op_h.round_trips == 1
    assert op_h.bytes_received >= 40 * 350  # one neighborhood per key, no whole leaves


def test_insert_and_delete_costs() -> None:
    ix = make()
    load(ix, list(range(0, 100, 2)))
    ix.plan_get(10)
    (op,) = ix.plan_insert([11])
    execute(ix, [op])
    assert op.round_trips == 3 and op.atomics == 1  # lock (+ vacancy bitmap), read, write + unlock
    (d,) = ix.plan_delete([11, 10**12])
    execute(ix, [d])
    assert d.atomics == 1 and not ix.contains(11)
    assert ix.plan_delete([10**12]) == []


def _leaf(layout, slots: dict[int, tuple[int, int]], keys: list[int]):  # type: ignore[no-untyped-def]
    """A leaf whose hopscotch slots are drawn by hand: {slot: (key, its home)}."""
    from kvsim.index.btree import Node

    leaf = Node(0, 0)
    layout.init(leaf)
    for i, (k, home) in slots.items():
        leaf.slots[0][i], leaf.slots[1][i] = k, home
        layout._homes[k] = home
    leaf.keys = sorted(keys)
    return leaf


@pytest.mark.parametrize("shift", [0, 6])  # 6: the neighborhood wraps the leaf's end
def test_split_key_is_the_median_of_the_critical_keys_by_hand(shift: int) -> None:
    """Span 8, H 4, a new key 100 whose home is slot 0. Slots 0..3 are within H of it
    (critical); slots 1..3 hold keys already 3 slots from their homes (they cannot hop on),
    so slot 4 (key 50) cannot be emptied toward slot 0, nor slot 5 (60: it could hop to 4
    only); slot 6 is empty and ends the search. Critical: 10 20 30 40 and 100: median 30
    (of all keys it would be 40). Shifted by 6 slots (homes too): the same."""
    from kvsim.index.chime import HopscotchLayout

    lay = HopscotchLayout(8, 4)
    drawn = {0: (10, 0), 1: (20, 6), 2: (30, 7), 3: (40, 0), 4: (50, 4), 5: (60, 5)}
    slots = {(i + shift) % 8: (k, (h + shift) % 8) for i, (k, h) in drawn.items()}
    leaf = _leaf(lay, slots, [k for k, _ in drawn.values()])
    lay._homes[100] = shift
    assert lay.split_key(leaf, 100) == 30
    # 20 at its own home (slot 1) can move on to slot 4 (3 from home, < H): slot 4 can be
    # emptied into slot 1, and slot 5 into 4 then 1: critical 10 ... 60 and 100, median 40
    slots[(1 + shift) % 8] = (20, (1 + shift) % 8)
    assert lay.split_key(_leaf(lay, slots, [k for k, _ in drawn.values()]), 100) == 40


def test_split_key_without_critical_keys_is_the_median_of_all() -> None:
    """The new key's home slot empty (not expected at a split): the median of the leaf's
    keys and the new one: 5 10 20 30 40 -> 20."""
    from kvsim.index.chime import HopscotchLayout

    lay = HopscotchLayout(8, 4)
    leaf = _leaf(lay, {1: (10, 1), 2: (20, 2), 5: (30, 5), 6: (40, 6)}, [10, 20, 30, 40])
    lay._homes[5] = 0
    assert lay.split_key(leaf, 5) == 20


def test_a_deleted_key_leaves_the_hotspot_buffer() -> None:
    from .index_util import execute

    ix = make()
    keys = list(range(0, 3000, 3))
    load(ix, keys)
    ix.plan_get(300)
    ix.plan_get(300)
    k = ix.keymap.key(300)
    assert k in ix.hotspot
    (d,) = ix.plan_delete([300])
    execute(ix, [d])
    assert k not in ix.hotspot and not ix.contains(300)
