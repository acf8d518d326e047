"""What Sherman and CHIME share: a B+tree in remote memory read with one-sided RDMA,
and a compute-side cache of leaf-parent nodes.

Locating leaves (``_locate``), as both systems do it:

    for each distinct leaf-parent P of the leaves wanted:
        cache hit on P  -> the leaf's address is known locally
        miss            -> read every node on the path root .. P from remote memory
    missed paths are read level by level, one batch per level (nodes shared by several
    paths are read once); the leaf-parents read are added to the cache

So a get whose leaf-parent is cached costs only the leaf (or neighborhood) READ, and
a miss costs one READ per level (``height`` round trips in all). The root *pointer* is
cached, the root node is not (Sherman: ``get_root_ptr`` then ``page_search`` per level).
Sherman's own range query assumes every leaf-parent is cached (it returns nothing
otherwise, "FIXME" in Tree.cpp); here a miss is paid with a traversal instead.

One client (the simulated serving node) does every write, so its cache never goes
stale: it updates its own copy of a leaf-parent it changes, and caches the new sibling
of a cached leaf-parent it splits. Multi-client staleness (fence-key checks, turning
right, restarts) is not modelled.

Writes to many keys (a request's new blocks, a batch of demotions) are grouped by leaf:
one lock, one read and one write-back per leaf, leaves in parallel. This is what
Sherman's hierarchical on-chip lock with hand-over and write combining, and CHIME's
local lock table with write combining, achieve for keys of one compute node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvsim.index.base import Op
from kvsim.index.btree import BPlusTree, Node
from kvsim.index.rdma import ATOMIC, READ, WRITE, RdmaIndex, RoundBuilder

LOCK_BYTES = 8  # a lock word (CAS) or an unlock WRITE


class RemoteTreeIndex(RdmaIndex):
    internal_bytes: int
    leaf_bytes: int
    tree: BPlusTree

    def __init__(self, *, doorbell_batch: bool, **client: Any) -> None:
        """``client``: the keyword arguments of :meth:`RdmaIndex._connect` (the concrete
        indexes spell them out, since their signatures are what configs are checked against)."""
        super().__init__()
        self._connect(**client)
        self.doorbell_batch = doorbell_batch

    # --- helpers -------------------------------------------------------------------------
    def _doorbells(self, messages: int) -> int:
        return 1 if self.doorbell_batch else messages

    def bulk_load(self, ids: Sequence[int]) -> None:
        """Start the index holding ``ids`` (a bottom-up build at the layout's fill)."""
        self.tree.bulk_load(sorted(set(self.keymap.keys(ids))))

    def contains(self, block_id: int) -> bool:
        return self.tree.contains(self.keymap.key(block_id))

    def _leaves_of(self, keys: list[int], as_range: bool) -> list[Node]:
        """Distinct leaves holding ``keys`` (a key range under remapped order)."""
        tree = self.tree
        if as_range and not self.keymap.hashed and len(keys) > 1:
            return tree.range_leaves(min(keys), max(keys))
        seen: dict[int, Node] = {}
        for k in keys:
            leaf = tree.find_leaf(k)
            if leaf.id not in seen:
                seen[leaf.id] = leaf
        return list(seen.values())

    def _group(self, keys: list[int]) -> tuple[list[Node], list[bool]]:
        """The distinct leaves holding ``keys`` and whether each key is present: one
        descent per key (written for speed: demotions update many present keys)."""
        find = self.tree.find_leaf
        leaf_of = self.tree.leaf_of
        seen: dict[int, Node] = {}
        present = []
        for k in keys:
            leaf = leaf_of.get(k)
            present.append(leaf is not None)
            if leaf is None:
                leaf = find(k)
            if leaf.id not in seen:
                seen[leaf.id] = leaf
        return list(seen.values()), present

    def _locate(self, b: RoundBuilder, leaves: list[Node]) -> int:
        """Add the traversal rounds needed to know ``leaves``' addresses; return the
        number of cache probes (for client CPU)."""
        if self.tree.height == 1:
            return 0
        cache = self.cache
        missing: list[Node] = []
        probed: set[int] = set()
        for leaf in leaves:
            p = leaf.parent
            if p is None or p.id in probed:
                continue
            probed.add(p.id)
            if not cache.lookup(p.id):
                missing.append(p)
        if missing:
            per_level: dict[int, set[int]] = {}
            for p in missing:
                n: Node | None = p
                while n is not None:
                    ids = per_level.setdefault(n.level, set())
                    if n.id in ids:
                        break
                    ids.add(n.id)
                    n = n.parent
            for level in sorted(per_level, reverse=True):
                m = len(per_level[level])
                b.add(READ, m, read_bytes=m * self.internal_bytes, doorbells=self._doorbells(m))
            for p in missing:
                cache.add(p.id, self.internal_bytes)
        return len(probed)

    def _parent_updates(self, b: RoundBuilder, splits: list[int]) -> None:
        """Lock, read and write back the parents that received a separator: one group of
        three round trips per level (``splits[l]`` = nodes split at level l)."""
        for level in range(len(splits)):
            s = splits[level]
            if s == 0:
                continue
            up = splits[level + 1] if level + 1 < len(splits) else 0
            nb = self.internal_bytes
            b.add(ATOMIC, s, write_bytes=LOCK_BYTES * s, doorbells=self._doorbells(s))
            b.add(READ, s, read_bytes=s * nb, doorbells=self._doorbells(s))
            b.add(WRITE, 2 * s + up, write_bytes=(s + up) * nb + LOCK_BYTES * s, doorbells=self._doorbells(2 * s + up))

    def _apply_inserts(self, keys: list[int]) -> list[int]:
        """Insert ``keys`` into the tree; return the split count per level. A cached
        leaf-parent this client splits stays cached, and so does its new sibling (the
        client wrote both; it keeps its copies current)."""
        tree = self.tree
        cache = self.cache
        splits = [0] * (tree.height + 1)
        for k in keys:
            tree.insert(k)
            for left, right in tree.split_log:
                level = left.level
                while level >= len(splits):
                    splits.append(0)
                splits[level] += 1
                if level == 1 and left.id in cache:
                    cache.add(right.id, self.internal_bytes)
        while splits and splits[-1] == 0:
            splits.pop()
        return splits

    # --- the interface ---------------------------------------------------------------------
    def plan_update(self, ids: Sequence[int]) -> list[Op]:
        return self.plan_insert(ids)

    def stats(self) -> dict[str, float]:
        t = self.tree
        return {
            "keys": t.n_keys,
            "height": t.height,
            "leaves": t.n_leaves,
            "internal_nodes": t.n_internal,
            "keys_per_leaf": t.n_keys / t.n_leaves if t.n_leaves else 0.0,
            "cache_nodes": len(self.cache),
            "cache_hit_ratio": self.cache.hit_ratio,
        }
