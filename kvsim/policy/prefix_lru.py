"""Prefix-aware LRU: evict the tail of a prefix chain before its head, as radix-tree caches do.

A block's KV is only usable if every block before it in the chain is present, so a cache
that drops a chain's head wastes the rest of it. SGLang's RadixCache and vLLM's prefix
cache evict only leaves of the prefix tree, least recently used first; this is that rule
for one tier:

    parent(k): the block before k in its prefix chain (static: ids are chained hashes)
    kids[k]:   number of k's children resident in this tier
    on hit(k):   last[k] = now
    on admit(k): while size >= capacity:
                     evict the leaf (kids = 0) with the smallest last use
                     kids[parent(victim)] -= 1
                 last[k] = now; kids[parent(k)] += 1
    on remove(k): as an eviction of k

Parents come from ``bind(trace)`` (the block before each block in its request); without it
every block is a leaf and the policy is plain LRU. A leaf heap with lazy deletion: an entry
``(last use, block)`` is valid while the block is resident, has no resident child and was
not used since.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from kvsim.policy.base import EvictionPolicy, LazyHeap


def chain_parents(hash_ids: np.ndarray, offsets: np.ndarray) -> dict[int, int]:
    """``{block: the block before it in its request}`` for every block not first in a request."""
    hash_ids = np.asarray(hash_ids, dtype=np.int64)
    n = len(hash_ids)
    first = np.zeros(n, dtype=bool)
    starts = np.asarray(offsets[:-1], dtype=np.int64)
    first[starts[starts < n]] = True
    idx = np.flatnonzero(~first)
    return dict(zip(hash_ids[idx].tolist(), hash_ids[idx - 1].tolist(), strict=True))


class PrefixLRU(EvictionPolicy):
    name = "prefix_lru"

    def __init__(self, capacity: int, inclusive: bool = False) -> None:
        super().__init__(capacity, inclusive)
        self.parent: dict[int, int] = {}
        self._last: dict[int, int] = {}  # resident -> time of last use
        self._kids: dict[int, int] = {}  # block -> resident children (resident or not)
        # leaf candidates (last use, block): live while resident, unused since, childless
        last, kids = self._last, self._kids  # never rebound
        self._heap = LazyHeap(
            lambda t, k: last.get(k) == t and not kids.get(k),
            lambda: ((t, k) for k, t in last.items() if not kids.get(k)),
        )
        self._now = 0

        self._top: PrefixLRU = self

    def join(self, tier: int, peers: Sequence[EvictionPolicy]) -> None:
        super().join(tier, peers)
        top = peers[0]
        if isinstance(top, PrefixLRU):
            self._top = top

    def bind(self, trace: Any) -> None:
        if self._top is self:
            self.parent = chain_parents(trace.hash_ids, trace.offsets)
        else:  # the same (static) chains in every tier; tier 0 is bound first
            self.parent = self._top.parent

    def __contains__(self, key: int) -> bool:
        return key in self._last

    def members(self) -> dict[int, int]:
        return self._last  # exactly the residents' keys, never rebound (see the base class)

    def __len__(self) -> int:
        return len(self._last)

    def __iter__(self) -> Iterator[int]:
        return iter(self._last)

    def _stamp(self, key: int) -> None:
        self._now += 1
        self._last[key] = self._now
        if not self._kids.get(key):
            self._heap.push(self._now, key, len(self._last))

    def touch(self, key: int) -> None:
        self._stamp(key)

    def _unlink(self, key: int) -> None:
        del self._last[key]
        p = self.parent.get(key)
        if p is not None:
            c = self._kids[p] - 1
            if c:
                self._kids[p] = c
            else:
                del self._kids[p]
                t = self._last.get(p)
                if t is not None:  # the parent is a leaf again
                    self._heap.push(t, p, len(self._last))

    def _evict_one(self) -> int:
        # LazyHeap.pop inlined (written for speed: every touch leaves a stale entry behind)
        heap, last, kids = self._heap.heap, self._last, self._kids
        pop = heapq.heappop
        while True:
            t, k = pop(heap)
            if last.get(k) == t and not kids.get(k):
                self._unlink(k)
                return k

    def admit(self, key: int) -> list[int]:
        if self.capacity == 0:
            return [key]
        out = []
        while len(self._last) >= self.capacity:
            out.append(self._evict_one())
        p = self.parent.get(key)
        if p is not None:
            self._kids[p] = self._kids.get(p, 0) + 1
        self._stamp(key)
        return out

    def remove(self, key: int) -> None:
        self._unlink(key)

    def access(self, key: int) -> bool:
        # Written for speed: one call per access in single-tier replay.
        if key in self._last:
            self._stamp(key)
            return True
        self.admit(key)
        return False
