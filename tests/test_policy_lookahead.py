"""The look-ahead policy: what the queue is in single-tier replay (hand-worked), pinned
blocks kept, LRU without a queue, and in the tier hierarchy and the serving node the queue
hooks (a block a waiting request needs survives an eviction LRU makes)."""

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


def test_keys_other_than_the_bound_traces_are_lru() -> None:
    """Bound to a trace of 4 blocks, asked to replay 6 (another list): not that trace's
    requests (which would read the first 4 keys only: 3 hits), but LRU: 5 hits."""
    p = LookAhead(1, window_s=2.0)
    p.bind(trace_of([[1], [2], [3], [1]], [0, 10, 11, 12]))
    assert p.replay([1] * 6) == 5


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


def test_hierarchy_pins_are_shared_by_the_tiers() -> None:
    h = hierarchy([2, 4], LookAhead)
    assert h.queue_aware
    h.store([1, 2, 3, 4])  # 1, 2 demoted to tier 1 (1 its LRU end)
    assert h.where == {1: 1, 2: 1, 3: 0, 4: 0}
    h.enqueue([3, 1, 9])  # 9 is unknown; 3 moves to the MRU end of tier 0
    h.store([5])  # tier 0 holds 4, 3: 4 is the LRU end and unpinned -> it goes down
    assert h.where[3] == 0 and h.where[4] == 1
    # tier 0: 3 pinned, so 5 then 6 go down; tier 1 (1, 2, 4, 5, 6) passes the pinned 1 by
    # at its LRU end and drops 2 (LRU would drop 1)
    h.store([6, 7])
    assert h.where == {3: 0, 7: 0, 1: 1, 4: 1, 5: 1, 6: 1}
    h.dequeue([3, 1, 9])
    assert h.policies[0].pins.count == {} and h.policies[1].pins is h.policies[0].pins
    h.check()


def test_lru_is_not_queue_aware() -> None:
    assert not hierarchy([2, 4], LRU).queue_aware


def _node_case(policy) -> dict:  # noqa: ANN001
    """One instance (fcfs), a GPU tier of 2 blocks and no DRAM, 512-token blocks; prefill
    takes about 2 ms per 512 tokens (tests/test_cluster.py's model).
        A   t=0     [1]      computes 0 -> ~2 ms, stores 1
        C   t=3 ms  [5, 6]   computes 3 -> ~7 ms
        X   t=4 ms  [9]      waits behind C, computes ~7 -> ~9 ms
        B   t=5 ms  [1, 7]   hits 1, waits behind C and X (its blocks are queued)
        C's store at ~7 ms: the GPU holds 1, 5, 6 -- LRU evicts 1 (its LRU end, used by B's
        lookup at 5 ms); lookahead keeps 1 (B waits for it) and evicts 5.
        E   t=8 ms  [1]      arrives while B still waits: a hit under lookahead only."""
    from tests.test_cluster import tiny_node, tiny_trace

    tr = tiny_trace([(0.0, 512, [1]), (0.003, 1024, [5, 6]), (0.004, 512, [9]), (0.005, 1024, [1, 7]),
                     (0.008, 512, [1])])
    c = tiny_node(tr, 2, 0, 25e9, policy=policy)
    return c.run().records


def test_a_block_a_waiting_request_needs_survives_in_the_node() -> None:
    lru, la = _node_case(LRU), _node_case(LookAhead)
    assert list(lru["prefix_hits"]) == [0, 0, 0, 1, 0]
    assert list(la["prefix_hits"]) == [0, 0, 0, 1, 1]


def test_config_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="window_s"):
        LookAhead(4, window_s=-1)
    with pytest.raises(ValueError, match="max_queue"):
        LookAhead(4, max_queue=-1)
