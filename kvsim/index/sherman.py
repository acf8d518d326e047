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
                    ``client.doorbell_batch``. Under hashed order the keys are in unrelated
                    leaves: the same multi-READ, one leaf per key.
    insert(keys)    executed when it runs (remote_tree): per leaf touched, leaves in
                    parallel (Tree.cpp leaf_page_store): take the leaf's lock (CAS on the
                    on-chip lock word, or a local hand-over), READ the page, WRITE the
                    changed entries (42 B each) with the unlock in one batch: 3 round trips.
                    A split first WRITEs the new sibling page (one more round trip) and
                    rewrites the whole page; each parent that takes a separator costs 3
                    more (lock, read, write + unlock)
    delete(keys)    as insert, clearing entries in place (leaf_page_del; no merge)
    update(keys)    an insert of present keys (new address)

Locks (kvsim/index/locks.py): ``lock_wait: local`` is Sherman's hierarchical on-chip lock
(a local ticket lock per word, hand-over of up to ``max_handover`` = 8 in a row, no CAS
retries between the threads of one compute node); ``lock_slots`` = 32,768 words (256 KB of
NIC on-chip memory / 8 B, ``kNumOfLock``), a node's word is ``hash(node) % slots``;
a failed CAS is retried at once (``try_lock_addr``: ``goto retry``, no backoff).

Cache: ``cache_bytes`` of 1 KB leaf-parents (Sherman's default is 1000 MB, which holds
every leaf-parent of this workload); replacement ``sample2`` (Sherman's: sample two,
evict the less used) or ``lru``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from kvsim.index.base import KEY_BYTES, VALUE_BYTES, Lookup, Op
from kvsim.index.btree import BPlusTree, SortedLeaf
from kvsim.index.locks import LOCK_WAITS
from kvsim.index.rdma import READ, WRITE, RdmaClient, RoundBuilder
from kvsim.index.remote_tree import RemoteTreeIndex, _Applied, _Target
from kvsim.ranges import Bytes, NonNegInt, OneOf, PosInt, Seconds, Seed


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
        client: RdmaClient,
        node_bytes: PosInt = 1024,
        key_bytes: PosInt = KEY_BYTES,
        value_bytes: PosInt = VALUE_BYTES,
        cache_bytes: Bytes = 1000 * 2**20,
        cache_policy: Annotated[str, OneOf("lru", "sample2")] = "sample2",
        range_parallel: PosInt = 32,
        lookup: Lookup = "prefix",
        lock_wait: Annotated[str, OneOf(*LOCK_WAITS)] = "local",
        lock_slots: NonNegInt = 32768,
        max_handover: PosInt = 8,
        cas_backoff_s: Seconds = 0.0,
        seed: Seed = 0,
        rng: Any = None,
    ) -> None:
        super().__init__(
            client,
            cache_bytes=cache_bytes,
            cache_policy=cache_policy,
            lookup=lookup,
            lock_wait=lock_wait,
            lock_slots=lock_slots,
            max_handover=max_handover,
            cas_backoff_s=cas_backoff_s,
            seed=seed,
            rng=rng,
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
            b.add(READ, m, read_bytes=m * nb)

    def plan_get(self, key: int) -> Op:
        b = RoundBuilder(self.client)
        leaf = self.tree.find_leaf(self.keymap.key(key))
        probes = self._locate(b, [leaf])
        b.add(READ, 1, read_bytes=self.leaf_bytes)
        return b.op("get", 1, probes * self.local_lookup_s)

    def plan_range(self, keys: Sequence[int]) -> Op:
        b = RoundBuilder(self.client)
        leaves = self._leaves_of(self.keymap.keys(keys), as_range=True)
        probes = self._locate(b, leaves)
        self._read_leaves(b, len(leaves))
        return b.op("range", len(keys), probes * self.local_lookup_s)

    # --- writes (executed by RemoteTreeIndex._run_write) -------------------------------
    def _read_cost(self, t: _Target, delete: bool) -> tuple[int, int]:
        return 1, self.leaf_bytes  # lock_and_read_page: the whole page

    def _leaf_write(self, a: _Applied, delete: bool) -> tuple[list[tuple[int, int, int]], int, int]:
        if a.splits:  # write_sync(sibling), then the whole page + unlock
            return [(WRITE, a.splits, a.splits * self.leaf_bytes)], 1, self.leaf_bytes
        return [], a.keys, a.keys * self.entry_bytes  # the changed entries
