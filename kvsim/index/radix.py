"""A node-local radix tree over block chains, as SGLang's RadixAttention/HiCache and
IMPRESS keep KV metadata: in-process, no network.

The tree is a compressed trie of block chains: a node holds a run of block ids (an
edge label), children are keyed by their first id. Ids stand for chained prefixes, so
each id has exactly one parent; the index learns it from the lookups it serves (a
real engine has the token sequence at hand when it inserts).

    lookup(blocks):  node <- root; i <- 0
                     repeat: child <- node.children[blocks[i]]        (cost per_node_s)
                             match child's ids against blocks[i:] while
                             present                                  (per_block_s each)
                             stop at a mismatch, a removed block or the request's end
    insert(keys):    for each new key after its parent p: extend p's node when p ends
                     it and it has no children; otherwise split p's node after p
                     (per_node_s) and add a child node
    delete(keys):    mark removed; trim removed tails of childless nodes, drop nodes
                     that become empty (per_node_s per key)
    update(keys):    a new address in place (per_block_s per key)

Time: one critical section per call on a single lock (``lock_s`` + the walk), FCFS
with every other request of the node. The lookup rule is the shared one
(kvsim.index.base): with ``lookup: prefix`` the runs after the first absent block are not
asked (no op rows); with ``lookup: all`` the walk goes on through removed blocks the tree
still holds, and the blocks past the point where the tree's structure ends cost nothing
more (the walk has already shown they are not there). The in-process costs are inferred
constants (no measured tail).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import simpy

from kvsim.index.base import IndexModel, Lookup, Op
from kvsim.ranges import PosInt, Seconds
from kvsim.servers import FCFSServer


class _RNode:
    __slots__ = ("ids", "children", "parent")

    def __init__(self, ids: list[int], parent: _RNode | None) -> None:
        self.ids = ids
        self.children: dict[int, _RNode] = {}
        self.parent = parent


class RadixTreeIndex(IndexModel):
    name = "radix"

    def __init__(
        self, per_node_s: Seconds, per_block_s: Seconds, lock_s: Seconds = 0.0, threads: PosInt = 1,
        lookup: Lookup = "prefix",
    ) -> None:
        super().__init__(lookup=lookup)
        self.per_node_s = per_node_s
        self.per_block_s = per_block_s
        self.lock_s = lock_s
        self.root = _RNode([], None)
        self.node_of: dict[int, _RNode] = {}  # every id placed in the tree
        self.pos: dict[int, int] = {}  # its index in its node's ids
        self.alive: set[int] = set()
        self.parent_of: dict[int, int | None] = {}
        self.server = FCFSServer("radix_lock", threads)
        self.n_nodes = 0
        self.orphans = 0
        self._costs: list[float] | None = None  # the lookup in progress: cost per position
        self._at = 0

    def contains(self, block: int) -> bool:
        return block in self.alive

    def servers(self) -> dict[str, Any]:
        return {"radix_lock": self.server}

    def __contains__(self, block: int) -> bool:
        return block in self.alive

    # --- lookup --------------------------------------------------------------------------
    def _learn(self, blocks: Sequence[int]) -> None:
        po = self.parent_of
        prev: int | None = None
        for b in blocks:
            if b not in po:
                po[b] = prev
            prev = b

    def _walk(self, blocks: Sequence[int]) -> tuple[int, list[float]]:
        """Blocks matched, and the CPU cost charged at each position (len n + 1)."""
        n = len(blocks)
        cost = [0.0] * (n + 1)
        alive = self.alive
        every = self.lookup == "all"
        node = self.root
        i = 0
        while i < n:
            cost[i] += self.per_node_s
            child = node.children.get(blocks[i])
            if child is None:
                break
            ids = child.ids
            j = 0
            m = len(ids)
            while j < m and i < n and ids[j] == blocks[i] and (every or blocks[i] in alive):
                cost[i] += self.per_block_s
                i += 1
                j += 1
            if j < m:
                if i < n:
                    cost[i] += self.per_block_s  # the compare that failed
                break
            node = child
        return i, cost

    def _lookup_begin(self, keys: Sequence[int]) -> None:
        self._learn(keys)
        self._costs = self._walk(keys)[1]
        self._at = 0

    def _lookup_end(self) -> None:
        self._costs = None

    def _cost(self, keys: Sequence[int]) -> float:
        """CPU of the next ``len(keys)`` positions of the walk in progress (or a walk of
        ``keys`` alone, outside a lookup)."""
        n = len(keys)
        if self._costs is None:
            return sum(self._walk(keys)[1])
        at = self._at
        self._at = at + n
        return sum(self._costs[at : at + n])

    def plan_get(self, key: int) -> Op:
        return Op("get", 1, 0, 0, 0, self._cost([key]))

    def plan_range(self, keys: Sequence[int]) -> Op:
        return Op("range", len(keys), 0, 0, 0, self._cost(keys))

    # --- updates -------------------------------------------------------------------------
    def _new_node(self, ids: list[int], parent: _RNode) -> _RNode:
        node = _RNode(ids, parent)
        parent.children[ids[0]] = node
        for j, b in enumerate(ids):
            self.node_of[b] = node
            self.pos[b] = j
        self.n_nodes += 1
        return node

    def _split_after(self, node: _RNode, j: int) -> None:
        """Split ``node`` so that ids[j] ends it; the tail becomes its only child."""
        tail_ids = node.ids[j + 1 :]
        node.ids = node.ids[: j + 1]
        tail = _RNode(tail_ids, node)
        tail.children = node.children
        for c in tail.children.values():
            c.parent = tail
        node.children = {tail_ids[0]: tail}
        for t, b in enumerate(tail_ids):
            self.node_of[b] = tail
            self.pos[b] = t
        self.n_nodes += 1

    def plan_insert(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        cost = 0.0
        node_of, pos, alive = self.node_of, self.pos, self.alive
        po = self.parent_of
        parent = po.get(keys[0])
        for k in keys:
            parent = po.get(k, parent)  # the chain parent, learned at lookup
            cost += self.per_block_s
            if k in node_of:
                alive.add(k)
                parent = k
                continue
            if parent is None:
                host = self.root
            else:
                pn = node_of.get(parent)
                if pn is None:  # the parent was never placed: an orphan chain under the root
                    self.orphans += 1
                    host = self.root
                else:
                    j = pos[parent]
                    if j == len(pn.ids) - 1 and not pn.children:
                        pn.ids.append(k)  # extend the edge: path compression
                        node_of[k] = pn
                        pos[k] = j + 1
                        alive.add(k)
                        parent = k
                        continue
                    if j < len(pn.ids) - 1:
                        self._split_after(pn, j)
                        cost += self.per_node_s
                    host = pn
            cost += self.per_node_s
            self._new_node([k], host)
            alive.add(k)
            parent = k
        return [Op("insert", n, 0, 0, 0, cost)]

    def plan_update(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        return [Op("insert", n, 0, 0, 0, n * self.per_block_s)] if n else []

    def plan_delete(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        alive, node_of, pos = self.alive, self.node_of, self.pos
        for k in keys:
            alive.discard(k)
            node = node_of.get(k)
            # trim removed tails of childless nodes, upwards
            while node is not None and node is not self.root and not node.children:
                ids = node.ids
                while ids and ids[-1] not in alive:
                    b = ids.pop()
                    del node_of[b]
                    del pos[b]
                if ids:
                    break
                parent = node.parent
                assert parent is not None
                for key, c in list(parent.children.items()):
                    if c is node:
                        del parent.children[key]
                        break
                self.n_nodes -= 1
                node = parent
        return [Op("delete", n, 0, 0, 0, n * self.per_node_s)]

    # --- timing --------------------------------------------------------------------------
    def execute(self, env: simpy.Environment, ops: list[Op], host: int = 0) -> Generator[simpy.Event, Any, None]:
        # The whole call is one critical section on the tree lock: one FCFS visit.
        if not ops:
            return
        now = env.now
        total = self.lock_s + sum(op.server_s for op in ops)
        done = self.server.serve(now, total)
        yield env.timeout(done - now)
        rec = self.recorder
        if rec is not None:
            t = done - total
            start = now
            for j, op in enumerate(ops):
                t += op.server_s + (self.lock_s if j == 0 else 0.0)
                rec.add(op, start, t - start)
                start = t

    def unloaded_s(self, op: Op) -> float:
        return self.lock_s + op.server_s

    def stats(self) -> dict[str, float]:
        return {"keys": len(self.alive), "nodes": self.n_nodes, "orphan_chains": self.orphans}
