"""Every index's get, range, insert and delete on a small structure drawn here, against
round trips, bytes and microseconds worked out by hand from the default calibration
(conf/calibration/default.yaml), not recomputed with the models' own formulas.

The default calibration, as used below (tails off: every cost its median):

    READ round trip 1.9 us, signaled WRITE 2 x 1.32 = 2.64 us, CAS 2.0 us
    one message on the NIC 1 / 215 M/s = 4.651 ns, one byte on the link 1 / 11.5 GB/s
    = 0.08696 ns, one more message of a batch on its queue pair 1 / 2.5 M/s = 0.4 us,
    one more doorbell 0.1 us, one probe of the compute-side cache 0.2 us
    Redis: TCP round trip 25 us, the server's event loop 13 us per command, GET 0.8 us,
    MGET 1.0 + 0.35 us/key, MSET 1.0 + 0.45 us/key, DEL 1.0 + 0.4 us/key
    Mooncake: RPC round trip 25 us, 3 us + 0.3 us/key on the master
    radix: 0.2 us per node, 0.1 us per block, 0.05 us for the lock
"""

from __future__ import annotations

import pytest

from kvsim.index.chime import ChimeIndex
from kvsim.index.extent import ExtentIndex
from kvsim.index.mooncake import MooncakeMasterIndex
from kvsim.index.radix import RadixTreeIndex
from kvsim.index.redis import RedisIndex
from kvsim.index.sherman import ShermanIndex

from .index_util import client, execute

US = 1e-6
REL = 1e-5  # the hand values below are rounded to 1 ps


def us(x: float) -> float:
    return x * US


# ---------------------------------------------------------------------------------------
# Sherman: 1 KB nodes; 32 B keys -> 23 separators per internal node, 22 entries per leaf.
#
#                      root [11 | 22 | 33]          (the leaf-parent of every leaf)
#          /            |            |            \
#    [0 .. 10]     [11 .. 21]    [22 .. 32]    [33 .. 43]     (11 keys each)
# ---------------------------------------------------------------------------------------
def sherman() -> ShermanIndex:
    ix = ShermanIndex(client(doorbell_batch=False), cache_policy="lru")  # Sherman: a doorbell per READ
    ix.tree.bulk_load(list(range(44)), leaf_fill=11)
    assert ix.tree.root.keys == [11, 22, 33] and ix.tree.height == 2
    return ix


def test_sherman_by_hand() -> None:
    ix = sherman()
    # get(5), cold cache: READ the root (1 KB), then the leaf (1 KB); one probe
    #   each READ: 1.9 + 0.004651 + 1024 x 0.0869565 ns = 1.993695 us; 2 x + 0.2 = 4.187389
    g = ix.plan_get(5)
    assert (g.round_trips, g.bytes_received) == (2, 2048)
    assert ix.unloaded_s(g) == pytest.approx(us(4.187389), rel=REL)
    # get(5) again: the root is cached -> the leaf only: 2.193695 us
    g = ix.plan_get(5)
    assert (g.round_trips, g.bytes_received) == (1, 1024)
    assert ix.unloaded_s(g) == pytest.approx(us(2.193695), rel=REL)
    # range 12..25: two leaves, one batch of 2 READs, 2 doorbells:
    #   1.9 + 0.4 (2nd message) + 0.1 (2nd doorbell) + 2 x 0.004651 + 2048 B (0.178087) + 0.2
    r = ix.plan_range(list(range(12, 26)))
    assert (r.round_trips, r.bytes_received) == (1, 2048)
    assert ix.unloaded_s(r) == pytest.approx(us(2.787389), rel=REL)
    # insert 44 (leaf 33..43 has room): probe 0.2; CAS 8 B: 2.0 + 0.004651 + 0.000696 =
    #   2.005347; READ the page 1.993695; WRITE the 42 B entry + the 8 B unlock, 2 doorbells:
    #   2.64 + 0.4 + 0.1 + 2 x 0.004651 + 50 B (0.004348) = 3.153650 -> 7.352692 us
    (i,) = ix.plan_insert([44])
    (lat,) = execute(ix, [i])
    assert (i.round_trips, i.atomics, i.bytes_sent, i.bytes_received) == (3, 1, 8 + 50, 1024)
    assert lat == pytest.approx(us(7.352692), rel=REL)
    # delete 44: the same three round trips (the entry cleared in place)
    (d,) = ix.plan_delete([44])
    (lat,) = execute(ix, [d])
    assert (d.round_trips, d.bytes_sent) == (3, 58) and lat == pytest.approx(us(7.352692), rel=REL)
    # insert 44..54: the 22nd key splits the leaf at 44 -> [33..43] [44..54], root [11 22 33 44]
    #   probe 0.2, CAS 2.005347, READ 1.993695, WRITE the new sibling page (1 KB):
    #   2.64 + 0.004651 + 0.089043 = 2.733695, WRITE the page + unlock (2 messages, 1032 B,
    #   2 doorbells): 2.64 + 0.4 + 0.1 + 0.009302 + 0.089739 = 3.239041; then the root:
    #   CAS 2.005347, READ 1.993695, WRITE + unlock 3.239041 -> 17.409861 us, 7 round trips
    (s,) = ix.plan_insert(list(range(44, 55)))
    (lat,) = execute(ix, [s])
    assert ix.tree.root.keys == [11, 22, 33, 44] and ix.tree.n_leaves == 5
    assert (s.round_trips, s.atomics) == (7, 2)
    assert (s.bytes_sent, s.bytes_received) == (8 + 1024 + 1032 + 8 + 1032, 2048)
    assert lat == pytest.approx(us(17.409861), rel=REL)


# ---------------------------------------------------------------------------------------
# CHIME: 64-slot hopscotch leaves, H = 8; 32 B keys: entry 1 + 2 + 32 + 8 = 43 B; a leaf
# 2,876 B, an internal node 2,758 B; 10 B of metadata per group of 8 entries.
#
#                      root [16 | 32 | 48]
#          /            |            |            \
#    [0 .. 15]     [16 .. 31]    [32 .. 47]    [48 .. 63]     (16 keys each)
# ---------------------------------------------------------------------------------------
def test_chime_by_hand() -> None:
    ix = ChimeIndex(client())
    ix.tree.bulk_load(list(range(64)), leaf_fill=16)
    assert ix.tree.root.keys == [16, 32, 48]
    home = ix.layout.home
    # a key whose neighborhood starts a group (home % 8 == 0) and does not wrap: one READ of
    # 8 x 43 + 10 = 354 B, with a version byte per 63 B after the first 64: 64 + 290 + 5 = 359 B
    k = next(x for x in range(64) if home(x) % 8 == 0 and home(x) <= 56)
    # get(k), cold: READ the root (2758 B): 1.9 + 0.004651 + 0.239826 = 2.144478; READ the
    #   neighborhood (359 B): 1.9 + 0.004651 + 0.031217 = 1.935869; CPU: the get's own probe
    #   of the hotspot buffer + the leaf-parent's: 0.4 -> 4.480347 us
    g = ix.plan_get(k)
    assert (g.round_trips, g.bytes_received) == (2, 2758 + 359)
    assert ix.unloaded_s(g) == pytest.approx(us(4.480347), rel=REL)
    # get(k) again: the hotspot buffer has its slot: READ one entry + its group metadata
    #   (43 + 10 = 53 B): 1.9 + 0.004651 + 0.004609 + 0.2 = 2.109260 us
    g = ix.plan_get(k)
    assert (g.round_trips, g.bytes_received) == (1, 53)
    assert ix.unloaded_s(g) == pytest.approx(us(2.109260), rel=REL)
    # insert a new key of the last leaf whose home slot is free (no hop):
    #   probe 0.2, CAS 2.005347, READ its neighborhood 1.935869, WRITE the 43 B entry + the
    #   8 B unlock in one batch (1 doorbell): 2.64 + 0.4 + 2 x 0.004651 + 51 B (0.004435) =
    #   3.053737 -> 7.194953 us
    last = ix.tree.find_leaf(100)
    n = next(x for x in range(64, 400) if home(x) % 8 == 0 and home(x) <= 56 and last.slots[0][home(x)] is None)
    (i,) = ix.plan_insert([n])
    (lat,) = execute(ix, [i])
    assert (i.round_trips, i.atomics, i.bytes_sent, i.bytes_received) == (3, 1, 8 + 51, 359)
    assert lat == pytest.approx(us(7.194953), rel=REL)
    # delete it: lock, READ its neighborhood, WRITE the cleared entry + unlock: the same
    (d,) = ix.plan_delete([n])
    (lat,) = execute(ix, [d])
    assert (d.round_trips, d.bytes_sent, d.bytes_received) == (3, 59, 359)
    assert lat == pytest.approx(us(7.194953), rel=REL) and not ix.contains(n)


# ---------------------------------------------------------------------------------------
# The extent index, no record cache, one client: blocks 0..9 inserted together are one
# record at the slot of block 0 (16 B header + 16 B per block = 176 B); blocks 1..9 have
# 16 B member slots pointing to it.
# ---------------------------------------------------------------------------------------
def test_extent_by_hand() -> None:
    ix = ExtentIndex(client(), cache_bytes=0)
    ix.plan_lookup(list(range(10)))  # learn the chain
    # insert 0..9: claim the head slot (CAS 8 B): 2.005347; WRITE 10 messages (the record
    #   + 9 member slots), 176 + 144 = 320 B, one doorbell: 2.64 + 9 x 0.4 + 10 x 0.004651
    #   + 0.027826 = 6.314337; CPU 0.2 -> 8.519684 us
    (i,) = ix.plan_insert(list(range(10)))
    assert (i.round_trips, i.atomics, i.bytes_sent) == (2, 1, 8 + 320)
    assert ix.unloaded_s(i) == pytest.approx(us(8.519684), rel=REL)
    # range 0..9: READ the record at block 0's slot (176 B): 1.9 + 0.004651 + 0.015304 + 0.2
    (r,) = ix.plan_lookup(list(range(10)))
    assert (r.kind, r.round_trips, r.bytes_received) == ("range", 1, 176)
    assert ix.unloaded_s(r) == pytest.approx(us(2.119955), rel=REL)
    # get(7), no chain to follow: READ its member slot (16 B): 1.906042, then the record
    #   (176 B): 1.919955; + 0.2 -> 4.025997 us
    g = ix.plan_get(7)
    assert (g.round_trips, g.bytes_received) == (2, 16 + 176)
    assert ix.unloaded_s(g) == pytest.approx(us(4.025997), rel=REL)
    # update 2, 3 (new addresses, one segment): one WRITE of 16 B, no lock:
    #   2.64 + 0.004651 + 0.001391 + 0.2 = 2.846042 us
    (u,) = ix.plan_update([2, 3])
    assert (u.round_trips, u.bytes_sent) == (1, 16)
    assert ix.unloaded_s(u) == pytest.approx(us(2.846042), rel=REL)
    # delete 9 (a tombstone): one WRITE of 8 B: 2.64 + 0.004651 + 0.000696 + 0.2 = 2.845347
    (d,) = ix.plan_delete([9])
    assert (d.round_trips, d.bytes_sent) == (1, 8)
    assert ix.unloaded_s(d) == pytest.approx(us(2.845347), rel=REL)


# ---------------------------------------------------------------------------------------
# Redis, Mooncake's master, the radix tree: one server (thread / workers / lock) each.
# ---------------------------------------------------------------------------------------
def redis() -> RedisIndex:
    return RedisIndex(
        tcp_rtt_s=25e-6, get_s=0.8e-6, mget_base_s=1.0e-6, mget_per_key_s=0.35e-6, mset_base_s=1.0e-6,
        mset_per_key_s=0.45e-6, del_base_s=1.0e-6, del_per_key_s=0.4e-6, io_s=13e-6, keys_held=1000.0,
        scale_1k_keys=1.0, scale_1m_keys=2.5, tails=False, lookup="all",
    )


def test_redis_by_hand() -> None:
    ix = redis()
    ix.plan_insert([0, 1, 2, 5])
    ops = ix.plan_lookup([5, 0, 1, 2])  # a GET, then an MGET of 3
    assert [(o.kind, o.keys) for o in ops] == [("get", 1), ("range", 3)]
    get, rng = ops
    # GET: round trip 25 + event loop 13 + GET 0.8 = 38.8 us; MGET 3: 25 + 13 + 1.0 + 1.05
    assert ix.unloaded_s(get) == pytest.approx(us(38.8), rel=REL)
    assert ix.unloaded_s(rng) == pytest.approx(us(40.05), rel=REL)
    lat = execute(ix, ops)  # one command after the other: the same, with nothing queued
    assert lat == pytest.approx([us(38.8), us(40.05)], rel=REL)
    (i,) = ix.plan_insert([7, 8, 9])  # MSET 3: 25 + 13 + 1.0 + 1.35
    assert ix.unloaded_s(i) == pytest.approx(us(40.35), rel=REL)
    (d,) = ix.plan_delete([8, 9])  # DEL 2: 25 + 13 + 1.0 + 0.8
    assert ix.unloaded_s(d) == pytest.approx(us(39.8), rel=REL)
    # key-count growth, piecewise linear in log10(keys): 1 at 1,000 keys, 2.5 at 1,000,000
    assert ix.key_scale(500) == 1.0 and ix.key_scale(1000) == 1.0
    assert ix.key_scale(100_000) == pytest.approx(1.0 + (2 / 3) * 1.5)  # log10 = 5: 2.0
    assert ix.key_scale(10**7) == 2.5
    ix.plan_insert(list(range(100, 100_100)))  # 100,004 keys held: a GET's command costs 2x
    assert ix.unloaded_s(get) == pytest.approx(us(25 + 13 + 0.8 * ix.key_scale(100_004)), rel=REL)


def test_mooncake_by_hand() -> None:
    ix = MooncakeMasterIndex(rpc_rtt_s=25e-6, rpc_base_s=3e-6, per_key_s=0.3e-6, tails=False, lookup="all")
    ix.plan_insert([0, 1, 2, 5])
    get, rng = ix.plan_lookup([5, 0, 1, 2])
    assert ix.unloaded_s(get) == pytest.approx(us(28.3), rel=REL)  # 25 + 3 + 0.3
    assert ix.unloaded_s(rng) == pytest.approx(us(28.9), rel=REL)  # 25 + 3 + 3 x 0.3
    assert execute(ix, [get, rng]) == pytest.approx([us(28.3), us(28.9)], rel=REL)
    (i,) = ix.plan_insert([7, 8, 9])  # PutStart + PutEnd: 2 x (25 + 3 + 0.9)
    assert (i.round_trips, ix.unloaded_s(i)) == (2, pytest.approx(us(57.8), rel=REL))
    (d,) = ix.plan_delete([8, 9])  # 25 + 3 + 0.6
    assert ix.unloaded_s(d) == pytest.approx(us(28.6), rel=REL)


def test_radix_by_hand() -> None:
    ix = RadixTreeIndex(per_node_s=0.2e-6, per_block_s=0.1e-6, lock_s=0.05e-6)
    ix.plan_lookup(list(range(10)))  # learn the chain
    # insert 0..9: one new node under the root (0.2) holding 10 blocks (10 x 0.1) + lock
    (i,) = ix.plan_insert(list(range(10)))
    assert ix.n_nodes == 1 and ix.unloaded_s(i) == pytest.approx(us(1.25), rel=REL)
    # lookup 0..9: the root's child (0.2) + 10 blocks matched (1.0) + lock
    (r,) = ix.plan_lookup(list(range(10)))
    assert r.kind == "range" and ix.unloaded_s(r) == pytest.approx(us(1.25), rel=REL)
    assert execute(ix, [r]) == pytest.approx([us(1.25)], rel=REL)
    # get(0) alone: the child (0.2) + one block (0.1) + lock
    assert ix.unloaded_s(ix.plan_get(0)) == pytest.approx(us(0.35), rel=REL)
    # delete 9: 0.2 per key deleted + lock
    (d,) = ix.plan_delete([9])
    assert ix.unloaded_s(d) == pytest.approx(us(0.25), rel=REL)
