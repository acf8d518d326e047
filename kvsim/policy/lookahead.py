"""Look-ahead: LRU that keeps the blocks of requests already waiting in the scheduler's
queue. It uses only what a real scheduler knows: the requests that have arrived and not yet
started. No future beyond the queue.

What "the queue" is:

    single-tier replay   a scheduler that holds each request for ``window_s`` before it
                         starts (requests start in arrival order): when request i starts,
                         at arrival(i) + window_s, the queue holds the later requests j
                         with arrival(j) <= arrival(i) + window_s (the first ``max_queue``
                         of them). A request stays pinned while it runs (its own misses
                         never evict its own blocks).
    full simulation      the requests in the instances' waiting queues: the serving node's
                         QueueHooks call ``enqueue(blocks)`` when a request enters its
                         instance's queue and ``dequeue(blocks)`` when its first chunk is
                         scheduled (kvsim.system.cluster; ``window_s`` and ``max_queue`` are
                         not used there). The prefetch toward the GPU is the node's: a
                         request's reused prefix is loaded into its instance's GPU tier when
                         it enters the queue (for every policy); the pins keep it there, and
                         keep every other block a waiting request needs wherever it is (all
                         tiers share one pin count), until the request starts.

The algorithm:

    pinned(k)         number of queued (or running) requests that need k
    enqueue(r):       pinned(k) += 1 for k in blocks(r); a resident k moves to the MRU end
    dequeue(r):       pinned(k) -= 1 for k in blocks(r)
    hit(k):           k moves to the MRU end
    admit(k):         k goes to the MRU end; while over capacity:
                          v = the LRU end
                          if pinned(v) and some resident is not pinned: v moves to the
                              MRU end (kept)
                          else: evict v

Without a bound trace (``bind``) single-tier ``replay`` knows no queue and is plain LRU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from kvsim.policy.base import EvictionPolicy
from kvsim.policy.lru import LRU
from kvsim.ranges import NonNegInt, Seconds


class _Pins:
    """Pin counts shared by every tier of a hierarchy."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count: dict[int, int] = {}


class LookAhead(LRU):
    name = "lookahead"

    def __init__(
        self,
        capacity: int,
        window_s: Seconds = 2.0,
        max_queue: NonNegInt = 64,
        inclusive: bool = False,
    ) -> None:
        super().__init__(capacity, inclusive)  # LRU's order: self._od, least recent first
        if not window_s >= 0:
            raise ValueError(f"lookahead: window_s must be >= 0, got {window_s}")
        if max_queue < 0:
            raise ValueError(f"lookahead: max_queue must be >= 0, got {max_queue}")
        self.window_s = float(window_s)
        self.max_queue = int(max_queue)
        self.pins = _Pins()
        self._arrival: np.ndarray | None = None
        self._offsets: np.ndarray | None = None

    def join(self, tier: int, peers: Sequence[EvictionPolicy]) -> None:
        super().join(tier, peers)
        top = peers[0]
        if isinstance(top, LookAhead) and top is not self:
            self.pins = top.pins

    def bind(self, trace: Any) -> None:
        self._arrival = np.asarray(trace.arrival_s, dtype=np.float64)
        self._offsets = np.asarray(trace.offsets, dtype=np.int64)

    # --- the queue ----------------------------------------------------------------------
    def enqueue(self, keys: Sequence[int]) -> None:
        count, od = self.pins.count, self._od
        for k in keys:
            count[k] = count.get(k, 0) + 1
            if k in od:
                od.move_to_end(k)

    def dequeue(self, keys: Sequence[int]) -> None:
        count = self.pins.count
        for k in keys:
            c = count[k] - 1
            if c:
                count[k] = c
            else:
                del count[k]

    @property
    def pinned(self) -> int:
        """Resident blocks that some queued request needs."""
        return sum(1 for k in self._od if k in self.pins.count)

    # --- one tier (LRU's, except where a pinned block must be passed over) ------------------
    def admit(self, key: int) -> list[int]:
        if self.capacity == 0:
            return [key]
        od, count = self._od, self.pins.count
        od[key] = None
        out = []
        while len(od) > self.capacity:
            out.append(self._evict(od, count))
        return out

    @staticmethod
    def _evict(od: OrderedDict[int, None], count: dict[int, int]) -> int:
        # pinned blocks at the LRU end get a second chance, unless every resident is pinned
        for _ in range(len(od)):
            v = next(iter(od))
            if v not in count:
                del od[v]
                return v
            od.move_to_end(v)
        return od.popitem(last=False)[0]

    # LRU's fast paths evict the LRU end unconditionally: the base class's go through admit
    admit_many = EvictionPolicy.admit_many
    access = EvictionPolicy.access

    # --- single tier ------------------------------------------------------------------
    def replay(self, keys: Iterable[int]) -> int:
        keys = list(keys)
        arr, offs = self._arrival, self._offsets
        if arr is None or offs is None or int(offs[-1]) != len(keys):
            return EvictionPolicy.replay(self, keys)  # no requests known: LRU (with any pins given)
        od, count, cap = self._od, self.pins.count, self.capacity
        n = len(arr)
        ends = (arr + self.window_s).tolist()
        arrival = arr.tolist()
        bounds = offs.tolist()
        queued = 0  # requests [i, queued) are queued or running
        hits = 0
        for i in range(n):
            # the queue when request i starts: arrived by arrival(i) + window_s, at most
            # max_queue requests besides i
            while queued < n and (queued <= i or (arrival[queued] <= ends[i] and queued - i <= self.max_queue)):
                self.enqueue(keys[bounds[queued] : bounds[queued + 1]])
                queued += 1
            req = keys[bounds[i] : bounds[i + 1]]
            for k in req:
                if k in od:
                    od.move_to_end(k)
                    hits += 1
                elif cap:
                    od[k] = None
                    if len(od) > cap:
                        self._evict(od, count)
            self.dequeue(req)
        return hits
