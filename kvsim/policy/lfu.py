"""Least frequently used, ties broken by least recently used (O(1) frequency buckets).

    freq[k]: accesses of k since it was admitted (admission counts 1)
    on hit(k):   freq[k] += 1; move k to the MRU end of bucket freq[k]
    on admit(k): if size == capacity: evict the LRU key of the lowest non-empty bucket
                 freq[k] = 1; append k to bucket 1
    aging (optional, every ``age_every`` admissions): halve every frequency, so that
    blocks hot long ago do not stay forever (LFU with dynamic aging, simplified).

Frequencies are forgotten when a block leaves (no ghost history), as in libCacheSim's LFU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from kvsim.policy.base import EvictionPolicy
from kvsim.ranges import NonNegInt


class LFU(EvictionPolicy):
    name = "lfu"

    def __init__(self, capacity: int, age_every: NonNegInt = 0, inclusive: bool = False) -> None:
        super().__init__(capacity, inclusive)
        self.age_every = int(age_every)
        self._freq: dict[int, int] = {}
        self._buckets: dict[int, OrderedDict[int, None]] = {}
        self._min = 0
        self._admits = 0

    def __contains__(self, key: int) -> bool:
        return key in self._freq

    def members(self) -> dict[int, int]:
        return self._freq  # exactly the residents' keys, never rebound (see the base class)

    def __len__(self) -> int:
        return len(self._freq)

    def __iter__(self) -> Iterator[int]:
        for f in sorted(self._buckets):
            yield from self._buckets[f]

    def _unlink(self, key: int) -> int:
        f = self._freq[key]
        b = self._buckets[f]
        del b[key]
        if not b:
            del self._buckets[f]
        return f

    def _link(self, key: int, f: int) -> None:
        self._freq[key] = f
        b = self._buckets.get(f)
        if b is None:
            b = self._buckets[f] = OrderedDict()
        b[key] = None

    def touch(self, key: int) -> None:
        f = self._unlink(key)
        self._link(key, f + 1)
        if f == self._min and f not in self._buckets:
            self._min = f + 1

    def _evict_one(self) -> int:
        if self._min not in self._buckets:
            self._min = min(self._buckets)
        b = self._buckets[self._min]
        victim, _ = b.popitem(last=False)
        if not b:
            del self._buckets[self._min]
        del self._freq[victim]
        return victim

    def admit(self, key: int) -> list[int]:
        if self.capacity == 0:
            return [key]
        evicted = []
        while len(self._freq) >= self.capacity:
            evicted.append(self._evict_one())
        self._link(key, 1)
        self._min = 1
        self._admits += 1
        if self.age_every and self._admits % self.age_every == 0:
            self._age()
        return evicted

    def _age(self) -> None:
        old = self._buckets
        self._buckets = {}
        for f in sorted(old):
            for k in old[f]:
                self._link(k, max(1, f // 2))
        self._min = min(self._buckets) if self._buckets else 0

    def remove(self, key: int) -> None:
        self._unlink(key)
        del self._freq[key]
