"""Sherman: fan-out from Tree.h, one READ per get with a warm cache, one per level missed."""

from __future__ import annotations

import math
import random

import pytest
import simpy

from kvsim.index.base import OpRecorder
from kvsim.index.rdma import ATOMIC, READ, WRITE
from kvsim.index.sherman import ShermanIndex, sherman_geometry

from .index_util import client, execute, load

CLIENT_KEYS = ("key_order", "doorbell_batch", "queue_pairs", "sharers", "tails")


def make(**kw: object) -> ShermanIndex:
    ckw = {k: kw.pop(k) for k in CLIENT_KEYS if k in kw}
    return ShermanIndex(client(**ckw), **kw)  # type: ignore[arg-type]


def test_cardinality_follows_tree_h() -> None:
    # 8 B keys: the figures read in Sherman's code (61 internal, 54 leaf entries)
    assert sherman_geometry(1024, 8, 8) == (61, 54)
    # the study's keys: 32 B SHA-256 + 8 B address -> 23 / 22
    assert sherman_geometry(1024, 32, 8) == (23, 22)
    with pytest.raises(ValueError):
        sherman_geometry(128, 64, 8)


def test_warm_cache_get_is_exactly_one_read() -> None:
    ix = make()
    ix.bulk_load(range(50_000))
    assert ix.tree.height >= 3
    for k in range(0, 50_000, 5):  # warm: every leaf-parent read once
        ix.plan_get(k)
    misses = ix.cache.misses
    for k in random.Random(1).sample(range(50_000), 500):
        op = ix.plan_get(k)
        assert op.round_trips == 1
        assert op.bytes_received == 1024
        assert op.atomics == 0
        # unloaded time: the one READ plus one cache probe
        assert ix.unloaded_s(op) == pytest.approx(ix.client.unloaded_s(READ, 1, 1024) + 0.2e-6)
    assert ix.cache.misses == misses


def test_cold_cache_reads_every_level() -> None:
    ix = make(cache_bytes=0)
    ix.bulk_load(range(50_000))
    h = ix.tree.height
    op = ix.plan_get(123)
    assert op.round_trips == h
    assert op.bytes_received == h * 1024


def test_small_cache_misses() -> None:
    ix = make(cache_bytes=4 * 1024, cache_policy="lru")
    ix.bulk_load(range(50_000))
    rts = [ix.plan_get(k).round_trips for k in random.Random(2).sample(range(50_000), 2000)]
    assert 0.0 < ix.cache.hit_ratio < 0.2
    assert max(rts) == ix.tree.height and min(rts) == 1
    big = make(cache_bytes=10**9, cache_policy="sample2")
    big.bulk_load(range(50_000))
    for k in random.Random(2).sample(range(50_000), 2000):
        big.plan_get(k)
    assert big.cache.hit_ratio > ix.cache.hit_ratio


def test_sample2_cache_evicts_at_capacity() -> None:
    ix = make(cache_bytes=10 * 1024, cache_policy="sample2")
    ix.bulk_load(range(50_000))
    for k in range(0, 50_000, 7):
        ix.plan_get(k)
    assert len(ix.cache) == 10
    assert ix.cache.used <= 10 * 1024


@pytest.mark.parametrize("k", [2, 11, 30, 200])
def test_range_reads_the_leaves_its_keys_span(k: int) -> None:
    ix = make()
    for b in range(5000):  # ascending inserts: half-full leaves of 11 keys
        load(ix, [b])
    start = 1100
    leaves = ix.tree.range_leaves(start, start + k - 1)
    ix.plan_range(list(range(start, start + k)))  # warm the leaf-parents
    op = ix.plan_range(list(range(start, start + k)))
    assert op.bytes_received == len(leaves) * 1024
    assert len(leaves) in (math.ceil(k / 11), math.ceil(k / 11) + 1)
    assert op.round_trips == math.ceil(len(leaves) / 32)  # warm cache: the leaf batches only


def test_hashed_keys_scatter_a_run() -> None:
    rem, hsh = make(), make(key_order="hashed")
    rem.bulk_load(range(20_000))
    hsh.bulk_load(range(20_000))
    run = list(range(21 * 238, 21 * 238 + 20))  # 20 adjacent keys inside one full leaf
    rem.plan_range(run), hsh.plan_range(run)  # warm the leaf-parents
    a, b = rem.plan_range(run), hsh.plan_range(run)
    assert a.bytes_received == 1024
    assert b.bytes_received >= 15 * 1024  # nearly one leaf per key


def test_range_parallel_and_doorbell_batching() -> None:
    slow = make(range_parallel=8, doorbell_batch=False)
    fast = make(range_parallel=32, doorbell_batch=True)
    for ix in (slow, fast):
        ix.bulk_load(range(10_000))
    run = list(range(0, 21 * 20))  # 20 full leaves
    slow.plan_range(run), fast.plan_range(run)  # warm the leaf-parents
    a, b = slow.plan_range(run), fast.plan_range(run)
    assert a.round_trips == 3 and b.round_trips == 1
    assert fast.unloaded_s(b) < slow.unloaded_s(a)


def test_insert_locks_reads_writes_back() -> None:
    ix = make()
    ix.tree.bulk_load(list(range(0, 20_000, 2)), leaf_fill=15)  # room in every leaf
    ix.plan_get(101)  # warm its leaf-parent
    (op,) = ix.plan_insert([101])
    assert not ix.contains(101)  # planned, not executed: the tree has not changed yet
    execute(ix, [op])
    assert op.round_trips == 3  # CAS, READ, WRITE + unlock
    assert op.atomics == 1
    assert ix.contains(101)
    # a batch of keys in one leaf still takes one lock
    (op2,) = ix.plan_insert([103, 105])
    execute(ix, [op2])
    assert op2.atomics == 1
    # a split adds the sibling write and the parent's lock / read / write
    full = make()
    full.tree.bulk_load(list(range(21)), leaf_fill=21)
    (op3,) = full.plan_insert([100])
    execute(full, [op3])
    assert full.tree.n_leaves == 2
    # CAS, READ, sibling WRITE, WRITE + unlock; then the new root's WRITE
    assert op3.round_trips == 5
    (d,) = ix.plan_delete([101, 99999])
    execute(ix, [d])
    assert d.atomics == 1 and not ix.contains(101)
    assert ix.plan_delete([99999]) == []


def test_execute_records_ops_with_queueing() -> None:
    ix = make()
    ix.bulk_load(range(10_000))
    ix.recorder = OpRecorder()
    env = simpy.Environment()

    def proc(keys: list[int]):  # type: ignore[no-untyped-def]
        yield from ix.execute(env, ix.plan_lookup(keys))

    for _ in range(20):  # 20 lookups at the same instant share the NIC
        env.process(proc([3, 10, 11, 12, 40]))
    env.run()
    df = ix.recorder.to_frame("sherman")
    assert len(df) == 60 and set(df["op"].astype(str)) == {"get", "range"}
    assert df["latency_s"].min() > 1.9e-6
    assert df["latency_s"].max() > df["latency_s"].min()  # someone waited


def test_hashed_keys_are_not_sized_by_the_largest_id() -> None:
    """Raw 64-bit hashes as ids: the key table holds the ids seen, never a table up to the
    largest one (which for 2^63 - 1 would never finish)."""
    from kvsim.index.keys import KeyMap, hashed_key

    km = KeyMap("hashed")
    top = 2**63 - 1
    assert km.keys([3, top, 3]) == [hashed_key(3), hashed_key(top), hashed_key(3)]
    assert km.key(top) == hashed_key(top)
    assert len(km._table) == 2


def test_two_leaves_split_in_one_write_by_hand() -> None:
    """Two full leaves ([0 .. 40] and [42 .. 82], even keys, 21 each) and one insert of 1 and
    43: READ the root (cold, 1 KB); CAS both leaves' locks (2 x 8 B); READ both pages
    (2 KB); both split: WRITE the 2 new siblings (2 messages, 2 x 1 KB) before the write-
    back of the 2 pages + 2 unlocks (4 messages, 2 x 1032 B); then the root takes the two
    separators: CAS, READ, WRITE + unlock."""
    ix = make(doorbell_batch=False, cache_policy="lru")
    ix.tree.bulk_load(list(range(0, 84, 2)), leaf_fill=21)
    assert ix.tree.root.keys == [42] and ix.tree.n_leaves == 2
    (op,) = ix.plan_insert([1, 43])
    execute(ix, [op])
    assert ix.tree.n_leaves == 4 and ix.tree.root.keys == [20, 42, 62]
    assert op.write.rounds == [
        (READ, 1, 1024, 1), (ATOMIC, 2, 16, 2), (READ, 2, 2048, 2), (WRITE, 2, 2048, 2), (WRITE, 4, 2064, 4),
        (ATOMIC, 1, 8, 1), (READ, 1, 1024, 1), (WRITE, 2, 1032, 2)]


def test_new_keys_in_one_leaf_take_one_descent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grouping a write's absent keys by leaf: a key within the fences of the leaf found for
    the key before it needs no descent (a request's new blocks: one descent); a key past
    them, or a present key (by its leaf), does."""
    ix = make()
    ix.tree.bulk_load(list(range(0, 2000, 10)), leaf_fill=15)
    calls: list[int] = []
    real = ix.tree.find_leaf_range

    def counted(k: int):  # type: ignore[no-untyped-def]
        calls.append(k)
        return real(k)

    monkeypatch.setattr(ix.tree, "find_leaf_range", counted)
    groups = ix._group([1, 2, 3, 11, 10, 1999, 4], delete=False)
    assert calls == [1, 1999, 4]  # 10 is present: its leaf is known
    assert [keys for _, keys in groups.values()] == [[1, 2, 3, 11, 10, 4], [1999]]
    assert ix._group([1, 2, 10], delete=True) and calls == [1, 1999, 4]  # a delete skips absent keys


def test_a_split_by_another_node_leaves_our_parent_copy_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """With sharers, a leaf split is another node's (drawn: here always): our cached root
    does not know the new leaf. A get of a key in it reads the old leaf (1 KB: its fences
    show the copy is stale), then the root again (1 KB), then the new leaf (1 KB); the next
    get reads the leaf only."""
    ix = make(sharers=3, cache_policy="lru")
    ix.tree.bulk_load(list(range(0, 84, 2)), leaf_fill=21)
    ix.plan_get(0)  # the root cached
    class Always:  # the draw that makes the split another node's
        def random(self) -> float:
            return 0.0

    monkeypatch.setattr(ix, "rng", Always())
    (op,) = ix.plan_insert([1])
    execute(ix, [op])
    right = ix.tree.find_leaf(40)
    assert right.id != ix.tree.find_leaf(0).id and ix._stale == {ix.tree.root.id: {right.id}}
    g = ix.plan_get(40)
    assert (g.round_trips, g.bytes_received) == (3, 3 * 1024) and ix.stats()["stale_cache_hits"] == 1
    assert ix._stale == {}
    g = ix.plan_get(40)
    assert (g.round_trips, g.bytes_received) == (1, 1024)
