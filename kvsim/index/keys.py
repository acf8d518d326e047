"""Block id -> index key, in one of two orders.

    remapped: key = the trace's block id. Ids are numbered in first-seen order, so a run
              of blocks created together is a run of adjacent keys: what the study's
              benchmark implicitly assumed.
    hashed:   key = the first 63 bits of SHA-256(block id). Real keys are SHA-256 of the
              chained prefix; since a trace id stands for exactly one chained prefix,
              hashing the id gives keys with the same statistics: a run of blocks is
              scattered uniformly over the key space (and over a B+tree's leaves).

A hashed key is computed once per id and kept in a dict, so a key costs one dict lookup
after the first use and the table holds only the ids seen (never sized by the largest id:
a trace may hold raw 64-bit hashes).
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
        self._table: dict[int, int] = {}

    def key(self, block_id: int) -> int:
        if not self.hashed:
            return block_id
        k = self._table.get(block_id)
        if k is None:
            k = self._table[block_id] = hashed_key(block_id)
        return k

    def keys(self, ids: Sequence[int]) -> list[int]:
        if not self.hashed:
            return list(ids)
        t = self._table
        out = []
        for i in ids:
            k = t.get(i)
            if k is None:
                k = t[i] = hashed_key(i)
            out.append(k)
        return out
