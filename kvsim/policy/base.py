"""The eviction- and placement-policy interface shared by single-tier replay and the tier hierarchy.

A policy owns the replacement order of one tier of ``capacity`` blocks. The tier
hierarchy (:mod:`kvsim.system.hierarchy`) asks it:

* ``touch(key)``   -- a resident block was used (hit);
* ``admit(key)``   -- a non-resident block arrives; returns the blocks evicted to make room
  (possibly ``[key]`` itself: capacity 0, or a policy that declines to keep it -- OPT's
  bypass -- in which case the block goes on down the hierarchy as if evicted);
* ``remove(key)``  -- a resident block leaves for another reason (promotion, delete).

and, for placement across tiers (all optional; the defaults give the classic exclusive
hierarchy: new blocks enter the top tier, a hit is promoted to the top, a victim is demoted
one tier down and dropped below the bottom):

* ``accepts(key)`` -- may this tier hold ``key``? Asked for a new block (admission: the
  first tier from ``admit_tier`` down that accepts it gets it, none = not kept), for a hit
  in a lower tier (promotion: to the fastest tier above that accepts it, none = stays) and
  for a victim (demotion: to the next tier below that accepts it, none = dropped). Only
  asked when the class sets ``filters = True``.
* ``join(tier, peers)`` -- called once by the hierarchy after every tier is built; policies
  with cross-tier state (hotness statistics, OPT's next uses) share it with their peers here.
* ``observe(keys, new)`` -- a request accesses ``keys`` (in request order); called on the
  tier-0 instance only, before the keys are touched or stored; ``new`` says they are
  freshly computed blocks (a store) rather than reused ones.
* ``bind(trace)`` -- the trace about to be replayed. Static facts of each block (its depth
  in the prefix chain, whether it was created as a request's partial last block) are known
  to a real system when the block is seen; only OPT may look at the future.
* ``inclusive`` -- promotion copies a block up and leaves the lower copy in place, so a
  block can live in several tiers (where it is: the fastest copy) and its later demotion
  to a tier that still holds a copy moves no bytes.

and, for policies that use what the scheduler knows (look-ahead), called on the tier-0
instance by the serving node:

* ``enqueue(keys)`` -- a request that needs ``keys`` entered the waiting queue;
* ``dequeue(keys)`` -- its prefill started (its first chunk was scheduled).

Keys are block ids (ints). After any call, ``len(policy) <= capacity``.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, cast


class EvictionPolicy(ABC):
    name: str = "base"
    #: True when ``accepts`` may say no (the hierarchy skips the per-block asks otherwise).
    filters: bool = False

    def __init__(self, capacity: int, inclusive: bool = False) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = int(capacity)
        self.inclusive = bool(inclusive)
        self.tier = 0

    @abstractmethod
    def __contains__(self, key: int) -> bool: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __iter__(self) -> Iterator[int]: ...

    def members(self) -> Container[int]:
        """A container answering ``key in`` for the resident blocks, as cheaply as possible
        (the tier hierarchy asks it once per block and tier on every lookup). Subclasses
        that keep their blocks in one dict return it; it must stay the same object."""
        return cast(Container[int], self)

    @abstractmethod
    def touch(self, key: int) -> None: ...

    @abstractmethod
    def admit(self, key: int) -> list[int]: ...

    @abstractmethod
    def remove(self, key: int) -> None: ...

    def fast_touch(self) -> Callable[[int], None]:
        """``touch`` as a callable, as cheap as possible (the hierarchy calls it for every
        reused block: written for speed); a subclass may return a C-level equivalent."""
        return self.touch

    def fast_remove(self) -> Callable[[int], None]:
        """``remove`` as a callable, as cheap as possible (see :meth:`fast_touch`)."""
        return self.remove

    # --- placement hooks (defaults: exclusive, promote to the top, demote one tier) ---------
    def accepts(self, key: int) -> bool:
        return True

    def join(self, tier: int, peers: Sequence[EvictionPolicy]) -> None:
        self.tier = tier

    def observe(self, keys: Sequence[int], new: bool) -> None:
        return None

    def bind(self, trace: Any) -> None:
        return None

    def enqueue(self, keys: Sequence[int]) -> None:
        return None

    def dequeue(self, keys: Sequence[int]) -> None:
        return None

    @property
    def queue_aware(self) -> bool:
        """Whether this policy does anything with the queue hooks."""
        return type(self).enqueue is not EvictionPolicy.enqueue

    # --- single-tier replay -------------------------------------------------------------
    def admit_many(self, keys: Iterable[int]) -> list[int]:
        """Admit ``keys`` in order; return every block evicted, in eviction order.

        A key admitted and evicted within the same call is returned too."""
        evicted: list[int] = []
        for k in keys:
            evicted.extend(self.admit(k))
        return evicted

    def access(self, key: int) -> bool:
        """One access of a single-tier cache: a hit touches, a miss admits. Returns hit."""
        if key in self:
            self.touch(key)
            return True
        self.admit(key)
        return False

    def replay(self, keys: Iterable[int]) -> int:
        """Replay an access stream; return the number of hits."""
        access = self.access
        return sum(1 for k in keys if access(k))


class OrderedPolicy(EvictionPolicy):
    """A policy whose blocks are one ``OrderedDict`` in eviction order, the next victim first
    (LRU, FIFO: they differ only in what a hit does). Written for speed: every operation
    here is one dict operation in C, and the tier hierarchy reaches the dict itself
    (``members``) and its methods (``fast_remove``) without a Python frame."""

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
        """From the next victim to the last."""
        return iter(self._od)

    def fast_remove(self) -> Callable[[int], None]:
        # the OrderedDict's own method, unless a subclass changes remove
        return self._od.__delitem__ if type(self).remove is OrderedPolicy.remove else self.remove

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
        # Written for speed: the cascade of the tier hierarchy calls this once per tier. New
        # keys join the far end and victims leave the near one, so admitting them all and
        # then evicting the overflow evicts what admitting them one by one would.
        if self.capacity == 0:
            return list(keys)
        od = self._od
        for k in keys:
            od[k] = None
        over = len(od) - self.capacity
        if over <= 0:
            return []
        # the victims are the first ``over`` keys; taken by islice and deleted with a
        # statement, about 1.3x faster than popitem(False) per key (one call, no tuple)
        victims = list(islice(od, over))
        for k in victims:
            del od[k]
        return victims

    def remove(self, key: int) -> None:
        del self._od[key]


class LazyHeap:
    """A min-heap of ``(priority, key)`` from which nothing is removed early: an entry goes
    stale when its key leaves or takes a new priority, and is dropped when it reaches the
    top (``live(priority, key)`` says whether it still counts). Once entries outnumber the
    live keys 4 to 1 (plus a floor) the heap is rebuilt from ``entries()``, so its memory
    stays bounded by the residents, whatever the trace. Shared by the policies that order
    blocks by a priority that changes (OPT: next use; PrefixLRU: a leaf's last use); the
    result never depends on when it is rebuilt (ties break on the key)."""

    __slots__ = ("_entries", "_live", "heap")

    def __init__(self, live: Callable[[int, int], bool], entries: Callable[[], Iterable[tuple[int, int]]]) -> None:
        self.heap: list[tuple[int, int]] = []  # exposed for the replays' inlined loops
        self._live = live
        self._entries = entries

    def __len__(self) -> int:
        return len(self.heap)

    def push(self, priority: int, key: int, live_keys: int) -> None:
        """Add an entry; ``live_keys``: how many keys are live now (the heap grows only here,
        so the bound is checked here: one call per push, written for speed)."""
        heap = self.heap
        heapq.heappush(heap, (priority, key))
        if len(heap) > 4 * live_keys + 64:
            self.bound(live_keys)

    def bound(self, live_keys: int) -> None:
        """Rebuild if stale entries have piled up (``live_keys``: how many keys are live)."""
        if len(self.heap) > 4 * live_keys + 64:
            self.heap = list(self._entries())
            heapq.heapify(self.heap)

    def top(self) -> tuple[int, int]:
        """The live entry with the smallest priority (stale ones above it are dropped)."""
        heap, live = self.heap, self._live
        while True:
            p, k = heap[0]
            if live(p, k):
                return p, k
            heapq.heappop(heap)

    def pop(self) -> tuple[int, int]:
        """Remove and return the live entry with the smallest priority."""
        heap, live = self.heap, self._live
        while True:
            p, k = heapq.heappop(heap)
            if live(p, k):
                return p, k
