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

How it runs (written for speed; the hits are those of the access loop above, to the last
one): the miniatures never look at the full cache, so replay(keys) first runs each of them
over all the sampled accesses of ``keys`` and scores them in numpy (the same float operations
in the same order), which gives the ranking and the LHD table in force at every access; the
full cache then runs stretch by stretch under one ranking each (_Order.run, the one access
path of a single tier and of the miniatures; access(k) is replay([k])). LFU's order is kept
as buckets of equal use counts (O(1) per use); an LRU miss in a full cache puts the new block
in its victim's slot, where adding it and filling the victim's hole would put it too.

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


def _ranks(dense: np.ndarray) -> np.ndarray:
    """Each density's rank among the table's distinct values (equal densities, equal ranks):
    evictions compare ranks, exact small integers, in the order of the densities."""
    return np.unique(dense.ravel(), return_inverse=True)[1].reshape(dense.shape).astype(np.int64)


class _LHD:
    """LHD's counts and densities, learned by the lhd miniature."""

    __slots__ = ("hits", "evictions", "dense", "rank", "every", "next")

    def __init__(self, capacity: int) -> None:
        self.hits = [[0.0] * (_NB + 1) for _ in range(_NC)]
        self.evictions = [[0.0] * (_NB + 1) for _ in range(_NC)]
        # Before the first reconfiguration: density falls with age (LRU order within a class).
        self.dense = np.tile(1.0 / (_MID + 1.0), (_NC, 1))
        self.rank = _ranks(self.dense)
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
        self.rank = _ranks(dens)
        self.hits = (np.asarray(self.hits) * _DECAY).tolist()
        self.evictions = (np.asarray(self.evictions) * _DECAY).tolist()


class _Signals:
    """What the tiers of one hierarchy (or one miniature) share: the clock, the history of
    evicted blocks, the records of blocks moving between tiers, and the static tail facts.
    A resident block's record (uses, first use, last use) lives in its tier's slots."""

    __slots__ = ("history", "history_cap", "moving", "tail", "lhd", "now")

    def __init__(self, capacity: int, learn: bool = False) -> None:
        # recently evicted: key -> (n, first, last), oldest first
        self.history: OrderedDict[int, tuple[int, int, int]] = OrderedDict()
        self.history_cap = _HISTORY * max(capacity, 1)
        # blocks between two tiers within one hierarchy operation: key -> (n, first, last)
        self.moving: dict[int, tuple[int, int, int]] = {}
        self.tail: frozenset[int] | set[int] = frozenset()
        self.lhd = _LHD(capacity) if learn else None  # counts are learned by the lhd miniature
        self.now = 0

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

    def end(self, k: int, r: tuple[int, int, int], now: int) -> None:
        """``k`` leaves the cache (the hierarchy's bottom tier) at time ``now``: an LHD
        eviction, then history."""
        if self.lhd is not None:
            self.lhd.evictions[self.cls(k, r)][_bucket(now - r[2])] += 1
        h = self.history
        h[k] = r
        if len(h) > self.history_cap:
            h.popitem(last=False)

    def end_all(self, ks: list[int], rs: list[tuple[int, int, int]], now: int) -> None:
        """end() of each of ``ks`` in order. Written for speed: without LHD counts, the history
        takes them at once and then drops its oldest, which ends the same (they are resident
        blocks, none in the history, and fewer than it holds)."""
        h = self.history
        if self.lhd is not None or len(ks) > self.history_cap:
            for k, r in zip(ks, rs, strict=True):
                self.end(k, r, now)
            return
        h.update(zip(ks, rs, strict=True))
        for _ in range(len(h) - self.history_cap):
            h.popitem(last=False)


class _Order:
    """The resident blocks of one tier in every order a ranking needs: LRU order, LFU's
    frequency buckets (kept only while lfu ranks), and slots holding each block's record (uses,
    first and last use) for LHD's random draws (ranked in a few numpy ops per draw)."""

    __slots__ = ("cap", "lru", "arr", "pos", "n", "first", "last", "tail", "hv", "bk", "bmin", "binh", "rng", "gd", "batch")

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
        # LFU order (uses, then least recent first) as buckets: uses -> its blocks, least
        # recently bucketed first; a block is re-bucketed (at the end) on each use. Written for
        # speed: O(1) per use, where a heap pushed a tuple per use and skipped stale entries.
        self.hv: dict[int, int] = {}  # block -> its bucket
        self.bk: dict[int, OrderedDict[int, None]] = {}  # uses -> blocks (non-empty buckets)
        self.bmin: list[int] = []  # heap of bucket numbers (lazy: empty ones are skipped)
        self.binh: set[int] = set()  # the numbers in bmin
        self.rng = np.random.default_rng(seed)
        self.gd = False  # the buckets are kept only while lfu ranks
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
        """``k`` (re-)enters LFU bucket ``n``, as its most recent block."""
        hv, bk = self.hv, self.bk
        old = hv.get(k)
        if old is not None:
            b = bk[old]
            del b[k]
            if not b:
                del bk[old]
        hv[k] = n
        into = bk.get(n)
        if into is None:
            into = bk[n] = OrderedDict()
            if n not in self.binh:
                self.binh.add(n)
                heapq.heappush(self.bmin, n)
        into[k] = None

    def touch(self, k: int) -> None:
        self.lru.move_to_end(k)
        if self.gd:
            self.push(k, self.n[self.pos[k]])

    def drop(self, k: int) -> tuple[int, int, int]:
        """Take ``k`` out; return its record."""
        return self.drop_all((k,))[0]

    def drop_all(self, ks: Sequence[int]) -> list[tuple[int, int, int]]:
        """Take ``ks`` out, one after the other; return their records."""
        lru, pos, arr, n, first, last, tail = self.lru, self.pos, self.arr, self.n, self.first, self.last, self.tail
        out = []
        for k in ks:
            del lru[k]
            i = pos.pop(k)
            out.append((n[i], first[i], last[i]))
            j = len(arr) - 1
            if i != j:  # the last slot fills the hole
                moved = arr[j]
                arr[i], n[i], first[i], last[i], tail[i] = moved, n[j], first[j], last[j], tail[j]
                pos[moved] = i
            arr.pop()
            n.pop()
            first.pop()
            last.pop()
            tail.pop()
            if self.gd:
                b = self.hv.pop(k, None)  # (None: the LFU victim, already taken out of its bucket)
                if b is not None:
                    bucket = self.bk[b]
                    del bucket[k]
                    if not bucket:
                        del self.bk[b]
        return out

    def use_heap(self, on: bool) -> None:
        """Start (built from the residents, least recent first) or stop keeping LFU's buckets."""
        if on == self.gd:
            return
        self.gd = on
        self.hv, self.bk, self.bmin, self.binh = {}, {}, [], set()
        if on:
            n, pos = self.n, self.pos
            for k in self.lru:
                self.push(k, n[pos[k]])

    def victims(self, rule: int, need: int, now: int, rank: np.ndarray, scale: int) -> list[int]:
        """Blocks to evict: ``need`` of them (lru, lfu), or for lhd at least ``need``: the
        lowest densities (``rank``: their ranks, _LHD.rank) among _SAMPLE random residents per
        block freed (ties: the first drawn). The one victim choice of every path (single
        tier, miniatures, tiers; run() inlines lru's: the least recent block)."""
        if rule == 0:
            it = iter(self.lru)
            return [next(it) for _ in range(need)]
        if rule == 1:
            bk, bmin, hv = self.bk, self.bmin, self.hv
            out: list[int] = []
            while len(out) < need:
                while bmin[0] not in bk:  # (an emptied bucket)
                    self.binh.discard(heapq.heappop(bmin))
                b = bk[bmin[0]]
                k = b.popitem(last=False)[0]
                if not b:
                    del bk[bmin[0]]
                del hv[k]
                out.append(k)
            return out
        arr = self.arr
        size = len(arr)
        take = max(need, min(self.batch, size // 4))
        draws = _SAMPLE * take
        idx = self.rng.integers(0, size, size=draws)
        n = np.frombuffer(self.n, dtype=np.int64)[idx]  # (the views are gone on return: the
        last = np.frombuffer(self.last, dtype=np.int64)[idx]  # arrays may grow again)
        first = np.frombuffer(self.first, dtype=np.int64)[idx]
        is_tail = np.frombuffer(self.tail, dtype=np.int8)[idx]
        gap = (last - first) // (np.maximum(n - 1, 1) * scale)
        cls = np.where(n == 1, 1 - is_tail, 2 + _bit_length(gap) // 2)
        age = (now - last) // scale
        bits = _bit_length(age)
        bucket = np.where(age < 8, age, (bits - 3) * 4 + ((age >> np.maximum(bits - 3, 0)) & 3) + 4)
        # Written for speed: one int64 per draw, (density rank, draw number), all distinct: the
        # order of a stable sort by density. Only the smallest few are sorted (a partition
        # first); the draws can repeat a slot, so when those hold fewer than ``take``
        # distinct slots, all are sorted.
        key = rank[cls, np.minimum(bucket, _NB)] * draws + np.arange(draws)
        few = 2 * take
        part = np.sort(np.partition(key, few - 1)[:few]) if few < draws else np.sort(key)
        while True:
            out, seen = [], set()
            for i in idx[part % draws].tolist():  # lowest first, distinct slots
                if i not in seen:
                    seen.add(i)
                    out.append(arr[i])
                    if len(out) == take:
                        return out
            if len(part) == draws:  # (all of them hold fewer distinct slots)
                return out
            part = np.sort(key)

    def run(self, sig: _Signals, keys: list[int], a: int, b: int, rule: int, rank: np.ndarray, scale: int,
            misses: list[int]) -> None:
        """Accesses ``keys[a:b]`` on this cache alone (a single tier, or a miniature), ranked by
        one rule with one density table; appends the clock of each miss to ``misses``. The
        one access path of a single tier and of the miniatures (a miss stores the block, then
        evicts while over capacity -- under lhd possibly the block itself). The learner (the
        lhd miniature, ``sig.lhd``) counts each hit by class and age before it."""
        now0 = sig.now + 1
        sig.now += b - a
        cap = self.cap
        if cap == 0:
            misses.extend(range(now0, now0 + b - a))
            return
        # Written for speed: local names; the record of a hit updated in place
        pos, arr, lru = self.pos, self.arr, self.lru
        get, move, miss = pos.get, lru.move_to_end, misses.append
        slot_n, slot_first, slot_last, slot_tail = self.n, self.first, self.last, self.tail
        hpop, tails, end_all, victims, drop_all = sig.history.pop, sig.tail, sig.end_all, self.victims, self.drop_all
        lhd, lfu = sig.lhd, self.gd
        learn = lhd is not None
        if rule == 0 and not lfu and not learn:
            self._run_lru(sig, keys[a:b], now0, misses)
            return
        for now, k in enumerate(keys[a:b], now0):
            i = get(k)
            if i is not None:
                if learn:
                    n = slot_n[i]
                    c = 1 - slot_tail[i] if n == 1 else 2 + ((slot_last[i] - slot_first[i]) // (n - 1)).bit_length() // 2
                    lhd.hits[c][_bucket(now - slot_last[i])] += 1  # type: ignore[union-attr]
                slot_n[i] += 1
                slot_last[i] = now
                move(k)
                if lfu:
                    self.push(k, slot_n[i])
                continue
            miss(now)
            old = hpop(k, None)
            pos[k] = len(arr)
            arr.append(k)
            lru[k] = None
            if old is None:
                slot_n.append(1)
                slot_first.append(now)
            else:
                slot_n.append(old[0] + 1)
                slot_first.append(old[1])
            slot_last.append(now)
            slot_tail.append(k in tails)
            if lfu:
                self.push(k, slot_n[-1])
            if len(arr) > cap:
                out = victims(rule, len(arr) - cap, now, rank, scale)
                end_all(out, drop_all(out), now)


    def _run_lru(self, sig: _Signals, keys: list[int], now0: int, misses: list[int]) -> None:
        """run() under lru, not learning: written for speed. A miss in a full cache evicts
        the least recent block and its record goes to the history; the new block takes the
        victim's slot, where adding it at the end and filling the victim's hole with the last
        slot (drop) would put it too (the slots stay as LHD's draws expect them)."""
        pos, arr, lru, cap = self.pos, self.arr, self.lru, self.cap
        get, move, pop, miss = pos.get, lru.move_to_end, lru.popitem, misses.append
        slot_n, slot_first, slot_last, slot_tail = self.n, self.first, self.last, self.tail
        history, tails, hcap = sig.history, sig.tail, sig.history_cap
        hpop, hdrop = history.pop, history.popitem
        for now, k in enumerate(keys, now0):
            i = get(k)
            if i is not None:
                slot_n[i] += 1
                slot_last[i] = now
                move(k)
                continue
            miss(now)
            old = hpop(k, None)
            if len(arr) < cap:  # (lhd left room: fill it)
                self.add(k, (1, now, now) if old is None else (old[0] + 1, old[1], now), k in tails)
                continue
            v = pop(False)[0]
            i = pos.pop(v)
            history[v] = (slot_n[i], slot_first[i], slot_last[i])  # (end: the lru ranking learns nothing)
            if len(history) > hcap:
                hdrop(False)
            lru[k] = None
            pos[k] = i
            arr[i] = k
            if old is None:
                slot_n[i] = 1
                slot_first[i] = now
            else:
                slot_n[i] = old[0] + 1
                slot_first[i] = old[1]
            slot_last[i] = now
            slot_tail[i] = k in tails


def _bit_length(x: np.ndarray) -> np.ndarray:
    """int.bit_length of each non-negative value (exact below 2^53; frexp(0) gives 0)."""
    return np.frexp(x.astype(np.float64))[1]


class _Mini:
    """One ranking on a miniature cache fed the sampled blocks."""

    __slots__ = ("rule", "sig", "order")

    def __init__(self, rule: int, capacity: int, seed: int) -> None:
        self.rule = rule
        self.sig = _Signals(capacity, learn=rule == 2)
        self.order = _Order(capacity, seed)
        self.order.gd = rule == 1

    def run(self, keys: list[int]) -> tuple[list[int], list[tuple[int, np.ndarray]]]:
        """Accesses ``keys`` (sampled ones); returns the positions of the misses and, for the
        learner, the new density table at each reconfiguration (from this position on)."""
        sig, order, lhd = self.sig, self.order, self.sig.lhd
        base = sig.now + 1
        misses: list[int] = []
        tables: list[tuple[int, np.ndarray]] = []
        a = 0
        while a < len(keys):
            b = len(keys)
            if lhd is not None:  # reconfigure when the clock reaches lhd.next, before that access
                if sig.now + 1 >= lhd.next:
                    lhd.reconfigure()
                    lhd.next += lhd.every
                    tables.append((a, lhd.rank))
                b = min(b, a + lhd.next - sig.now - 1)
            order.run(sig, keys, a, b, self.rule, lhd.rank if lhd is not None else _NO_TABLE, 1, misses)
            a = b
        return [t - base for t in misses], tables


_NO_TABLE = np.zeros((0, 0), dtype=np.int64)  # the lru and lfu miniatures rank without densities


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

    def _choose(self, hit: np.ndarray) -> list[tuple[int, int]]:
        """The scores after each sampled access (``hit``: miniature x access), each access
        weighing 1 + 1/W more than the one before; after each, the best miniature's ranking is
        chosen when it beats the one in use. Returns (access, new ranking) at each switch.

        Written for speed, in numpy, with Python's float operations in the same order: the
        weights by a sequential product, each score by a sequential sum (adding 0.0 for a
        miss changes nothing), the renormalisation when the weight passes 1e100 before the
        choice at that access."""
        score = np.asarray(self.score, dtype=np.float64)
        inc, growth, rules = self.inc, self.growth, self.rules
        cur = rules.index(self.rule)
        picks: list[tuple[int, int]] = []
        j0, total = 0, hit.shape[1]
        while j0 < total:
            size = min(total - j0, 1 << 16)
            with np.errstate(over="ignore"):  # (past 1e100 the rest is not used)
                incs = np.multiply.accumulate(np.concatenate(([inc], np.full(size, growth))))
            over = np.flatnonzero(incs[1:] > 1e100)  # (incs[t + 1]: the weight after access t)
            size = int(over[0]) + 1 if len(over) else size
            s = np.add.accumulate(np.concatenate((score[:, None], hit[:, j0:j0 + size] * incs[:size]), axis=1), axis=1)[:, 1:]
            inc = float(incs[size])
            if inc > 1e100:  # renormalise the growing weights
                s[:, -1] /= inc
                inc = 1.0
            best, top = s.argmax(axis=0), s.max(axis=0)
            x = 0
            while True:
                beat = np.flatnonzero(top[x:] > s[cur, x:])
                if not len(beat):
                    break
                x += int(beat[0])
                cur = int(best[x])
                picks.append((j0 + x, rules[cur]))
                x += 1
            score = s[:, -1].copy()
            j0 += size
        self.switches += len(picks)
        self.score, self.inc, self.rule = score.tolist(), inc, rules[cur]
        return picks

    def run(self, keys: list[int]) -> list[tuple[int, int, np.ndarray]]:
        """The sampled accesses of ``keys`` go to every miniature (they never look at the full
        cache, so they run first, each over all of them); the best one's ranking is chosen after
        each. Returns what the full cache ranks by over ``keys``: (from this position on,
        ranking, density table), from position 0."""
        events = [(0, self.rule, self.lhd.rank)]
        if not self.minis or not keys:
            return events
        thr = self.threshold
        if len(keys) < 256:  # (a request, or access(k): numpy's start-up would dominate)
            at = [j for j, k in enumerate(keys) if (k * _HASH) & 0xFFFFFFFF < thr]
        else:
            h = (np.asarray(keys, dtype=np.int64).astype(np.uint64) * np.uint64(_HASH)) & np.uint64(0xFFFFFFFF)
            at = np.flatnonzero(h < thr).tolist()
        if not at:
            return events
        skeys = [keys[s] for s in at]
        hit = np.ones((len(self.minis), len(skeys)), dtype=bool)
        tables: list[tuple[int, np.ndarray]] = []
        for x, m in enumerate(self.minis):
            misses, t = m.run(skeys)
            hit[x, misses] = False
            tables += t
        picks = self._choose(hit)
        # merged in order of position: a new table and a new ranking may start at one access
        rule, table = events[0][1], events[0][2]
        changes = sorted([(j, 0, r) for j, r in picks] + [(j, 1, d) for j, d in tables], key=lambda c: (c[0], c[1]))
        for j, what, v in changes:
            if what == 0:
                rule = v  # type: ignore[assignment]
            else:
                table = v  # type: ignore[assignment]
            if events[-1][0] == at[j]:
                events[-1] = (at[j], rule, table)
            else:
                events.append((at[j], rule, table))
        return events


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
    def observe(self, keys: Sequence[int], new: bool) -> None:
        """Tier 0 sees every access of the hierarchy once: the clock, the miniatures, and the
        records of the blocks some tier holds (a use)."""
        sig = self.sig
        sig.moving.clear()  # (a hierarchy operation's moves complete within it)
        orders = [p.order for p in self.peers if isinstance(p, Hotness)]
        now = sig.now
        for k in keys:
            now += 1
            for o in orders:
                i = o.pos.get(k)
                if i is not None:
                    o.n[i] += 1
                    o.last[i] = now
        sig.now = now
        self.chooser.run(list(keys))  # (the tiers act after the whole request: the final choice)

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
        out = order.victims(rule, len(order) - order.cap, sig.now, ch.lhd.rank, ch.scale)
        alone = len(self.peers) == 1
        for v in out:
            r = order.drop(v)
            # a lifetime ends when the bottom tier drops the block and no tier holds a copy
            if self.bottom and (alone or not any(v in p for p in self.peers if p is not self)):
                sig.end(v, r, sig.now)
            else:
                sig.moving[v] = r
        return out

    def remove(self, key: int) -> None:
        self.sig.moving[key] = self.order.drop(key)

    # --- single tier ------------------------------------------------------------------
    def access(self, key: int) -> bool:
        return self.replay([key]) == 1

    def replay(self, keys: Iterable[int]) -> int:
        """Single tier: the miniatures run first over the sampled accesses (they never look at
        this cache), then this cache runs stretch by stretch, each under the ranking and the
        density table chosen before its first access. A tier of a hierarchy: as the hierarchy
        does it (observe, then a hit touches and a miss admits), one access at a time."""
        keys = keys if isinstance(keys, list) else list(keys)
        sig, order = self.sig, self.order
        if len(self.peers) > 1:
            hits = 0
            for k in keys:
                self.observe([k], False)
                if k in order.pos:
                    self.touch(k)
                    hits += 1
                else:
                    self.admit(k)
            return hits
        events = self.chooser.run(keys)
        misses: list[int] = []
        for x, (a, rule, rank) in enumerate(events):
            b = events[x + 1][0] if x + 1 < len(events) else len(keys)
            if b > a:
                order.use_heap(rule == 1)
                order.run(sig, keys, a, b, rule, rank, self.chooser.scale, misses)
        return len(keys) - len(misses)
