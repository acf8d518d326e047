"""The tier hierarchy: capacity and accounting invariants under every policy (hypothesis),
placement decisions (admission tier, promotion target, demotion, inclusive copies), and OPT
across tiers equal to Belady's cache of the total size."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kvsim.policy import ARC, FIFO, LFU, LRU, OPT, S3FIFO, Hotness, LookAhead, PrefixLRU
from kvsim.policy.base import EvictionPolicy
from kvsim.system.hierarchy import TierHierarchy, TierSpec
from kvsim.trace.schema import Trace

from .conftest import examples

FACTORIES = {
    "lru": LRU,
    "fifo": FIFO,
    "lfu": partial(LFU, age_every=5),
    "s3fifo": S3FIFO,
    "arc": ARC,
    "prefix_lru": PrefixLRU,
    "hotness": Hotness,
    "lookahead": LookAhead,
    "opt": OPT,
}


def make_trace(reqs: list[list[int]]) -> Trace:
    lens = [len(r) for r in reqs]
    n = len(reqs)
    return Trace(
        arrival_s=np.arange(n, dtype=np.float64),
        input_tokens=np.asarray(lens, dtype=np.int64) * 512 - 100,
        output_tokens=np.ones(n, dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        hash_ids=np.asarray([k for r in reqs for k in r], dtype=np.int64),
    )


def hierarchy(caps: list[int], factory, **kw) -> TierHierarchy:
    tiers = [TierSpec(f"t{i}", f"d{i}", c) for i, c in enumerate(caps)]
    return TierHierarchy(tiers, factory, **kw)


def drive(h: TierHierarchy, reqs: list[list[int]], check: bool = True) -> int:
    """Replay requests as the cluster does (longest present prefix reused, the rest
    stored), checking the invariants and block accounting after each; return prefix hits."""
    h.bind(make_trace(reqs))
    alive: set[int] = set()
    hits = 0
    for blocks in reqs:
        p = 0
        while p < len(blocks) and blocks[p] in h.where:
            p += 1
        hits += p
        if p:
            h.use(blocks[:p])
        h.store(blocks[p:])
        moves, demoted, dropped = h.drain()
        if check:
            h.check()
            located = set(h.where)
            before = alive | set(blocks)
            assert located <= before, "a block appeared from nowhere"
            assert before - located <= set(dropped), "a block vanished without being dropped"
            assert set(demoted) <= before
            assert all(c >= 0 for row in moves for c in row)
            assert sum(row[h.n] for row in moves) <= len(dropped)
            for z, spec in enumerate(h.tiers):  # a zero-capacity tier is skipped, never passed through
                if spec.capacity_blocks == 0:  # (row 0 is also where new blocks are computed)
                    assert not any(row[z] for row in moves), (z, moves)
                    assert z == 0 or not any(moves[z]), (z, moves)
        alive = set(h.where)
    return hits


# Requests shaped like the traces: a few conversations, each a chain of strictly increasing
# ids that every turn extends; block 0 starts every chain.
chains = st.lists(
    st.tuples(st.integers(0, 5), st.integers(1, 9)), min_size=1, max_size=60
).map(lambda rs: [[0] + [1000 * (c + 1) + j for j in range(1, n)] for c, n in rs])
caps = st.lists(st.integers(0, 6), min_size=1, max_size=4)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("inclusive", [False, True])
@settings(max_examples=examples(40), deadline=None)
@example(reqs=[[0, 1001, 1002], [0, 1001], [0, 2001]], caps=[0, 2], promote=True)  # no GPU tier
@example(reqs=[[0, 1001], [0, 2001], [0, 1001, 1002]], caps=[1, 0, 2], promote=True)  # empty middle
@example(reqs=[[0, 1001], [0, 1001]], caps=[0, 0], promote=False)  # nothing can be kept
@given(reqs=chains, caps=caps, promote=st.booleans())
def test_invariants_hold_for_every_policy(name, inclusive, reqs, caps, promote) -> None:
    h = hierarchy(caps, FACTORIES[name], promote_on_hit=promote, inclusive=inclusive)
    drive(h, reqs)


# Blocks used hundreds of times: past every frequency a policy caps or tabulates (S3-FIFO's
# 2-bit counter, LFU's buckets, hotness's table of f ** alpha for f < 256).
hot = st.tuples(chains, st.integers(260, 400)).map(
    lambda t: [[0, 1001] if i % 2 == 0 else t[0][(i // 2) % len(t[0])] for i in range(2 * t[1])]
)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=examples(5), deadline=None)
@given(reqs=hot, caps=st.lists(st.integers(0, 4), min_size=1, max_size=3))
def test_invariants_hold_past_every_frequency_threshold(name, reqs, caps) -> None:
    assert sum(r.count(1001) for r in reqs) > 256  # the generator reaches the thresholds
    h = hierarchy(caps, FACTORIES[name])
    assert drive(h, reqs) <= sum(len(r) for r in reqs)


@settings(max_examples=examples(60), deadline=None)
@given(keys=st.lists(st.integers(0, 12), min_size=1, max_size=120), caps=caps)
def test_opt_across_tiers_is_belady_of_the_total_size(keys, caps) -> None:
    """Exclusive tiers, new blocks into tier 0, victims passed down, hits promoted: the
    blocks dropped below the bottom are the farthest-used of all tiers, so the union of the
    tiers is Belady's cache of their total size (single-block requests: block hits)."""
    h = hierarchy(caps, OPT)
    hits = drive(h, [[k] for k in keys])
    assert hits == OPT(sum(caps)).replay(keys)


def test_default_is_the_classic_exclusive_cascade() -> None:
    h = hierarchy([2, 2], LRU)
    h.store([1, 2, 3])  # 1 is demoted by 3
    assert h.where == {1: 1, 2: 0, 3: 0}
    moves, demoted, dropped = h.drain()
    assert moves[0][1] == 1 and demoted == [1] and dropped == []
    h.use([1])  # promoted; 2 (LRU of tier 0) goes down
    assert h.where == {1: 0, 2: 1, 3: 0}
    moves, demoted, _ = h.drain()
    assert moves[1][0] == 1 and moves[0][1] == 1 and demoted == [2]
    assert h.total_moves[0][1] == 2 and h.total_moves[1][0] == 1
    h.store([4, 5, 6, 7])
    _, _, dropped = h.drain()
    assert len(h.where) == 4 and len(dropped) == 3
    h.check()


def test_drain_moves_lists_the_non_zero_moves_in_order() -> None:
    h = hierarchy([2, 2], LRU)
    h.store([1, 2, 3])
    h.use([1])
    moves, demoted, dropped = h.drain_moves()
    assert moves == [(0, 1, 2), (1, 0, 1)] and demoted == [1, 2] and dropped == []
    assert h.drain_moves() == ([], [], [])
    assert h.total_moves[0][1] == 2 and h.total_moves[1][0] == 1


def test_inclusive_promotion_keeps_the_lower_copy() -> None:
    h = hierarchy([1, 4], LRU, inclusive=True)
    h.store([1, 2])  # 1 demoted to tier 1
    h.use([1])  # copied up; tier 1 keeps its copy; 2 is demoted to tier 1
    assert h.where[1] == 0 and 1 in h.policies[1] and 1 in h.policies[0]
    h.drain()
    h.store([3])  # 1 leaves tier 0: its copy below becomes the fastest, no bytes move
    moves, demoted, _ = h.drain()
    assert h.where[1] == 1 and moves[0][1] == 0 and 1 in demoted
    h.check()


def test_policy_yaml_can_ask_for_inclusive() -> None:
    h = hierarchy([1, 1], partial(LRU, inclusive=True))
    assert h.inclusive


class _Picky(LRU):
    """Tier 0 takes only even blocks."""

    filters = True

    def accepts(self, key: int) -> bool:
        return self.tier != 0 or key % 2 == 0


def test_admission_tier_promotion_and_demotion_follow_accepts() -> None:
    h = hierarchy([4, 4], _Picky)
    h.store([1, 2, 3, 4])
    assert h.where == {1: 1, 2: 0, 3: 1, 4: 0}
    moves, demoted, _ = h.drain()
    assert moves[0][1] == 2 and demoted == []  # computed on the GPU, written down: not demoted
    h.use([1, 2])  # 1 is not promoted (tier 0 declines it), 2 is already on top
    assert h.where[1] == 1
    moves, _, _ = h.drain()
    assert moves[1][0] == 0


class _Nobody(LRU):
    filters = True

    def accepts(self, key: int) -> bool:
        return False


def test_a_block_no_tier_accepts_is_dropped_at_once() -> None:
    h = hierarchy([4, 4], _Nobody)
    h.store([5, 6])
    _, _, dropped = h.drain()
    assert h.where == {} and dropped == [5, 6]


def test_hotness_tiers_keep_one_record_per_block() -> None:
    """Every tier takes every block (no admission rule); a block's record follows it down and
    up, and ends when the bottom tier drops it."""
    h = hierarchy([2, 2], Hotness)
    h.store([0, 1, 2, 3])
    assert h.where == {0: 1, 1: 1, 2: 0, 3: 0}
    h.use([0])
    assert h.where[0] == 0 and h.policies[0].record(0) == (2, 4, 5)  # stored at time 4, used at 5
    h.store([4, 5])  # two blocks leave the bottom tier
    assert len(h.policies[0].sig.history) == 2 and len(h.where) == 4
    h.check()


def test_opt_drops_blocks_never_used_again() -> None:
    reqs = [[0, 1], [0, 2], [0, 1]]
    h = hierarchy([1, 1], OPT)
    assert drive(h, reqs) == 1 + 2  # block 0 twice, then block 1; block 2 is never kept


def test_observe_is_called_once_per_access_on_tier_zero() -> None:
    seen: list[tuple[tuple[int, ...], bool]] = []

    class Spy(LRU):
        def observe(self, keys, new: bool) -> None:
            assert self.tier == 0
            seen.append((tuple(keys), new))

    h = hierarchy([2, 2], Spy)
    h.store([1, 2])
    h.use([1])
    assert seen == [((1, 2), True), ((1,), False)]


def test_every_policy_joins_its_tier() -> None:
    for name, f in FACTORIES.items():
        h = hierarchy([1, 2, 3], f)
        assert [p.tier for p in h.policies] == [0, 1, 2], name
        assert all(isinstance(p, EvictionPolicy) for p in h.policies)


def test_demotions_skip_zero_capacity_tiers_by_hand() -> None:
    """Tiers of 2, 0 and 2 blocks (LRU): the empty middle tier is never a destination, a
    source or a stop on the way down.
        store 1 2 3   tier 0 [1 2] is full when 3 arrives: 1 goes to tier 2, not tier 1
        use 1         1 is promoted 2 -> 0; tier 0's LRU (2) goes down to tier 2
        store 4 5 6   tier 0 (LRU first) [3 1] takes 4 5 6 one by one: 3, 1, 4 go down;
                      tier 2 [2] takes them: 2, then 3 overflow and are dropped"""
    h = hierarchy([2, 0, 2], LRU)
    h.store([1, 2, 3])
    assert h.where == {1: 2, 2: 0, 3: 0}
    moves, demoted, dropped = h.drain()
    assert moves == [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]] and demoted == [1] and dropped == []
    h.use([1])
    assert h.where == {1: 0, 2: 2, 3: 0}
    moves, demoted, _ = h.drain()
    assert moves == [[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]] and demoted == [2]
    h.store([4, 5, 6])
    moves, demoted, dropped = h.drain()
    assert h.where == {5: 0, 6: 0, 1: 2, 4: 2}
    assert moves == [[0, 0, 3, 0], [0, 0, 0, 0], [0, 0, 0, 2]]
    assert demoted == [3, 1, 4] and dropped == [2, 3]
    h.check()


def test_new_blocks_skip_a_zero_capacity_admission_tier() -> None:
    """admit_tier=1 with tier 1 empty: a new block is written to tier 2 (a move 0 -> 2, not
    a demotion), and with every tier empty it is dropped at once."""
    h = hierarchy([4, 0, 4], LRU, admit_tier=1)
    h.store([7, 8])
    moves, demoted, dropped = h.drain()
    assert h.where == {7: 2, 8: 2} and moves[0][2] == 2 and moves[0][1] == 0
    assert demoted == [] and dropped == []
    h = hierarchy([0, 0], LRU)
    h.store([7, 8])
    moves, demoted, dropped = h.drain()
    assert h.where == {} and dropped == [7, 8] and demoted == [] and not any(map(any, moves))


def test_filtered_cascade_skips_zero_capacity_tiers() -> None:
    """The general path (a policy that filters): tier 0 takes even blocks only; tiers 1 and 3
    are empty. Odd blocks are written straight to tier 2; tier 0's victims also go to tier 2."""
    h = hierarchy([1, 0, 2, 0], _Picky)
    # groups by entry tier, fastest first: 2, 4 -> tier 0, where 4 pushes 2 down to tier 2;
    # then 1 -> tier 2, which holds (LRU first) [2 1]
    h.store([1, 2, 4])
    assert h.where == {1: 2, 2: 2, 4: 0}
    moves, demoted, dropped = h.drain()
    assert moves[0][2] == 2 and moves[0][1] == 0 and demoted == [2] and dropped == []
    h.store([6])  # 4 goes down; tier 2 [2 1] is full: 2 (LRU) is dropped, not parked in tier 3
    moves, demoted, dropped = h.drain()
    assert h.where == {1: 2, 4: 2, 6: 0} and dropped == [2]
    assert moves[2][4] == 1 and moves[2][3] == 0 and moves[0][2] == 1
    h.check()


# --- several views: one GPU tier per instance, DRAM per host, one shared pool ---------------
def node(caps: list[int], factory, **kw) -> TierHierarchy:
    """Three instances on two hosts: gpu0, gpu1 on host 0, gpu2 on host 1; one pool."""
    g0, g1, g2, d0, d1, r = caps
    tiers = [TierSpec("gpu", "gpu0", g0), TierSpec("gpu", "gpu1", g1), TierSpec("gpu", "gpu2", g2),
             TierSpec("dram", "host0", d0), TierSpec("dram", "host1", d1), TierSpec("remote", "remote", r)]
    return TierHierarchy(tiers, factory, views=[[0, 3, 5], [1, 3, 5], [2, 4, 5]], **kw)


def drive_views(h: TierHierarchy, reqs: list[tuple[int, list[int]]]) -> int:
    h.bind(make_trace([b for _, b in reqs]))
    seen: set[int] = set()
    hits = 0
    for v, blocks in reqs:
        locs = []
        for b in blocks:
            t = h.locate(b, v)
            if t < 0:
                break
            locs.append(t)
        p = len(locs)
        hits += p
        before = {k for pol in h.policies for k in pol}
        if p:
            h.use(blocks[:p], v, locs)
        h.store(blocks[p:], v)
        _, demoted, dropped = h.drain()
        h.check()
        seen.update(blocks)
        held = {k for pol in h.policies for k in pol}
        assert held <= seen, "a block appeared from nowhere"
        assert (before | set(blocks)) - held <= set(dropped), "a block vanished without being dropped"
        assert set(demoted) <= seen
    return hits


views_reqs = st.lists(st.tuples(st.integers(0, 2), st.tuples(st.integers(0, 5), st.integers(1, 9))), min_size=1,
                      max_size=60).map(lambda rs: [(v, [0] + [1000 * (c + 1) + j for j in range(1, n)]) for v, (c, n) in rs])
node_caps = st.lists(st.integers(0, 6), min_size=6, max_size=6)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("inclusive", [False, True])
@settings(max_examples=30, deadline=None)
@given(reqs=views_reqs, caps=node_caps, promote=st.booleans())
def test_invariants_hold_with_several_views(name, inclusive, reqs, caps, promote) -> None:
    h = node(caps, FACTORIES[name], promote_on_hit=promote, inclusive=inclusive)
    drive_views(h, reqs)


def test_a_shared_tier_keeps_its_copy_and_a_private_one_gives_it_up() -> None:
    h = node([2, 2, 2, 8, 8, 8], LRU)
    h.store([1, 2, 3], 0)  # 1 demoted from gpu0 to host 0's DRAM
    h.drain()
    assert h.locate(1, 0) == 3 and h.locate(1, 1) == 3 and h.locate(1, 2) == -1  # host 1 does not see it
    h.use([1], 0, [3])  # loaded into gpu0: host 0's DRAM keeps it for gpu1
    assert 1 in h.policies[0] and 1 in h.policies[3]
    moves, demoted, _ = h.drain()
    assert moves[3][0] == 1 and 1 not in demoted
    h.store([4, 5], 0)  # 1 leaves gpu0 again: DRAM still has it, so no bytes move
    moves, demoted, _ = h.drain()
    assert moves[0][3] == 1 and 1 in demoted  # 2 moved down; 1 only lost its GPU copy
    assert 2 in h.policies[3] and 1 in h.policies[3]
    # the pool is shared by every view; host 0's DRAM is not: a block going from the pool to
    # DRAM 0 would leave host 1 without it, so it is copied, not moved
    h2 = node([0, 0, 0, 4, 4, 4], LRU)
    h2.store([7], 2)  # no GPU room: into host 1's DRAM
    assert h2.locate(7, 2) == 4
    assert not h2.movable[5][3] and h2.movable[3][5] and h2.movable[0][3] and not h2.movable[3][0]


def test_views_must_form_a_tree() -> None:
    tiers = [TierSpec("gpu", "g0", 1), TierSpec("gpu", "g1", 1), TierSpec("dram", "h0", 1), TierSpec("dram", "h1", 1)]
    with pytest.raises(ValueError, match="two different tiers below"):
        TierHierarchy(tiers, LRU, views=[[0, 2], [0, 3], [1, 3]])
    with pytest.raises(ValueError, match="in no view"):
        TierHierarchy(tiers, LRU, views=[[0, 2]])


def test_filtered_path_counts_every_drop_and_demotion_of_a_period() -> None:
    """The general path (a filtering policy), moves summed over several stores before one
    drain. Tiers of 1 and 0 blocks: tier 0 keeps the newest even block; each one it lets go
    has nowhere below (tier 1 is empty), so it is dropped from tier 0: moves[0][2] (column
    n = 2: dropped) counts 2 and 4. An odd block is refused by tier 0 and dropped at once,
    never having been anywhere (no move)."""
    h = hierarchy([1, 0], _Picky)
    for k in (2, 4, 6):
        h.store([k])
    h.store([7])
    moves, demoted, dropped = h.drain()
    assert h.where == {6: 0}
    assert moves == [[0, 0, 2], [0, 0, 0]] and dropped == [2, 4, 7] and demoted == []
    # tiers of 1 and 4: the two blocks tier 0 lets go both go down: moves[0][1] == 2
    h = hierarchy([1, 4], _Picky)
    for k in (2, 4, 6):
        h.store([k])
    moves, demoted, dropped = h.drain()
    assert h.where == {2: 1, 4: 1, 6: 0}
    assert moves == [[0, 2, 0], [0, 0, 0]] and demoted == [2, 4] and dropped == []
    h.check()


@pytest.mark.parametrize("table", [False, None], ids=["dicts", "default"])
def test_prefix_lookup_by_hand(table: bool | None) -> None:
    """Instance 0 (gpu0, host0's DRAM, the pool) after stores that leave 1, 2 in gpu0, 3, 4 in
    the DRAM and 5 in the pool: the prefix of [1, 2, 3, 9, 5] held by view 0 is 1, 2 (gpu0) and 3
    (DRAM); 9 is absent, 5 beyond it is held (present 4); view 2 (gpu2, host1's DRAM, the
    pool) holds none of the prefix (its first block is not there) but 5 (present 1)."""
    h = node([2, 0, 0, 2, 0, 1], LRU, table=table)
    h.store([5, 3, 4, 1, 2], 0)  # gpu0 keeps the last two; 5, 3, 4 go down; 5 on to the pool
    h.drain()
    assert list(h.policies[0]) == [1, 2] and list(h.policies[3]) == [3, 4] and list(h.policies[5]) == [5]
    assert h.prefix([1, 2, 3, 9, 5], 0) == ([0, 0, 3], [2, 1, 0], 4)
    assert h.prefix([1, 2, 3, 9, 5], 2) == ([], [0, 0, 0], 1)
    assert h.prefix([5, 9], 2) == ([5], [0, 0, 1], 1)
    assert h.not_held_by([0, 3])([1, 9, 3, 5]) == [9, 5]
