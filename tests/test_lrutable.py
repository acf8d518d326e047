"""The LRU table (kvsim/system/lrutable.pyx): the tier hierarchy with every LRU tier (or
every FIFO tier) in one table gives exactly what it gives with each tier's own OrderedDict.

Compared step by step on random hierarchies (one view or several, tiers of zero capacity,
instances sharing a host's DRAM; new blocks admitted at the top or below it; promotion on
hit or not) driven as the cluster drives them (the reused prefix, then the request's other
blocks stored): every drain's moves, demoted and dropped blocks, every
tier's LRU order, the table's own invariants (no slot kept for a block no tier holds), and
the prefix lookup and cache-aware routing's runs it answers in one call. The
table is compiled only (``python -m kvsim.accel build``); these tests skip without it unless
``KVSIM_REQUIRE_ACCEL=1`` (set by .ci/run). The full model with and without it, record for
record: tests/test_accel.py.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import FIFO, LRU, LookAhead
from kvsim.policy.base import OrderedPolicy
from kvsim.system import hierarchy as hierarchy_module
from kvsim.system.hierarchy import TierHierarchy, TierSpec
from kvsim.system.router import CacheAware

from .conftest import examples, require_resource


@pytest.fixture(autouse=True)
def _table_built() -> None:
    if hierarchy_module._lrutable is None:
        require_resource("KVSIM_REQUIRE_ACCEL")


def node(caps: list[int], shape: str, table: bool, policy: type = LRU, **kw: Any) -> TierHierarchy:
    """``single``: one chain of four tiers; ``node``: three instances, two hosts, one pool."""
    if shape == "single":
        tiers = [TierSpec(f"t{i}", f"d{i}", c) for i, c in enumerate(caps[:4])]
        return TierHierarchy(tiers, policy, table=table, **kw)
    g0, g1, g2, d0, d1, r = caps
    tiers = [TierSpec("gpu", "gpu0", g0), TierSpec("gpu", "gpu1", g1), TierSpec("gpu", "gpu2", g2),
             TierSpec("dram", "host0", d0), TierSpec("dram", "host1", d1), TierSpec("remote", "remote", r)]
    return TierHierarchy(tiers, policy, views=[[0, 3, 5], [1, 3, 5], [2, 4, 5]], table=table, **kw)


def request(h: TierHierarchy, v: int, blocks: list[int]) -> None:
    """As the cluster: the longest prefix present in the view is used, the rest stored."""
    locs, _, _ = h.prefix(blocks, v)
    p = len(locs)
    if p:
        h.use(blocks[:p], v, locs)
    h.store(blocks[p:], v)


def state(h: TierHierarchy) -> tuple:
    return tuple(list(p) for p in h.policies), h.drain_moves(), h.total_moves


def requests(rng: random.Random, n: int, views: int) -> list[tuple[int, list[int]]]:
    """Prefix-sharing requests: each extends a random earlier one's prefix with new blocks
    (ids in first-seen order, as traces number them), now and then re-reads an old block."""
    out: list[tuple[int, list[int]]] = []
    nxt = 0
    for _ in range(n):
        base: list[int] = []
        if out and rng.random() < 0.7:
            prev = rng.choice(out)[1]
            base = prev[: rng.randint(0, len(prev))]
        if nxt and rng.random() < 0.2:
            old = rng.randrange(nxt)
            if old not in base:  # a request's blocks are distinct (a chain of hashes)
                base = base + [old]  # a block seen before, out of prefix order
        new = list(range(nxt, nxt + rng.randint(0, 6)))
        nxt += len(new)
        out.append((rng.randrange(views), base + new))
    return out


caps_st = st.lists(st.integers(0, 12), min_size=6, max_size=6)


@settings(max_examples=examples(120), deadline=None)
@given(caps=caps_st, shape=st.sampled_from(["single", "node"]), seed=st.integers(0, 2**32 - 1),
       policy=st.sampled_from([LRU, FIFO]), admit_tier=st.sampled_from([0, 1]), promote=st.booleans())
def test_the_table_gives_the_dictionaries_results_step_by_step(caps: list[int], shape: str, seed: int,
                                                               policy: type, admit_tier: int, promote: bool) -> None:
    kw = {"admit_tier": admit_tier, "promote_on_hit": promote}
    a, b = node(caps, shape, False, policy, **kw), node(caps, shape, True, policy, **kw)
    assert a.table is None and b.table is not None
    views = len(a.views)
    router = CacheAware()
    router.bind([], [[a.members[t] for t in path[:2]] for path in a.views])
    gpu, dram = [p[0] for p in a.views], [p[1] for p in a.views]
    for v, blocks in requests(random.Random(seed), 150, views):
        # the cluster's prefix lookup and the cache-aware router's runs, as the table gives them
        # (against the hierarchy's scan of the tiers' own containers)
        for w in range(views):
            assert b.prefix(blocks, w) == a.prefix(blocks, w)
        assert b.table.local_runs(blocks, gpu, dram) == [router.local_runs(w, blocks) for w in range(views)]
        request(a, v, blocks)
        request(b, v, blocks)
        assert state(a) == state(b)
        b.check()
        held = {k for p in b.policies for k in p}
        assert b.table.slots_held() == len(held)  # a dropped block's slot is freed
    for t in range(a.n):
        assert [k in a.members[t] for k in range(200)] == [k in b.members[t] for k in range(200)]
        assert len(a.members[t]) == len(b.members[t])  # type: ignore[arg-type]


def test_a_tier_admits_evicts_touches_and_removes_as_lru() -> None:
    """One tier of the table against LRU's OrderedDict, operation by operation."""
    rng = random.Random(7)
    ref = LRU(20)
    h = TierHierarchy([TierSpec("t", "d", 20)], LRU, table=True)
    tier = h.policies[0]
    for _ in range(3000):
        op = rng.random()
        resident = list(ref)
        if op < 0.5:
            keys = [rng.randrange(60) for _ in range(rng.randint(0, 8))]  # repeats and residents too
            assert tier.admit_many(keys) == ref.admit_many(keys)
        elif op < 0.8 and resident:
            k = rng.choice(resident)
            tier.touch(k)
            ref.touch(k)
        elif resident:
            k = rng.choice(resident)
            tier.remove(k)
            ref.remove(k)
        assert list(tier) == list(ref) and len(tier) == len(ref)
    for k in range(60):
        assert (k in tier) == (k in ref) == (k in h.members[0])
    with pytest.raises(KeyError):
        tier.touch(10**9)
    with pytest.raises(KeyError):
        tier.remove(10**9)
    h.check()


def test_ids_anywhere_in_64_bits_and_churn_through_the_id_table() -> None:
    """Random 64-bit ids (negative ones too), a tier holding about half of its id table's
    cells: collisions and deletions in the open-addressing table, checked after each step."""
    rng = random.Random(3)
    pool = [rng.randrange(-(2**63), 2**63) for _ in range(3000)] + [0, 2**63 - 1, -(2**63)]
    ref = LRU(600)
    h = TierHierarchy([TierSpec("t", "d", 600), TierSpec("u", "e", 300)], LRU, table=True)
    below = LRU(300)
    for step in range(400):
        keys = list(dict.fromkeys(rng.choice(pool) for _ in range(rng.randint(1, 40))))
        keys = [k for k in keys if k not in h.members[0] and k not in h.members[1]]
        h.store(keys)
        victims = ref.admit_many(keys)
        below.admit_many(victims)
        _, _, dropped = h.drain_moves()
        assert list(h.policies[0]) == list(ref) and list(h.policies[1]) == list(below)
        if step % 20 == 0:
            h.check()
        assert h.table.slots_held() == len(ref) + len(below)
    with pytest.raises(OverflowError):
        h.store([2**64])


def test_a_fifo_tier_admits_and_evicts_as_fifo_and_ignores_hits() -> None:
    rng = random.Random(8)
    ref = FIFO(20)
    h = TierHierarchy([TierSpec("t", "d", 20)], FIFO, table=True)
    tier = h.policies[0]
    assert tier.name == "fifo"
    for _ in range(2000):
        resident = list(ref)
        if rng.random() < 0.5 or not resident:
            keys = [rng.randrange(60) for _ in range(rng.randint(0, 8))]
            assert tier.admit_many(keys) == ref.admit_many(keys)
        else:
            k = rng.choice(resident)
            tier.touch(k)
            ref.touch(k)
        assert list(tier) == list(ref)


def test_the_table_is_used_only_when_every_tier_is_plain_lru_or_every_tier_plain_fifo() -> None:
    tiers = [TierSpec("a", "a", 4), TierSpec("b", "b", 4)]
    assert TierHierarchy(tiers, LRU).table is not None  # the default, with the build
    assert TierHierarchy(tiers, FIFO).table is not None
    mixed = iter([LRU(4), FIFO(4)])
    assert TierHierarchy(tiers, lambda cap: next(mixed)).table is None
    assert TierHierarchy(tiers, LookAhead).table is None  # a subclass of LRU: its own rules
    assert TierHierarchy(tiers, LRU, table=False).table is None
    assert TierHierarchy(tiers, LRU, inclusive=True).table is None
    assert issubclass(FIFO, OrderedPolicy) and issubclass(LookAhead, LRU)
    with pytest.raises(ValueError, match="plain LRU"):
        TierHierarchy(tiers, LookAhead, table=True)
