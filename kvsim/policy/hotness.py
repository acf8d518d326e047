"""Hotness: kvsim's placement policy for prefix-chained KV blocks. It ranks blocks by three
signals that mean the same thing on any prefix-chained workload, and picks online, on the
trace it is running, the ranking that gets the most hits.

Signals (kept for resident blocks, and for 8 x capacity recently evicted ones):

    n(k)      uses of k, surviving evictions (within the history) and moves between tiers
    last(k)   time of k's last use;   first(k): time of its first use (time = accesses so far)
    gap(k)    mean time between k's uses = (last - first) / (n - 1)
    tail(k)   k was created as a request's last block (static: bind(trace))

Rankings (each a complete eviction order of the same resident blocks):

    lru      evict the least recently used block
    lfu_da   LFU with dynamic aging (GreedyDual, Arlitt et al. 2000):
                 on each use of k: H(k) = L + n(k);  evict min H (ties: least recent);  L = H(victim)
    lhd      least hit density (Beckmann et al., NSDI'18), learned on this trace:
                 class(k) = 0 if n = 1 and tail(k); 1 if n = 1; else 2 + bits(gap(k)) // 2
                 on a hit of k at age a = now - last(k):  hits[class(k)][bucket(a)] += 1
                 on an eviction at age a:                  evictions[class][bucket(a)] += 1
                 (buckets: 4 per octave of age); every max(16384, C) accesses:
                     density[c][b] = sum_{b' >= b} hits[c][b'] / sum_{b' >= b} events[c][b'] * (age(b') - age(b) + 1)
                     (a class's counts shrunk toward the pooled ones by one event's weight), then
                     hits and evictions *= 0.9
                 evict: of 32 residents drawn at random (seeded), the one of lowest
                     density[class(k)][bucket(now - last(k))]
    choice   miniature simulation (Waldspurger et al., ATC'17): each ranking also runs on a
             cache of C / R blocks fed only the blocks whose hash falls in a 1/R sample
             (R a power of two, C / R >= 128, R <= 64); the full cache evicts by the ranking
             whose miniature has the most hits, each sampled access weighing 1 + 1/W more
             than the one before (W = 8 x the miniature's capacity, at least 1024 accesses).
             Starts with lru.

    access(k) (single tier; a miss stores k, then evicts while over capacity -- possibly k
    itself when the ranking puts it last, i.e. k is not kept):
        now += 1; feed the miniatures; update n, last (a hit) or start k's record (a miss,
        from the history if k is remembered); evict by the chosen ranking

Nothing here is fitted to one trace: the history size (8 x C), the miniatures' sampling
(C / R >= 128) and decay (8 x their size) were chosen on the conversation trace (the
evaluation protocol's tuning family, docs/policy_eval.md); LHD's sample of 32, its decay 0.9
and its age buckets are the paper's. No rule depends on how a trace hashes its last block or
on chain depth constants: a class the trace never reuses (e.g. partial last blocks) gets a low
density from the counts, not from a rule.

In a tier hierarchy every tier keeps its own eviction order and the tiers share the signals,
the LHD counts and the choice of ranking (the miniatures are sized on the total capacity);
a lifetime ends (an LHD eviction, the block goes to the history) when the bottom tier drops
the block. Every tier accepts every block: new blocks enter the top tier, victims go one tier
down, hits climb to the top (the hierarchy's defaults).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any

import numpy as np

from kvsim.policy.base import EvictionPolicy
from kvsim.ranges import OneOf, Seed

RULES = ("lru", "lfu", "lhd")
_HASH = 2654435761  # Knuth's multiplicative hash: the miniatures' 1/R sample of block ids
_SAMPLE = 32  # LHD: candidates drawn per eviction
_DECAY = 0.9  # LHD: counts kept per reconfiguration
_HISTORY = 8  # evicted blocks remembered, per block of capacity
_MINI_MIN = 512  # a miniature holds at least this many blocks (or the whole cache)
_MINI_MAX_RATE = 64
_MINI_WINDOW = 2  # the miniatures' hits are weighed over about this many times their size
_BATCH = 8  # LHD frees up to this many slots per draw of candidates


def _bucket(a: int) -> int:
    """Age bucket: ages 0..7 exactly, then 4 buckets per octave."""
    if a < 8:
        return a
    bl = a.bit_length()
    return (bl - 3) * 4 + ((a >> (bl - 3)) & 3) + 4


_NB = _bucket(1 << 62)  # the oldest bucket (ages are counts of accesses, < 2^63)
_NC = 2 + 32  # classes: tail, new, and 2 + bits(gap) // 2 for gap < 2^63


def _bucket_bounds() -> tuple[np.ndarray, np.ndarray]:
    lo = np.zeros(_NB + 1)
    hi = np.zeros(_NB + 1)
    for b in range(_NB + 1):
        if b < 8:
            lo[b], hi[b] = b, b + 1
        else:
            octave, sub = divmod(b - 4, 4)
            step = 1 << octave  # bl - 3 == octave
            lo[b] = (4 + sub) * step
            hi[b] = lo[b] + step
    return lo, hi


_LO, _HI = _bucket_bounds()
_MID = (_LO + _HI - 1) / 2.0


def _cls(k: int, n: int, first: int, last: int, tail: frozenset[int] | set[int], scale: int) -> int:
    """LHD class of a block used n times: never reused (created as a request's last block,
    or not), else two octaves of its mean gap between uses (in units of ``scale`` accesses)."""
    if n == 1:
        return 0 if k in tail else 1
    return 2 + ((last - first) // ((n - 1) * scale)).bit_length() // 2


class _LHD:
    """LHD's counts and densities, learned by the lhd miniature."""

    __slots__ = ("hits", "evictions", "dense", "every", "next")

    def __init__(self, capacity: int) -> None:
        self.hits = [[0.0] * (_NB + 1) for _ in range(_NC)]
        self.evictions = [[0.0] * (_NB + 1) for _ in range(_NC)]
        # Before the first reconfiguration: density falls with age (LRU order within a class).
        self.dense = np.tile(1.0 / (_MID + 1.0), (_NC, 1))
        self.every = max(16384, capacity)
        self.next = self.every

    def reconfigure(self) -> None:
        h = np.asarray(self.hits)
        e = h + np.asarray(self.evictions)
        pool_h, pool_e = h.sum(axis=0), e.sum(axis=0)
        total = pool_e.sum()
        if total > 0:  # shrink each class toward the pooled shape by one event's weight
            h = h + pool_h / total
            e = e + pool_e / total
        # suffix sums from the oldest bucket down: hits to come, events to come, and the
        # space-time they still occupy, sum e[b'] * (mid[b'] - lo[b] + 1)
        hits_after = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]
        ev_after = np.cumsum(e[:, ::-1], axis=1)[:, ::-1]
        evmid_after = np.cumsum((e * _MID)[:, ::-1], axis=1)[:, ::-1]
        life = evmid_after - (_LO - 1.0) * ev_after
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = np.where(life > 0, hits_after / life, 0.0)
        self.dense = dens
        self.hits = (np.asarray(self.hits) * _DECAY).tolist()
        self.evictions = (np.asarray(self.evictions) * _DECAY).tolist()


class _Signals:
    """Per-block signals of one hierarchy (or one miniature): resident records and history."""

    __slots__ = ("meta", "history", "history_cap", "tail", "lhd", "now", "scale")

    def __init__(self, capacity: int, learn: bool = False) -> None:
        # resident (in some tier): key -> [n, first, last, LHD class in units of scale]
        self.meta: dict[int, list[int]] = {}
        # recently evicted: key -> (n, first, last), oldest first
        self.history: OrderedDict[int, tuple[int, int, int]] = OrderedDict()
        self.history_cap = _HISTORY * max(capacity, 1)
        self.tail: frozenset[int] | set[int] = frozenset()
        self.lhd = _LHD(capacity) if learn else None  # counts are learned by the lhd miniature
        self.now = 0
        self.scale = 1  # the full cache ranks by the lhd miniature's densities: ages / rate

    def tick(self) -> None:
        self.now += 1
        lhd = self.lhd
        if lhd is not None and self.now >= lhd.next:
            lhd.reconfigure()
            lhd.next += lhd.every

    def start(self, k: int) -> list[int]:
        """Record of a block entering the cache (a miss at time ``now``)."""
        old = self.history.pop(k, None)
        now = self.now
        if old is None:
            m = [1, now, now, 0 if k in self.tail else 1]
        else:
            n = old[0] + 1
            m = [n, old[1], now, _cls(k, n, old[1], now, self.tail, self.scale)]
        self.meta[k] = m
        return m

    def hit(self, k: int) -> list[int]:
        m = self.meta[k]
        now = self.now
        if self.lhd is not None:
            self.lhd.hits[m[3]][_bucket(now - m[2])] += 1
        n = m[0] = m[0] + 1
        m[2] = now
        m[3] = 2 + ((now - m[1]) // ((n - 1) * self.scale)).bit_length() // 2
        return m

    def end(self, k: int) -> None:
        """``k`` leaves the cache (or the hierarchy's bottom tier): an LHD eviction."""
        m = self.meta.pop(k)
        if self.lhd is not None:
            self.lhd.evictions[m[3]][_bucket(self.now - m[2])] += 1
        h = self.history
        h[k] = (m[0], m[1], m[2])
        if len(h) > self.history_cap:
            h.popitem(last=False)


class _Order:
    """The resident blocks of one tier in every order a ranking needs: LRU order, the LFU heap
    (kept only while lfu ranks), and slots for LHD's random draws (each slot's last use and
    class mirrored in numpy arrays, so a draw of candidates is ranked in a few array ops)."""

    __slots__ = ("cap", "lru", "arr", "pos", "last", "cls", "heap", "hv", "seq", "rng", "gd", "batch")

    def __init__(self, capacity: int, seed: int) -> None:
        self.cap = capacity
        self.lru: OrderedDict[int, None] = OrderedDict()  # least recent first
        self.arr: list[int] = []  # slot -> block
        self.pos: dict[int, int] = {}  # block -> slot
        self.last = np.zeros(capacity + 1, dtype=np.int64)  # slot -> last use
        self.cls = np.zeros(capacity + 1, dtype=np.int64)  # slot -> LHD class
        self.heap: list[tuple[int, int, int]] = []  # LFU (n, seq of last use, key), lazy deletion
        self.hv: dict[int, tuple[int, int]] = {}  # resident -> its current (n, seq)
        self.seq = 0
        self.rng = np.random.default_rng(seed)
        self.gd = False  # the heap is kept only while lfu ranks
        # LHD frees this many slots per draw (the cache runs that many blocks below capacity
        # at most; written for speed: one draw of numpy ops serves several misses)
        self.batch = min(_BATCH, max(1, capacity // 128))

    def __len__(self) -> int:
        return len(self.pos)

    def add(self, k: int, m: list[int]) -> None:
        self.lru[k] = None
        i = self.pos[k] = len(self.arr)
        self.arr.append(k)
        self.last[i] = m[2]
        self.cls[i] = m[3]
        if self.gd:
            self.push(k, m[0])

    def push(self, k: int, n: int) -> None:
        self.seq += 1
        e = (n, self.seq)
        self.hv[k] = e
        heapq.heappush(self.heap, (n, e[1], k))
        if len(self.heap) > 4 * len(self.hv) + 64:
            self.heap = [(h, s, x) for x, (h, s) in self.hv.items()]
            heapq.heapify(self.heap)

    def touch(self, k: int, m: list[int]) -> None:
        self.lru.move_to_end(k)
        i = self.pos[k]
        self.last[i] = m[2]
        self.cls[i] = m[3]
        if self.gd:
            self.push(k, m[0])

    def drop(self, k: int) -> None:
        del self.lru[k]
        i = self.pos.pop(k)
        last = self.arr.pop()
        if last != k:
            j = len(self.arr)
            self.arr[i] = last
            self.pos[last] = i
            self.last[i] = self.last[j]
            self.cls[i] = self.cls[j]
        if self.gd:
            del self.hv[k]

    def use_heap(self, on: bool, meta: dict[int, list[int]]) -> None:
        """Start (rebuilt from the residents, least recent first) or stop keeping the heap."""
        if on == self.gd:
            return
        self.gd = on
        self.heap, self.hv = [], {}
        if on:
            for k in self.lru:
                self.push(k, meta[k][0])

    def victims(self, rule: int, need: int, now: int, lhd: _LHD, scale: int) -> list[int]:
        """Blocks to evict: ``need`` of them (lru, lfu), or for lhd at least ``need``: the
        lowest densities among _SAMPLE random residents per block freed (ties: the first
        drawn)."""
        if rule == 0:
            it = iter(self.lru)
            return [next(it) for _ in range(need)]
        if rule == 1:
            heap, hv = self.heap, self.hv
            out: list[int] = []
            while len(out) < need:
                h, s, k = heapq.heappop(heap)
                if hv.get(k) == (h, s):  # (each entry is popped once: no repeats)
                    out.append(k)
            return out
        n = len(self.arr)
        take = max(need, min(self.batch, n // 4))
        idx = self.rng.integers(0, n, size=_SAMPLE * take)
        age = (now - self.last[idx]) // scale
        bits = np.frexp(np.maximum(age, 1).astype(np.float64))[1]  # bit_length (exact below 2^53)
        shift = np.maximum(bits - 3, 0)
        bucket = np.where(age < 8, age, (bits - 3) * 4 + ((age >> shift) & 3) + 4)
        dens = lhd.dense[self.cls[idx], np.minimum(bucket, _NB)]
        arr, out, seen = self.arr, [], set()
        for i in idx[np.argsort(dens, kind="stable")].tolist():  # lowest first, distinct slots
            if i not in seen:
                seen.add(i)
                out.append(arr[i])
                if len(out) == take:
                    break
        return out


class _Mini:
    """One ranking on a miniature cache fed the sampled blocks."""

    __slots__ = ("rule", "sig", "order")

    def __init__(self, rule: int, capacity: int, seed: int) -> None:
        self.rule = rule
        self.sig = _Signals(capacity, learn=rule == 2)
        self.order = _Order(capacity, seed)
        self.order.gd = rule == 1

    def access(self, k: int, lhd: _LHD) -> bool:
        sig, order = self.sig, self.order
        sig.tick()
        if k in order.pos:
            order.touch(k, sig.hit(k))
            return True
        if order.cap:
            order.add(k, sig.start(k))
            if len(order) > order.cap:
                for v in order.victims(self.rule, len(order) - order.cap, sig.now, lhd, 1):
                    order.drop(v)
                    sig.end(v)
        return False


class _Chooser:
    """The miniatures and the ranking they choose, shared by every tier. The lhd miniature
    also learns the densities the full cache ranks by (ages and gaps scaled by the rate)."""

    __slots__ = ("rate", "scale", "rules", "minis", "lhd", "score", "inc", "growth", "rule")

    def __init__(self, total_capacity: int, seed: int, rules: Sequence[int] = (0, 1, 2)) -> None:
        rate = 1
        while rate * 2 <= _MINI_MAX_RATE and total_capacity // (rate * 2) >= _MINI_MIN:
            rate *= 2
        self.rules = list(rules)
        cap = total_capacity // rate
        self.rate = rate
        # one ranking other than lhd: nothing to choose and nothing to learn, no miniatures
        if self.rules in ([0], [1]):
            self.rate = 1 << 62
        self.minis = [_Mini(r, cap, seed + 1 + r) for r in self.rules] if self.rate <= rate else []
        self.scale = rate if self.minis else 1  # the full cache's ages in miniature units
        learner = [m for m in self.minis if m.rule == 2]
        self.lhd = learner[0].sig.lhd if learner else _LHD(cap)
        assert self.lhd is not None
        self.score = [0.0] * len(self.rules)
        self.inc = 1.0
        self.growth = 1.0 + 1.0 / max(1024, _MINI_WINDOW * cap)
        self.rule = self.rules[0]

    def feed(self, k: int) -> None:
        """One sampled access: every miniature sees it; the best one's ranking is chosen."""
        score, inc, lhd = self.score, self.inc, self.lhd
        for j, m in enumerate(self.minis):
            if m.access(k, lhd):
                score[j] += inc
        inc *= self.growth
        if inc > 1e100:  # renormalise the growing weights
            self.score = score = [x / inc for x in score]
            inc = 1.0
        self.inc = inc
        best = 0
        for j in range(1, len(score)):
            if score[j] > score[best]:
                best = j
        if score[best] > score[self.rules.index(self.rule)]:
            self.rule = self.rules[best]


class Hotness(EvictionPolicy):
    name = "hotness"

    def __init__(
        self,
        capacity: int,
        rules: Sequence[Annotated[str, OneOf(*RULES)]] = RULES,
        seed: Seed = 0,
        inclusive: bool = False,
    ) -> None:
        super().__init__(capacity, inclusive)
        bad = [r for r in rules if r not in RULES]
        if bad or not rules:
            raise ValueError(f"hotness: rules must be a non-empty subset of {list(RULES)}, got {list(rules)}")
        self.rules = [RULES.index(r) for r in dict.fromkeys(rules)]
        self.seed = int(seed)
        self.sig = _Signals(self.capacity)
        self.chooser = _Chooser(self.capacity, self.seed, self.rules)
        self.sig.scale = self.chooser.scale
        self.order = _Order(self.capacity, self.seed)
        self.peers: Sequence[EvictionPolicy] = (self,)
        self.bottom = True  # evictions from this tier end a block's lifetime

    # --- shared state -------------------------------------------------------------------
    def join(self, tier: int, peers: Sequence[EvictionPolicy]) -> None:
        super().join(tier, peers)
        self.peers = peers
        top = peers[0]
        last = max((i for i, p in enumerate(peers) if p.capacity > 0), default=len(peers) - 1)
        self.bottom = tier >= last
        if isinstance(top, Hotness):
            if top is not self:
                self.sig, self.chooser = top.sig, top.chooser
            else:
                total = sum(p.capacity for p in peers)
                self.sig = _Signals(total)
                self.chooser = _Chooser(total, self.seed, self.rules)
                self.sig.scale = self.chooser.scale
        self.order.rng = np.random.default_rng((self.seed, tier))

    def bind(self, trace: Any) -> None:
        """Static facts: which blocks were created as a request's last block."""
        ids = np.asarray(trace.hash_ids, dtype=np.int64)
        offsets = np.asarray(trace.offsets, dtype=np.int64)
        last = np.zeros(len(ids), dtype=bool)
        last[offsets[1:][np.diff(offsets) > 0] - 1] = True
        uniq, first = np.unique(ids, return_index=True)
        tail = frozenset(uniq[last[first]].tolist())
        self.sig.tail = tail
        for m in self.chooser.minis:
            m.sig.tail = tail

    @property
    def rule(self) -> str:
        """The ranking in use now."""
        return RULES[self.chooser.rule]

    # --- the clock, the miniatures and the signals --------------------------------------
    def _tick(self, k: int) -> None:
        self.sig.now += 1
        ch = self.chooser
        if ((k * _HASH) & 0xFFFFFFFF) % ch.rate == 0:
            ch.feed(k)

    def observe(self, keys: Sequence[int], new: bool) -> None:
        """Tier 0 sees every access of the hierarchy once: the clock, the miniatures, and the
        signals of the blocks already resident in some tier (a hit)."""
        sig = self.sig
        meta = sig.meta
        for k in keys:
            self._tick(k)
            if k in meta:
                sig.hit(k)

    # --- one tier ---------------------------------------------------------------------
    def __contains__(self, key: int) -> bool:
        return key in self.order.pos

    def __len__(self) -> int:
        return len(self.order.pos)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.lru)

    def _rank(self) -> int:
        rule = self.chooser.rule
        self.order.use_heap(rule == 1, self.sig.meta)
        return rule

    def touch(self, key: int) -> None:
        self._rank()
        self.order.touch(key, self.sig.meta[key])

    def admit(self, key: int) -> list[int]:
        order, sig, ch = self.order, self.sig, self.chooser
        if order.cap == 0:
            return [key]
        rule = self._rank()
        m = sig.meta.get(key)
        order.add(key, m if m is not None else sig.start(key))
        if len(order) <= order.cap:
            return []
        out = order.victims(rule, len(order) - order.cap, sig.now, ch.lhd, ch.scale)
        alone = len(self.peers) == 1
        for v in out:
            order.drop(v)
            # a lifetime ends when the bottom tier drops the block and no tier holds a copy
            if self.bottom and (alone or not any(v in p for p in self.peers if p is not self)):
                sig.end(v)
        return out

    def remove(self, key: int) -> None:
        self.order.drop(key)

    # --- single tier ------------------------------------------------------------------
    def access(self, key: int) -> bool:
        self._tick(key)
        if key in self.order.pos:
            self._rank()
            self.order.touch(key, self.sig.hit(key))
            return True
        self.admit(key)
        return False

    def replay(self, keys: Iterable[int]) -> int:
        # Written for speed: access() with the clock and the hit path inlined (local names);
        # the miniatures and the miss path are the same calls as in access().
        sig, ch, order = self.sig, self.chooser, self.order
        meta, pos, lru_move = sig.meta, order.pos, order.lru.move_to_end
        slot_last, slot_cls = order.last, order.cls
        rate, feed, scale = ch.rate, ch.feed, sig.scale
        hits = 0
        for k in keys:
            now = sig.now = sig.now + 1
            if ((k * _HASH) & 0xFFFFFFFF) % rate == 0:
                feed(k)
            i = pos.get(k)
            if i is not None:
                hits += 1
                if ch.rule == 1 or order.gd:
                    self._rank()
                m = meta[k]
                n = m[0] = m[0] + 1
                m[2] = now
                c = m[3] = 2 + ((now - m[1]) // ((n - 1) * scale)).bit_length() // 2
                lru_move(k)
                slot_last[i] = now
                slot_cls[i] = c
                if order.gd:
                    order.push(k, n)
                continue
            self.admit(k)
        return hits
