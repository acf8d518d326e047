"""The tier hierarchy: where every block lives, and what moves when it is used or stored.

Exclusive caching (a block lives in exactly one tier), tiers ordered fastest first
(tier 0 is GPU HBM). Each tier has its own eviction policy instance.

    use(k in tier t > 0):  remove k from t; place(k, 0)        (promotion on hit)
    use(k in tier 0):      touch k
    store(k):              place(k, admit_tier)                (a new block)
    place(k, t):           victims = policy[t].admit(k)
                           for v in victims: place(v, t+1) or drop v at the bottom

Moves are counted per (source tier, destination tier) so the caller can charge them to
links as whole transfers; dropped blocks are returned so the index can delete them.
All of this is synchronous bookkeeping between simulation events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

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
    ) -> None:
        if not tiers:
            raise ValueError("at least one tier is needed")
        self.tiers = tiers
        self.policies = [policy_factory(t.capacity_blocks) for t in tiers]
        self.where: dict[int, int] = {}
        self.promote_on_hit = promote_on_hit
        self.admit_tier = admit_tier
        self.n = len(tiers)
        # moves[src][dst] counted since the last drain; dst == n means dropped
        self.moves = [[0] * (self.n + 1) for _ in range(self.n)]
        self.dropped: list[int] = []

    def locate(self, key: int) -> int:
        """Tier index holding ``key``, or -1."""
        return self.where.get(key, -1)

    def use(self, key: int, tier: int) -> None:
        if tier == 0 or not self.promote_on_hit:
            self.policies[tier].touch(key)
            return
        self.policies[tier].remove(key)
        del self.where[key]
        self._place(key, 0, tier)

    def store(self, key: int) -> None:
        self._place(key, self.admit_tier, -1)

    def _place(self, key: int, tier: int, src: int) -> None:
        # Breadth-first cascade, so a tier's victims enter the next tier oldest first.
        pending = deque(((key, tier, src),))
        where, policies, moves, n = self.where, self.policies, self.moves, self.n
        while pending:
            k, t, s = pending.popleft()
            while t < n and policies[t].capacity == 0:
                t += 1  # a zero-capacity tier is skipped, not passed through
            if s >= 0:
                moves[s][t] += 1
            if t == n:
                self.dropped.append(k)
                continue
            where[k] = t
            for v in policies[t].admit(k):
                del where[v]
                pending.append((v, t + 1, t))

    def drain(self) -> tuple[list[list[int]], list[int]]:
        """Return and reset the moves and drops counted since the last call."""
        moves, dropped = self.moves, self.dropped
        self.moves = [[0] * (self.n + 1) for _ in range(self.n)]
        self.dropped = []
        return moves, dropped

    def occupancy(self) -> list[int]:
        return [len(p) for p in self.policies]

    def check(self) -> None:
        """Invariants: no tier over capacity; ``where`` agrees with the policies."""
        total = 0
        for i, (spec, pol) in enumerate(zip(self.tiers, self.policies, strict=True)):
            if len(pol) > spec.capacity_blocks:
                raise AssertionError(f"tier {spec.name} holds {len(pol)} > {spec.capacity_blocks}")
            for k in pol:
                if self.where.get(k) != i:
                    raise AssertionError(f"block {k} in tier {spec.name} but where={self.where.get(k)}")
            total += len(pol)
        if total != len(self.where):
            raise AssertionError(f"{len(self.where)} blocks located but tiers hold {total}")

    def refresh(self, key: int, tier: int) -> None:
        """A block was recomputed: the fresh copy in the top tier replaces the old one."""
        if tier == 0:
            self.policies[0].touch(key)
            return
        self.policies[tier].remove(key)
        del self.where[key]
        self._place(key, 0, -1)
