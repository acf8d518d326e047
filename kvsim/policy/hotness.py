"""Hotness: kvsim's placement policy for prefix-chained KV blocks. It ranks blocks by signals
that mean the same thing on any prefix-chained workload, and picks online, on the trace it is
running, the ranking that gets the most hits.

Signals (kept for resident blocks, and for 8 x capacity recently evicted ones):

    n(k)      uses of k, surviving evictions (within the history) and moves between tiers
    last(k)   time of k's last use;  first(k): time of its first use  (time = accesses so far)
    gap(k)    mean time between k's uses = (last - first) / (n - 1)
    tail(k)   k was created as a request's last block (a static fact: bind(trace))

Rankings (each a complete eviction order of the same resident blocks):

    lru      evict the least recently used block
    lfu      evict the block of fewest uses n(k) (ties: least recently used); the counts of
             evicted blocks are remembered in the history, so a block that comes back keeps them
    lhd      least hit density (Beckmann et al., NSDI'18), learned on this trace:
                 class(k) = 0 if n = 1 and tail(k);  1 if n = 1;  else 2 + bits(gap(k)) // 2
                 on a hit of k at age a = now - last(k):  hits[class(k)][bucket(a)] += 1
                 on an eviction at age a:                  evictions[class(k)][bucket(a)] += 1
                 bucket(a) = a for a < 8, then 4 buckets per octave;
                 every max(16384, C) accesses:
                     events = hits + evictions, each class shrunk toward the pooled counts
                     by one event's weight;
                     density[c][b] = sum_{b' >= b} hits[c][b']
                                     / sum_{b' >= b} events[c][b'] * (mid(b') - lo(b) + 1)
                     hits, evictions *= 0.9
                 evict: draw 32 residents per block to free (seeded), evict the lowest
                     density[class(k)][bucket(now - last(k))] (up to 64 freed per draw, at
                     most C / 256: the cache may run that many blocks below capacity)
    choice   miniature simulation (Waldspurger et al., ATC'17): each ranking also runs on a
             cache of C / R blocks fed only the blocks k with (k * 2654435761 mod 2^32) <
             2^32 / R (R a power of two <= 64, C / R >= 512); the full cache evicts by the
             ranking whose miniature has the most hits, each sampled access weighing
             1 + 1/W more than the one before (W = 2 x the miniature's capacity, at least
             1024). The lhd miniature also learns the densities the full cache ranks by
             (its ages are the full cache's divided by R). Starts with lru.

    access(k) (single tier: a miss stores k, then evicts while over capacity -- under lhd
    possibly k itself, i.e. k is not kept):
        now += 1; a sampled k feeds the miniatures; a hit: n(k) += 1, last(k) = now;
        a miss: k's record from the history (n + 1) or new; evict by the chosen ranking

Nothing here is fitted to one trace. The history size (8 x C), the miniatures' size (C / R
>= 512) and their window (2 x their size) were chosen on the conversation trace, the
evaluation protocol's tuning family (docs/policy_eval.md), and are reported unchanged on the
others; LHD's 32 candidates, its decay 0.9 and its age classes follow the paper. No rule
depends on how a trace hashes its last block or on chain-depth constants: a class the trace
never reuses (e.g. partial last blocks) gets a low density from the counts, not from a rule.

In a tier hierarchy every tier keeps its own orders and the block records of the blocks it
holds (a record moves with its block); the tiers share the history, the LHD counts and the
choice of ranking (the miniatures are sized on the total capacity); a lifetime ends (an LHD
eviction, the record goes to the history) when the bottom tier drops the block. Every tier
accepts every block: new blocks enter the top tier, victims go one tier down, hits climb to
the top (the hierarchy's defaults).
"""

from __future__ import annotations

import heapq
from array import array
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
_BATCH = 64  # LHD frees up to this many slots per draw of candidates


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
    """What the tiers of one hierarchy (or one miniature) share: the clock, the history of
    evicted blocks, the records of blocks moving between tiers, and the static tail facts.
    A resident block's record (uses, first use, last use) lives in its tier's slots."""

    __slots__ = ("history", "history_cap", "moving", "tail", "lhd", "now", "scale")

    def __init__(self, capacity: int, learn: bool = False) -> None:
        # recently evicted: key -> (n, first, last), oldest first
        self.history: OrderedDict[int, tuple[int, int, int]] = OrderedDict()
        self.history_cap = _HISTORY * max(capacity, 1)
        # blocks between two tiers within one hierarchy operation: key -> (n, first, last)
        self.moving: dict[int, tuple[int, int, int]] = {}
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

    def fresh(self, k: int) -> tuple[int, int, int]:
        """The record of a block used now that no tier holds (a miss): from the history, or new."""
        old = self.history.pop(k, None)
        now = self.now
        return (1, now, now) if old is None else (old[0] + 1, old[1], now)

    def cls(self, k: int, r: tuple[int, int, int]) -> int:
        """LHD class (in this miniature's own time units)."""
        n = r[0]
        if n == 1:
            return 0 if k in self.tail else 1
        return 2 + ((r[2] - r[1]) // (n - 1)).bit_length() // 2

    def end(self, k: int, r: tuple[int, int, int]) -> None:
        """``k`` leaves the cache (the hierarchy's bottom tier): an LHD eviction, then history."""
        if self.lhd is not None:
            self.lhd.evictions[self.cls(k, r)][_bucket(self.now - r[2])] += 1
        h = self.history
        h[k] = r
        if len(h) > self.history_cap:
            h.popitem(last=False)


class _Order:
    """The resident blocks of one tier in every order a ranking needs: LRU order, the LFU heap
    (kept only while lfu ranks), and slots holding each block's record (uses, first and last
    use) for LHD's random draws (ranked in a few numpy ops per draw)."""

    __slots__ = ("cap", "lru", "arr", "pos", "n", "first", "last", "tail", "heap", "hv", "seq", "rng", "gd", "batch")

    def __init__(self, capacity: int, seed: int | tuple[int, int]) -> None:
        self.cap = capacity
        self.lru: OrderedDict[int, None] = OrderedDict()  # least recent first
        self.arr: list[int] = []  # slot -> block
        self.pos: dict[int, int] = {}  # block -> slot
        # Written for speed: machine ints in arrays (cheap to set one on a hit, and numpy
        # reads a draw of random slots from them without touching Python objects)
        self.n = array("q")  # slot -> uses
        self.first = array("q")  # slot -> time of first use
        self.last = array("q")  # slot -> time of last use
        self.tail = array("b")  # slot -> created as a request's last block
        self.heap: list[tuple[int, int, int]] = []  # LFU (n, seq of last use, key), lazy deletion
        self.hv: dict[int, tuple[int, int]] = {}  # resident -> its current (n, seq)
        self.seq = 0
        self.rng = np.random.default_rng(seed)
        self.gd = False  # the heap is kept only while lfu ranks
        # LHD frees this many slots per draw (the cache runs that many blocks below capacity
        # at most; written for speed: one draw of numpy ops serves several misses)
        self.batch = min(_BATCH, max(1, capacity // 256))

    def __len__(self) -> int:
        return len(self.arr)

    def add(self, k: int, r: tuple[int, int, int], tail: bool) -> None:
        self.lru[k] = None
        self.pos[k] = len(self.arr)
        self.arr.append(k)
        self.n.append(r[0])
        self.first.append(r[1])
        self.last.append(r[2])
        self.tail.append(tail)
        if self.gd:
            self.push(k, r[0])

    def record(self, k: int) -> tuple[int, int, int]:
        i = self.pos[k]
        return (self.n[i], self.first[i], self.last[i])

    def push(self, k: int, n: int) -> None:
        self.seq += 1
        e = (n, self.seq)
        self.hv[k] = e
        heapq.heappush(self.heap, (n, e[1], k))
        if len(self.heap) > 4 * len(self.hv) + 64:
            self.heap = [(h, s, x) for x, (h, s) in self.hv.items()]
            heapq.heapify(self.heap)

    def touch(self, k: int) -> None:
        self.lru.move_to_end(k)
        if self.gd:
            self.push(k, self.n[self.pos[k]])

    def drop(self, k: int) -> tuple[int, int, int]:
        """Take ``k`` out; return its record."""
        del self.lru[k]
        i = self.pos.pop(k)
        arr, n, first, last, tail = self.arr, self.n, self.first, self.last, self.tail
        r = (n[i], first[i], last[i])
        j = len(arr) - 1
        if i != j:  # the last slot fills the hole
            moved = arr[j]
            arr[i], n[i], first[i], last[i], tail[i] = moved, n[j], first[j], last[j], tail[j]
            self.pos[moved] = i
        arr.pop()
        n.pop()
        first.pop()
        last.pop()
        tail.pop()
        if self.gd:
            del self.hv[k]
        return r

    def use_heap(self, on: bool) -> None:
        """Start (rebuilt from the residents, least recent first) or stop keeping the heap."""
        if on == self.gd:
            return
        self.gd = on
        self.heap, self.hv = [], {}
        if on:
            n, pos = self.n, self.pos
            for k in self.lru:
                self.push(k, n[pos[k]])

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
        arr = self.arr
        size = len(arr)
        take = max(need, min(self.batch, size // 4))
        idx = self.rng.integers(0, size, size=_SAMPLE * take)
        n = np.frombuffer(self.n, dtype=np.int64)[idx]  # (the views are gone on return: the
        last = np.frombuffer(self.last, dtype=np.int64)[idx]  # arrays may grow again)
        first = np.frombuffer(self.first, dtype=np.int64)[idx]
        is_tail = np.frombuffer(self.tail, dtype=np.int8)[idx]
        gap = (last - first) // (np.maximum(n - 1, 1) * scale)
        cls = np.where(n == 1, 1 - is_tail, 2 + _bit_length(gap) // 2)
        age = (now - last) // scale
        bits = _bit_length(age)
        bucket = np.where(age < 8, age, (bits - 3) * 4 + ((age >> np.maximum(bits - 3, 0)) & 3) + 4)
        dens = lhd.dense[cls, np.minimum(bucket, _NB)]
        out, seen = [], set()
        for i in idx[np.argsort(dens, kind="stable")].tolist():  # lowest first, distinct slots
            if i not in seen:
                seen.add(i)
                out.append(arr[i])
                if len(out) == take:
                    break
        return out


def _bit_length(x: np.ndarray) -> np.ndarray:
    """int.bit_length of each (non-negative) value (exact below 2^53)."""
    return np.where(x > 0, np.frexp(np.maximum(x, 1).astype(np.float64))[1], 0)


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
        i = order.pos.get(k)
        if i is not None:
            if sig.lhd is not None:  # the learner: a hit at this age, in this class
                r = (order.n[i], order.first[i], order.last[i])
                sig.lhd.hits[sig.cls(k, r)][_bucket(sig.now - r[2])] += 1
            order.n[i] += 1
            order.last[i] = sig.now
            order.touch(k)
            return True
        if order.cap:
            order.add(k, sig.fresh(k), k in sig.tail)
            if len(order) > order.cap:
                for v in order.victims(self.rule, len(order) - order.cap, sig.now, lhd, 1):
                    sig.end(v, order.drop(v))
        return False


class _Chooser:
    """The miniatures and the ranking they choose, shared by every tier. The lhd miniature
    also learns the densities the full cache ranks by (ages and gaps scaled by the rate)."""

    __slots__ = ("rate", "threshold", "scale", "rules", "minis", "lhd", "score", "inc", "growth", "rule", "switches")

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
        # a block is sampled when (block * _HASH) mod 2^32 < threshold: a 1/rate share
        self.threshold = (1 << 32) // self.rate
        learner = [m.sig.lhd for m in self.minis if m.sig.lhd is not None]
        self.lhd: _LHD = learner[0] if learner else _LHD(cap)
        self.score = [0.0] * len(self.rules)
        self.inc = 1.0
        self.growth = 1.0 + 1.0 / max(1024, _MINI_WINDOW * cap)
        self.rule = self.rules[0]
        self.switches = 0

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
            self.switches += 1


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
        self.order = _Order(self.capacity, (self.seed, 0))
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

    def record(self, key: int) -> tuple[int, int, int] | None:
        """(uses, first use, last use) of ``key`` if this tier holds it."""
        return self.order.record(key) if key in self.order.pos else None

    # --- the clock, the miniatures and the signals --------------------------------------
    def _tick(self, k: int) -> None:
        self.sig.now += 1
        ch = self.chooser
        if (k * _HASH) & 0xFFFFFFFF < ch.threshold:
            ch.feed(k)

    def observe(self, keys: Sequence[int], new: bool) -> None:
        """Tier 0 sees every access of the hierarchy once: the clock, the miniatures, and the
        records of the blocks some tier holds (a use)."""
        sig = self.sig
        sig.moving.clear()  # (a hierarchy operation's moves complete within it)
        orders = [p.order for p in self.peers if isinstance(p, Hotness)]
        for k in keys:
            self._tick(k)
            for o in orders:
                i = o.pos.get(k)
                if i is not None:
                    o.n[i] += 1
                    o.last[i] = sig.now

    # --- one tier ---------------------------------------------------------------------
    def __contains__(self, key: int) -> bool:
        return key in self.order.pos

    def __len__(self) -> int:
        return len(self.order.arr)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.lru)

    def _rank(self) -> int:
        rule = self.chooser.rule
        self.order.use_heap(rule == 1)
        return rule

    def touch(self, key: int) -> None:
        self._rank()
        self.order.touch(key)

    def _entering(self, k: int) -> tuple[int, int, int]:
        """The record of a block this tier admits: moving from another tier, copied from a
        tier that keeps a copy (inclusive), or a miss."""
        sig = self.sig
        r = sig.moving.pop(k, None)
        if r is not None:
            return r
        if len(self.peers) > 1:
            for p in self.peers:
                if p is not self and isinstance(p, Hotness) and k in p.order.pos:
                    return p.order.record(k)
        return sig.fresh(k)

    def admit(self, key: int) -> list[int]:
        order, sig, ch = self.order, self.sig, self.chooser
        if order.cap == 0:
            return [key]
        rule = self._rank()
        order.add(key, self._entering(key), key in sig.tail)
        if len(order) <= order.cap:
            return []
        out = order.victims(rule, len(order) - order.cap, sig.now, ch.lhd, ch.scale)
        alone = len(self.peers) == 1
        for v in out:
            r = order.drop(v)
            # a lifetime ends when the bottom tier drops the block and no tier holds a copy
            if self.bottom and (alone or not any(v in p for p in self.peers if p is not self)):
                sig.end(v, r)
            else:
                sig.moving[v] = r
        return out

    def remove(self, key: int) -> None:
        self.sig.moving[key] = self.order.drop(key)

    # --- single tier ------------------------------------------------------------------
    def access(self, key: int) -> bool:
        self._tick(key)
        order = self.order
        i = order.pos.get(key)
        if i is not None:
            self._rank()
            order.n[i] += 1
            order.last[i] = self.sig.now
            order.touch(key)
            return True
        self.admit(key)
        return False

    def replay(self, keys: Iterable[int]) -> int:
        # Written for speed: access() with the clock and the hit path inlined (local names).
        # The sampled accesses are found with numpy first, and the loop runs over the
        # stretches between them; the miniatures and the miss path are the same calls as in
        # access(), with the clock written back before them.
        keys = keys if isinstance(keys, list) else list(keys)
        sig, ch, order = self.sig, self.chooser, self.order
        pos, lru_move, slot_n, slot_last = order.pos, order.lru.move_to_end, order.n, order.last
        alone = len(self.peers) == 1 and order.cap > 0  # the miss path inlined too
        lru, arr, slot_first, slot_tail = order.lru, order.arr, order.first, order.tail
        history, tail, cap, end = sig.history, sig.tail, order.cap, sig.end
        h = (np.asarray(keys, dtype=np.int64).astype(np.uint64) * np.uint64(_HASH)) & np.uint64(0xFFFFFFFF)
        sampled = np.flatnonzero(h < ch.threshold).tolist() + [len(keys)]
        t0 = sig.now + 1  # the clock at keys[0]
        lfu = ch.rule == 1 or order.gd  # the LFU heap is (or is about to be) kept
        hits = 0
        start = 0
        for stop in sampled:
            for now, k in enumerate(keys[start:stop], t0 + start):
                i = pos.get(k)
                if i is not None:
                    hits += 1
                    if lfu:
                        self._rank()
                        slot_n[i] += 1
                        slot_last[i] = now
                        lru_move(k)
                        if order.gd:
                            order.push(k, slot_n[i])
                        lfu = ch.rule == 1 or order.gd
                    else:
                        slot_n[i] += 1
                        slot_last[i] = now
                        lru_move(k)
                    continue
                sig.now = now
                if not alone or sig.moving:
                    self.admit(k)
                    lfu = ch.rule == 1 or order.gd
                    continue
                # admit(k) for a single tier: a miss, its record from the history or new
                rule = self._rank() if lfu else ch.rule
                old = history.pop(k, None)
                r = (1, now, now) if old is None else (old[0] + 1, old[1], now)
                lru[k] = None
                pos[k] = len(arr)
                arr.append(k)
                slot_n.append(r[0])
                slot_first.append(r[1])
                slot_last.append(now)
                slot_tail.append(k in tail)
                if order.gd:
                    order.push(k, r[0])
                if len(arr) > cap:
                    for v in order.victims(rule, len(arr) - cap, now, ch.lhd, ch.scale):
                        end(v, order.drop(v))
                lfu = ch.rule == 1 or order.gd
            if stop == len(keys):
                break
            k = keys[stop]
            sig.now = t0 + stop - 1
            hits += self.access(k)  # the sampled access, as access() does it (clock included)
            lfu = ch.rule == 1 or order.gd
            start = stop + 1
        sig.now = t0 + len(keys) - 1
        return hits
