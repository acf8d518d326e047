"""First in, first out.

    on hit(k):   nothing
    on admit(k): append k at the tail; while size > capacity: evict from the head
"""

from __future__ import annotations

from collections.abc import Iterable

from kvsim.policy.base import OrderedPolicy


class FIFO(OrderedPolicy):
    name = "fifo"

    def touch(self, key: int) -> None:
        return None

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
