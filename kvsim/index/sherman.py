"""Sherman (SIGMOD'22): a B+tree in disaggregated memory, read and written with one-sided
RDMA, with a compute-side cache of leaf-parent nodes.

Geometry, from thustorage/Sherman ``include/Tree.h`` and ``include/Common.h``:

    node            1 KB (kInternalPageSize = kLeafPageSize = 1024)
    header          leftmost ptr 8 + sibling ptr 8 + level 1 + last_index 2 + 2 fence keys
                    = 19 + 2 * key_bytes              (35 B with 8 B keys)
    internal entry  key + 8 B pointer
    leaf entry      key + value + 2 B of front/rear versions
    cardinality     (node - header - 2) // entry     (61 internal / 54 leaf with 8 B keys;
                                                      23 / 22 with 32 B keys + 8 B values)

A leaf or internal node splits in half when an insert brings it to its cardinality, so
ascending inserts (remapped keys: new blocks always get the largest ids) leave leaves
half full, random inserts (hashed keys) about 70% full.

Operations (each a cost recipe; ``RemoteTreeIndex._locate`` adds the traversal when a
leaf-parent is not cached):

    get(k)          READ the 1 KB leaf                               1 round trip if cached
    range(k1..kn)   READ every leaf the keys fall in, ``range_parallel`` (32, kParaFetch
                    in Tree.cpp) in flight per round trip; one doorbell per READ unless
                    ``doorbell_batch``. Under hashed order the keys are in unrelated
                    leaves: the same multi-READ, one leaf per key.
    insert(keys)    per leaf touched, leaves in parallel (Tree.cpp leaf_page_store):
                    CAS the leaf's lock, READ the page, WRITE the changed entries (42 B
                    each) with the unlock in one batch: 3 round trips. A split first
                    WRITEs the new sibling page (one more round trip) and rewrites the
                    whole page; each parent that takes a separator costs 3 more round
                    trips (lock, read, write + unlock)
    delete(keys)    as insert, clearing entries in place (leaf_page_del; no merge)
    update(keys)    an insert of present keys (new address)

Cache: ``cache_bytes`` of 1 KB leaf-parents (Sherman's default is 1000 MB, which holds
every leaf-parent of this workload); replacement ``sample2`` (Sherman's: sample two,
evict the less used) or ``lru``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from kvsim.index.base import KEY_BYTES, VALUE_BYTES, Op
from kvsim.index.btree import BPlusTree, SortedLeaf
from kvsim.index.rdma import ATOMIC, READ, WRITE, RoundBuilder
from kvsim.index.remote_tree import LOCK_BYTES, RemoteTreeIndex
from kvsim.ranges import Bytes, KeyOrder, OneOf, PosInt, Rate, Seconds, Seed


def sherman_geometry(node_bytes: PosInt = 1024, key_bytes: PosInt = KEY_BYTES, value_bytes: PosInt = VALUE_BYTES) -> tuple[int, int]:
    """``(internal cardinality, leaf cardinality)`` by Sherman's Tree.h formulas."""
    header = 8 + 8 + 1 + 2 + 2 * key_bytes
    internal = (node_bytes - header - 2) // (key_bytes + 8)
    leaf = (node_bytes - header - 2) // (key_bytes + value_bytes + 2)
    if internal < 2 or leaf < 2:
        raise ValueError(f"sherman: {node_bytes} B nodes are too small for {key_bytes} B keys")
    return internal, leaf


class ShermanIndex(RemoteTreeIndex):
    name = "sherman"

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
        node_bytes: PosInt = 1024,
        key_bytes: PosInt = KEY_BYTES,
        value_bytes: PosInt = VALUE_BYTES,
        cache_bytes: Bytes = 1000 * 2**20,
        cache_policy: Annotated[str, OneOf("lru", "sample2")] = "sample2",
        range_parallel: PosInt = 32,
        doorbell_batch: bool = False,
        key_order: KeyOrder = "remapped",
        seed: Seed = 0,
    ) -> None:
        super().__init__(
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
            doorbell_batch=doorbell_batch,
            seed=seed,
        )
        if range_parallel < 1:
            raise ValueError(f"sherman.range_parallel must be >= 1, got {range_parallel}")
        self.internal_cap, self.leaf_cap = sherman_geometry(node_bytes, key_bytes, value_bytes)
        self.internal_bytes = self.leaf_bytes = node_bytes
        self.entry_bytes = key_bytes + value_bytes + 2  # LeafEntry: versions + key + value
        self.range_parallel = range_parallel
        self.tree = BPlusTree(self.internal_cap, SortedLeaf(self.leaf_cap))

    # --- reads -------------------------------------------------------------------------
    def _read_leaves(self, b: RoundBuilder, n: int) -> None:
        nb = self.leaf_bytes
        par = self.range_parallel
        for s in range(0, n, par):
            m = min(par, n - s)
            b.add(READ, m, read_bytes=m * nb, doorbells=self._doorbells(m))

    def plan_get(self, key: int) -> Op:
        b = RoundBuilder(self.fabric)
        leaf = self.tree.find_leaf(self.keymap.key(key))
        probes = self._locate(b, [leaf])
        b.add(READ, 1, read_bytes=self.leaf_bytes)
        return b.op("get", 1, probes * self.local_lookup_s)

    def plan_range(self, keys: Sequence[int]) -> Op:
        b = RoundBuilder(self.fabric)
        leaves = self._leaves_of(self.keymap.keys(keys), as_range=True)
        probes = self._locate(b, leaves)
        self._read_leaves(b, len(leaves))
        return b.op("range", len(keys), probes * self.local_lookup_s)

    # --- writes ------------------------------------------------------------------------
    def _plan_write(self, kind: str, ids: Sequence[int], delete: bool) -> list[Op]:
        keys = self.keymap.keys(ids)
        tree = self.tree
        leaves, present = self._group(keys)
        if delete:
            keys = [k for k, p in zip(keys, present, strict=True) if p]
            if len(keys) < len(present):
                leaves = self._group(keys)[0]
        if not keys:
            return []
        b = RoundBuilder(self.fabric)
        probes = self._locate(b, leaves)
        n = len(leaves)
        nb = self.leaf_bytes
        if delete:
            for k in keys:
                tree.delete(k)
            splits: list[int] = []
        else:
            splits = self._apply_inserts([k for k, p in zip(keys, present, strict=True) if not p])
        s0 = splits[0] if splits else 0
        db = self._doorbells
        # lock_and_read_page: CAS the leaf's lock, then READ the page (Tree.cpp)
        b.add(ATOMIC, n, write_bytes=LOCK_BYTES * n, doorbells=db(n))
        b.add(READ, n, read_bytes=n * nb, doorbells=db(n))
        if s0:  # a split first writes the new sibling page (write_sync)
            b.add(WRITE, s0, write_bytes=s0 * nb, doorbells=db(s0))
        # write_page_and_unlock: the changed entries (or the whole split page) + unlock
        w = len(keys) + s0 + n
        b.add(WRITE, w, write_bytes=len(keys) * self.entry_bytes + s0 * nb + LOCK_BYTES * n, doorbells=db(w))
        self._parent_updates(b, splits)
        return [b.op(kind, len(ids), probes * self.local_lookup_s)]

    def plan_insert(self, keys: Sequence[int]) -> list[Op]:
        if len(keys) == 0:
            return []
        return self._plan_write("insert", keys, delete=False)

    def plan_delete(self, keys: Sequence[int]) -> list[Op]:
        if len(keys) == 0:
            return []
        return self._plan_write("delete", keys, delete=True)
