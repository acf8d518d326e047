"""The tier hierarchy: where every block lives, and what moves when it is used or stored.

Exclusive caching (a block lives in exactly one tier), tiers ordered fastest first
(tier 0 is GPU HBM). Each tier has its own eviction policy instance.

    use(blocks of one request, in order):
        k in tier 0:     touch k
        k in tier t > 0: remove k from t; queue k for promotion
        place(queued, 0)                                      (promotion on hit)
    store(new blocks):   place(blocks, admit_tier)
    place(ks, t):        victims = policy[t].admit_many(ks)   (in order)
                         place(victims, t + 1), or drop them below the bottom tier

Cascades are batched per tier: each tier sees exactly the sequence of blocks it would
see if they were placed one by one (a tier's state depends only on what arrives from
above), but the hierarchy makes one call per tier instead of one per block and tier.
Moves are counted per (source tier, destination tier) so the caller can charge them to
links as whole transfers; dropped blocks are returned so the index can delete them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
        if not 0 <= admit_tier < len(tiers):
            raise ValueError(f"admit_tier {admit_tier} is not a tier index")
        self.tiers = tiers
        self.policies = [policy_factory(t.capacity_blocks) for t in tiers]
        self.where: dict[int, int] = {}
        self.promote_on_hit = promote_on_hit
        self.admit_tier = admit_tier
        self.n = len(tiers)
        # moves[src][dst] counted since the last drain; dst == n means dropped
        self.moves = [[0] * (self.n + 1) for _ in range(self.n)]
        self.dropped: list[int] = []
        self.demoted: list[int] = []  # blocks that moved down a tier (new address)

    def locate(self, key: int) -> int:
        """Tier index holding ``key``, or -1."""
        return self.where.get(key, -1)

    def use(self, keys: Sequence[int]) -> None:
        """The resident blocks ``keys`` (in request order) are reused."""
        where, policies, moves = self.where, self.policies, self.moves
        promote = []
        for k in keys:
            t = where[k]
            if t == 0 or not self.promote_on_hit:
                policies[t].touch(k)
            else:
                policies[t].remove(k)
                del where[k]
                moves[t][0] += 1
                promote.append(k)
        if promote:
            self._place(promote, 0, -1)

    def store(self, keys: Sequence[int]) -> None:
        """New blocks enter at the admission tier. Blocks already resident (recomputed
        because they were not part of the reused prefix) are replaced by the fresh copy."""
        where, policies = self.where, self.policies
        fresh = []
        for k in keys:
            t = where.get(k, -1)
            if t < 0:
                fresh.append(k)
            elif t == self.admit_tier:
                policies[t].touch(k)
            else:
                policies[t].remove(k)
                del where[k]
                fresh.append(k)
        if fresh:
            self._place(fresh, self.admit_tier, -1)

    def _place(self, keys: list[int], tier: int, src: int) -> None:
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

    def drain(self) -> tuple[list[list[int]], list[int], list[int]]:
        """Return and reset the moves, demoted blocks and dropped blocks since the last call.

        A block demoted and then dropped in the same period appears in both lists."""
        moves, demoted, dropped = self.moves, self.demoted, self.dropped
        self.moves = [[0] * (self.n + 1) for _ in range(self.n)]
        self.demoted = []
        self.dropped = []
        return moves, demoted, dropped

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
