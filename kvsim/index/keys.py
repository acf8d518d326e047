"""Block id -> index key, in one of two orders.

    remapped: key = the trace's block id. Ids are numbered in first-seen order, so a run
              of blocks created together is a run of adjacent keys: what the study's
              benchmark implicitly assumed.
    hashed:   key = the first 63 bits of SHA-256(block id). Real keys are SHA-256 of the
              chained prefix; since a trace id stands for exactly one chained prefix,
              hashing the id gives keys with the same statistics: a run of blocks is
              scattered uniformly over the key space (and over a B+tree's leaves).

The hashed table is computed once per id and kept (a list grown in chunks), so a key
costs one list index after the first use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

KEY_ORDERS = ("remapped", "hashed")
MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """splitmix64's finalizer: a fast 64-bit mixer for in-structure hashing (slots, shards)."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & MASK64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & MASK64
    return x ^ (x >> 31)


def hashed_key(block_id: int) -> int:
    """63-bit key from SHA-256 of the id's 8 little-endian bytes."""
    d = hashlib.sha256(int(block_id).to_bytes(8, "little", signed=True)).digest()
    return int.from_bytes(d[:8], "big") >> 1


class KeyMap:
    def __init__(self, order: str = "remapped") -> None:
        if order not in KEY_ORDERS:
            raise ValueError(f"key_order must be one of {KEY_ORDERS}, got {order!r}")
        self.order = order
        self.hashed = order == "hashed"
        self._table: list[int] = []

    def _grow(self, upto: int) -> None:
        n = len(self._table)
        new = max(upto + 1, 2 * n, 1024)
        sha = hashlib.sha256
        self._table.extend(
            int.from_bytes(sha(i.to_bytes(8, "little", signed=True)).digest()[:8], "big") >> 1
            for i in range(n, new)
        )

    def key(self, block_id: int) -> int:
        if not self.hashed:
            return block_id
        if block_id < 0:
            return hashed_key(block_id)
        if block_id >= len(self._table):
            self._grow(block_id)
        return self._table[block_id]

    def keys(self, ids: Sequence[int]) -> list[int]:
        if not self.hashed:
            return list(ids)
        m = max(ids, default=-1)
        if m >= len(self._table):
            self._grow(m)
        t = self._table
        return [t[i] if i >= 0 else hashed_key(i) for i in ids]
