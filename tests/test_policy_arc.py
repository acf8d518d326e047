"""ARC as its docstring (and libCacheSim's ARC.c) states it; exact counts vs libCacheSim:
test_policy_libcachesim.py."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import ARC

from .conftest import examples


def test_second_use_moves_to_t2_and_ghost_hits_steer_p() -> None:
    c = ARC(2)
    c.admit(1)
    c.admit(2)
    c.touch(1)
    assert list(c._t1) == [2] and list(c._t2) == [1]
    assert c.admit(3) == [2]  # T1 over its target p = 0: its LRU goes to ghost B1
    assert list(c._b1) == [2]
    # B1 hit: p = 0 + max(|B2| / |B1|, 1) = 1; |T1| = p, so T2's LRU (1) goes to B2
    assert c.admit(2) == [1]
    assert c.p == 1.0 and list(c._t2) == [2] and list(c._b2) == [1]
    c.remove(2)
    assert 2 not in c and 2 not in c._b1 and 2 not in c._b2  # no ghost on remove


@settings(max_examples=examples(80), deadline=None)
@given(keys=st.lists(st.integers(0, 30), max_size=300), cap=st.integers(0, 12))
def test_directory_bounds(keys, cap) -> None:
    c = ARC(cap)
    for k in keys:
        c.access(k)
        assert len(c) <= cap
        assert len(c._t1) + len(c._b1) <= cap
        assert len(c._t1) + len(c._t2) + len(c._b1) + len(c._b2) <= 2 * cap
        assert 0 <= c.p <= cap
