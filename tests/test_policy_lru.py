"""LRU: the docstring's algorithm, its fast paths against the generic ones, and Che's
approximation under independent Zipf requests (exact counts vs libCacheSim:
test_policy_libcachesim.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from kvsim.policy import LRU
from kvsim.policy.base import EvictionPolicy

from .conftest import examples


def test_hit_moves_to_mru_and_the_lru_end_is_evicted() -> None:
    c = LRU(3)
    for k in (1, 2, 3):
        assert c.admit(k) == []
    c.touch(1)
    assert c.admit(4) == [2]
    assert list(c) == [3, 1, 4]
    assert c.admit_many([5, 6]) == [3, 1]
    c.remove(4)
    assert list(c) == [5, 6] and len(c) == 2 and 5 in c


def test_zero_capacity_keeps_nothing() -> None:
    c = LRU(0)
    assert c.admit(1) == [1] and c.admit_many([2, 3]) == [2, 3] and c.replay([1, 1]) == 0


@settings(max_examples=examples(100), deadline=None)
@given(keys=st.lists(st.integers(0, 20), max_size=200), cap=st.integers(0, 8))
def test_fast_replay_equals_the_generic_access_loop(keys, cap) -> None:
    fast = LRU(cap).replay(keys)
    generic = EvictionPolicy.replay(LRU(cap), keys)
    model: list[int] = []  # the textbook list model
    hits = 0
    for k in keys:
        if k in model:
            hits += 1
            model.remove(k)
        elif cap and len(model) == cap:
            model.pop(0)
        if cap:
            model.append(k)
    assert fast == generic == hits


def che_hit_ratio(p: np.ndarray, capacity: int) -> float:
    """Che's approximation: the characteristic time T solves sum_i (1 - e^{-p_i T}) = C;
    the hit ratio is sum_i p_i (1 - e^{-p_i T})."""
    t = brentq(lambda x: float(np.sum(-np.expm1(-p * x))) - capacity, 1e-9, 1e12)
    return float(np.sum(p * -np.expm1(-p * t)))


@pytest.mark.parametrize(("alpha", "capacity"), [(0.8, 50), (0.8, 500), (1.0, 200), (1.2, 100)])
def test_lru_under_zipf_matches_che_approximation(alpha: float, capacity: int) -> None:
    n_obj, n_req, warm = 5000, 120_000, 20_000
    p = 1.0 / np.arange(1, n_obj + 1) ** alpha
    p /= p.sum()
    keys = np.random.default_rng(7).choice(n_obj, size=n_req, p=p).tolist()
    c = LRU(capacity)
    c.replay(keys[:warm])
    measured = c.replay(keys[warm:]) / (n_req - warm)
    che = che_hit_ratio(p, capacity)
    assert measured == pytest.approx(che, rel=0.03), (measured, che)


def test_fast_touch_and_remove_are_the_policys_own() -> None:
    """The hierarchy's per-block calls: the OrderedDict's methods for LRU, the subclass's
    own methods where a subclass changes touch or remove."""
    c = LRU(3)
    c.admit_many([1, 2, 3])
    c.fast_touch()(1)
    c.fast_remove()(2)
    assert list(c) == [3, 1]

    class Counting(LRU):
        touched = 0

        def touch(self, key: int) -> None:
            self.touched += 1
            super().touch(key)

    d = Counting(2)
    d.admit_many([1, 2])
    d.fast_touch()(1)
    assert d.touched == 1 and list(d) == [2, 1]
