"""Hotness-aware placement: kvsim's own policy for prefix-chained KV-cache blocks.

What the traces say, and what the policy does with it:

* Three quarters of the blocks are used once; the partial last block of a request is
  almost never reused (0.8% on the conversation trace), because the next turn appends
  tokens to it and so hashes it anew  ->  admission control.
* Reuse grows with past use (24% after one use, 42% after two, over 80% after six) and the
  first blocks of a chain are shared by every request that extends it  ->  a score from
  frequency and position in the chain.
* Reuse distances are minutes, so recency still matters  ->  GreedyDual aging.

The algorithm:

    f(k)      accesses of k so far (remembered after k leaves the cache)
    depth(k)  position of k in its prefix chain (0: a request's first block)
    tail(k)   k was created as a request's last block and has not been reused
    score(k) = f(k) ** alpha + w_depth / (1 + depth(k))

    eviction, per tier (GreedyDual):
        when k is used in, or enters, tier t:  H[k] = L[t] + score(k)
        on pressure: evict argmin H (ties: older id);  L[t] = H[victim]
    admission control, accepts(k) for tier t:
        tail(k)                                  -> no tier keeps it (the block is dropped)
        t < fast_tiers and t is not the bottom   -> f(k) >= fast_min_freq (GPU keeps no
                                                    one-use blocks; they are stored below)
        otherwise                                -> yes
    promotion (by the tier hierarchy): a hit in tier t moves to the fastest tier above t
        that accepts it, so blocks that turn hot climb back from SSD/remote to the GPU;
        victims go to the next tier down that accepts them.
    (alpha, w_depth) -- how much frequency and chain position outweigh recency -- is tuned
        online by miniature simulation: for each pair in alphas x w_depths, a copy of this
        cache scaled down to capacity C / rate is fed the blocks whose hash falls in a
        1/rate sample; the cache uses the pair whose copy has the most hits (exponentially
        decayed by ``decay`` per sampled access). Small caches pick a large alpha (keep
        the hot heads), large ones a small alpha.

Static facts (depth, created as a last block) come from ``bind(trace)``; they are what a
real system sees when the block is created. Without ``bind`` the depth term and the tail
rule are off. In a tier hierarchy all tiers share the statistics and the alpha (tuned on
the total capacity); each tier keeps its own heap and L.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any

import numpy as np

from kvsim.policy.base import EvictionPolicy
from kvsim.ranges import NonNegFloat, NonNegInt, PosInt, Range

_HASH = 2654435761  # Knuth's multiplicative hash: a 1/rate sample of block ids


class _GD:
    """One GreedyDual cache (a tier, or a miniature copy used to tune alpha)."""

    __slots__ = ("cap", "res", "heap", "L")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.res: dict[int, float] = {}  # resident -> its H
        self.heap: list[tuple[float, int]] = []
        self.L = 0.0

    def set(self, key: int, h: float) -> None:
        self.res[key] = h
        heapq.heappush(self.heap, (h, key))
        if len(self.heap) > 4 * len(self.res) + 64:
            self.compact()

    def compact(self) -> None:
        """Drop the stale entries (those of blocks used again or gone)."""
        self.heap = [(v, k) for k, v in self.res.items()]
        heapq.heapify(self.heap)

    def evict(self) -> int:
        heap, res = self.heap, self.res
        while True:
            h, v = heapq.heappop(heap)
            if res.get(v) == h:
                del res[v]
                self.L = h
                return v


_POW_N = 256  # f ** alpha tabulated for f < _POW_N (written for speed: no float pow per access)


def _pow_table(alpha: float) -> list[float]:
    return [float(f) ** alpha for f in range(_POW_N)]


class _Stats:
    """State shared by every tier: frequencies, chain facts, the tuned (alpha, w_depth)."""

    def __init__(self, candidates: Sequence[tuple[float, float]], rate: int, decay: float, start: NonNegInt) -> None:
        self.freq: dict[int, int] = {}
        self.inv_depth: dict[int, float] = {}  # 1 / (1 + depth)
        self.tail: set[int] = set()
        self.cands = [(float(a), float(w)) for a, w in candidates]
        self.tables = [_pow_table(a) for a, _ in self.cands]
        self.rate = max(1, int(rate))
        self.decay = float(decay)
        self.minis: list[_GD] = []
        self.score = [0.0] * len(self.cands)
        self.inc = 1.0  # decayed scores: each sampled access weighs 1/decay more than the last
        self._pick(min(max(int(start), 0), len(self.cands) - 1))

    def _pick(self, j: int) -> None:
        self.cur = j
        self.alpha, self.w_depth = self.cands[j]
        self.pw = self.tables[j]

    def size(self, total_capacity: int) -> None:
        c = max(1, total_capacity // self.rate)
        self.minis = [_GD(c) for _ in self.cands] if len(self.cands) > 1 else []
        self.score = [0.0] * len(self.cands)

    def value(self, key: int, f: int) -> float:
        return (self.pw[f] if f < _POW_N else f**self.alpha) + self.w_depth * self.inv_depth.get(key, 0.0)

    def see(self, key: int) -> int:
        """Count one access of ``key``; feed the miniature caches; return f(key)."""
        f = self.freq.get(key, 0) + 1
        self.freq[key] = f
        if self.minis and ((key * _HASH) & 0xFFFFFFFF) % self.rate == 0:
            self._mini(key, f)
        return f

    def _mini(self, key: int, f: int) -> None:
        inv = self.inv_depth.get(key, 0.0)
        refuse = f == 1 and key in self.tail
        score, inc, tables = self.score, self.inc, self.tables
        for j, m in enumerate(self.minis):
            res = m.res
            if key in res:
                score[j] += inc
            elif refuse:
                continue
            elif len(res) >= m.cap:
                m.evict()
            a, w = self.cands[j]
            m.set(key, m.L + (tables[j][f] if f < _POW_N else f**a) + w * inv)
        self.inc = inc = inc / self.decay
        if inc > 1e100:  # renormalise the decayed scores
            self.score = score = [x / inc for x in score]
            self.inc = 1.0
        best = self.cur
        for j in range(len(score)):
            if score[j] > score[best]:
                best = j
        if best != self.cur:
            self._pick(best)


class Hotness(EvictionPolicy):
    name = "hotness"
    filters = True

    def __init__(
        self,
        capacity: int,
        alphas: Sequence[NonNegFloat] = (0.5, 1.0, 2.0, 3.0),
        w_depths: Sequence[NonNegFloat] = (2.0,),
        start: NonNegInt = 1,
        fast_tiers: NonNegInt = 1,
        fast_min_freq: PosInt = 2,
        tail_bypass: bool = True,
        tune_rate: PosInt = 8,
        tune_decay: Annotated[float, Range(gt=0, le=1)] = 0.9995,
        inclusive: bool = False,
    ) -> None:
        super().__init__(capacity, inclusive)
        if not alphas or not w_depths:
            raise ValueError("hotness: alphas and w_depths must not be empty")
        self.fast_tiers = int(fast_tiers)
        self.fast_min_freq = int(fast_min_freq)
        self.tail_bypass = bool(tail_bypass)
        self.n_tiers = 1
        cands = [(a, w) for a in alphas for w in w_depths]
        self.stats = _Stats(cands, tune_rate, tune_decay, start)
        self.stats.size(self.capacity)
        self._gd = _GD(self.capacity)

    # --- shared state -------------------------------------------------------------------
    def join(self, tier: int, peers: Sequence[EvictionPolicy]) -> None:
        super().join(tier, peers)
        self.n_tiers = len(peers)
        top = peers[0]
        if isinstance(top, Hotness):
            if top is not self:
                self.stats = top.stats
            else:
                self.stats.size(sum(p.capacity for p in peers))

    def bind(self, trace: Any) -> None:
        if self.tier != 0:
            return
        ids = np.asarray(trace.hash_ids, dtype=np.int64)
        offsets = np.asarray(trace.offsets, dtype=np.int64)
        pos = np.arange(len(ids), dtype=np.int64) - np.repeat(offsets[:-1], np.diff(offsets))
        last = np.zeros(len(ids), dtype=bool)
        ends = offsets[1:][np.diff(offsets) > 0] - 1
        last[ends] = True
        uniq, first = np.unique(ids, return_index=True)
        st = self.stats
        inv = 1.0 / (1.0 + pos[first])
        st.inv_depth = dict(zip(uniq.tolist(), inv.tolist(), strict=True))
        st.tail = set(uniq[last[first]].tolist()) if self.tail_bypass else set()

    def observe(self, keys: Sequence[int], new: bool) -> None:
        see = self.stats.see
        for k in keys:
            see(k)

    # --- scores ---------------------------------------------------------------------------
    def score(self, key: int) -> float:
        st = self.stats
        return st.value(key, st.freq.get(key, 1))

    def accepts(self, key: int) -> bool:
        st = self.stats
        f = st.freq.get(key, 1)
        if f <= 1 and key in st.tail:
            return False
        if self.tier < self.fast_tiers and self.tier < self.n_tiers - 1:
            return f >= self.fast_min_freq
        return True

    # --- one tier ---------------------------------------------------------------------
    def __contains__(self, key: int) -> bool:
        return key in self._gd.res

    def __len__(self) -> int:
        return len(self._gd.res)

    def __iter__(self) -> Iterator[int]:
        return iter(self._gd.res)

    def touch(self, key: int) -> None:
        g = self._gd
        g.set(key, g.L + self.score(key))

    def admit(self, key: int) -> list[int]:
        g = self._gd
        if g.cap == 0:
            return [key]
        out = []
        while len(g.res) >= g.cap:
            out.append(g.evict())
        g.set(key, g.L + self.score(key))
        return out

    def remove(self, key: int) -> None:
        del self._gd.res[key]  # its heap entries go stale

    def access(self, key: int) -> bool:
        self.stats.see(key)
        if key in self._gd.res:
            self.touch(key)
            return True
        if self.accepts(key):
            self.admit(key)
        return False

    def replay(self, keys: Iterable[int]) -> int:
        # Written for speed: access() inlined, the hot path touches only local names.
        st, g = self.stats, self._gd
        res, tail, inv = g.res, st.tail, st.inv_depth
        see, evict, push = st.see, g.evict, heapq.heappush
        fast = self.tier < self.fast_tiers and self.tier < self.n_tiers - 1
        min_f, cap = self.fast_min_freq, g.cap
        hits = 0
        for k in keys:
            f = see(k)
            if k in res:
                hits += 1
            elif (f <= 1 and k in tail) or (fast and f < min_f) or cap == 0:
                continue
            elif len(res) >= cap:
                evict()
            h = g.L + (st.pw[f] if f < _POW_N else f**st.alpha) + st.w_depth * inv.get(k, 0.0)
            res[k] = h
            push(g.heap, (h, k))
            if len(g.heap) > 4 * len(res) + 64:
                g.compact()
        return hits
