"""The guard on a run's resident memory (kvsim.memory): it stops a growing run with a
one-line error naming memory_limit_gib, and stays out of the way below its limit; and
OldObjects, which freezes a run's survivors so full collections skip them."""

from __future__ import annotations

import gc
import weakref

import pytest

from kvsim.errors import MemoryLimitError, describe
from kvsim.memory import MemoryGuard, OldObjects, rss_bytes


def test_guard_stops_a_run_that_outgrows_its_limit() -> None:
    limit = rss_bytes() + 64 * 2**20
    hog: list[bytes] = []
    with pytest.raises(MemoryLimitError) as e, MemoryGuard(limit, interval_s=0.005, grace_s=600, hard_factor=100):
        for _ in range(4096):  # 4 GiB if nothing stopped it
            hog.append(b"x" * 2**20)
    grown = len(hog)
    hog.clear()
    assert 64 <= grown < 4096
    msg, code = describe(e.value)
    assert code == 2 and msg.startswith("memory_limit_gib: the run reached") and "over its limit" in msg


def test_guard_is_quiet_below_its_limit() -> None:
    with MemoryGuard(rss_bytes() + 2**30, interval_s=0.005) as g:
        data = [b"y" * 2**20 for _ in range(16)]
    assert len(data) == 16 and not g.tripped and g.peak > 0


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_old_objects_are_frozen_and_thawed_at_the_end() -> None:
    assert gc.get_freeze_count() == 0
    with OldObjects(every=3) as old:
        kept = [_Node() for _ in range(100)]  # survivors
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # young garbage in a cycle
        dead = weakref.ref(a)
        del a, b
        for _ in range(2):
            old.tick()
        assert gc.get_freeze_count() == 0 and old.frozen == 0
        old.tick()  # the third: a young collection, then a freeze
        assert old.frozen == 1 and gc.get_freeze_count() >= len(kept)
        assert dead() is None  # collected, not frozen
        frozen = gc.get_freeze_count()
        gc.collect()
        assert gc.get_freeze_count() == frozen  # full collections leave them out
    assert gc.get_freeze_count() == 0 and len(kept) == 100


def test_old_objects_thaws_after_an_error_and_stays_out_of_others_freezes() -> None:
    with pytest.raises(RuntimeError), OldObjects(every=1) as old:
        old.tick()
        raise RuntimeError("boom")
    assert old.frozen == 1 and gc.get_freeze_count() == 0
    gc.disable()
    try:
        with OldObjects(every=1) as off:
            off.tick()
        assert off.frozen == 0 and gc.get_freeze_count() == 0
    finally:
        gc.enable()
    gc.freeze()  # somebody else's: neither joined nor undone
    try:
        n = gc.get_freeze_count()
        with OldObjects(every=1) as other:
            other.tick()
        assert other.frozen == 0 and gc.get_freeze_count() == n
    finally:
        gc.unfreeze()
