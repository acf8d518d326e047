"""Belady's OPT (MIN): evict the block whose next use is farthest in the future.

Offline: the next use of every block comes from the trace. It is the yardstick of every
other policy: with ``bypass`` (the default) a block whose next use is farther than that of
every resident block is not kept at all, which makes it optimal among all policies that may
decline to cache a block (the hotness policy's admission control does); ``bypass=False``
is the demand-paging OPT that always inserts, as ``libcachesim.Belady``.

    next(k): position of the next access of k after now (inf: never again)
    on hit(k):   update next(k)
    on miss(k):  if bypass and next(k) = inf: do not keep k
                 if size == capacity:
                     v = argmax over residents of next(v)
                     if bypass and next(k) >= next(v): do not keep k  (it is the farthest)
                     else evict v
                 keep k
    accepts(k):  next(k) < inf and (size < capacity or next(k) < max next(v))

Single-tier ``replay(keys)`` computes next uses from the key sequence itself (numpy, one
pass). In the tier hierarchy every tier runs this policy on a shared clock: ``bind(trace)``
precomputes, for each access of the trace, the position of the same block's next access,
and ``observe`` advances each block to its next occurrence whenever a request uses or
stores it (so the order in which concurrent requests reach the hierarchy does not matter).
With exclusive tiers, new blocks entering tier 0 and victims passed down, the blocks that
leave the bottom tier are the farthest-used of all tiers together: the union of the tiers
is Belady's cache of their total size.

A max-heap with lazy deletion: a resident's entry is valid while it records the block's
current next use; stale entries are skipped when found at the top.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from kvsim.policy.base import EvictionPolicy, LazyHeap

INF = 1 << 62


def next_use(keys: np.ndarray) -> np.ndarray:
    """For each position i, the position of the next access of ``keys[i]``, or INF."""
    keys = np.asarray(keys)
    n = len(keys)
    out = np.full(n, INF, dtype=np.int64)
    if n == 0:
        return out
    order = np.argsort(keys, kind="stable")  # positions grouped by key, in time order
    same = keys[order[1:]] == keys[order[:-1]]
    out[order[:-1][same]] = order[1:][same]
    return out


class _Oracle:
    """Shared by every tier: the next pending access of each block (INF when none)."""

    def __init__(self) -> None:
        self.nxt: np.ndarray | None = None  # next occurrence of the access at each position
        self.pending: dict[int, int] = {}  # block -> position of its next unobserved access
        self.next: dict[int, int] = {}  # block -> position of its next use after now

    def load(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        self.nxt = next_use(keys)
        uniq, first = np.unique(keys, return_index=True)
        self.pending = dict(zip(uniq.tolist(), first.tolist(), strict=True))
        self.next = {}

    def observe(self, keys: Sequence[int]) -> None:
        nxt, pending, nx = self.nxt, self.pending, self.next
        if nxt is None:
            return
        for k in keys:
            p = pending.get(k, INF)
            q = int(nxt[p]) if p < INF else INF
            pending[k] = q
            nx[k] = q


class OPT(EvictionPolicy):
    name = "opt"
    filters = True

    def __init__(self, capacity: int, bypass: bool = True, inclusive: bool = False) -> None:
        super().__init__(capacity, inclusive)
        self.bypass = bool(bypass)
        self.oracle = _Oracle()
        self._res: dict[int, int] = {}  # resident -> the next use its heap entry records
        # (-next use, block): live while it records the resident's current next use
        res = self._res  # never rebound
        self._heap = LazyHeap(lambda negn, k: res.get(k) == -negn, lambda: ((-n, k) for k, n in res.items()))

    def __contains__(self, key: int) -> bool:
        return key in self._res

    def members(self) -> dict[int, int]:
        return self._res  # exactly the residents' keys, never rebound (see the base class)

    def __len__(self) -> int:
        return len(self._res)

    def __iter__(self) -> Iterator[int]:
        return iter(self._res)

    # --- shared clock ---------------------------------------------------------------------
    def join(self, tier: int, peers: Sequence[EvictionPolicy]) -> None:
        super().join(tier, peers)
        top = peers[0]
        if isinstance(top, OPT):
            self.oracle = top.oracle

    def bind(self, trace: Any) -> None:
        if self.tier == 0:
            self.oracle.load(trace.hash_ids)

    def observe(self, keys: Sequence[int], new: bool) -> None:
        self.oracle.observe(keys)

    def _next(self, key: int) -> int:
        return self.oracle.next.get(key, INF)

    # --- one tier ---------------------------------------------------------------------
    def _farthest(self) -> int:
        """The resident whose next use is farthest (drops stale heap entries on the way)."""
        return self._heap.top()[1]

    def _push(self, key: int, nx: int) -> None:
        self._res[key] = nx
        self._heap.push(-nx, key, len(self._res))

    def accepts(self, key: int) -> bool:
        nx = self._next(key)
        if nx >= INF:
            return False
        if len(self._res) < self.capacity:
            return True
        return self.capacity > 0 and nx < self._res[self._farthest()]

    def touch(self, key: int) -> None:
        self._push(key, self._next(key))

    def admit(self, key: int) -> list[int]:
        nx = self._next(key)
        return self._admit(key, nx)

    def _admit(self, key: int, nx: int) -> list[int]:
        if self.capacity == 0 or (self.bypass and nx >= INF):
            return [key]
        out: list[int] = []
        if len(self._res) >= self.capacity:
            v = self._farthest()
            if self.bypass and nx >= self._res[v]:
                return [key]
            heapq.heappop(self._heap.heap)  # v's entry, the top
            del self._res[v]
            out.append(v)
        self._push(key, nx)
        return out

    def remove(self, key: int) -> None:
        del self._res[key]  # its heap entries go stale

    def access(self, key: int) -> bool:
        self.oracle.observe((key,))
        if key in self._res:
            self.touch(key)
            return True
        self.admit(key)
        return False

    def replay(self, keys: Iterable[int]) -> int:
        arr = np.fromiter(keys, dtype=np.int64) if not isinstance(keys, np.ndarray) else keys
        nxt = next_use(arr).tolist()
        res, heap = self._res, self._heap.heap  # the shared heap's list, inlined (written for speed)
        cap, bypass = self.capacity, self.bypass
        push, pop = heapq.heappush, heapq.heappop
        hits = 0
        for k, nx in zip(arr.tolist(), nxt, strict=True):
            if k in res:
                hits += 1
                res[k] = nx
                push(heap, (-nx, k))
                continue
            if cap == 0 or (bypass and nx >= INF):
                continue
            if len(res) >= cap:
                while True:  # the valid farthest entry
                    negn, v = heap[0]
                    if res.get(v) == -negn:
                        break
                    pop(heap)
                if bypass and nx >= -negn:
                    continue
                pop(heap)
                del res[v]
            res[k] = nx
            push(heap, (-nx, k))
        self._heap.bound(len(res))
        return hits
