"""S3-FIFO: a small probationary FIFO, a main FIFO with 2-bit CLOCK reinsertion, a ghost FIFO.

Follows libCacheSim's ``S3FIFO.c`` (Yang et al., SOSP'23) step for step, so that hit counts
agree exactly with ``libcachesim.S3FIFO(cache_size=C)`` on unit-size blocks:

    S = int(C * small_ratio); M = C - S; G = int(C * ghost_ratio)     (0.10, 0.90 by default)
    freq[k]: uses of k since it entered its current queue (0 on entry)
    on hit(k):   freq[k] += 1                                          (no queue movement)
    on miss(k):  from_ghost = k in ghost; remove k from ghost
                 while |small| + |main| >= C: evict()
                 if from_ghost:                          append k to main
                 elif not evicted_yet and |small| >= S:  append k to main  (warm-up)
                 else:                                   append k to small
    evict():     evicted_yet = True
                 if |main| > M or small is empty: evict_main() else: evict_small()
    evict_small(): repeat: h = head of small; pop h
                     if freq[h] >= move_to_main (2): append h to main with freq 0  (promote)
                     else: insert h into ghost (FIFO of G ids; a ghost already there stays
                           put); h is evicted; stop
                   until small is empty
    evict_main():  repeat: h = head of main; pop h
                     if freq[h] >= 1: append h to main with freq min(freq[h], 3) - 1
                     else: h is evicted; stop

Degenerate sizes (S < 2) are not modelled like libCacheSim, which refuses to insert a block
as large as the small queue; the hierarchy's tiers are far larger.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Annotated

from kvsim.policy.base import EvictionPolicy
from kvsim.ranges import NonNegFloat, PosInt, Range


class S3FIFO(EvictionPolicy):
    name = "s3fifo"

    def __init__(
        self,
        capacity: int,
        small_ratio: Annotated[float, Range(gt=0, lt=1)] = 0.1,
        ghost_ratio: NonNegFloat = 0.9,
        move_to_main: PosInt = 2,
        inclusive: bool = False,
    ) -> None:
        super().__init__(capacity, inclusive)
        self.small_cap = int(capacity * small_ratio)
        self.main_cap = self.capacity - self.small_cap
        self.ghost_cap = int(capacity * ghost_ratio)
        self.move_to_main = int(move_to_main)
        self._small: OrderedDict[int, None] = OrderedDict()
        self._main: OrderedDict[int, None] = OrderedDict()
        self._ghost: OrderedDict[int, None] = OrderedDict()
        self._freq: dict[int, int] = {}
        self._evicted_yet = False

    def __contains__(self, key: int) -> bool:
        return key in self._freq

    def members(self) -> dict[int, int]:
        return self._freq  # exactly the residents' keys, never rebound (see the base class)

    def __len__(self) -> int:
        return len(self._freq)

    def __iter__(self) -> Iterator[int]:
        yield from self._small
        yield from self._main

    def touch(self, key: int) -> None:
        self._freq[key] += 1

    def _evict_small(self, out: list[int]) -> None:
        small, freq = self._small, self._freq
        while small:
            h = small.popitem(last=False)[0]
            if freq[h] >= self.move_to_main:
                self._main[h] = None
                freq[h] = 0
            else:
                del freq[h]
                if self.ghost_cap > 0 and h not in self._ghost:
                    self._ghost[h] = None
                    if len(self._ghost) > self.ghost_cap:
                        self._ghost.popitem(last=False)
                out.append(h)
                return

    def _evict_main(self, out: list[int]) -> None:
        main, freq = self._main, self._freq
        while main:
            h = main.popitem(last=False)[0]
            f = freq[h]
            if f >= 1:
                main[h] = None
                freq[h] = min(f, 3) - 1
            else:
                del freq[h]
                out.append(h)
                return

    def admit(self, key: int) -> list[int]:
        if self.capacity == 0:
            return [key]
        from_ghost = False
        if key in self._ghost:
            del self._ghost[key]
            from_ghost = True
        out: list[int] = []
        while len(self._freq) >= self.capacity:
            self._evicted_yet = True
            if len(self._main) > self.main_cap or not self._small:
                self._evict_main(out)
            else:
                self._evict_small(out)
        if from_ghost or (not self._evicted_yet and len(self._small) >= self.small_cap):
            self._main[key] = None
        else:
            self._small[key] = None
        self._freq[key] = 0
        return out

    def remove(self, key: int) -> None:
        del self._freq[key]
        if key in self._small:
            del self._small[key]
        else:
            del self._main[key]

    def access(self, key: int) -> bool:
        freq = self._freq
        if key in freq:
            freq[key] += 1
            return True
        self.admit(key)
        return False
