"""Least recently used.

    on hit(k):   move k to the MRU end
    on admit(k): append k at the MRU end; while size > capacity: evict from the LRU end

An ``OrderedDict`` gives O(1) for all three operations in C (the order and admission are
:class:`~kvsim.policy.base.OrderedPolicy`'s, shared with FIFO); the hit path is the hottest
line of the simulator, so ``access`` is specialised here (one dict lookup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kvsim.policy.base import OrderedPolicy


class LRU(OrderedPolicy):
    name = "lru"

    def touch(self, key: int) -> None:
        self._od.move_to_end(key)

    def fast_touch(self) -> Callable[[int], None]:
        # the OrderedDict's own method (no Python frame), unless a subclass changes touch
        return self._od.move_to_end if type(self).touch is LRU.touch else self.touch

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
