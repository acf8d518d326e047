"""The extent index: a workload-aware KV-cache metadata index designed from what the
Mooncake traces show, on the same one-sided RDMA memory node as Sherman and CHIME.

What the traces show, and what the design does with it:

1. Blocks are created in runs (a request's new blocks are one chain segment) and later
   read back in the same runs, from their start: 86.8% of a request's blocks are in
   contiguous runs (the study), and a run starts where the chain it follows was
   extended. -> One entry per *extent*: the record of a chain segment created together
   holds every block's 8 B key fingerprint and 8 B address, stored inline in the slot of
   its first block's key. Reading a run costs one READ per extent, of 16 + 16 n bytes,
   whatever the key order: keys are only hashed to a slot, never ordered, so a run
   costs the same under remapped and hashed keys (a B+tree's range query is worth
   nothing under hashed keys).
2. Requests follow prefix chains, and a conversation's next turn extends its previous
   turn's chain. -> An insert whose first block's parent ends a record (and the record
   has room, ``max_extent``) appends to it, so a whole conversation tends to live in a
   few records; a lookup walks the request's chain record by record.
3. The first block (block 0 of every conversation) and a few system prefixes are read by
   almost every request. -> A compute-side cache of whole records (``cache_bytes``,
   LRU, write-allocate and write-through for this node's own inserts): a hit answers a
   whole extent with no round trip. KV metadata is read-mostly (a block's address
   changes only when it moves tier), so caching leaf-level data is safe here in a way
   it is not for a general B+tree; with several writers a stale address would be caught
   when the KV read checks the block's key, and retried (not modelled: one client).
4. Only the longest cached prefix can be reused. -> A lookup stops at the first absent
   block (``stop_at_miss``): one probe of an empty slot, and no operations for the
   blocks after it.

Remote layout (a hash table in disaggregated memory): a head slot holds the record of
the extent that starts with that key; a member slot (16 B) holds a pointer to the record
and the block's offset, so a block can still be found without its chain.

    lookup(blocks):  i <- 0
                     while i < n:
                         if blocks[i] continues the record in hand: check it locally
                         elif its record is cached: local
                         else READ blocks[i]'s slot: empty -> absent (1 round trip);
                              head -> the record inline (1); member -> the record (2)
                         absent or removed -> stop (or skip, without stop_at_miss)
    insert(keys):    CAS-lock each record appended to / claim each new head slot (one
                     batch), then WRITE the new entries + header (one message per
                     record), a 16 B member slot per non-head block, the unlocks
                     (one batch): 2 round trips
    update(keys):    WRITE the 8 B address in place: one message per contiguous
                     segment, one batch, no lock
    delete(keys):    as update (a null address: a tombstone); a record whose blocks are
                     all removed is freed with its member slots

Where it wins: runs of any length and any key order in one round trip per extent and
bytes proportional to the blocks asked; cached hot prefixes in zero round trips;
updates without locks. Where it loses: an insert writes one member slot per block (a
message each, where a B+tree writes adjacent keys into one leaf); a point get of a block
that is not an extent head, with no chain to follow, takes two round trips (member slot,
then record) where Sherman and CHIME take one; removed blocks stay as tombstones until
their whole extent goes; and a record read fetches the whole extent even when the
request needs its first blocks only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from kvsim.index.base import Op
from kvsim.index.rdma import ATOMIC, READ, WRITE, RdmaIndex, RoundBuilder
from kvsim.index.runs import split_runs
from kvsim.ranges import Bytes, KeyOrder, OneOf, PosInt, Rate, Seconds, Seed

ADDR_BYTES = 8
LOCK_BYTES = 8


class _Record:
    __slots__ = ("head", "ids", "live")

    def __init__(self, head: int) -> None:
        self.head = head
        self.ids = [head]
        self.live = 0


class ExtentIndex(RdmaIndex):
    name = "extent"

    def __init__(
        self,
        read_rtt_s: Seconds,
        write_one_way_s: Seconds,
        atomic_rtt_s: Seconds,
        bandwidth_Bps: Rate,
        message_rate_per_s: Rate,
        mmio_s: Seconds = 0.0,
        nic_message_rate_per_s: Rate = 215e6,
        nic_quantum_bytes: PosInt = 4096,
        local_lookup_s: Seconds = 0.0,
        max_extent: PosInt = 64,
        header_bytes: PosInt = 16,
        entry_bytes: PosInt = 16,
        slot_bytes: PosInt = 16,
        cache_bytes: Bytes = 64 * 2**20,
        cache_policy: Annotated[str, OneOf("lru", "sample2")] = "lru",
        stop_at_miss: bool = True,
        key_order: KeyOrder = "remapped",
        seed: Seed = 0,
    ) -> None:
        super().__init__()
        if max_extent < 1:
            raise ValueError(f"extent.max_extent must be >= 1, got {max_extent}")
        self._connect(
            read_rtt_s=read_rtt_s,
            write_one_way_s=write_one_way_s,
            atomic_rtt_s=atomic_rtt_s,
            bandwidth_Bps=bandwidth_Bps,
            message_rate_per_s=message_rate_per_s,
            mmio_s=mmio_s,
            nic_message_rate_per_s=nic_message_rate_per_s,
            nic_quantum_bytes=nic_quantum_bytes,
            local_lookup_s=local_lookup_s,
            cache_bytes=cache_bytes,
            cache_policy=cache_policy,
            key_order=key_order,
            seed=seed,
        )
        self.max_extent = max_extent
        self.header_bytes = header_bytes
        self.entry_bytes = entry_bytes
        self.slot_bytes = slot_bytes
        self.stop_at_miss = stop_at_miss
        # (slots are hashed: the key order changes nothing for this index)
        self.rec_of: dict[int, _Record] = {}
        self.pos: dict[int, int] = {}
        self.alive: set[int] = set()
        self.parent_of: dict[int, int | None] = {}
        self.records = 0

    def __contains__(self, block: int) -> bool:
        return block in self.alive

    def _bytes(self, rec: _Record) -> int:
        return self.header_bytes + self.entry_bytes * len(rec.ids)

    def _learn(self, blocks: Sequence[int]) -> None:
        po = self.parent_of
        prev: int | None = None
        for b in blocks:
            if b not in po:
                po[b] = prev
            prev = b

    # --- lookup --------------------------------------------------------------------------
    def _walk(self, blocks: Sequence[int], op_at: list[int], builders: list[RoundBuilder]) -> int:
        """Walk the chain; add each probe's round trips to the op holding the block.
        Return the position of the first absent block (``len(blocks)`` if none)."""
        n = len(blocks)
        rec_of, pos, alive, cache = self.rec_of, self.pos, self.alive, self.cache
        cur: _Record | None = None
        off = 0
        i = 0
        first_absent = n
        while i < n:
            b = blocks[i]
            if cur is not None and off < len(cur.ids) and cur.ids[off] == b:
                pass  # the record in hand continues: checked locally
            else:
                rec = rec_of.get(b)
                bld = builders[op_at[i]]
                if rec is None:
                    cache.misses += 1
                    bld.add(READ, 1, read_bytes=self.slot_bytes)  # an empty slot
                    cur = None
                elif cache.lookup(rec.head):
                    cur, off = rec, pos[b]
                else:
                    if pos[b] > 0:  # a member slot points to the record
                        bld.add(READ, 1, read_bytes=self.slot_bytes)
                    size = self._bytes(rec)
                    bld.add(READ, 1, read_bytes=size)
                    cache.add(rec.head, size)
                    cur, off = rec, pos[b]
            if cur is None or b not in alive:
                if first_absent == n:
                    first_absent = i
                if self.stop_at_miss:
                    return i
                cur = None
                i += 1
                continue
            i += 1
            off += 1
        return first_absent

    def plan_lookup(self, keys: Sequence[int]) -> list[Op]:
        self._learn(keys)
        runs = split_runs(keys)
        op_at: list[int] = []
        for j, (_, length) in enumerate(runs):
            op_at.extend([j] * length)
        builders = [RoundBuilder(self.fabric) for _ in runs]
        stop = self._walk(keys, op_at, builders)
        ops = []
        for j, (start, length) in enumerate(runs):
            if self.stop_at_miss and start > stop:
                break
            ops.append(builders[j].op("get" if length == 1 else "range", length, self.local_lookup_s))
        return ops

    def plan_get(self, key: int) -> Op:
        b = RoundBuilder(self.fabric)
        self._walk([key], [0], [b])
        return b.op("get", 1, self.local_lookup_s)

    def plan_range(self, keys: Sequence[int]) -> Op:
        b = RoundBuilder(self.fabric)
        self._walk(keys, [0] * len(keys), [b])
        return b.op("range", len(keys), self.local_lookup_s)

    # --- writes --------------------------------------------------------------------------
    def plan_insert(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        rec_of, pos, alive = self.rec_of, self.pos, self.alive
        locked: set[int] = set()
        new_heads: set[int] = set()
        written: dict[int, int] = {}  # record head -> entries written
        members = 0
        in_place = 0
        po = self.parent_of
        parent = po.get(keys[0])
        for k in keys:
            parent = po.get(k, parent)  # the chain parent, learned at lookup
            rec = rec_of.get(k)
            if rec is not None:  # present or a tombstone: write the address in place
                if k not in alive:
                    alive.add(k)
                    rec.live += 1
                in_place += 1
                parent = k
                continue
            prec = rec_of.get(parent) if parent is not None else None
            if prec is not None and prec.ids[-1] == parent and len(prec.ids) < self.max_extent:
                if prec.head not in new_heads:
                    locked.add(prec.head)
                prec.ids.append(k)
                pos[k] = len(prec.ids) - 1
                rec_of[k] = prec
                prec.live += 1
                members += 1
                written[prec.head] = written.get(prec.head, 0) + 1
            else:
                rec = _Record(k)
                rec.live = 1
                rec_of[k] = rec
                pos[k] = 0
                new_heads.add(k)
                written[k] = 1
                self.records += 1
            alive.add(k)
            parent = k
        for head in written:  # write-allocate, write-through
            self.cache.add(head, self._bytes(rec_of[head]))
        b = RoundBuilder(self.fabric)
        claims = len(locked) + len(new_heads)
        if claims:
            b.add(ATOMIC, claims, write_bytes=LOCK_BYTES * claims)
        entries = sum(written.values())
        msgs = len(written) + members + in_place + len(locked)
        nbytes = (
            entries * self.entry_bytes
            + len(written) * self.header_bytes
            + members * self.slot_bytes
            + in_place * ADDR_BYTES
            + len(locked) * LOCK_BYTES
        )
        b.add(WRITE, msgs, write_bytes=nbytes)
        return [b.op("insert", n, self.local_lookup_s)]

    def _in_place(self, kind: str, keys: Sequence[int], delete: bool) -> list[Op]:
        rec_of, pos, alive = self.rec_of, self.pos, self.alive
        by_rec: dict[int, list[int]] = {}
        for k in keys:
            rec = rec_of.get(k)
            if rec is None or k not in alive:
                continue
            by_rec.setdefault(rec.head, []).append(pos[k])
        if not by_rec:
            return []
        msgs = 0
        nbytes = 0
        for head, offs in by_rec.items():
            offs.sort()
            segs = 1 + sum(1 for a, c in zip(offs, offs[1:], strict=False) if c != a + 1)
            msgs += segs
            nbytes += len(offs) * ADDR_BYTES
            if delete:
                rec = rec_of[head]
                for o in offs:
                    alive.discard(rec.ids[o])
                rec.live -= len(offs)
                if rec.live == 0:  # free the extent: its head slot and member slots
                    msgs += len(rec.ids)
                    nbytes += len(rec.ids) * self.slot_bytes
                    for b in rec.ids:
                        del rec_of[b]
                        del pos[b]
                    self.cache.discard(head)
                    self.records -= 1
        bld = RoundBuilder(self.fabric)
        bld.add(WRITE, msgs, write_bytes=nbytes)
        return [bld.op(kind, len(keys), self.local_lookup_s)]

    def plan_update(self, keys: Sequence[int]) -> list[Op]:
        return self._in_place("insert", keys, delete=False)

    def plan_delete(self, keys: Sequence[int]) -> list[Op]:
        return self._in_place("delete", keys, delete=True)

    def stats(self) -> dict[str, float]:
        n = len(self.alive)
        return {
            "keys": n,
            "records": self.records,
            "blocks_per_record": len(self.rec_of) / self.records if self.records else 0.0,
            "cache_records": len(self.cache),
            "cache_hit_ratio": self.cache.hit_ratio,
        }

