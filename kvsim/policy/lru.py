"""Least recently used.

    on hit(k):   move k to the MRU end
    on admit(k): append k at the MRU end; while size > capacity: evict from the LRU end

An ``OrderedDict`` gives O(1) for all three operations in C; the hit path is the
hottest line of the simulator, so ``access`` is specialised here (one dict lookup).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Iterator

from kvsim.policy.base import EvictionPolicy


class LRU(EvictionPolicy):
    name = "lru"

    def __init__(self, capacity: int, inclusive: bool = False) -> None:
        super().__init__(capacity, inclusive)
        self._od: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, key: int) -> bool:
        return key in self._od

    def __len__(self) -> int:
        return len(self._od)

    def members(self) -> Container[int]:
        return self._od

    def __iter__(self) -> Iterator[int]:
        """From least to most recently used."""
        return iter(self._od)

    def touch(self, key: int) -> None:
        self._od.move_to_end(key)

    def fast_touch(self) -> Callable[[int], None]:
        # the OrderedDict's own method (no Python frame), unless a subclass changes touch
        return self._od.move_to_end if type(self).touch is LRU.touch else self.touch

    def fast_remove(self) -> Callable[[int], None]:
        return self._od.__delitem__ if type(self).remove is LRU.remove else self.remove

    def admit(self, key: int) -> list[int]:
        if self.capacity == 0:
            return [key]
        od = self._od
        od[key] = None
        evicted = []
        while len(od) > self.capacity:
            evicted.append(od.popitem(last=False)[0])
        return evicted

    def admit_many(self, keys: Iterable[int]) -> list[int]:
        # Written for speed: the cascade of the tier hierarchy calls this once per tier.
        if self.capacity == 0:
            return list(keys)
        od = self._od
        for k in keys:
            od[k] = None
        over = len(od) - self.capacity
        if over <= 0:
            return []
        pop = od.popitem
        return [pop(False)[0] for _ in range(over)]

    def remove(self, key: int) -> None:
        del self._od[key]

    def access(self, key: int) -> bool:
        od = self._od
        if key in od:
            od.move_to_end(key)
            return True
        if self.capacity:
            od[key] = None
            if len(od) > self.capacity:
                od.popitem(last=False)
        return False

    def replay(self, keys: Iterable[int]) -> int:
        # Written for speed: the bare-replay baseline of the benchmarks. Two loops: while
        # the cache fills, then with it full, where a miss inserts and evicts one block
        # (no size check per access).
        od = self._od
        cap = self.capacity
        if cap == 0:
            return 0
        hits = 0
        move, pop = od.move_to_end, od.popitem
        it = iter(keys)
        if len(od) < cap:
            for k in it:
                if k in od:
                    move(k)
                    hits += 1
                else:
                    od[k] = None
                    if len(od) == cap:
                        break
        for k in it:
            if k in od:
                move(k)
                hits += 1
            else:
                od[k] = None
                pop(False)
        return hits
