"""The guard on a run's resident memory (kvsim.memory): it stops a growing run with a
one-line error naming memory_limit_gib, and stays out of the way below its limit."""

from __future__ import annotations

import pytest

from kvsim.errors import MemoryLimitError, describe
from kvsim.memory import MemoryGuard, rss_bytes


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
