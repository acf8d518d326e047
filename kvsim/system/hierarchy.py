"""The tier hierarchy: where every block lives, and what moves when it is used or stored.

Tiers are ordered fastest first (tier 0 is GPU HBM). Each tier has its own eviction policy
instance; the policy also decides placement across tiers through ``accepts`` (see
:mod:`kvsim.policy.base`). By default caching is exclusive (a block lives in exactly one
tier); an ``inclusive`` policy keeps the lower copy when a block is promoted.

    use(blocks of one request, in order):                                 (hits)
        observe(blocks); for k: t = where[k]; touch k in t
            if t > 0 and promote_on_hit: u = fastest tier above t that accepts k
                if u exists: move k to u (exclusive: out of t; inclusive: t keeps a copy)
        place(promoted, u) for each u
    store(new blocks of one request):                                     (misses)
        observe(blocks); for k: d = first tier from admit_tier down that accepts k
            k already in d: touch;  no such tier: k is dropped (never kept)
            else: k (fresh copy) goes to d; a stale copy elsewhere is removed; a block
                  stored below tier 0 counts as a move 0 -> d (it was computed there)
    place(ks, t):  victims = policy[t].admit_many(ks that tier t accepts), in order
                   ks tier t declines and the victims go on to the next tier down
                   (inclusive: a victim with a copy further down just loses this copy);
                   below the bottom tier they are dropped

Cascades are batched per tier: each tier sees exactly the sequence of blocks it would see
if they were placed one by one (a tier's state depends only on what arrives from above),
but the hierarchy makes one call per tier instead of one per block and tier.
Moves are counted per (source tier, destination tier) so the caller can charge them to
links as whole transfers; dropped blocks are returned so the index can delete them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kvsim.policy.base import EvictionPolicy


@dataclass(frozen=True)
class TierSpec:
    name: str
    device: str  # topology node holding the tier's bytes
    capacity_blocks: int
    access_latency_s: float = 0.0  # per transfer (e.g. an SSD read's latency at depth)


class TierHierarchy:
    def __init__(
        self,
        tiers: list[TierSpec],
        policy_factory: Callable[[int], EvictionPolicy],
        promote_on_hit: bool = True,
        admit_tier: int = 0,
        inclusive: bool | None = None,
    ) -> None:
        if not tiers:
            raise ValueError("at least one tier is needed")
        if not 0 <= admit_tier < len(tiers):
            raise ValueError(f"admit_tier {admit_tier} is not a tier index")
        self.tiers = tiers
        self.policies = [policy_factory(t.capacity_blocks) for t in tiers]
        for i, p in enumerate(self.policies):
            p.join(i, self.policies)
        top = self.policies[0]
        #: inclusive: promotion copies up; ``where`` is then the fastest tier holding a copy
        self.inclusive = top.inclusive if inclusive is None else bool(inclusive)
        self.where: dict[int, int] = {}
        self.promote_on_hit = promote_on_hit
        self.admit_tier = admit_tier
        self.n = len(tiers)
        self._filters = [p.filters for p in self.policies]
        self._caps = [p.capacity for p in self.policies]
        self._simple = not any(self._filters) and not self.inclusive
        self._top = next((i for i, c in enumerate(self._caps) if c), -1)  # fastest tier with room
        self._observe = top.observe if type(top).observe is not EvictionPolicy.observe else None
        # moves[src][dst] counted since the last drain; dst == n means dropped
        self.moves = [[0] * (self.n + 1) for _ in range(self.n)]
        self._total = [[0] * (self.n + 1) for _ in range(self.n)]  # folded drains
        self._drained: list[list[list[int]]] = []  # drains not folded yet
        self.dropped: list[int] = []
        self.demoted: list[int] = []  # blocks that moved down a tier (new address)

    # --- the scheduler's queue (look-ahead policies) ------------------------------------------
    def enqueue(self, keys: Sequence[int]) -> list[int]:
        """A request needing ``keys`` entered the waiting queue. The policy learns it; a
        prefetching policy gets the request's blocks below the top tier promoted now (as a
        hit would). Returns how many blocks moved up from each tier (the caller charges
        them on the links)."""
        up = [0] * self.n
        top = self.policies[0]
        if not top.queue_aware:
            return up
        top.enqueue(keys)
        if not top.prefetch:
            return up
        where = self.where
        lower = [k for k in keys if where.get(k, 0) > 0]
        if lower:
            before = [row[:] for row in self.moves]
            self._promote(lower)
            for t in range(1, self.n):
                up[t] = sum(self.moves[t][u] - before[t][u] for u in range(t))
        return up

    def dequeue(self, keys: Sequence[int]) -> None:
        """The request needing ``keys`` left the queue (its prefill starts)."""
        top = self.policies[0]
        if top.queue_aware:
            top.dequeue(keys)

    def bind(self, trace: Any) -> None:
        """Give every tier's policy the trace about to be replayed (static block facts;
        OPT's next uses). Call once, before the first request."""
        for p in self.policies:
            p.bind(trace)

    def locate(self, key: int) -> int:
        """Tier index holding ``key`` (the fastest copy), or -1."""
        return self.where.get(key, -1)

    # --- placement decisions ---------------------------------------------------------------
    def _up(self, key: int, t: int) -> int:
        """The fastest tier above ``t`` that takes ``key`` on promotion, or -1."""
        caps, filters, policies = self._caps, self._filters, self.policies
        for u in range(t):
            if caps[u] and (not filters[u] or policies[u].accepts(key)):
                return u
        return -1

    def _entry(self, key: int) -> int:
        """The tier a freshly computed ``key`` is stored in (``n``: none keeps it)."""
        caps, filters, policies = self._caps, self._filters, self.policies
        for u in range(self.admit_tier, self.n):
            if caps[u] and (not filters[u] or policies[u].accepts(key)):
                return u
        return self.n

    def _lower_copy(self, key: int, t: int) -> int:
        """Inclusive mode: the fastest tier below ``t`` still holding ``key``, or -1."""
        for u in range(t + 1, self.n):
            if key in self.policies[u]:
                return u
        return -1

    def _discard(self, key: int) -> None:
        """Take every copy of ``key`` out of the tiers (it is about to be replaced)."""
        t = self.where.pop(key)
        self.policies[t].remove(key)
        if self.inclusive:
            for u in range(t + 1, self.n):
                if key in self.policies[u]:
                    self.policies[u].remove(key)

    # --- the two entry points --------------------------------------------------------------
    def use(self, keys: Sequence[int]) -> None:
        """The resident blocks ``keys`` (in request order) are reused."""
        if self._observe is not None:
            self._observe(keys, False)
        where, policies, moves = self.where, self.policies, self.moves
        promote_on_hit = self.promote_on_hit
        if self._simple and promote_on_hit and self._top >= 0:
            # Written for speed (the common case): every promotion goes to the first tier
            # with room, so _up() is known without asking; one cascade for the request.
            top = self._top
            up: list[int] = []
            for k in keys:
                t = where[k]
                pol = policies[t]
                pol.touch(k)
                if t > top:
                    pol.remove(k)
                    del where[k]
                    moves[t][top] += 1
                    up.append(k)
            if up:
                self._place_simple(up, top, -1)
            return
        if promote_on_hit:
            self._promote(keys)
        else:
            for k in keys:
                policies[where[k]].touch(k)

    def _promote(self, keys: Sequence[int]) -> None:
        """Touch the resident ``keys`` and move each one that is below the top to the fastest
        tier above it that accepts it (exclusive: out of its tier; inclusive: copied)."""
        where, policies, moves, inclusive = self.where, self.policies, self.moves, self.inclusive
        promote: dict[int, list[int]] = {}
        for k in keys:
            t = where[k]
            pol = policies[t]
            pol.touch(k)
            if t == 0:
                continue
            u = self._up(k, t)
            if u < 0:
                continue
            if not inclusive:
                pol.remove(k)
            del where[k]
            moves[t][u] += 1
            promote.setdefault(u, []).append(k)
        for u in sorted(promote):
            self._place(promote[u], u, -1)

    def store(self, keys: Sequence[int]) -> None:
        """New blocks enter the first tier from ``admit_tier`` down that accepts them.
        Blocks already resident (recomputed because they were not part of the reused
        prefix) are replaced by the fresh copy."""
        if self._observe is not None:
            self._observe(keys, True)
        where, policies = self.where, self.policies
        if self._simple:
            at = self.admit_tier
            fresh = []
            for k in keys:
                t = where.get(k, -1)
                if t < 0:
                    fresh.append(k)
                elif t == at:
                    policies[t].touch(k)
                else:
                    policies[t].remove(k)
                    del where[k]
                    fresh.append(k)
            if fresh:
                d = self._entry(fresh[0])
                if d >= self.n:
                    self.dropped.extend(fresh)
                else:
                    if d > 0:
                        self.moves[0][d] += len(fresh)
                    self._place(fresh, d, -1)
            return
        groups: dict[int, list[int]] = {}
        for k in keys:
            d = self._entry(k)
            t = where.get(k, -1)
            if t >= 0:
                if t == d:
                    policies[t].touch(k)
                    continue
                self._discard(k)
            if d >= self.n:
                self.dropped.append(k)
                continue
            groups.setdefault(d, []).append(k)
        for d in sorted(groups):
            ks = groups[d]
            if d > 0:
                self.moves[0][d] += len(ks)
            self._place(ks, d, -1)

    # --- cascades -----------------------------------------------------------------------
    def _place(self, keys: list[int], tier: int, src: int) -> None:
        if self._simple:
            self._place_simple(keys, tier, src)
        else:
            self._place_general(keys, tier, src)

    def _place_simple(self, keys: list[int], tier: int, src: int) -> None:
        where, policies, moves, n = self.where, self.policies, self.moves, self.n
        t, s = tier, src
        while keys:
            while t < n and policies[t].capacity == 0:
                t += 1  # a zero-capacity tier is skipped, not passed through
            if s >= 0:
                moves[s][t] += len(keys)
                if t < n:
                    self.demoted.extend(keys)
            if t == n:
                for k in keys:
                    where.pop(k, None)
                self.dropped.extend(keys)
                return
            # Victims of tier t are re-labelled t+1 on the next pass (or dropped), so
            # no per-block delete is needed here. Written for speed: C-level update.
            where.update(dict.fromkeys(keys, t))
            keys, s, t = policies[t].admit_many(keys), t, t + 1

    def _place_general(self, keys: list[int], tier: int, src: int) -> None:
        """As _place_simple, with admission filters and inclusive copies: the blocks
        arriving at a tier come in groups by source tier (declined blocks keep theirs)."""
        where, policies, moves, n = self.where, self.policies, self.moves, self.n
        filters, caps, inclusive = self._filters, self._caps, self.inclusive
        pending: list[tuple[int, list[int]]] = [(src, keys)]
        t = tier
        while pending:
            while t < n and caps[t] == 0:
                t += 1
            if t == n:
                for s, ks in pending:
                    if s >= 0:
                        moves[s][n] += len(ks)
                    for k in ks:
                        where.pop(k, None)
                    self.dropped.extend(ks)
                return
            pol = policies[t]
            arriving: list[int] = []
            passing: list[tuple[int, list[int]]] = []
            for s, ks in pending:
                if filters[t]:
                    acc = [k for k in ks if pol.accepts(k)]
                    if len(acc) < len(ks):
                        taken = set(acc)
                        passing.append((s, [k for k in ks if k not in taken]))
                else:
                    acc = ks
                if acc:
                    if s >= 0:
                        moves[s][t] += len(acc)
                        self.demoted.extend(acc)
                    arriving.extend(acc)
            if arriving:
                where.update(dict.fromkeys(arriving, t))
                victims = pol.admit_many(arriving)
                if victims and inclusive:
                    down = []
                    for v in victims:
                        if where[v] < t:  # a lower copy of a block held faster: just freed
                            continue
                        u = self._lower_copy(v, t)
                        if u < 0:
                            down.append(v)
                        else:  # the copy below becomes the fastest one: no bytes move
                            where[v] = u
                            self.demoted.append(v)
                    victims = down
                if victims:
                    passing.append((t, victims))
            pending = passing
            t += 1

    # --- bookkeeping ------------------------------------------------------------------------
    def drain(self) -> tuple[list[list[int]], list[int], list[int]]:
        """Return and reset the moves, demoted blocks and dropped blocks since the last call.

        A block demoted and then dropped in the same period appears in both lists."""
        moves, demoted, dropped = self.moves, self.demoted, self.dropped
        # Folding every drain into the totals costs more than the drain itself; fold in
        # batches (written for speed: drain runs once per request).
        self._drained.append(moves)
        if len(self._drained) >= 1024:
            self._fold()
        self.moves = [[0] * (self.n + 1) for _ in range(self.n)]
        self.demoted = []
        self.dropped = []
        return moves, demoted, dropped

    def _fold(self) -> None:
        for m in self._drained:
            for row, tot in zip(m, self._total, strict=True):
                for j, c in enumerate(row):
                    tot[j] += c
        self._drained = []

    @property
    def total_moves(self) -> list[list[int]]:
        """Moves per (source, destination) tier since the start, drained or not."""
        self._fold()
        return [
            [t + c for t, c in zip(trow, crow, strict=True)]
            for trow, crow in zip(self._total, self.moves, strict=True)
        ]

    def occupancy(self) -> list[int]:
        return [len(p) for p in self.policies]

    def check(self) -> None:
        """Invariants: no tier over capacity; ``where`` agrees with the policies (each
        located block is in the tier ``where`` names, and, inclusive, in no faster one)."""
        held: set[int] = set()
        total = 0
        for i, (spec, pol) in enumerate(zip(self.tiers, self.policies, strict=True)):
            if len(pol) > spec.capacity_blocks:
                raise AssertionError(f"tier {spec.name} holds {len(pol)} > {spec.capacity_blocks}")
            for k in pol:
                w = self.where.get(k)
                if w is None or (w != i if not self.inclusive else w > i):
                    raise AssertionError(f"block {k} in tier {spec.name} but where={w}")
                held.add(k)
            total += len(pol)
        if not self.inclusive and total != len(self.where):
            raise AssertionError(f"{len(self.where)} blocks located but tiers hold {total}")
        if len(held) != len(self.where):
            raise AssertionError(f"{len(self.where)} blocks located but tiers hold {len(held)} distinct")
        for k, w in self.where.items():
            if k not in self.policies[w]:
                raise AssertionError(f"block {k} located in tier {self.tiers[w].name} but not there")
