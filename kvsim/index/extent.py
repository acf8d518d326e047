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
   whole extent with no round trip. Unlike the trees' caches (internal nodes only, which
   entry updates never change), this cache holds leaf-level data, so every update and
   delete must keep the other compute nodes' copies coherent. Scheme: *invalidation*,
   with the sharer set in the record's header. A node that caches a record sets its bit
   (one FAA in the batch that reads the record: no extra round trip); a writer learns
   the sharers with the lock CAS it takes anyway (an insert) or one 8 B READ per record
   (an address update or a delete, which take no lock: one more round trip), and writes
   an 8 B invalidation into each sharer's mailbox in its write batch (``client.sharers``
   messages per record). Why not leases: KV metadata is read-mostly (a block's address
   changes only when it moves tier; reads outnumber writes here by more than ten to one),
   so invalidation puts the cost on the rare writes and keeps cached reads at zero round
   trips, where a lease would re-validate every cached record once per lease period and
   make each update wait out the leases.
4. Only the longest cached prefix can be reused. -> With ``lookup: prefix`` (every
   index's default, kvsim.index.base) a lookup stops at the first absent block: one probe
   of an empty slot, and no operations for the blocks after it.

Remote layout (a hash table in disaggregated memory): a head slot holds the record of
the extent that starts with that key; a member slot (16 B) holds a pointer to the record
and the block's offset, so a block can still be found without its chain.

    lookup(blocks):  i <- 0
                     while i < n:           (one walk across the lookup's ops)
                         if blocks[i] continues the record in hand: check it locally
                         elif its record is cached: local
                         else READ blocks[i]'s slot: empty -> absent (1 round trip);
                              head -> the record inline (1); member -> the record (2)
                         absent or removed -> stop (lookup: prefix) or skip (all)
    insert(keys):    CAS-lock each record appended to / claim each new head slot (one
                     batch, which also reads the sharer words of records written in
                     place), then WRITE the new entries + header (one message per
                     record), a 16 B member slot per non-head block, the unlocks and
                     the invalidations (one batch): 2 round trips
    update(keys):    [READ the records' sharer words] WRITE the 8 B address in place:
                     one message per contiguous segment + the invalidations, no lock
    delete(keys):    as update (a null address: a tombstone); a record whose blocks are
                     all removed is freed with its member slots
    (extent writes change the table when they are planned: concurrent writers of one
    record are not modelled here, only in the trees)

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
from typing import Annotated, Any

from kvsim.index.base import Lookup, Op
from kvsim.index.rdma import ATOMIC, READ, WRITE, RdmaClient, RdmaIndex, RoundBuilder
from kvsim.ranges import Bytes, OneOf, PosInt, Seed

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
        client: RdmaClient,
        max_extent: PosInt = 64,
        header_bytes: PosInt = 16,
        entry_bytes: PosInt = 16,
        slot_bytes: PosInt = 16,
        cache_bytes: Bytes = 64 * 2**20,
        cache_policy: Annotated[str, OneOf("lru", "sample2")] = "lru",
        lookup: Lookup = "prefix",
        seed: Seed = 0,
        rng: Any = None,
    ) -> None:
        super().__init__(client, cache_bytes=cache_bytes, cache_policy=cache_policy, lookup=lookup, seed=seed, rng=rng)
        if max_extent < 1:
            raise ValueError(f"extent.max_extent must be >= 1, got {max_extent}")
        self.max_extent = max_extent
        self.header_bytes = header_bytes
        self.entry_bytes = entry_bytes
        self.slot_bytes = slot_bytes
        # (slots are hashed: the key order changes nothing for this index)
        self.rec_of: dict[int, _Record] = {}
        self.pos: dict[int, int] = {}
        self.alive: set[int] = set()
        self.parent_of: dict[int, int | None] = {}
        self.records = 0
        self.invalidations = 0
        self._cur: _Record | None = None  # the record in hand during a lookup's walk
        self._off = 0

    def contains(self, block: int) -> bool:
        return block in self.alive

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
    def _lookup_begin(self, keys: Sequence[int]) -> None:
        self._learn(keys)
        self._cur = None
        self._off = 0

    def _walk(self, blocks: Sequence[int], bld: RoundBuilder) -> None:
        """Walk the chain from the record in hand (kept across one lookup's ops); add each
        probe's round trips to ``bld``. With ``lookup: prefix`` the walk stops at the
        first absent block, since its reads are sequential."""
        rec_of, pos, alive, cache = self.rec_of, self.pos, self.alive, self.cache
        stop = self.lookup == "prefix"
        share = self.client.sharers > 0
        cur, off = self._cur, self._off
        for b in blocks:
            if cur is not None and off < len(cur.ids) and cur.ids[off] == b:
                pass  # the record in hand continues: checked locally
            else:
                rec = rec_of.get(b)
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
                    if share:  # register as a sharer (FAA on the header) in the same batch
                        bld.add(ATOMIC, 2, read_bytes=size, write_bytes=ADDR_BYTES)
                    else:
                        bld.add(READ, 1, read_bytes=size)
                    cache.add(rec.head, size)
                    cur, off = rec, pos[b]
            if cur is None or b not in alive:
                cur = None
                if stop:
                    break
                continue
            off += 1
        self._cur, self._off = cur, off

    def plan_get(self, key: int) -> Op:
        b = RoundBuilder(self.client)
        self._walk([key], b)
        return b.op("get", 1, self.local_lookup_s)

    def plan_range(self, keys: Sequence[int]) -> Op:
        b = RoundBuilder(self.client)
        self._walk(keys, b)
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
        revived: set[int] = set()  # heads of records written in place
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
                revived.add(rec.head)
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
        b = RoundBuilder(self.client)
        claims = len(locked) + len(new_heads)
        # records that existed before: others may cache them (their sharer words come
        # with the lock CAS; records written only in place need an 8 B READ of the word)
        shared = len(locked) + len(revived - locked - new_heads)
        s = self.client.sharers if shared else 0
        peek = len(revived - locked - new_heads) if s else 0
        if claims or peek:
            b.add(ATOMIC, claims + peek, read_bytes=ADDR_BYTES * peek, write_bytes=LOCK_BYTES * claims)
        entries = sum(written.values())
        inv = s * shared
        self.invalidations += inv
        msgs = len(written) + members + in_place + len(locked) + inv
        nbytes = (
            entries * self.entry_bytes
            + len(written) * self.header_bytes
            + members * self.slot_bytes
            + in_place * ADDR_BYTES
            + len(locked) * LOCK_BYTES
            + inv * ADDR_BYTES
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
        bld = RoundBuilder(self.client)
        s = self.client.sharers
        if s:  # invalidation: read the records' sharer words, then invalidate with the write
            r = len(by_rec)
            bld.add(READ, r, read_bytes=ADDR_BYTES * r)
            msgs += s * r
            nbytes += s * r * ADDR_BYTES
            self.invalidations += s * r
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
            "invalidations_sent": self.invalidations,
            "blocks_per_record": len(self.rec_of) / self.records if self.records else 0.0,
            "cache_records": len(self.cache),
            "cache_hit_ratio": self.cache.hit_ratio,
        }

