"""Write concurrency in the RDMA trees, against values worked out by hand and a simple
independent model: writers of one leaf serialise, spinning writers retry their CAS."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from kvsim.index.base import Op, OpRecorder
from kvsim.index.chime import ChimeIndex
from kvsim.index.sherman import ShermanIndex

from .index_util import client, execute

# the default calibration, by hand (conf/calibration/default.yaml)
NIC = 1 / 215e6  # one message on the NIC
B = 1 / 11.5e9  # one byte on the link
QP = 1 / 2.5e6  # one more message of a batch on its queue pair
MMIO = 0.1e-6
PROBE = 0.2e-6  # one probe of the compute-side cache
HALF = 1.9e-6 / 2  # a CAS reaches the lock word half a READ round trip after it is posted
CAS = 2.0e-6 + NIC + 8 * B  # 2.005347 us
READ_PAGE = 1.9e-6 + NIC + 1024 * B  # 1.993695 us
WRITE_ENTRY = 2 * 1.32e-6 + NIC + 42 * B  # a 42 B entry, no unlock (handed over): 2.648303 us
WRITE_ENTRY_UNLOCK = 2 * 1.32e-6 + QP + MMIO + 2 * NIC + 50 * B  # entry + unlock, 2 doorbells: 3.153650 us


def sherman(**kw: object) -> ShermanIndex:
    ix = ShermanIndex(client(doorbell_batch=False), cache_policy="lru", **kw)  # type: ignore[arg-type]
    # one leaf-parent (the root) over four leaves of 11 keys: 0..10 | 11..21 | 22..32 | 33..43
    ix.tree.bulk_load(list(range(44)), leaf_fill=11)
    ix.plan_get(0)  # the root is cached
    return ix


def concurrent(ix: ShermanIndex | ChimeIndex, batches: list[list[int]], at: list[float] | None = None) -> list[Op]:
    """Insert each batch from its own process, all at t = 0 (or at ``at``); the ops, run."""
    env = simpy.Environment()
    ix.recorder = OpRecorder()
    ops = [ix.plan_insert(b)[0] for b in batches]

    def proc(op: Op, t: float):  # type: ignore[no-untyped-def]
        if t:
            yield env.timeout(t)
        yield from ix.execute(env, [op])

    for op, t in zip(ops, at or [0.0] * len(ops), strict=True):
        env.process(proc(op, t))
    env.run()
    return ops


def test_two_writers_on_one_leaf_serialise_local_wait() -> None:
    """Sherman (HOCL): the second writer waits locally for exactly the first's hold time
    and gets the lock handed over (no CAS); the first's write-back carries no unlock."""
    ix = sherman()
    a, b = concurrent(ix, [[44], [45]])  # both into the rightmost leaf (33..43)
    lat = ix.recorder.latency_s
    # A: probe, CAS, READ, WRITE of its entry (the lock goes to B: no unlock message)
    hold_a = CAS + READ_PAGE + WRITE_ENTRY  # from its CAS to its write-back: 6.647345 us
    assert lat[0] == pytest.approx(PROBE + hold_a, rel=1e-9)
    assert hold_a == pytest.approx(6.647345e-6, rel=1e-6)
    # B asked for the lock when A did (after its probe) and waited A's whole hold time
    assert b.lock_wait_s == pytest.approx(hold_a, rel=1e-9)
    # then, handed over: READ, WRITE + unlock (no CAS of its own)
    assert lat[1] == pytest.approx(PROBE + hold_a + READ_PAGE + WRITE_ENTRY_UNLOCK, rel=1e-9)
    assert (a.atomics, b.atomics) == (1, 0) and (a.round_trips, b.round_trips) == (3, 2)
    assert a.cas_retries == b.cas_retries == 0 and a.lock_wait_s == 0.0
    assert ix.contains(44) and ix.contains(45) and ix.locks.handed == 1


def test_two_writers_on_one_leaf_serialise_spinning() -> None:
    """CHIME's way (spin on the remote word): the second CAS fails, retries every round
    trip, and wins with the first attempt that reaches the word after the unlock landed."""
    ix = sherman(lock_wait="spin")
    a, b = concurrent(ix, [[44], [45]])
    lat = ix.recorder.latency_s
    t_a = PROBE + CAS + READ_PAGE + WRITE_ENTRY_UNLOCK
    assert lat[0] == pytest.approx(t_a, rel=1e-9)
    landing = t_a - HALF  # A's unlock takes effect half a round trip before A sees it done
    first_done_b = PROBE + NIC + 8 * B + CAS  # B's first CAS queued one CAS behind A's on the NIC
    # B retries at once: each retry reaches the word its NIC time + half a round trip after
    # it is posted, and the next is posted when it completes (a CAS round trip later)
    arrivals = first_done_b + NIC + 8 * B + HALF + CAS * np.arange(0, 10)
    m = int(np.argmax(arrivals >= landing))  # the first to arrive after the unlock
    assert (m, b.cas_retries) == (2, 1 + m)  # the first CAS, then m failed retries
    got = arrivals[m] + HALF  # that CAS completes
    assert b.lock_wait_s == pytest.approx(got - first_done_b, rel=1e-9)
    assert lat[1] == pytest.approx(got + READ_PAGE + WRITE_ENTRY_UNLOCK, rel=1e-6)
    assert b.atomics == 1 + b.cas_retries + 0 and b.round_trips == 1 + b.cas_retries + 2


def simple_spin_model(k: int, cas: float, hold: float) -> int:
    """Failed CASes when k writers CAS one free lock word at once and spin: attempts
    arrive every ``cas``; a holder keeps the word ``hold`` after its CAS arrived; at each
    attempt time every waiting writer tries, one wins if the word is free."""
    waiting, failed, t, free_at = k, 0, 0.0, 0.0
    while waiting:
        if t >= free_at - 1e-15:  # one wins, the others fail
            failed += waiting - 1
            waiting -= 1
            free_at = t + hold
        else:
            failed += waiting
        t += cas
    return failed


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_cas_retries_under_k_contenders_match_a_simple_model(k: int) -> None:
    """k writers of one leaf at once, spinning on its remote lock word (CHIME's way),
    constant costs: the failed CASes are exactly those of the simple model, with the
    hold = READ of the page + WRITE of the entry and the unlock."""
    ix = sherman(lock_wait="spin")
    keys = [44 + j for j in range(k)]  # k new keys of the rightmost leaf (room for 11 more)
    ops = concurrent(ix, [[x] for x in keys])
    assert sum(op.cas_retries for op in ops) == simple_spin_model(k, CAS, READ_PAGE + WRITE_ENTRY_UNLOCK)
    assert all(ix.contains(x) for x in keys)
    assert ix.locks.cas_failed == sum(op.cas_retries for op in ops)


def test_chime_spins_by_default_and_writers_of_different_leaves_do_not_wait() -> None:
    ix = ChimeIndex(client())
    assert ix.locks.wait == "spin" and ix.locks.slots == 0  # a lock word in every node
    ix.tree.bulk_load(list(range(0, 4000, 10)), leaf_fill=16)
    for k in range(0, 4000, 50):
        ix.plan_get(k)
    ops = concurrent(ix, [[5], [1005], [2005], [3005]])  # four different leaves
    assert [op.cas_retries for op in ops] == [0, 0, 0, 0] and max(op.lock_wait_s for op in ops) == 0.0
    ops = concurrent(ix, [[7], [8]])  # one leaf
    assert sum(op.cas_retries for op in ops) > 0


def test_cas_retries_with_drawn_costs_follow_the_simple_model_on_average() -> None:
    """Seeded runs with the costs drawn from their distributions: the mean count of failed
    CASes of 5 contenders is within 10% of the simple model at the mean costs."""
    k, runs = 5, 300
    got = []
    for seed in range(runs):
        ix = ShermanIndex(client(doorbell_batch=False, tails=True), cache_policy="lru", lock_wait="spin",
                          rng=np.random.default_rng(seed))
        ix.tree.bulk_load(list(range(44)), leaf_fill=11)
        ix.plan_get(0)
        ops = concurrent(ix, [[44 + j] for j in range(k)])
        got.append(sum(op.cas_retries for op in ops))
    read, write, atomic = (d.mean() for d in ix.client.dists)
    cas = atomic + NIC + 8 * B
    hold = read + NIC + 1024 * B + write + QP + MMIO + 2 * NIC + 50 * B
    assert np.mean(got) == pytest.approx(simple_spin_model(k, cas, hold), rel=0.10)


def test_hand_over_stops_after_max_handover_in_a_row() -> None:
    """Sherman's kMaxHandOverTime (8) counts the acquisitions since the CAS: the 8th holder
    unlocks remotely and the 9th waiter CASes the word itself."""
    ix = sherman()
    ops = concurrent(ix, [[44 + j] for j in range(10)])  # (the leaf has room for 10 more: no split)
    assert [op.atomics for op in ops] == [1, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    assert ix.locks.handed == 7 + 1
    assert all(ix.contains(44 + j) for j in range(10))
    # by hand: the first takes the lock (probe, CAS, READ, WRITE); each handed writer READs
    # and WRITEs its entry; the 8th holder's write carries the unlock; the 9th then posts its
    # own CAS at that moment (well after time 0), the 10th is handed the lock and unlocks
    step = READ_PAGE + WRITE_ENTRY
    ends = [PROBE + CAS + step + k * step for k in range(7)]
    ends.append(ends[-1] + READ_PAGE + WRITE_ENTRY_UNLOCK)
    ends.append(ends[-1] + CAS + step)
    ends.append(ends[-1] + READ_PAGE + WRITE_ENTRY_UNLOCK)
    assert ix.recorder.latency_s == pytest.approx(ends, rel=1e-9)


def test_the_tree_changes_when_the_write_executes() -> None:
    ix = sherman()
    (op,) = ix.plan_insert([60])
    assert not ix.contains(60)  # planned only
    env = simpy.Environment()
    seen = []

    def writer():  # type: ignore[no-untyped-def]
        yield from ix.execute(env, [op])

    def reader():  # type: ignore[no-untyped-def]
        yield env.timeout(2e-6)  # while the writer holds the lock, before its READ completes
        seen.append(ix.contains(60))
        yield env.timeout(10e-6)
        seen.append(ix.contains(60))

    env.process(writer())
    env.process(reader())
    env.run()
    assert seen == [False, True]


def test_many_concurrent_writers_of_many_leaves_finish_and_keep_the_tree_sound() -> None:
    """Random batches over overlapping leaves, both ways of waiting: no deadlock, every
    key in, the tree's invariants hold, and a turn-right when a split moved a key."""
    rng = np.random.default_rng(5)
    for wait in ("local", "spin"):
        ix = ShermanIndex(client(), lock_wait=wait)
        ix.tree.bulk_load(list(range(0, 4000, 4)), leaf_fill=20)
        batches = [sorted(set(rng.integers(0, 4000, size=12).tolist()) - set(range(0, 4000, 4))) for _ in range(60)]
        batches = [b for b in batches if b]
        ops = concurrent(ix, batches, at=rng.uniform(0, 20e-6, len(batches)).tolist())
        assert all(ix.contains(x) for b in batches for x in b)
        ix.tree.check()
        assert all(math.isfinite(op.lock_wait_s) for op in ops)
        if wait == "local":
            assert sum(op.lock_wait_s > 0 for op in ops) > 0


def test_untimed_apply_changes_the_tree_at_once() -> None:
    ix = sherman()
    ix.apply(ix.plan_insert(list(range(100, 140))) + ix.plan_delete([0, 1]))
    assert all(ix.contains(x) for x in range(100, 140)) and not ix.contains(0)
    ix.tree.check()
    lat = execute(ix, ix.plan_delete([2]))
    assert lat and not ix.contains(2)
