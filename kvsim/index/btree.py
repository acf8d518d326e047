"""A real B+tree over integer keys, shared by the Sherman and CHIME models.

Nodes hold real keys; fan-out comes from node and entry sizes (computed by the index
models from their source constants); height, leaf count and which leaves a key or a
range falls in are those of the actual tree built from the keys the index holds.

    find_leaf(k):   descend from the root, child = bisect_right(separators, k)
    insert(k):      leaf <- find_leaf(k); while not layout.add(leaf, k): split leaf at
                    layout.split_key(leaf, k) and retry in the half that covers k;
                    insert k in the leaf's sorted keys; if layout.after_insert(leaf)
                    names a split key, split there. A split inserts (separator, right
                    sibling) into the parent; an internal node that reaches
                    ``internal_capacity`` separators splits in half, the middle key
                    moving up (Sherman Tree.cpp internal_page_store: cnt == cardinality
                    -> split at cnt / 2); a root split grows the tree by one level.
    delete(k):      remove k from its leaf. No merge or rebalance: neither Sherman nor
                    CHIME merges nodes on delete.
    range_leaves(lo, hi): the leaves from find_leaf(lo) to find_leaf(hi) along the
                    sibling links.

The leaf *layout* decides when a leaf is full and where it splits:
:class:`SortedLeaf` is Sherman's sorted array (a leaf that reaches its cardinality after
an insert splits at cnt / 2); CHIME's hopscotch layout lives in ``kvsim.index.chime``.
Every node knows its parent (kept through splits), so a leaf's leaf-parent -- the unit
of Sherman's and CHIME's compute-side cache -- is one attribute away. ``leaf_of`` maps
every key to its leaf (kept through splits): written for speed, since the simulator
updates and deletes many present keys, and a dict probe is several times cheaper than
a descent (the descent is what the model charges; this only finds the answer faster).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator, Sequence
from typing import Any


class Node:
    __slots__ = ("id", "level", "keys", "children", "parent", "next", "slots", "ver")

    def __init__(self, nid: int, level: int) -> None:
        self.id = nid
        self.level = level  # 0 = leaf
        self.keys: list[int] = []  # leaf: its keys; internal: separators
        self.children: list[Node] = []  # internal only
        self.parent: Node | None = None
        self.next: Node | None = None  # leaf sibling (right)
        self.slots: Any = None  # layout payload (CHIME's hopscotch slots)
        self.ver = 0  # times it split: its key range is unchanged while this is

    def __repr__(self) -> str:
        kind = "leaf" if self.level == 0 else f"L{self.level}"
        return f"<{kind} #{self.id} {len(self.keys)} keys>"


class SortedLeaf:
    """Sherman's leaf: a sorted array that splits in half when it reaches ``capacity``."""

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"leaf capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self.max_fill = capacity - 1  # most keys a leaf holds at rest

    def init(self, leaf: Node) -> None:
        pass

    def add(self, leaf: Node, key: int) -> bool:
        return True

    def split_key(self, leaf: Node, key: int) -> int:  # only when add() fails
        return leaf.keys[len(leaf.keys) // 2]

    def after_insert(self, leaf: Node) -> int | None:
        keys = leaf.keys
        return keys[len(keys) // 2] if len(keys) >= self.capacity else None

    def on_split(self, left: Node, right: Node, split_key: int) -> None:
        pass

    def remove(self, leaf: Node, key: int) -> None:
        pass


class BPlusTree:
    def __init__(self, internal_capacity: int, layout: Any) -> None:
        if internal_capacity < 2:
            raise ValueError(f"internal capacity must be >= 2, got {internal_capacity}")
        self.internal_capacity = internal_capacity  # separators that trigger a split
        self.layout = layout
        self._ids = 0
        self.split_log: list[tuple[Node, Node]] = []  # (left, new right) split by the last insert
        self.split_into: list[Node | None] = []  # the node each split's separator went into (None: a new root)
        self.reset()

    # --- construction ------------------------------------------------------------------
    def _node(self, level: int) -> Node:
        n = Node(self._ids, level)
        self._ids += 1
        if level == 0:
            self.layout.init(n)
            self.n_leaves += 1
        else:
            self.n_internal += 1
        return n

    def reset(self) -> None:
        self.leaf_of: dict[int, Node] = {}
        self.n_leaves = 0
        self.n_internal = 0
        self.n_keys = 0
        self.root = self._node(0)
        self.height = 1

    def bulk_load(self, keys: Sequence[int], leaf_fill: int | None = None, internal_fill: int | None = None) -> None:
        """Build the tree bottom-up from sorted unique ``keys``: ``leaf_fill`` keys per leaf
        (fewer if the layout refuses one), ``internal_fill`` children per internal node."""
        lf = leaf_fill or self.layout.max_fill
        nf = internal_fill or self.internal_capacity  # children = separators + 1 <= capacity
        if lf < 1 or nf < 2:
            raise ValueError("bulk_load: leaf_fill >= 1 and internal_fill >= 2 are needed")
        self.reset()
        if len(keys) == 0:
            return
        self.n_leaves = 0
        level: list[Node] = []
        firsts: list[int] = []
        leaf = self._node(0)
        for k in keys:
            if len(leaf.keys) >= lf or not self.layout.add(leaf, k):
                level.append(leaf)
                firsts.append(leaf.keys[0])
                nxt = self._node(0)
                leaf.next = nxt
                leaf = nxt
                if not self.layout.add(leaf, k):
                    raise RuntimeError("bulk_load: an empty leaf refused a key")
            leaf.keys.append(k)
            self.leaf_of[k] = leaf
        level.append(leaf)
        firsts.append(leaf.keys[0])
        self.n_keys = len(keys)
        height = 1
        while len(level) > 1:
            up: list[Node] = []
            up_firsts: list[int] = []
            for s in range(0, len(level), nf):
                node = self._node(height)
                kids = level[s : s + nf]
                node.children = kids
                node.keys = firsts[s + 1 : s + len(kids)]
                for c in kids:
                    c.parent = node
                up.append(node)
                up_firsts.append(firsts[s])
            level, firsts = up, up_firsts
            height += 1
        self.root = level[0]
        self.root.parent = None
        self.height = height

    # --- search ------------------------------------------------------------------------
    def find_leaf(self, key: int) -> Node:
        node = self.root
        while node.level:
            node = node.children[bisect_right(node.keys, key)]
        return node

    def find_leaf_range(self, key: int) -> tuple[Node, float, float]:
        """The leaf for ``key`` and the key range ``[lo, hi)`` it covers (its fences, from
        the separators passed on the way down): later keys in that range need no descent."""
        node = self.root
        lo: float = -math.inf
        hi: float = math.inf
        while node.level:
            seps = node.keys
            i = bisect_right(seps, key)
            if i:
                lo = seps[i - 1]
            if i < len(seps):
                hi = seps[i]
            node = node.children[i]
        return node, lo, hi

    def path(self, key: int) -> list[Node]:
        """Root-to-leaf nodes visited for ``key``."""
        node = self.root
        out = [node]
        while node.level:
            node = node.children[bisect_right(node.keys, key)]
            out.append(node)
        return out

    def contains(self, key: int) -> bool:
        return key in self.leaf_of

    def range_leaves(self, lo: int, hi: int) -> list[Node]:
        """Leaves whose key ranges overlap [lo, hi], left to right."""
        first = self.find_leaf(lo)
        last = self.find_leaf(hi) if hi != lo else first
        out = [first]
        node = first
        while node is not last:
            node = node.next  # type: ignore[assignment]
            if node is None:  # pragma: no cover - the sibling chain is complete
                raise RuntimeError("range_leaves: broken sibling chain")
            out.append(node)
        return out

    def leaves(self) -> Iterator[Node]:
        node = self.root
        while node.level:
            node = node.children[0]
        cur: Node | None = node
        while cur is not None:
            yield cur
            cur = cur.next

    # --- updates -----------------------------------------------------------------------
    def insert(self, key: int, leaf: Node | None = None) -> bool:
        """Insert ``key``; False if it was present. ``split_log`` lists the splits.
        ``leaf``: the leaf that covers ``key``, when the caller knows it (saves a descent)."""
        self.split_log = []
        self.split_into = []
        if key in self.leaf_of:
            return False
        if leaf is None:
            leaf = self.find_leaf(key)
        layout = self.layout
        guard = 0
        while not layout.add(leaf, key):
            guard += 1
            if guard > 64:  # pragma: no cover - a layout that never accepts
                raise RuntimeError("insert: the leaf layout refused the key after 64 splits")
            sk = layout.split_key(leaf, key)
            right = self._split_leaf(leaf, sk)
            if key >= sk:
                leaf = right
        insort(leaf.keys, key)
        self.leaf_of[key] = leaf
        self.n_keys += 1
        sk2 = layout.after_insert(leaf)
        if sk2 is not None:
            self._split_leaf(leaf, sk2)
        return True

    def delete(self, key: int) -> bool:
        leaf = self.leaf_of.pop(key, None)
        if leaf is None:
            return False
        keys = leaf.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            del keys[i]
            self.layout.remove(leaf, key)
            self.n_keys -= 1
            return True
        return False

    def _split_leaf(self, leaf: Node, sk: int) -> Node:
        leaf.ver += 1
        right = self._node(0)
        i = bisect_left(leaf.keys, sk)
        right.keys = leaf.keys[i:]
        leaf.keys = leaf.keys[:i]
        leaf_of = self.leaf_of
        for k in right.keys:
            leaf_of[k] = right
        right.next = leaf.next
        leaf.next = right
        self.layout.on_split(leaf, right, sk)
        self.split_log.append((leaf, right))
        self._insert_up(leaf, sk, right)
        return right

    def _insert_up(self, left: Node, sep: int, right: Node) -> None:
        parent = left.parent
        self.split_into.append(parent)
        if parent is None:
            root = self._node(left.level + 1)
            root.keys = [sep]
            root.children = [left, right]
            left.parent = right.parent = root
            self.root = root
            self.height += 1
            return
        idx = parent.children.index(left)
        parent.keys.insert(idx, sep)
        parent.children.insert(idx + 1, right)
        right.parent = parent
        if len(parent.keys) >= self.internal_capacity:
            self._split_internal(parent)

    def _split_internal(self, node: Node) -> None:
        m = len(node.keys) // 2
        up = node.keys[m]
        right = self._node(node.level)
        right.keys = node.keys[m + 1 :]
        right.children = node.children[m + 1 :]
        node.keys = node.keys[:m]
        node.children = node.children[: m + 1]
        for c in right.children:
            c.parent = right
        self.split_log.append((node, right))
        self._insert_up(node, up, right)

    # --- checks ------------------------------------------------------------------------
    def check(self) -> None:
        """Raise AssertionError if an invariant is broken (tests)."""
        count = 0
        prev: int | None = None
        for leaf in self.leaves():
            assert leaf.keys == sorted(set(leaf.keys)), "leaf keys not sorted/unique"
            for k in leaf.keys:
                assert prev is None or k > prev, "keys not increasing along the leaves"
                prev = k
            count += len(leaf.keys)
        assert count == self.n_keys == len(self.leaf_of), f"key count {count} != {self.n_keys}"
        for leaf in self.leaves():
            for k in leaf.keys:
                assert self.leaf_of[k] is leaf, "leaf_of out of date"

        def walk(node: Node, lo: float, hi: float, depth: int) -> None:
            if node.level == 0:
                assert depth == self.height, "leaves at different depths"
                for k in node.keys:
                    assert lo <= k < hi, "key outside its separators"
                return
            assert len(node.children) == len(node.keys) + 1
            bounds = [lo, *node.keys, hi]
            for j, c in enumerate(node.children):
                assert c.parent is node, "broken parent pointer"
                assert c.level == node.level - 1
                walk(c, bounds[j], bounds[j + 1], depth + 1)

        walk(self.root, -math.inf, math.inf, 1)
