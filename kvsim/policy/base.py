"""The eviction-policy interface shared by single-tier replay and the tier hierarchy.

A policy owns the replacement order of one tier of ``capacity`` blocks. The tier
hierarchy (:mod:`kvsim.system.hierarchy`) asks it three things:

* ``touch(key)``   -- a resident block was used (hit);
* ``admit(key)``   -- a non-resident block arrives; returns the blocks evicted to make room
  (possibly ``[key]`` itself when the capacity is 0);
* ``remove(key)``  -- a resident block leaves for another reason (promotion, delete).

Keys are block ids (ints). After any call, ``len(policy) <= capacity``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator


class EvictionPolicy(ABC):
    name: str = "base"

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = int(capacity)

    @abstractmethod
    def __contains__(self, key: int) -> bool: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __iter__(self) -> Iterator[int]: ...

    @abstractmethod
    def touch(self, key: int) -> None: ...

    @abstractmethod
    def admit(self, key: int) -> list[int]: ...

    @abstractmethod
    def remove(self, key: int) -> None: ...

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
