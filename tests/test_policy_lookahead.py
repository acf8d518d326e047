"""The look-ahead policy: what the queue is in single-tier replay (hand-worked), pinned
blocks kept, LRU without a queue, and in the tier hierarchy the queue hooks and prefetch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.policy import LRU, LookAhead
from kvsim.trace.schema import Trace
from tests.conftest import reference_lru_hits
from tests.test_hierarchy import hierarchy


def trace_of(reqs: list[list[int]], arrivals: list[float]) -> Trace:
    lens = [len(r) for r in reqs]
    return Trace(
        arrival_s=np.asarray(arrivals, dtype=np.float64),
        input_tokens=np.asarray(lens, dtype=np.int64) * 512,
        output_tokens=np.ones(len(reqs), dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        hash_ids=np.asarray([k for r in reqs for k in r], dtype=np.int64),
    )


def replay(policy: LookAhead, tr: Trace) -> int:
    policy.bind(tr)
    return policy.replay(tr.hash_ids.tolist())


def test_queued_blocks_are_kept() -> None:
    """Capacity 2; requests [1], [2], [3], [1] arriving at 0, 10, 11, 12 s.
    LRU: 3 evicts 1 -> 0 hits. Request [3] starts at 11 + 2 s; the last request arrived by
    then, so it is queued and block 1 is pinned: 3 evicts 2 instead -> 1 hit."""
    reqs = [[1], [2], [3], [1]]
    assert reference_lru_hits([k for r in reqs for k in r], 2) == 0
    assert replay(LookAhead(2, window_s=2.0), trace_of(reqs, [0, 10, 11, 12])) == 1
    # the last request arrives 3 s after [3]: not in the queue when [3] starts
    assert replay(LookAhead(2, window_s=2.0), trace_of(reqs, [0, 10, 11, 14])) == 0
    # max_queue = 0: no request besides the running one
    assert replay(LookAhead(2, window_s=2.0, max_queue=0), trace_of(reqs, [0, 10, 11, 12])) == 0


def test_a_running_request_keeps_its_own_blocks() -> None:
    """Capacity 2, request [5, 1] after [1, 6]: LRU lets 5 evict 1 -> 0 hits. While [5, 1]
    runs its blocks are pinned, so 5 evicts 6, and 1 hits."""
    reqs = [[1, 6], [5, 1]]
    assert reference_lru_hits([1, 6, 5, 1], 2) == 0
    assert replay(LookAhead(2, window_s=0.0), trace_of(reqs, [0, 100])) == 1


def test_when_everything_is_pinned_the_lru_block_goes() -> None:
    p = LookAhead(2)
    p.enqueue([1, 2, 3])
    assert p.admit(1) == [] and p.admit(2) == [] and p.admit(3) == [1]
    p.dequeue([1, 2, 3])
    assert p.pins.count == {}


def test_without_a_bound_trace_it_is_lru() -> None:
    keys = [1, 2, 3, 1, 4, 2, 5, 1] * 4
    assert LookAhead(3).replay(keys) == LRU(3).replay(keys)


@settings(max_examples=40, deadline=None)
@given(
    reqs=st.lists(st.lists(st.integers(0, 12), min_size=1, max_size=5, unique=True), min_size=1, max_size=30),
    cap=st.integers(0, 6),
)
def test_window_zero_and_no_queue_is_lru_with_the_running_request_pinned(reqs, cap) -> None:
    """Never over capacity; with an empty queue the only pins are the running request's,
    which never evict each other before use, so when every request fits in the cache the
    hits are at least LRU's."""
    arrivals = list(range(0, 100 * len(reqs), 100))
    tr = trace_of(reqs, arrivals)
    p = LookAhead(cap, window_s=0.0)
    hits = replay(p, tr)
    assert len(p) <= cap
    if all(len(r) <= cap for r in reqs):
        assert hits >= reference_lru_hits(tr.hash_ids.tolist(), cap)


def test_hierarchy_hooks_pin_and_prefetch() -> None:
    h = hierarchy([2, 4], LookAhead)
    h.store([1, 2, 3, 4])  # 1, 2 demoted to tier 1
    assert h.where == {1: 1, 2: 1, 3: 0, 4: 0}
    h.drain()
    up = h.enqueue([1, 9])  # 1 is prefetched up from tier 1; 9 is unknown
    assert up == [0, 1] and h.where[1] == 0
    moves, demoted, _ = h.drain()
    assert moves[1][0] == 1 and demoted == [3]  # 3 (LRU of tier 0) made room
    h.store([5])  # 1 is pinned: 4 goes down instead
    assert h.where[1] == 0 and h.where[4] == 1
    h.dequeue([1, 9])
    assert h.policies[0].pins.count == {}
    h.check()


def test_no_prefetch_only_pins() -> None:
    from functools import partial

    h = hierarchy([2, 4], partial(LookAhead, prefetch=False))
    h.store([1, 2, 3])
    assert h.enqueue([1]) == [0, 0] and h.where[1] == 1


def test_config_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="window_s"):
        LookAhead(4, window_s=-1)
    with pytest.raises(ValueError, match="max_queue"):
        LookAhead(4, max_queue=-1)
