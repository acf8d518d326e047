"""The extent index: one READ per extent, none when cached, the same under both key orders;
and the costs it pays for that (per-block member slots, two reads for a lone mid-extent get)."""

from __future__ import annotations

import pytest

from kvsim.index.extent import ExtentIndex
from kvsim.index.rdma import ATOMIC, READ, WRITE

from .index_util import client

CLIENT_KEYS = ("key_order", "doorbell_batch", "queue_pairs", "sharers", "tails")


def make(**kw: object) -> ExtentIndex:
    ckw = {k: kw.pop(k) for k in CLIENT_KEYS if k in kw}
    return ExtentIndex(client(**ckw), **kw)  # type: ignore[arg-type]


def serve(ix: ExtentIndex, req: list[int]) -> list:  # type: ignore[type-arg]
    ops = ix.plan_lookup(req)
    ix.plan_insert([b for b in req if b not in ix])
    return ops


def test_a_run_is_one_record_read_of_its_blocks() -> None:
    ix = make(cache_bytes=0)
    serve(ix, list(range(10)))
    assert ix.records == 1
    (op,) = ix.plan_lookup(list(range(10)))
    assert op.round_trips == 1
    assert op.bytes_received == 16 + 16 * 10
    assert ix.unloaded_s(op) == pytest.approx(ix.client.unloaded_s(READ, 1, 176) + 0.2e-6)


def test_cached_records_answer_without_a_round_trip() -> None:
    ix = make()
    serve(ix, list(range(10)))
    (op,) = ix.plan_lookup(list(range(10)))
    assert op.round_trips == 0 and op.client_s > 0


def test_next_turn_appends_to_the_record_and_chains_are_walked() -> None:
    ix = make(cache_bytes=0)
    serve(ix, list(range(10)))
    serve(ix, [*range(10), 10, 11])  # the next turn: appended to the same extent
    assert ix.records == 1
    # another conversation shares block 0..2 then diverges: a new extent
    serve(ix, [0, 1, 2, 50, 51])
    assert ix.records == 2
    ops = ix.plan_lookup([0, 1, 2, 50, 51])
    assert [op.round_trips for op in ops] == [1, 1]  # record of 0.., then record of 50..


def test_key_order_changes_nothing() -> None:
    a, b = make(cache_bytes=0), make(cache_bytes=0, key_order="hashed")
    for ix in (a, b):
        serve(ix, list(range(40)))
        serve(ix, [0, 1, 100, 101, 102])
    for req in (list(range(40)), [0, 1, 100, 101, 102]):
        oa, ob = a.plan_lookup(req), b.plan_lookup(req)
        assert [(o.round_trips, o.bytes_received) for o in oa] == [(o.round_trips, o.bytes_received) for o in ob]


def test_lookup_stops_at_the_first_absent_block() -> None:
    ix = make(cache_bytes=0)
    serve(ix, [0, 1, 2])
    ops = ix.plan_lookup([0, 1, 2, 7, 8, 20])
    assert [(o.kind, o.round_trips) for o in ops] == [("range", 1), ("range", 1)]  # 7 probed, 20 never
    go_on = make(cache_bytes=0, lookup="all")
    serve(go_on, [0, 1, 2])
    assert len(go_on.plan_lookup([0, 1, 2, 7, 8, 20])) == 3


def test_where_it_loses_lone_gets_and_insert_messages() -> None:
    ix = make(cache_bytes=0)
    serve(ix, list(range(20)))
    # a point get of a block inside an extent, with no chain to follow: member slot, then record
    op = ix.plan_get(7)
    assert op.round_trips == 2
    assert ix.plan_get(0).round_trips == 1
    # an insert of n new blocks writes n - 1 member slots besides the record: n + 1 messages
    fresh = make()
    fresh.plan_lookup(list(range(30)))
    (ins,) = fresh.plan_insert(list(range(30)))
    assert ins.round_trips == 2  # claim the head slot, then one write batch
    assert ins.atomics == 1
    assert ins.bytes_sent == 8 + 16 + 16 * 30 + 16 * 29


def test_coherence_invalidation_costs_on_updates_and_deletes() -> None:
    """With a sharer, a write learns who caches the record and invalidates each copy;
    a node that caches a record registers with one FAA in the batch that reads it."""
    ix = make(cache_bytes=0, sharers=2)
    serve(ix, list(range(10)))
    (op,) = ix.plan_lookup(list(range(10)))
    # one batch: the record READ (176 B) and the FAA (8 B) that registers this node
    assert op.rounds == ((ATOMIC, 2, 176 + 8, 1),)
    (u,) = ix.plan_update([2, 3])
    # READ the record's sharer word, then WRITE the 2 addresses + 2 invalidations
    assert u.rounds == ((READ, 1, 8, 1), (WRITE, 1 + 2, 2 * 8 + 2 * 8, 1))
    (d,) = ix.plan_delete([9])
    assert d.round_trips == 2 and d.bytes_sent == 8 + 2 * 8
    # the append of the next turn takes the record's lock (its CAS returns the sharers)
    ix.plan_lookup([*range(10), 10])
    (ins,) = ix.plan_insert([10])
    assert ins.round_trips == 2 and ins.bytes_sent == 8 + 16 + 16 + 16 + 8 + 2 * 8
    assert ix.stats()["invalidations_sent"] == 2 + 2 + 2
    single = make(cache_bytes=0, sharers=0)  # a single client: no coherence traffic
    serve(single, list(range(10)))
    (u0,) = single.plan_update([2, 3])
    assert u0.round_trips == 1


def test_invalidations_are_sharers_times_records() -> None:
    """Three sharers, an update of blocks in two records (2, 3 of record 0; 101 of record
    100): READ the 2 records' sharer words (16 B), then WRITE one segment per record and
    3 x 2 invalidations: 8 messages, 3 addresses + 6 invalidations of 8 B = 72 B."""
    ix = make(cache_bytes=0, sharers=3)
    serve(ix, list(range(10)))
    serve(ix, [100, 101, 102])
    assert ix.records == 2
    (u,) = ix.plan_update([2, 3, 101])
    assert u.rounds == ((READ, 2, 16, 1), (WRITE, 2 + 6, 3 * 8 + 6 * 8, 1))
    assert ix.stats()["invalidations_sent"] == 6
    (d,) = ix.plan_delete([3, 5, 102])  # two segments in record 0, one in record 100
    assert d.rounds == ((READ, 2, 16, 1), (WRITE, 3 + 6, 3 * 8 + 6 * 8, 1))
    assert ix.stats()["invalidations_sent"] == 12


def test_updates_and_deletes_are_in_place() -> None:
    ix = make(cache_bytes=0)
    serve(ix, list(range(10)))
    (u,) = ix.plan_update([2, 3, 4, 8])
    assert u.round_trips == 1 and u.atomics == 0 and u.bytes_sent == 4 * 8
    (d,) = ix.plan_delete([5])
    assert 5 not in ix
    assert [o.keys for o in ix.plan_lookup(list(range(10)))] == [10]  # one op; stops inside
    ix.plan_delete([b for b in range(10) if b != 5])
    assert ix.records == 0 and ix.plan_delete([1]) == []
    serve(ix, list(range(10)))  # recomputed: a fresh record
    assert ix.records == 1 and all(b in ix for b in range(10))
