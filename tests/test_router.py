"""Routers (kvsim/system/router.py) on instances and tiers drawn in the test, answers by hand."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kvsim.system.router import CacheAware, LeastLoaded, RoundRobin, Router


@dataclass
class Inst:
    load_tokens: int


def bound(router: Router, loads: list[int], local: list[list[set[int]]] | None = None) -> Router:
    router.bind([Inst(x) for x in loads], local if local is not None else [[set()] for _ in loads])
    return router


def test_round_robin_cycles() -> None:
    r = bound(RoundRobin(), [9, 0, 0])
    assert [r.pick([0]) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_least_loaded_takes_the_fewest_tokens_ties_to_the_lowest_index() -> None:
    assert bound(LeastLoaded(), [5, 3, 3, 7]).pick([0]) == 1
    assert bound(LeastLoaded(), [4, 4]).pick([0]) == 0
    assert bound(LeastLoaded(), [7, 6, 0]).pick([0]) == 2


def test_cache_aware_longest_gpu_prefix_first() -> None:
    """Request blocks [0 1 2 3]. GPU prefixes: instance 0 holds {0 1} (2 blocks), instance 1
    {0 1 2} (3), instance 2 nothing in GPU but all four in DRAM (0): instance 1."""
    local = [[{0, 1}, set()], [{0, 1, 2}, set()], [set(), {0, 1, 2, 3}]]
    assert bound(CacheAware(None), [0, 0, 0], local).pick([0, 1, 2, 3]) == 1


def test_cache_aware_the_prefix_stops_at_the_first_absent_block() -> None:
    """Instance 0's GPU holds {0 2 3}: its prefix is 1 block, not 3; instance 1's {0 1}: 2."""
    local = [[{0, 2, 3}], [{0, 1}]]
    assert bound(CacheAware(None), [0, 0], local).pick([0, 1, 2, 3]) == 1


def test_cache_aware_equal_gpu_prefixes_go_to_the_longer_gpu_and_dram_prefix() -> None:
    """Both hold block 0 in GPU. Instance 0: DRAM {1}, so GPU+DRAM covers [0 1] (2 blocks).
    Instance 1: DRAM {1}, GPU also {2}: GPU+DRAM covers [0 1 2] (3 blocks) -> instance 1.
    Instance 2 with DRAM {1 2 3} but GPU {} has GPU prefix 0: never chosen over the others."""
    local = [[{0}, {1}], [{0, 2}, {1}], [set(), {0, 1, 2, 3}]]
    assert bound(CacheAware(None), [0, 0, 0], local).pick([0, 1, 2, 3]) == 1
    # without the GPU's block 2 the two are equal (2 and 2): ties go to the less loaded
    local = [[{0}, {1}], [{0}, {1}]]
    assert bound(CacheAware(None), [10, 5], local).pick([0, 1, 2]) == 1
    assert bound(CacheAware(None), [5, 10], local).pick([0, 1, 2]) == 0
    assert bound(CacheAware(None), [5, 5], local).pick([0, 1, 2]) == 0  # then the lowest index


def test_cache_aware_load_guard_is_inclusive_and_can_be_turned_off() -> None:
    """Loads [0, 150, 100], balance 100: the bound is 0 + 100; instance 1 (150) is out even
    though it holds the whole prefix, instance 2 (exactly 100) is in and holds one block."""
    local = [[set()], [{0, 1, 2}], [{0}]]
    assert bound(CacheAware(100), [0, 150, 100], local).pick([0, 1, 2]) == 2
    assert bound(CacheAware(150), [0, 150, 100], local).pick([0, 1, 2]) == 1
    assert bound(CacheAware(None), [0, 150, 100], local).pick([0, 1, 2]) == 1
    # nothing cached anywhere: the least loaded within the bound
    assert bound(CacheAware(0), [30, 20, 20], [[set()], [set()], [set()]]).pick([7]) == 1
    assert CacheAware().balance_tokens == 16384


def test_cache_aware_refuses_a_negative_balance() -> None:
    with pytest.raises(ValueError, match=r"router\.balance_tokens: must be >= 0 or null, got -1"):
        CacheAware(-1)
