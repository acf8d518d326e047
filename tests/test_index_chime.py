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
