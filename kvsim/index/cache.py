"""A compute-side cache of index nodes (or records), bounded in bytes.

Two replacement rules:

    lru:      evict the least recently used entry
    sample2:  Sherman's IndexCache: pick two resident entries at random and evict the
              one hit fewer times (thustorage/Sherman, include/IndexCache.h); a hit
              increments the entry's count

    lookup(k):   hit -> refresh k (recency or count); miss -> counted
    add(k, n):   make room for n bytes by evicting, then hold k (nothing if n > capacity)

Deterministic: ``sample2`` draws from its own seeded ``random.Random``.
"""

from __future__ import annotations

import random
from collections import OrderedDict

POLICIES = ("lru", "sample2")


class NodeCache:
    def __init__(self, capacity_bytes: float, policy: str = "lru", seed: int = 0) -> None:
        if policy not in POLICIES:
            raise ValueError(f"cache policy must be one of {POLICIES}, got {policy!r}")
        if capacity_bytes < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity_bytes}")
        self.capacity = int(capacity_bytes)
        self.policy = policy
        self.used = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._lru: OrderedDict[int, int] = OrderedDict()  # key -> size (lru)
        self._size: dict[int, int] = {}  # key -> size (sample2)
        self._freq: dict[int, int] = {}
        self._pos: dict[int, int] = {}
        self._keys: list[int] = []
        self._rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self._lru) if self.policy == "lru" else len(self._keys)

    def __contains__(self, key: int) -> bool:
        return key in (self._lru if self.policy == "lru" else self._size)

    @property
    def hit_ratio(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 0.0

    def lookup(self, key: int) -> bool:
        if self.policy == "lru":
            if key in self._lru:
                self._lru.move_to_end(key)
                self.hits += 1
                return True
        elif key in self._size:
            self._freq[key] += 1
            self.hits += 1
            return True
        self.misses += 1
        return False

    def add(self, key: int, size: int) -> None:
        if key in self:
            self.resize(key, size)
            return
        if size > self.capacity:
            return
        while self.used + size > self.capacity:
            self._evict()
        self.used += size
        if self.policy == "lru":
            self._lru[key] = size
        else:
            self._size[key] = size
            self._freq[key] = 1
            self._pos[key] = len(self._keys)
            self._keys.append(key)

    def resize(self, key: int, size: int) -> None:
        """A cached entry changed size (a record grew); evict others if needed."""
        old = self._lru.get(key) if self.policy == "lru" else self._size.get(key)
        if old is None:
            return
        self.discard(key)
        self.add(key, size)

    def discard(self, key: int) -> None:
        if self.policy == "lru":
            size = self._lru.pop(key, None)
            if size is not None:
                self.used -= size
            return
        size = self._size.pop(key, None)
        if size is None:
            return
        self.used -= size
        del self._freq[key]
        i = self._pos.pop(key)
        last = self._keys.pop()
        if last != key:
            self._keys[i] = last
            self._pos[last] = i

    def _evict(self) -> None:
        self.evictions += 1
        if self.policy == "lru":
            _, size = self._lru.popitem(last=False)
            self.used -= size
            return
        keys = self._keys
        a = keys[self._rng.randrange(len(keys))]
        b = keys[self._rng.randrange(len(keys))]
        self.discard(a if self._freq[a] <= self._freq[b] else b)
