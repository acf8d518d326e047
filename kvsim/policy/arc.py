"""ARC, the adaptive replacement cache (Megiddo & Modha, FAST'03).

T1 holds blocks seen once recently, T2 blocks seen at least twice; B1 and B2 are their
ghosts (ids only). The target size ``p`` of T1 moves toward whichever ghost list is hit.
Follows libCacheSim's ``ARC.c`` (float ``p``, its case-IV details), so that hit counts
agree exactly with ``libcachesim.ARC(cache_size=c)`` on unit-size blocks:

    on hit(k):  move k to the MRU end of T2 (from T1 or T2)
    on miss(k):
        if k in B1: p = min(p + max(|B2| / |B1|, 1), c); remove k from B1; g = 1
        elif k in B2: p = max(p - max(|B1| / |B2|, 1), 0); remove k from B2; g = 2
        else g = 0
        if |T1| + |T2| >= c:
            if g: replace(g == 2)
            elif |T1| + |B1| >= c:                                         (case IV.A)
                if B1: drop the LRU of B1; replace(False)
                else:  drop the LRU of T1 (no ghost)
            else:                                                          (case IV.B)
                if |T1| + |B1| + |T2| + |B2| >= 2c and B2: drop the LRU of B2
                replace(False)
        put k at the MRU end of T2 if g else of T1
    replace(hit_in_B2):
        if (T1 and (|T1| > p or (|T1| == p and hit_in_B2))) or not T2:
             move the LRU of T1 to the MRU end of B1
        else move the LRU of T2 to the MRU end of B2

``remove(k)`` (promotion, delete) takes k out of T1/T2 without leaving a ghost.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from kvsim.policy.base import EvictionPolicy


class ARC(EvictionPolicy):
    name = "arc"

    def __init__(self, capacity: int, inclusive: bool = False) -> None:
        super().__init__(capacity, inclusive)
        self.p = 0.0
        # Each list runs from LRU (first) to MRU (last).
        self._t1: OrderedDict[int, None] = OrderedDict()
        self._t2: OrderedDict[int, None] = OrderedDict()
        self._b1: OrderedDict[int, None] = OrderedDict()
        self._b2: OrderedDict[int, None] = OrderedDict()
        # T1 and T2's blocks in one dict (written for speed: the hierarchy asks ``key in``
        # for every block and tier of a lookup, and takes its dict fast paths)
        self._held: dict[int, None] = {}

    def __contains__(self, key: int) -> bool:
        return key in self._held

    def members(self) -> dict[int, None]:
        return self._held

    def __len__(self) -> int:
        return len(self._held)

    def __iter__(self) -> Iterator[int]:
        yield from self._t1
        yield from self._t2

    def touch(self, key: int) -> None:
        if key in self._t1:
            del self._t1[key]
            self._t2[key] = None
        else:
            self._t2.move_to_end(key)

    def _replace(self, hit_in_b2: bool, out: list[int]) -> None:
        t1, t2 = self._t1, self._t2
        n1 = len(t1)
        if (n1 and (n1 > self.p or (n1 == self.p and hit_in_b2))) or not t2:
            k = t1.popitem(last=False)[0]
            self._b1[k] = None
        else:
            k = t2.popitem(last=False)[0]
            self._b2[k] = None
        del self._held[k]
        out.append(k)

    def admit(self, key: int) -> list[int]:
        c = self.capacity
        if c == 0:
            return [key]
        t1, t2, b1, b2 = self._t1, self._t2, self._b1, self._b2
        g = 0
        if key in b1:
            self.p = min(self.p + max(len(b2) / len(b1), 1.0), c)
            del b1[key]
            g = 1
        elif key in b2:
            self.p = max(self.p - max(len(b1) / len(b2), 1.0), 0.0)
            del b2[key]
            g = 2
        out: list[int] = []
        while len(t1) + len(t2) >= c:
            if g:
                self._replace(g == 2, out)
            elif len(t1) + len(b1) >= c:
                if b1:
                    b1.popitem(last=False)
                    self._replace(False, out)
                else:
                    k = t1.popitem(last=False)[0]
                    del self._held[k]
                    out.append(k)
            else:
                if b2 and len(t1) + len(b1) + len(t2) + len(b2) >= 2 * c:
                    b2.popitem(last=False)
                self._replace(False, out)
        if g:
            t2[key] = None
        else:
            t1[key] = None
        self._held[key] = None
        return out

    def access(self, key: int) -> bool:
        # Written for speed: one call per access in single-tier replay.
        t1 = self._t1
        if key in t1:
            del t1[key]
            self._t2[key] = None
            return True
        t2 = self._t2
        if key in t2:
            t2.move_to_end(key)
            return True
        self.admit(key)
        return False

    def remove(self, key: int) -> None:
        if key in self._t1:
            del self._t1[key]
        else:
            del self._t2[key]
        del self._held[key]
