"""Batch selection (kvsim/system/scheduler.py) on queues drawn in the test, answers by hand."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kvsim.system.scheduler import Scheduler


@dataclass(eq=False)
class Req:
    remaining: int


def taken(s: Scheduler, remaining: list[int]) -> list[tuple[int, int]]:
    q = [Req(x) for x in remaining]
    return [(q.index(r), n) for r, n in s.batch(q)]


def test_fcfs_takes_the_whole_first_request_only() -> None:
    assert taken(Scheduler("fcfs", max_batch_tokens=100, chunk_tokens=10), [1500, 700]) == [(0, 1500)]


def test_chunked_by_hand() -> None:
    """Budget 1,000, chunk 600:
        [1500 700]      600 of the first (its chunk), then 400 of the second (the budget left)
        [300 200 900]   300, 200, then 500 (budget 1,000 - 500)
        [1000 5]        chunk 8,192: the first takes the whole budget; the second waits
        [100 100]       200 in all: the budget is not reached, both whole"""
    s = Scheduler("chunked", 1000, 600)
    assert taken(s, [1500, 700]) == [(0, 600), (1, 400)]
    assert taken(s, [300, 200, 900]) == [(0, 300), (1, 200), (2, 500)]
    assert taken(Scheduler("chunked", 1000, 8192), [1000, 5]) == [(0, 1000)]
    assert taken(s, [100, 100]) == [(0, 100), (1, 100)]
    assert taken(s, [600, 400, 1]) == [(0, 600), (1, 400)]


@pytest.mark.parametrize(("args", "key"), [
    (("lifo",), "scheduler.name"), (("chunked", 0), "scheduler.max_batch_tokens"),
    (("chunked", 8, 0), "scheduler.chunk_tokens"),
])
def test_bad_settings_name_their_key(args, key) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        Scheduler(*args)
