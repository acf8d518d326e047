"""First in, first out.

    on hit(k):   nothing
    on admit(k): append k at the tail; while size > capacity: evict from the head
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container, Iterable, Iterator

from kvsim.policy.base import EvictionPolicy


class FIFO(EvictionPolicy):
    name = "fifo"

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
        return iter(self._od)

    def touch(self, key: int) -> None:
        return None

    def admit(self, key: int) -> list[int]:
        if self.capacity == 0:
            return [key]
        self._od[key] = None
        evicted = []
        while len(self._od) > self.capacity:
            evicted.append(self._od.popitem(last=False)[0])
        return evicted

    def remove(self, key: int) -> None:
        del self._od[key]

    def replay(self, keys: Iterable[int]) -> int:
        # Written for speed: the single-tier baseline (benchmarks/bench_policies.py).
        od = self._od
        cap = self.capacity
        hits = 0
        pop = od.popitem
        for k in keys:
            if k in od:
                hits += 1
            elif cap:
                od[k] = None
                if len(od) > cap:
                    pop(False)
        return hits
