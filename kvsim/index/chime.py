"""CHIME (SOSP'24): a B+tree in disaggregated memory whose leaves are hopscotch hash
tables, read by neighborhood.

Geometry, from dmemsys/CHIME ``include/Common.h`` (defaults: hopscotch leaves,
vacancy-aware lock, metadata replication, sibling-based validation on), with
``v = 1`` byte of versions, ``k`` key and ``w`` value bytes:

    leaf entry          v + 2 (hop bitmap) + k + w             (19 B with 8 B keys)
    scattered metadata  v + 1 + 8 per group of H entries      (10 B, sibling validation)
    leaf metadata       v + 2 + 8 + 2k
    leaf                (meta + H * entry) * groups, the node read with one version byte
                        per 63 B after the first cache line   (1,316 B with 8 B keys)
    internal node       (v + 2 + 24 + 2k) + 64 * (v + k + 8), same encoding (1,148 B)
    neighborhood read   H entries + the group metadata they span, same encoding
                        (about 165 B with 8 B keys; 360 B with 32 B keys + 8 B values)

Leaves (``HopscotchLayout``): ``span`` slots (64); key k's home is hash(k) % span and
it must sit within H (8) slots after its home. Insert finds the first empty slot after
the home and hops it backwards (moving an entry whose own neighborhood allows it) until
it is within H of the home; when no hop works the leaf splits. The split key is CHIME's
``hopscotch_get_split_key``: the median of the "critical" keys (those whose removal
would let k in) plus k; entries at or above it move to the new sibling *in the same
slots*. Internal nodes hold up to ``internal_span`` (64) separators.

Operations:

    get(k)          READ the key's neighborhood (H entries): one round trip when the
                    leaf-parent is cached (two READs in one batch when it wraps the
                    leaf's end). With the hotspot buffer, a key read before is looked
                    for at its remembered (leaf, slot): one entry READ; if it moved, the
                    neighborhood READ follows (one more round trip).
    range(k1..kn)   READ every leaf the keys span, whole (entries are unsorted), all in
                    one doorbell batch; sort the entries on the client. Under hashed
                    order: the neighborhood of every key, in one batch.
    insert(keys)    executed when it runs (remote_tree), per leaf: CAS the lock word
                    embedded in the leaf (vacancy-aware: the CAS returns the vacancy
                    bitmap), READ the needed entries (a neighborhood per key), WRITE the
                    entries (the new one and any hopped) with the unlock; a split READs
                    the rest of the leaf, WRITEs the new sibling, then the whole leaf +
                    unlock; parents as in Sherman.
    delete(keys)    lock, READ the neighborhood, WRITE the cleared entry + unlock.

Locks (kvsim/index/locks.py): ``lock_wait: spin``. CHIME's lock word sits in each node
(``lock_slots`` = 0: one per node) and is taken with a masked CAS (``lock_node``); a CAS
that fails is re-issued after the coroutine yields to the thread's others (no backoff
delay); CHIME's local lock table combines writes of the same key only, so writers of
different keys of one leaf (the rightmost leaf under remapped keys) retry remote CASes.

Cache: ``cache_bytes`` of leaf-parent nodes (CHIME: 100 MB in all, of which 30 MB is the
hotspot buffer, so 70 MB of nodes); ``hotspot_bytes`` of (key -> leaf, slot) entries.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Annotated, Any

from kvsim.index.base import KEY_BYTES, VALUE_BYTES, Lookup, Op
from kvsim.index.btree import BPlusTree, Node
from kvsim.index.keys import mix64
from kvsim.index.locks import LOCK_WAITS
from kvsim.index.rdma import READ, WRITE, RdmaClient, RoundBuilder
from kvsim.index.remote_tree import RemoteTreeIndex, _Applied, _Target
from kvsim.ranges import Bytes, NonNegInt, OneOf, PosInt, Seconds, Seed


def _with_versions(nbytes: int) -> int:
    """CHIME's transfer size: one version byte per 63 B after the first 64 B cache line
    (``ADD_CACHELINE_VERSION_SIZE`` in Common.h)."""
    if nbytes <= 64:
        return nbytes
    rest = nbytes - 64
    return 64 + rest + math.ceil(rest / 63)


class ChimeGeometry:
    def __init__(
        self,
        key_bytes: PosInt = KEY_BYTES,
        value_bytes: PosInt = VALUE_BYTES,
        leaf_span: PosInt = 64,
        internal_span: PosInt = 64,
        neighborhood: PosInt = 8,
        metadata_replication: bool = True,
    ) -> None:
        if neighborhood < 1 or leaf_span < neighborhood:
            raise ValueError("chime: need 1 <= neighborhood <= leaf_span")
        v = 1
        self.span = leaf_span
        self.H = neighborhood
        self.entry = v + 2 + key_bytes + value_bytes
        self.scatter_meta = v + 1 + 8 if metadata_replication else 0
        leaf_meta = v + 2 + 8 + 2 * key_bytes
        groups = math.ceil(leaf_span / neighborhood)
        overflow = groups * neighborhood - leaf_span
        if metadata_replication:
            decoded = (self.scatter_meta + self.entry * neighborhood) * groups - self.entry * overflow
            decoded = max(decoded, leaf_meta + self.entry * leaf_span)
        else:
            decoded = leaf_meta + self.entry * leaf_span
        self.leaf_meta = leaf_meta
        self.replication = metadata_replication
        self.leaf_bytes = _with_versions(decoded)
        internal_meta = v + 2 + 24 + 2 * key_bytes
        self.internal_bytes = _with_versions(internal_meta + (v + key_bytes + 8) * internal_span)
        self.internal_span = internal_span

    def neighborhood_read(self, home: int) -> tuple[int, int]:
        """``(messages, bytes)`` to read the H entries from slot ``home``."""
        H, span = self.H, self.span
        groups = (home + H - 1) // H - home // H + 1 if self.replication else 0
        raw = H * self.entry + groups * self.scatter_meta
        if not self.replication:
            raw += self.leaf_meta  # the header is read beside the entries
        msgs = 2 if home + H > span else 1
        return msgs, _with_versions(raw)

    def entry_read(self) -> int:
        return _with_versions(self.entry + self.scatter_meta)


class HopscotchLayout:
    """A leaf as a hopscotch table (CHIME's ``hopscotch_insert_locally`` and split).

    ``leaf.slots`` is ``(keys, homes)``: the key in each slot (or None) and that key's
    home slot, kept side by side so that a hop test is arithmetic, not a hash.
    """

    def __init__(self, span: int, neighborhood: int) -> None:
        self.span = span
        self.H = neighborhood
        self.max_fill = span
        self.moves = 0  # entries hopped so far (write cost)
        self._homes: dict[int, int] = {}  # memo: a dict probe is cheaper than mix64

    def home(self, key: int) -> int:
        # CHIME hashes keys with CityHash; splitmix64's finalizer stands in for it.
        h = self._homes.get(key)
        if h is None:
            h = self._homes[key] = mix64(key) % self.span
        return h

    def init(self, leaf: Node) -> None:
        leaf.slots = ([None] * self.span, [0] * self.span)

    def slot_of(self, leaf: Node, key: int) -> int | None:
        keys = leaf.slots[0]
        h = self.home(key)
        span = self.span
        for d in range(self.H):
            i = (h + d) % span
            if keys[i] == key:
                return i
        return None

    def _hop_source(self, keys: list[int | None], homes: list[int], j: int) -> int:
        """The slot (logical index) whose entry may move into empty slot ``j``, or -1."""
        span, H = self.span, self.H
        for off in range(H - 1, 0, -1):
            src = j - off
            p = src % span
            # the entry at src may move to j if j stays inside its own neighborhood
            if keys[p] is not None and (p - homes[p]) % span + off < H:
                return src
        return -1

    def add(self, leaf: Node, key: int) -> bool:
        keys, homes = leaf.slots
        span, H = self.span, self.H
        h = self.home(key)
        j = -1
        for d in range(span):
            if keys[(h + d) % span] is None:
                j = h + d
                break
        if j < 0:
            return False
        chain: list[tuple[int, int]] = []
        while j - h >= H:
            src = self._hop_source(keys, homes, j)
            if src < 0:
                return False
            chain.append((src, j))
            j = src
        for src, dst in chain:  # in chain order: each move empties the next target
            a, b = src % span, dst % span
            keys[b], homes[b] = keys[a], homes[a]
            keys[a] = None
        keys[j % span] = key
        homes[j % span] = h
        self.moves += len(chain)
        return True

    def split_key(self, leaf: Node, key: int) -> int:
        """CHIME's ``hopscotch_get_split_key``: median of the critical keys and ``key``."""
        keys, homes = leaf.slots
        span, H = self.span, self.H
        h = self.home(key)
        critical: list[int] = []
        for e in range(h, h + span):
            at = keys[e % span]
            if at is None:
                break
            j = e  # pretend slot e were empty: can the hops bring it within H of h?
            while j >= h + H:
                j = self._hop_source(keys, homes, j)
                if j < 0:
                    break
            if j >= 0:
                critical.append(at)
        if not critical:  # not expected; fall back to the median of all keys
            critical = list(leaf.keys)
        critical.append(key)
        critical.sort()
        return critical[len(critical) // 2]

    def after_insert(self, leaf: Node) -> int | None:
        return None

    def on_split(self, left: Node, right: Node, split_key: int) -> None:
        lk, lh = left.slots
        rk, rh = right.slots
        for i, k in enumerate(lk):
            if k is not None and k >= split_key:
                rk[i], rh[i] = k, lh[i]
                lk[i] = None

    def remove(self, leaf: Node, key: int) -> None:
        i = self.slot_of(leaf, key)
        if i is not None:
            leaf.slots[0][i] = None


class ChimeIndex(RemoteTreeIndex):
    name = "chime"

    def __init__(
        self,
        client: RdmaClient,
        key_bytes: PosInt = KEY_BYTES,
        value_bytes: PosInt = VALUE_BYTES,
        leaf_span: PosInt = 64,
        internal_span: PosInt = 64,
        neighborhood: PosInt = 8,
        metadata_replication: bool = True,
        cache_bytes: Bytes = 70 * 2**20,
        cache_policy: Annotated[str, OneOf("lru", "sample2")] = "lru",
        hotspot_bytes: Bytes = 30 * 2**20,
        hotspot_entry_bytes: PosInt = 40,
        sort_entry_s: Seconds = 0.0,
        lookup: Lookup = "prefix",
        lock_wait: Annotated[str, OneOf(*LOCK_WAITS)] = "spin",
        lock_slots: NonNegInt = 0,
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
        self.geo = ChimeGeometry(key_bytes, value_bytes, leaf_span, internal_span, neighborhood, metadata_replication)
        self.internal_bytes = self.geo.internal_bytes
        self.leaf_bytes = self.geo.leaf_bytes
        self.layout = HopscotchLayout(leaf_span, neighborhood)
        self._nbr = [self.geo.neighborhood_read(h) for h in range(leaf_span)]  # by home slot
        self.tree = BPlusTree(internal_span, self.layout)
        self.sort_entry_s = sort_entry_s
        self.hotspot_cap = int(hotspot_bytes // hotspot_entry_bytes) if hotspot_entry_bytes > 0 else 0
        self.hotspot: OrderedDict[int, tuple[Node, int]] = OrderedDict()
        self.hotspot_hits = 0
        self.hotspot_misses = 0

    # --- reads -------------------------------------------------------------------------
    def _remember(self, key: int, leaf: Node) -> None:
        if self.hotspot_cap <= 0:
            return
        slot = self.layout.slot_of(leaf, key)
        if slot is None:
            return
        hs = self.hotspot
        hs[key] = (leaf, slot)
        hs.move_to_end(key)
        if len(hs) > self.hotspot_cap:
            hs.popitem(last=False)

    def plan_get(self, key: int) -> Op:
        b = RoundBuilder(self.client)
        k = self.keymap.key(key)
        client = self.local_lookup_s
        if self.hotspot_cap > 0:
            hit = self.hotspot.get(k)
            if hit is not None:
                leaf, slot = hit
                b.add(READ, 1, read_bytes=self.geo.entry_read())
                if leaf.slots[0][slot] == k:  # the speculative read found the key in place
                    self.hotspot.move_to_end(k)
                    self.hotspot_hits += 1
                    return b.op("get", 1, client)
                del self.hotspot[k]
            self.hotspot_misses += 1
        leaf = self.tree.find_leaf(k)
        probes = self._locate(b, [leaf])
        msgs, nbytes = self._nbr[self.layout.home(k)]
        b.add(READ, msgs, read_bytes=nbytes)
        self._remember(k, leaf)
        return b.op("get", 1, client + probes * self.local_lookup_s)

    def plan_range(self, keys: Sequence[int]) -> Op:
        b = RoundBuilder(self.client)
        ks = self.keymap.keys(keys)
        if self.keymap.hashed or len(ks) == 1:
            leaves = self._leaves_of(ks, as_range=False)
            probes = self._locate(b, leaves)
            msgs = nbytes = 0
            home = self.layout.home
            nbr = self._nbr
            for k in ks:
                m, nb = nbr[home(k)]
                msgs += m
                nbytes += nb
            b.add(READ, msgs, read_bytes=nbytes)
            return b.op("range", len(keys), (1 + probes) * self.local_lookup_s)
        leaves = self._leaves_of(ks, as_range=True)
        probes = self._locate(b, leaves)
        n = len(leaves)
        b.add(READ, n, read_bytes=n * self.leaf_bytes)
        entries = sum(len(leaf.keys) for leaf in leaves)
        sort_s = self.sort_entry_s * entries * math.log2(max(entries, 2))
        return b.op("range", len(keys), probes * self.local_lookup_s + sort_s)

    # --- writes (executed by RemoteTreeIndex._run_write) -------------------------------
    def _read_cost(self, t: _Target, delete: bool) -> tuple[int, int]:
        # the vacancy-aware lock tells which entries to read: each key's neighborhood
        home = self.layout.home
        nbr = self._nbr
        m = nb = 0
        for k in t.keys:
            km, kb = nbr[home(k)]
            m += km
            nb += kb
        return m, nb

    def _leaf_write(self, a: _Applied, delete: bool) -> tuple[list[tuple[int, int, int]], int, int]:
        entry = self.geo.entry
        if a.splits:  # hopscotch_split_and_unlock: read the rest, write the sibling, then the leaf
            lb = self.leaf_bytes
            return [(READ, a.splits, a.splits * lb), (WRITE, a.splits, a.splits * lb)], 1, lb
        return [], a.keys, (a.keys + a.hopped) * entry  # segment_write_and_unlock

    def _on_delete(self, key: int) -> None:
        self.hotspot.pop(key, None)

    def stats(self) -> dict[str, float]:
        s = super().stats()
        n = self.hotspot_hits + self.hotspot_misses
        s["hotspot_hit_ratio"] = self.hotspot_hits / n if n else 0.0
        s["leaf_load_factor"] = s["keys_per_leaf"] / self.geo.span
        return s
