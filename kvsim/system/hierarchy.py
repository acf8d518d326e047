"""The tier hierarchy: where every block lives, and what moves when it is used or stored.

A hierarchy is a set of *tiers* (a GPU HBM of one instance, the DRAM of one host, the
remote pool, an SSD), each with its own eviction-policy instance, seen through *views*: a
view is the chain of tiers one prefill instance reaches, fastest first (level 0 is its GPU
tier). One chain is the classic case (one instance); with several instances the views form a
tree: every instance has its own GPU tier, the instances of a host share its DRAM tier, all
share the remote pool (:mod:`kvsim.system.node` builds the views). A tier's *sharers* are the
views that reach it; below a tier the chain is the same for all its sharers (its parent).

Where a block is, for a view: the fastest tier of the view holding it. By default caching is
exclusive: a move takes the block out of its source -- unless some sharer of the source would
lose it (a block loaded from a host's DRAM into one instance's GPU stays in the DRAM for the
host's other instances). An ``inclusive`` policy always keeps the lower copy. So with one view
a block lives in exactly one tier (exclusive) or its fastest copy is where it is (inclusive),
and with several views the GPU tiers are private caches over shared lower tiers.

    use(blocks of one request, view v):                                    (hits)
        observe(blocks); for k: t = where_v[k]; touch k in t
            if t is not v's top and promote_on_hit: u = fastest tier of v above t that accepts k
                if u exists: copy k to u; take it out of t unless inclusive or a sharer of t
                             does not share u
        place(promoted, u) for each u
    store(new blocks of one request, view v):                              (misses)
        observe(blocks); for k: d = first tier of v from admit_tier down that accepts k
            k already in d: touch;  no such tier: k is not kept
            else: k (fresh copy) goes to d; stale copies on v that no other view shares are
                  removed; a block stored below v's top counts as a move top -> d
    place(ks, t):  victims = policy[t].admit_many(ks that tier t accepts), in order
                   ks tier t declines and the victims go on to t's parent
                   (a victim with a copy that every sharer of t still reaches -- below it,
                   or, with one view, above it -- just loses this copy);
                   below the bottom they are dropped (with several views, another
                   instance's GPU tier may still hold a private copy: the cluster deletes a
                   dropped block from the index only when no tier holds it)

Cascades are batched per tier: each tier sees exactly the sequence of blocks it would see
if they were placed one by one (a tier's state depends only on what arrives from above),
but the hierarchy makes one call per tier instead of one per block and tier. When every
tier is plain LRU (or every tier plain FIFO) and the compiled build is there, the tiers
live in one table
(:mod:`kvsim.system.lrutable`: a linked list per tier through C arrays) that runs the same
cascades and promotions with the same results.
Moves are counted per (source tier, destination tier) so the caller can charge them to
links as whole transfers; dropped blocks are returned so the index can delete them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Container, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from functools import partial
from itertools import filterfalse
from typing import Any, cast

from kvsim.policy.base import EvictionPolicy
from kvsim.policy.fifo import FIFO
from kvsim.policy.lru import LRU

try:  # compiled only (python -m kvsim.accel build): every LRU tier in one table
    _lrutable: Any = importlib.import_module("kvsim.system.lrutable")
except ImportError:
    _lrutable = None


def _any_of(containers: Sequence[Container[int]]) -> Callable[[int], bool] | None:
    """``key -> key in any of containers``, unrolled for the usual few (written for speed:
    asked for every victim of a cascade; a generator in any() costs several times more)."""
    ms = list(containers)
    if not ms:
        return None
    if len(ms) == 1:
        return ms[0].__contains__
    if len(ms) == 2:
        a, b = ms
        return lambda k: k in a or k in b
    if len(ms) == 3:
        a, b, c = ms
        return lambda k: k in a or k in b or k in c
    if len(ms) == 4:
        a, b, c, d = ms
        return lambda k: k in a or k in b or k in c or k in d
    return lambda k: any(k in m for m in ms)


@dataclass(frozen=True)
class TierSpec:
    name: str  # the level's name (gpu, dram, ...): the same for every instance of a level
    device: str  # topology node holding the tier's bytes
    capacity_blocks: int
    access_latency_s: float = 0.0  # per transfer (e.g. an SSD read's latency at depth)

    @property
    def label(self) -> str:
        """A unique name of this tier (its level's name at its device)."""
        return self.name if self.name == self.device else f"{self.name}@{self.device}"


class TableTier(EvictionPolicy):
    """One LRU (or FIFO) tier kept in a hierarchy's :class:`~kvsim.system.lrutable.LRUTable`:
    the policy interface over it (the hierarchy's own cascades call the table directly)."""

    def __init__(self, table: Any, tier: int, capacity: int) -> None:
        super().__init__(capacity)
        self.name = "lru" if table.touches else "fifo"
        self._table = table
        self._t = tier
        self._view = table.view(tier)

    def __contains__(self, key: int) -> bool:
        return bool(self._table.contains(self._t, key))

    def __len__(self) -> int:
        return int(self._table.length(self._t))

    def __iter__(self) -> Iterator[int]:
        """From the next victim to the last."""
        return iter(self._table.order(self._t))

    def members(self) -> Container[int]:
        return cast(Container[int], self._view)

    def touch(self, key: int) -> None:
        self._table.touch(self._t, key)

    def admit(self, key: int) -> list[int]:
        return self.admit_many([key])

    def admit_many(self, keys: Iterable[int]) -> list[int]:
        return cast(list[int], self._table.admit_many(self._t, keys))

    def remove(self, key: int) -> None:
        self._table.remove(self._t, key)


class TierHierarchy:
    def __init__(
        self,
        tiers: list[TierSpec],
        policy_factory: Callable[[int], EvictionPolicy],
        promote_on_hit: bool = True,
        admit_tier: int = 0,
        inclusive: bool | None = None,
        views: Sequence[Sequence[int]] | None = None,
        table: bool | None = None,
    ) -> None:
        """``table``: keep the tiers in one :class:`kvsim.system.lrutable.LRUTable` when
        every tier is plain LRU, or every tier plain FIFO (None: when the compiled build is
        there; False: never; True: required), with the same orders and results as the
        policies' own dictionaries."""
        if not tiers:
            raise ValueError("at least one tier is needed")
        self.tiers = tiers
        n = self.n = len(tiers)
        self.views: list[tuple[int, ...]] = [tuple(v) for v in (views if views is not None else [range(n)])]
        self.levels = len(self.views[0])
        self._check_views()
        if not 0 <= admit_tier < self.levels:
            raise ValueError(f"admit_tier {admit_tier} is not a tier index")
        self.level = [0] * n
        self.parent = [-1] * n
        sharers: list[set[int]] = [set() for _ in range(n)]
        for v, path in enumerate(self.views):
            for lvl, t in enumerate(path):
                self.level[t] = lvl
                self.parent[t] = path[lvl + 1] if lvl + 1 < len(path) else -1
                sharers[t].add(v)
        self.sharers = [frozenset(s) for s in sharers]
        #: exclusive moves take a block out of s for u only if nobody who reaches s loses it
        self.movable = [[self.sharers[s] <= self.sharers[u] for u in range(n)] for s in range(n)]
        self.policies = [policy_factory(t.capacity_blocks) for t in tiers]
        chain = [self.policies[t] for t in self.views[0]]  # peers: the first view's chain
        for t, p in enumerate(self.policies):
            p.join(self.level[t], chain)
        top = chain[0]
        #: inclusive: promotion copies up; a view's location is then its fastest copy
        self.inclusive = top.inclusive if inclusive is None else bool(inclusive)
        self.promote_on_hit = promote_on_hit
        self._table: Any = None
        kinds = {type(p) for p in self.policies}
        fits = (kinds == {LRU} or kinds == {FIFO}) and not self.inclusive and n <= 32
        if table or (table is None and fits and _lrutable is not None):
            if _lrutable is None:
                raise ValueError("table=True needs the compiled build (python -m kvsim.accel build)")
            if not fits:
                raise ValueError("table=True needs plain LRU (or plain FIFO) in every tier, exclusive, at most 32 tiers")
            self._table = _lrutable.LRUTable([p.capacity for p in self.policies], self.parent, self.level, self.movable,
                                             touches=kinds == {LRU})
            self.policies = [TableTier(self._table, t, p.capacity) for t, p in enumerate(self.policies)]
            chain = [self.policies[t] for t in self.views[0]]
            for t, p in enumerate(self.policies):
                p.join(self.level[t], chain)
        self.admit_tier = admit_tier
        self.single = len(self.views) == 1
        self.members: list[Container[int]] = [p.members() for p in self.policies]
        self._filters = [p.filters for p in self.policies]
        self._touch = [p.fast_touch() for p in self.policies]
        self._remove = [p.fast_remove() for p in self.policies]
        self._caps = [p.capacity for p in self.policies]
        #: copies of a block can coexist (several views, or inclusive): cascades check them
        self._copies = self.inclusive or not self.single
        self._simple = not any(self._filters) and not self._copies
        self._nofilter = not any(self._filters) and not (self.inclusive and self.single)
        self._top = next((i for i, c in enumerate(self._caps) if c), -1)  # single view: fastest with room
        self._observe = top.observe if type(top).observe is not EvictionPolicy.observe else None
        # A victim of t keeps no copy if one of these holds it: faster tiers every sharer of
        # t reaches (one view only), then lower ones (an address update: demoted).
        self._held_above: list[Callable[[int], bool] | None] = []
        self._held_below: list[Callable[[int], bool] | None] = []
        self._below_views: list[list[Any] | None] = []
        for t in range(n):
            up = [self.members[u] for u in range(n) if u != t and self.single and self.level[u] < self.level[t]]
            down = []
            a = self.parent[t]
            while a >= 0:
                down.append(self.members[a])
                a = self.parent[a]
            self._held_above.append(_any_of(up))
            self._held_below.append(_any_of(down))
            # dict views of the tiers below, when every one keeps its blocks in a dict: one
            # C-level ``isdisjoint`` per batch of victims answers the usual "none is held
            # below" without a Python call per victim (written for speed)
            self._below_views.append(
                [m.keys() for m in down if isinstance(m, dict)] if down and all(isinstance(m, dict) for m in down) else None
            )
        self._path_members = [[(t, self.members[t]) for t in path] for path in self.views]
        self._view_top = [next((t for t in path if self._caps[t]), -1) for path in self.views]
        self._newest = -(2**63)  # the largest key ever stored
        # moves[src][dst] counted since the last drain; dst == n means dropped
        self.moves = [[0] * (n + 1) for _ in range(n)]
        self._total = [[0] * (n + 1) for _ in range(n)]  # drained moves
        self._zeros = [0] * (n + 1)
        self.dropped: list[int] = []
        self.demoted: list[int] = []  # blocks that moved down a tier (new address)

    def _check_views(self) -> None:
        n, levels = self.n, self.levels
        parent: dict[int, int] = {}
        for v, path in enumerate(self.views):
            if len(path) != levels:
                raise ValueError(f"view {v} has {len(path)} tiers, view 0 has {levels}")
            for lvl, t in enumerate(path):
                if not 0 <= t < n:
                    raise ValueError(f"view {v} names tier {t}, which does not exist")
                if self.tiers[t].name != self.tiers[self.views[0][lvl]].name:
                    raise ValueError(f"view {v}: level {lvl} is {self.tiers[t].name}, view 0 has "
                                     f"{self.tiers[self.views[0][lvl]].name}")
                below = path[lvl + 1] if lvl + 1 < levels else -1
                if parent.setdefault(t, below) != below:
                    raise ValueError(f"tier {self.tiers[t].label} has two different tiers below it")
        missing = set(range(n)) - {t for p in self.views for t in p}
        if missing:
            raise ValueError(f"tiers {sorted(missing)} are in no view")

    # --- the scheduler's queue (look-ahead policies) ------------------------------------------
    @property
    def queue_aware(self) -> bool:
        """Whether the policy uses the waiting queue (the serving node then calls the two
        methods below from its QueueHooks)."""
        return self.policies[self.views[0][0]].queue_aware

    def enqueue(self, keys: Sequence[int]) -> None:
        """A request needing ``keys`` entered an instance's waiting queue: a look-ahead policy
        keeps them (its tiers share one pin count, so the blocks stay wherever they are)."""
        self.policies[self.views[0][0]].enqueue(keys)

    def dequeue(self, keys: Sequence[int]) -> None:
        """The request needing ``keys`` started (its first chunk was scheduled)."""
        self.policies[self.views[0][0]].dequeue(keys)

    def bind(self, trace: Any) -> None:
        """Give every tier's policy the trace about to be replayed (static block facts;
        OPT's next uses). Call once, before the first request."""
        for p in self.policies:
            p.bind(trace)

    # --- where blocks are ------------------------------------------------------------------
    def locate(self, key: int, view: int = 0) -> int:
        """The fastest tier of ``view`` holding ``key``, or -1."""
        for t, m in self._path_members[view]:
            if key in m:
                return t
        return -1

    @property
    def where(self) -> dict[int, int]:
        """Every block reached by view 0 -> its fastest tier (built on demand: tests, checks)."""
        out: dict[int, int] = {}
        for t in reversed(self.views[0]):
            for k in self.policies[t]:
                out[k] = t
        return out

    def prefix(self, blocks: list[int], view: int) -> tuple[list[int], list[int], int]:
        """The longest prefix of ``blocks`` that ``view`` holds: ``(locs, counts, present)``,
        the fastest tier holding each block of it, how many of them each level of the view
        holds, and the blocks held in all (the prefix, and any after the first absent one)."""
        if self._table is not None:
            return self._table.prefix(blocks, self.views[view])
        pm = self._path_members[view]
        locs: list[int] = []
        append = locs.append
        for b in blocks:
            for t, m in pm:
                if b in m:
                    append(t)
                    break
            else:
                break
        p = len(locs)
        counts = [locs.count(t) for t, _ in pm] if p else [0] * len(pm)
        present = p
        newest = self._newest
        for b in blocks[p + 1 :]:
            if b > newest:  # never stored: in no tier (written for speed)
                continue
            for _, m in pm:
                if b in m:
                    present += 1
                    break
        return locs, counts, present

    def not_held_by(self, tiers: Sequence[int]) -> Callable[[list[int]], list[int]]:
        """A function giving the keys of a list that no tier of ``tiers`` holds, in order
        (written for speed, built once: the table's mask test per key; else one C-level
        ``keys() & keys`` per tier when the tiers keep their blocks in dicts)."""
        if self._table is not None:
            return cast(Callable[[list[int]], list[int]], partial(self._table.not_held, tiers=list(tiers)))
        members = [self.members[t] for t in tiers]
        views = [m.keys() for m in members if isinstance(m, dict)]
        if len(views) < len(members):
            held = _any_of(members)
            assert held is not None  # (some member is not a dict: there are members)
            return lambda keys: [k for k in keys if not held(k)]

        def not_held(keys: list[int]) -> list[int]:
            found: set[int] = set()
            for kv in views:
                found |= kv & keys
            return list(filterfalse(found.__contains__, keys)) if found else keys

        return not_held

    def local_runs_by(self, gpu: Sequence[int], dram: Sequence[int]) -> Callable[[Sequence[int]], list[tuple[int, int]]] | None:
        """Cache-aware routing's measure for every instance k at once, from the table: its
        GPU tier ``gpu[k]``'s leading run of a request's blocks, and that run continued
        through ``dram[k]`` (-1: none) too (see :class:`kvsim.system.router.CacheAware`);
        None without the table (the router scans the tiers' containers)."""
        if self._table is None:
            return None
        return cast(Callable[[Sequence[int]], list[tuple[int, int]]],
                    partial(self._table.local_runs, gpu=list(gpu), dram=list(dram)))

    @property
    def table(self) -> Any:
        """The :class:`~kvsim.system.lrutable.LRUTable` holding every tier, or None (each
        policy keeps its own blocks)."""
        return self._table

    def held_anywhere(self, key: int) -> bool:
        return any(key in m for m in self.members)

    # --- placement decisions ---------------------------------------------------------------
    def _up(self, key: int, t: int, path: tuple[int, ...]) -> int:
        """The fastest tier of ``path`` above ``t`` that takes ``key`` on promotion, or -1."""
        caps, filters, policies = self._caps, self._filters, self.policies
        for u in path[: self.level[t]]:
            if caps[u] and (not filters[u] or policies[u].accepts(key)):
                return u
        return -1

    def _entry(self, key: int, path: tuple[int, ...]) -> int:
        """The tier a freshly computed ``key`` is stored in (``n``: none keeps it)."""
        caps, filters, policies = self._caps, self._filters, self.policies
        for u in path[self.admit_tier :]:
            if caps[u] and (not filters[u] or policies[u].accepts(key)):
                return u
        return self.n

    # --- the two entry points --------------------------------------------------------------
    def use(self, keys: Sequence[int], view: int = 0, locs: Sequence[int] | None = None) -> None:
        """The resident blocks ``keys`` (in request order) are reused by ``view``;
        ``locs`` (optional): their tiers, as :meth:`locate` gives them."""
        if self._observe is not None:
            self._observe(keys, False)
        if locs is None:
            locs = [self.locate(k, view) for k in keys]
        if self._table is not None and self.promote_on_hit:
            self._table.use(keys if type(keys) is list else list(keys), locs if type(locs) is list else list(locs),
                            self._view_top[view], self.moves, self.demoted, self.dropped)
            return
        policies, moves = self.policies, self.moves
        if self._simple and self.promote_on_hit and self._top >= 0:
            # Written for speed (the common case): every promotion goes to the first tier
            # with room, so _up() is known without asking; one cascade for the request.
            top = self._top
            touch, remove = self._touch, self._remove
            up: list[int] = []
            for k, t in zip(keys, locs, strict=True):
                touch[t](k)
                if t > top:
                    remove[t](k)
                    moves[t][top] += 1
                    up.append(k)
            if up:
                self._place_simple(up, top, -1)
            return
        path = self.views[view]
        level, movable, inclusive = self.level, self.movable, self.inclusive
        if self._nofilter and self.promote_on_hit:
            # Written for speed (several views, no filters): every promotion goes to the
            # view's fastest tier with room.
            top = self._view_top[view]
            touch, remove = self._touch, self._remove
            up = []
            if top >= 0:
                top_level = level[top]
                for k, t in zip(keys, locs, strict=True):
                    touch[t](k)
                    if level[t] > top_level:
                        if not inclusive and movable[t][top]:
                            remove[t](k)
                        moves[t][top] += 1
                        up.append(k)
            else:
                for k, t in zip(keys, locs, strict=True):
                    touch[t](k)
            if up:
                self._place_copies(up, top, -1)
            return
        promote: dict[int, list[int]] = {}
        for k, t in zip(keys, locs, strict=True):
            pol = policies[t]
            pol.touch(k)
            if level[t] == 0 or not self.promote_on_hit:
                continue
            u = self._up(k, t, path)
            if u < 0:
                continue
            if not inclusive and movable[t][u]:
                pol.remove(k)
            moves[t][u] += 1
            promote.setdefault(u, []).append(k)
        for u in sorted(promote, key=level.__getitem__):
            self._place(promote[u], u, -1)

    def store(self, keys: Sequence[int], view: int = 0) -> None:
        """New blocks enter the first tier of ``view`` from ``admit_tier`` down that accepts
        them. Blocks already resident (recomputed because they were not part of the reused
        prefix) are replaced by the fresh copy."""
        if self._observe is not None:
            self._observe(keys, True)
        policies = self.policies
        path = self.views[view]
        # A key above every key ever stored has never been anywhere: no tier to ask (written
        # for speed: traces number new blocks in first-seen order, so most stored keys are).
        newest = self._newest
        all_new = False
        if keys:
            top = max(keys)
            if top > newest:
                self._newest = top
                all_new = min(keys) > newest  # the usual case: nothing to look for
        if all_new and not any(self._filters):  # one entry tier, as in both paths below
            self._store_fresh(list(keys), self._entry(keys[0], path), path)
            return
        if self._simple:
            at = path[self.admit_tier]
            members = self._path_members[view]
            fresh = []
            for k in keys:
                if k > newest:
                    fresh.append(k)
                    continue
                for t, m in members:
                    if k in m:
                        if t == at:
                            policies[t].touch(k)
                        else:
                            policies[t].remove(k)
                            fresh.append(k)
                        break
                else:
                    fresh.append(k)
            if fresh:
                self._store_fresh(fresh, self._entry(fresh[0], path), path)
            return
        level, movable, sharers = self.level, self.movable, self.sharers
        mine = frozenset((view,))
        if not any(self._filters):
            # Written for speed (several views, no admission filters): one entry tier for
            # every new block of the request, one scan of the view per block.
            d = self._entry(keys[0], path) if keys else self.n
            fresh = []
            for k in keys:
                if k > newest:
                    fresh.append(k)
                    continue
                for t, m in self._path_members[view]:
                    if k in m:
                        if t == d:
                            policies[t].touch(k)
                            break
                        for x, mx in self._path_members[view]:
                            if k in mx and (movable[x][d] if d < self.n else sharers[x] <= mine):
                                policies[x].remove(k)
                        fresh.append(k)
                        break
                else:
                    fresh.append(k)
            if fresh:
                self._store_fresh(fresh, d, path)
            return
        groups: dict[int, list[int]] = {}
        for k in keys:
            d = self._entry(k, path)
            t = self.locate(k, view)
            if t >= 0:
                if t == d:
                    policies[t].touch(k)
                    continue
                # The fresh copy replaces the stale ones this view may take away.
                for x, m in self._path_members[view]:
                    if k in m and (movable[x][d] if d < self.n else sharers[x] <= mine):
                        policies[x].remove(k)
            if d >= self.n:
                self._drop([k])
                continue
            groups.setdefault(d, []).append(k)
        for d in sorted(groups, key=level.__getitem__):
            self._store_fresh(groups[d], d, path)

    def _store_fresh(self, keys: list[int], d: int, path: tuple[int, ...]) -> None:
        """Fresh copies of ``keys`` into tier ``d`` (``n``: none keeps them); computed on
        the view's top tier, so a store below it counts as a move from there."""
        if d >= self.n:
            self._drop(keys)
            return
        if d != path[0]:
            self.moves[path[0]][d] += len(keys)
        self._place(keys, d, -1)

    # --- cascades -----------------------------------------------------------------------
    def _drop(self, keys: list[int]) -> None:
        """Blocks that left a view's bottom tier (or that no tier of it accepts)."""
        self.dropped.extend(keys)
        if self._table is not None:
            self._table.release(keys)

    def _place(self, keys: list[int], tier: int, src: int) -> None:
        if self._table is not None:
            self._table.place(keys, tier, src, self.moves, self.demoted, self.dropped)
        elif self._simple:
            self._place_simple(keys, tier, src)
        elif self._nofilter:
            self._place_copies(keys, tier, src)
        else:
            self._place_general(keys, tier, src)

    def _place_copies(self, keys: list[int], tier: int, src: int) -> None:
        """As _place_general without admission filters (written for speed: the default of
        a node with several instances). A block that arrives from above is never held at
        its destination: a victim held by any tier below it is not passed down."""
        policies, moves, n, parent, caps = self.policies, self.moves, self.n, self.parent, self._caps
        held_below, below_views, demoted = self._held_below, self._below_views, self.demoted
        t, s = tier, src
        while keys:
            while t >= 0 and caps[t] == 0:
                t = parent[t]
            if t < 0:
                if s >= 0:
                    moves[s][n] += len(keys)
                self._drop(keys)
                return
            if s >= 0:
                moves[s][t] += len(keys)
                demoted.extend(keys)
            victims = policies[t].admit_many(keys)
            if victims:
                views = below_views[t]
                if views is not None:
                    # Written for speed: the victims held below, by C-level set operations
                    # (one ``keys() & victims`` per tier below) instead of a call per victim.
                    held: set[int] | None = None
                    for kv in views:
                        h = kv & victims
                        if h:
                            held = h if held is None else held | h
                    if held:  # the copy below becomes the fastest: no bytes
                        demoted.extend(filter(held.__contains__, victims))
                        victims = list(filterfalse(held.__contains__, victims))
                else:
                    below = held_below[t]
                    if below is not None:
                        down = []
                        for v in victims:
                            if below(v):
                                demoted.append(v)  # the copy below becomes the fastest: no bytes
                            else:
                                down.append(v)
                        victims = down
            keys, s, t = victims, t, parent[t]

    def _place_simple(self, keys: list[int], tier: int, src: int) -> None:
        # One view, exclusive, no filters: tier t's parent is t + 1.
        policies, moves, n = self.policies, self.moves, self.n
        t, s = tier, src
        while keys:
            while t < n and policies[t].capacity == 0:
                t += 1  # a zero-capacity tier is skipped, not passed through
            if s >= 0:
                moves[s][t] += len(keys)
                if t < n:
                    self.demoted.extend(keys)
            if t == n:
                self.dropped.extend(keys)
                return
            keys, s, t = policies[t].admit_many(keys), t, t + 1

    def _place_general(self, keys: list[int], tier: int, src: int) -> None:
        """As _place_simple, with admission filters and copies: the blocks arriving at a
        tier come in groups by source tier (declined blocks keep theirs)."""
        policies, moves, n = self.policies, self.moves, self.n
        filters, caps, parent, copies = self._filters, self._caps, self.parent, self._copies
        pending: list[tuple[int, list[int]]] = [(src, keys)]
        t = tier
        while pending:
            while t >= 0 and caps[t] == 0:
                t = parent[t]
            if t < 0:
                for s, ks in pending:
                    if s >= 0:
                        moves[s][n] += len(ks)
                    self._drop(ks)
                return
            pol = policies[t]
            arriving: list[int] = []
            passing: list[tuple[int, list[int]]] = []
            mem = self.members[t]
            for s, ks in pending:
                if filters[t]:
                    acc = [k for k in ks if pol.accepts(k)]
                    if len(acc) < len(ks):
                        taken = set(acc)
                        passing.append((s, [k for k in ks if k not in taken]))
                else:
                    acc = ks
                if copies and s >= 0 and acc:
                    # A block demoted into a tier that already holds a copy (another view
                    # put it there) just loses the faster copy: no bytes move.
                    held = [k for k in acc if k in mem]
                    if held:
                        self.demoted.extend(held)
                        acc = [k for k in acc if k not in mem]
                if acc:
                    if s >= 0:
                        moves[s][t] += len(acc)
                        self.demoted.extend(acc)
                    arriving.extend(acc)
            if arriving:
                victims = pol.admit_many(arriving)
                if victims and copies:
                    above, below = self._held_above[t], self._held_below[t]
                    if above is not None:  # a faster copy every sharer reaches: just freed
                        victims = [v for v in victims if not above(v)]
                    if below is not None:  # the copy below becomes the fastest: no bytes
                        down = []
                        for v in victims:
                            if below(v):
                                self.demoted.append(v)
                            else:
                                down.append(v)
                        victims = down
                if victims:
                    passing.append((t, victims))
            pending = passing
            t = parent[t]

    # --- bookkeeping ------------------------------------------------------------------------
    def drain(self) -> tuple[list[list[int]], list[int], list[int]]:
        """Return and reset the moves (a matrix, source x destination), demoted blocks and
        dropped blocks since the last call.

        A block demoted and then dropped in the same period appears in both lists."""
        counts, demoted, dropped = self.drain_moves()
        moves = [[0] * (self.n + 1) for _ in range(self.n)]
        for s, d, c in counts:
            moves[s][d] = c
        return moves, demoted, dropped

    def drain_moves(self) -> tuple[list[tuple[int, int, int]], list[int], list[int]]:
        """As :meth:`drain`, with the moves as ``(source, destination, count)`` for every
        non-zero count, by source then destination (written for speed: drain runs once per
        request and most of the matrix is zeros)."""
        total = self._total
        zeros = self._zeros
        out = []
        for s, row in enumerate(self.moves):
            if any(row):
                tot = total[s]
                for d, c in enumerate(row):
                    if c:
                        tot[d] += c
                        out.append((s, d, c))
                row[:] = zeros
        demoted, dropped = self.demoted, self.dropped
        self.demoted = []
        self.dropped = []
        return out, demoted, dropped

    @property
    def total_moves(self) -> list[list[int]]:
        """Moves per (source, destination) tier since the start, drained or not."""
        return [
            [t + c for t, c in zip(trow, crow, strict=True)]
            for trow, crow in zip(self._total, self.moves, strict=True)
        ]

    def occupancy(self) -> list[int]:
        return [len(p) for p in self.policies]

    def check(self) -> None:
        """Invariants: no tier over capacity; a tier's blocks are what its policy answers
        for; with one exclusive view every block is in exactly one tier."""
        if self._table is not None:
            self._table.check()
        total = 0
        held: set[int] = set()
        for spec, pol, mem in zip(self.tiers, self.policies, self.members, strict=True):
            if len(pol) > spec.capacity_blocks:
                raise AssertionError(f"tier {spec.label} holds {len(pol)} > {spec.capacity_blocks}")
            keys = list(pol)
            if len(set(keys)) != len(keys) or len(keys) != len(pol):
                raise AssertionError(f"tier {spec.label} lists {len(keys)} blocks but holds {len(pol)}")
            for k in keys:
                if k not in mem:
                    raise AssertionError(f"block {k} listed in tier {spec.label} but not found there")
            if isinstance(mem, Sized) and len(mem) != len(keys):  # (a policy's dict of its residents)
                raise AssertionError(f"tier {spec.label} answers for {len(mem)} blocks but lists {len(keys)}")
            total += len(keys)
            held.update(keys)
        if not self._copies and total != len(held):
            raise AssertionError(f"{total} blocks in the tiers but {len(held)} distinct: a block is in two tiers")
