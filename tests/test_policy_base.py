"""The policy interface (kvsim/policy/base.py), and every classic policy through it: the calls
the tier hierarchy makes (membership, ``touch`` on a hit, ``admit`` or ``admit_many`` on a
miss, ``observe`` first) give the same hits and contents as the policy's own fast ``replay``,
at every capacity, 0 and 1 included. Each policy's algorithm is checked in its own module;
this one checks that its two code paths are one algorithm."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kvsim.policy import ARC, FIFO, LFU, LRU, OPT, S3FIFO, PrefixLRU
from kvsim.policy.base import EvictionPolicy
from kvsim.system.hierarchy import TierHierarchy, TierSpec
from kvsim.trace.schema import Trace

from .conftest import examples

CLASSIC = {
    "lru": LRU,
    "fifo": FIFO,
    "lfu": LFU,
    "lfu_aging": partial(LFU, age_every=3),
    "s3fifo": S3FIFO,
    "arc": ARC,
    "opt": OPT,
    "opt_demand": partial(OPT, bypass=False),
    "prefix_lru": PrefixLRU,
}


def one_block_requests(keys: list[int]) -> Trace:
    n = len(keys)
    return Trace(
        arrival_s=np.arange(n, dtype=np.float64),
        input_tokens=np.full(n, 512, dtype=np.int64),
        output_tokens=np.ones(n, dtype=np.int64),
        offsets=np.arange(n + 1, dtype=np.int64),
        hash_ids=np.asarray(keys, dtype=np.int64),
    )


def answers_for_its_residents(p: EvictionPolicy, m: object) -> None:
    """``members()`` (what the hierarchy asks ``key in``) is the same dict throughout and
    holds exactly the residents (written for speed: every classic policy hands one out)."""
    assert p.members() is m and isinstance(m, dict)
    assert set(m) == set(p) and len(m) == len(p)


def through_the_interface(p: EvictionPolicy, keys: list[int], batch: int) -> int:
    """Hits when driven as the hierarchy drives a tier: observe, then touch a resident block
    or admit a new one; runs of ``batch`` consecutive misses go through admit_many. Checks
    after each step that ``members()`` answers for exactly the residents."""
    m = p.members()
    hits = 0
    pending: list[int] = []
    for k in keys:
        if k in p or k in pending:  # maybe a hit: the pending misses are admitted first
            p.admit_many(pending)
            pending = []
            assert len(p) <= p.capacity
            answers_for_its_residents(p, m)
            if k in p:
                p.observe([k], False)
                p.touch(k)
                hits += 1
                continue
        p.observe([k], True)  # a miss whatever the pending admissions do
        pending.append(k)
        if len(pending) >= batch:
            p.admit_many(pending)
            pending = []
            assert len(p) <= p.capacity
            answers_for_its_residents(p, m)
    p.admit_many(pending)
    assert len(p) <= p.capacity
    answers_for_its_residents(p, m)
    return hits


@pytest.mark.parametrize("name", sorted(CLASSIC))
@settings(max_examples=examples(60), deadline=None)
@example(keys=[1, 2, 1, 3, 1, 2], cap=1, batch=1)  # a one-block cache keeps what it admits
@example(keys=[1, 1, 2, 2, 1], cap=0, batch=2)
@example(keys=[1, 2, 3, 1, 1, 1, 4, 5, 6, 1], cap=3, batch=1)  # touched past every counter cap
@given(keys=st.lists(st.integers(0, 12), max_size=150), cap=st.integers(0, 8), batch=st.integers(1, 4))
def test_the_hierarchys_calls_equal_the_fast_replay(name, keys, cap, batch) -> None:
    if batch > 1 and name.startswith("opt"):
        batch = 1  # OPT's clock advances per observed access; a batch observes ahead
    factory = CLASSIC[name]
    trace = one_block_requests(keys)
    fast, slow = factory(cap), factory(cap)
    fast.bind(trace)
    slow.join(0, [slow])
    slow.bind(trace)
    assert through_the_interface(slow, keys, batch) == fast.replay(keys)
    assert sorted(slow) == sorted(fast)
    answers_for_its_residents(fast, fast.members())


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_placement_defaults(name) -> None:
    """A classic policy keeps the classic exclusive hierarchy: no admission filter (OPT's
    is its bypass), exclusive unless asked, joined to its tier."""
    p = CLASSIC[name](4)
    assert p.inclusive is False and CLASSIC[name](4, inclusive=True).inclusive is True
    if not name.startswith("opt"):
        assert p.filters is False and p.accepts(7) is True
    peers = [CLASSIC[name](1), CLASSIC[name](2), p]
    for i, q in enumerate(peers):
        q.join(i, peers)
    assert [q.tier for q in peers] == [0, 1, 2]
    assert EvictionPolicy.accepts(p, 7) is True  # the base class's default: every block


def test_lfu_aging_halves_frequencies_by_hand() -> None:
    """LFU of 3 blocks, aging every 4th admission:
        admit x y z; x used 3 times (f 3), y twice (f 2), z once (f 1)
        admit w: evicts z (f 1); 4th admission: age: w 1 -> 1, y 2 -> 1, x 3 -> 1 (integer
                 halving, at least 1), relinked from the lowest frequency: bucket 1 = [w y x]
        admit v, u, t: evict w, then y, then x (the least recently linked of bucket 1).
    Halving to 1.5 instead of 1 would keep x and evict v third."""
    c = LFU(3, age_every=4)
    assert c.admit_many(["x", "y", "z"]) == []  # type: ignore[list-item]
    for k in ("x", "x", "y"):
        c.touch(k)  # type: ignore[arg-type]
    assert c.admit("w") == ["z"]  # type: ignore[arg-type]
    assert [c.admit(k) for k in ("v", "u", "t")] == [["w"], ["y"], ["x"]]  # type: ignore[arg-type]


def test_opt_without_the_trace_keeps_nothing_and_never_again_blocks_move_nowhere() -> None:
    """OPT knows next uses only from the bound trace: unbound, every block is 'never used
    again' and is dropped where it was computed; bound, a block never used again is not
    written to any tier (no move, no demotion), while one used again is kept."""
    h = TierHierarchy([TierSpec("a", "d", 2), TierSpec("b", "d", 2)], OPT)
    h.store([1, 2])
    moves, demoted, dropped = h.drain()
    assert h.where == {} and dropped == [1, 2] and demoted == [] and not any(map(any, moves))
    h = TierHierarchy([TierSpec("a", "d", 1), TierSpec("b", "d", 1)], OPT)
    reqs = [[5], [6], [7], [5], [6]]  # 7 is never used again
    h.bind(Trace(np.arange(5.0), np.full(5, 512), np.ones(5, dtype=np.int64), np.arange(6), np.array(sum(reqs, []))))
    for r in reqs[:3]:
        if r[0] in h.where:
            h.use(r)
        else:
            h.store(r)
    moves, demoted, dropped = h.drain()
    # 5 (next use at 3) fills tier 0; 6 (next use at 4, later) is declined there and written
    # to tier 1; 7 (never again) is written nowhere
    assert h.where == {5: 0, 6: 1}
    assert dropped == [7] and demoted == [] and moves[0][1] == 1 and sum(map(sum, moves)) == 1
    assert OPT(0).admit(3) == [3] and len(OPT(0)) == 0


def test_zero_and_one_block_caches() -> None:
    for name, factory in CLASSIC.items():
        zero = factory(0)
        assert zero.admit(1) == [1] and 1 not in zero and len(zero) == 0, name
        one = factory(1)
        one.bind(one_block_requests([1, 2, 1]))
        one.observe([1], True)
        assert one.admit(1) == [] and 1 in one, name  # 1 is used again: kept


def test_opt_state_after_a_replay_is_usable() -> None:
    """A replay leaves a valid OPT: its heap (compacted at the end when stale entries pile
    up) still yields the resident used farthest in the future."""
    keys = [0, 1, 2, 3] * 100 + [4]  # 396 hits leave ~400 stale heap entries: compaction
    p = OPT(4, bypass=False)
    assert p.replay(keys) == 396
    # at the end no block is used again: 4 replaces one of the four (ties go to the lowest id)
    assert sorted(p) == [1, 2, 3, 4]
    assert p.admit(99) == [1]  # again the lowest id among the never-again blocks


def test_lazy_heap_skips_stale_entries_and_stays_bounded() -> None:
    """OPT's and PrefixLRU's shared heap: an entry counts while it records its key's current
    priority; re-prioritising a key never removes its old entries, yet the heap stays within
    4x the live keys (+64), and rebuilding it changes no answer."""
    from kvsim.policy.base import LazyHeap

    prio: dict[int, int] = {}
    h = LazyHeap(lambda p, k: prio.get(k) == p, lambda: ((p, k) for k, p in prio.items()))
    for k, p in ((1, 5), (2, 3), (3, 9)):
        prio[k] = p
        h.push(p, k, len(prio))
    prio[2] = 7  # key 2 re-prioritised: (3, 2) is stale
    h.push(7, 2, len(prio))
    assert h.top() == (5, 1) and len(h) == 3  # the stale top was dropped
    del prio[1]  # key 1 leaves: its entry goes stale
    assert h.pop() == (7, 2) and h.pop() == (9, 3)
    del prio[2], prio[3]  # popped: they left
    for i in range(10_000):  # one key, a new priority each time
        prio[4] = i
        h.push(i, 4, len(prio))  # the bound checked at every push
        assert len(h) <= 4 * len(prio) + 64 + 1
    assert h.top() == (9_999, 4)
