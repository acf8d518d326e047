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
over all the sampled accesses of ``keys`` and scores them in one compiled loop (choose), which
gives the ranking and the LHD table in force at every access; the full cache then runs
stretch by stretch under one ranking each. The state (orders, history,
LFU's heap) lives in arrays and every step is a compiled kernel (numba,
kvsim/policy/_hotness_jit.py): _hotness_jit.run is the one access loop of a single tier and
of the miniatures (access(k) is replay([k])), and a tier of a hierarchy calls the same add,
touch, victims and drop kernels, block by block (a tier above the bottom admits a batch of
blocks in one call that runs them in turn: admit_batch). LHD's candidates are drawn by numpy's
default generator stepped in the kernel (the same numbers as ``rng.integers``); an LRU miss
in a full cache puts the new block in its victim's slot, where adding it and filling the
victim's hole would put it too.

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

from collections.abc import Container, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from kvsim.policy.base import EvictionPolicy
from kvsim.ranges import OneOf, Seed

if TYPE_CHECKING:
    from kvsim.policy import _hotness_jit as jit
else:

    class _Kernels:
        """The compiled kernels, imported on first use: importing numba and its cache takes
        about 2 s, which every ``python -m kvsim`` would pay otherwise."""

        def __getattr__(self, name: str) -> Any:
            from kvsim.policy import _hotness_jit

            globals()["jit"] = _hotness_jit
            return getattr(_hotness_jit, name)

    jit = _Kernels()

RULES = ("lru", "lfu", "lhd")
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
        self.hits = np.zeros((_NC, _NB + 1))  # (the kernels add to them in place)
        self.evictions = np.zeros((_NC, _NB + 1))
        # Before the first reconfiguration: density falls with age (LRU order within a class).
        self.dense = np.tile(1.0 / (_MID + 1.0), (_NC, 1))
        self.rank = _ranks(self.dense)
        self.every = max(16384, capacity)
        self.next = self.every

    def reconfigure(self) -> None:
        h = self.hits
        e = h + self.evictions
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
        self.hits *= _DECAY
        self.evictions *= _DECAY


class _History:
    """A read-only view of a history (tests and checks): key -> (uses, first, last), oldest first."""

    __slots__ = ("sig",)

    def __init__(self, sig: _Signals) -> None:
        self.sig = sig

    def __len__(self) -> int:
        return int(self.sig.hm[jit.H_COUNT])

    def __iter__(self) -> Iterator[int]:
        return iter(self.keys())

    def keys(self) -> list[int]:
        return jit.hist_keys(self.sig.h, self.sig.hm).tolist()

    def __getitem__(self, k: int) -> tuple[int, int, int]:
        e = jit.find(self.sig.ht, k)
        if e < 0:
            raise KeyError(k)
        h = self.sig.h
        return (int(h[e, jit.H_N]), int(h[e, jit.H_FIRST]), int(h[e, jit.H_LAST]))


_NO_COUNTS = np.zeros((0, _NB + 1))  # a cache that does not learn LHD's counts


class _Signals:
    """What the tiers of one hierarchy (or one miniature) share: the clock, the history of
    evicted blocks (compiled arrays, _hotness_jit), the records of blocks moving between
    tiers, and the static tail facts. A resident block's record (uses, first use, last use)
    lives in its tier's slots."""

    __slots__ = ("h", "ht", "hm", "history_cap", "moving", "tail", "tails", "lhd", "now")

    def __init__(self, capacity: int, learn: bool = False) -> None:
        # recently evicted: key -> (n, first, last), oldest first, at most history_cap
        self.history_cap = _HISTORY * max(capacity, 1)
        self.h, self.ht, self.hm = jit.history_arrays(self.history_cap)
        # blocks between two tiers within one hierarchy operation: key -> (n, first, last)
        self.moving: dict[int, tuple[int, int, int]] = {}
        self.tail: frozenset[int] = frozenset()
        self.tails = jit.table(0)  # the same set, as a hash table the kernels read
        self.lhd = _LHD(capacity) if learn else None  # counts are learned by the lhd miniature
        self.now = 0

    @property
    def history(self) -> _History:
        return _History(self)

    def set_tail(self, tail: frozenset[int]) -> None:
        self.tail = tail
        self.tails = jit.table(len(tail))
        jit.fill_table(self.tails, np.fromiter(tail, dtype=np.int64, count=len(tail)))

    def fresh(self, k: int) -> tuple[int, int, int]:
        """The record of a block used now that no tier holds (a miss): from the history, or new."""
        n, first, _ = jit.hist_pop(self.h, self.ht, self.hm, k)
        now = self.now
        return (1, now, now) if n == 0 else (n + 1, first, now)

    def end(self, k: int, r: tuple[int, int, int, int], now: int) -> None:
        """``k`` (record ``r``: uses, first, last, tail) leaves the cache (the hierarchy's
        bottom tier) at time ``now``: an LHD eviction, then history."""
        ev = self.lhd.evictions if self.lhd is not None else _NO_COUNTS
        jit.end(self.h, self.ht, self.hm, k, r[0], r[1], r[2], r[3], now, ev)


class _Order:
    """The resident blocks of one tier (or one miniature) in every order a ranking needs, in
    compiled arrays (_hotness_jit): LRU order, LFU's heap (kept only while lfu ranks), and
    slots holding each block's record (uses, first and last use, tail) for LHD's random draws.

    ``held`` mirrors the residents in a dict while ``synced`` (written for speed: a tier of a
    hierarchy is asked ``key in`` for every block and tier of every lookup, and a dict answers
    in a tenth of a compiled ``find``'s call; add and drop keep it, a compiled ``run`` leaves
    it stale until :meth:`resync`)."""

    __slots__ = ("cap", "s", "t", "m", "c", "rng", "held", "synced", "heap_on", "batch", "_out", "_idx", "_key",
                 "_recs")

    def __init__(self, capacity: int, seed: int | tuple[int, int]) -> None:
        self.cap = capacity
        # LHD frees this many slots per draw (the cache runs that many blocks below capacity
        # at most; written for speed: one draw serves several misses)
        self.s, self.t, self.m, self.c = jit.order_arrays(capacity, min(_BATCH, max(1, capacity // 256)))
        self.rng = jit.rng_state(seed)  # (numpy's default_rng(seed), stepped by the kernels)
        self.held: dict[int, None] = {}
        self.synced = True
        # Written for speed, per admit and touch: whether LFU's heap is kept, as the kernels
        # see it (a Python bool to skip a no-op call), and victims' scratch arrays, kept
        self.heap_on = bool(self.m[jit.GD])
        self.batch = int(self.m[jit.BATCH])
        self._out = self._idx = self._key = np.empty(0, dtype=np.int64)
        self._recs = np.empty((0, 4), dtype=np.int64)

    def resync(self) -> None:
        """``held`` made the residents again, in place (its holders keep the same object)."""
        self.held.clear()
        self.held.update(dict.fromkeys(self.keys()))
        self.synced = True

    def __len__(self) -> int:
        return len(self.held) if self.synced else int(self.m[jit.SIZE])

    def __contains__(self, k: int) -> bool:
        if self.synced:
            return k in self.held
        return bool(jit.find(self.t, k) >= 0)

    def keys(self) -> list[int]:
        """The residents, least recent first."""
        return jit.lru_keys(self.s, self.m).tolist()

    @property
    def gd(self) -> bool:
        """Whether LFU's heap is kept."""
        return bool(self.m[jit.GD])

    def add(self, k: int, r: tuple[int, int, int], tail: bool) -> None:
        jit.add(self.s, self.t, self.m, self.c, k, r[0], r[1], r[2], int(tail))
        if self.synced:
            self.held[k] = None

    def record(self, k: int) -> tuple[int, int, int]:
        i = jit.find(self.t, k)
        s = self.s
        return (int(s[i, jit.N]), int(s[i, jit.FIRST]), int(s[i, jit.LAST]))

    def touch(self, k: int) -> None:
        jit.touch(self.s, self.t, self.m, k)

    def drop(self, k: int) -> tuple[int, int, int, int]:
        """Take ``k`` out; return its record (uses, first, last, tail). KeyError if absent,
        as a dict (and LRU's ``remove``) says."""
        rec = jit.drop(self.s, self.t, self.m, self.c, k)
        if rec[0] < 0:
            raise KeyError(k)
        if self.synced:
            del self.held[k]
        return rec

    def use_heap(self, on: bool) -> None:
        """Start (built from the residents, least recent first) or stop keeping LFU's heap."""
        if on != self.heap_on:
            jit.use_heap(self.s, self.m, on)
            self.heap_on = on

    def set_scale(self, scale: int) -> None:
        """LHD's classes and ages in units of ``scale`` accesses (a power of two): the full
        cache ranks by the densities its lhd miniature learns, whose clock runs 1/scale as fast."""
        jit.set_shift(self.s, self.m, self.c, scale.bit_length() - 1)

    def _scratch(self, need: int) -> None:
        """victims' output and scratch arrays, for ``need`` blocks or a batch, kept."""
        most = max(need, self.batch)
        if len(self._out) < most:
            self._out = np.empty(most, dtype=np.int64)
            self._idx, self._key = np.empty(jit.SAMPLE * most, dtype=np.int64), np.empty(jit.SAMPLE * most, dtype=np.int64)
            self._recs = np.empty((most, 4), dtype=np.int64)

    def admit(self, k: int, r: tuple[int, int, int], tail: bool, rule: int, now: int,
              rank: np.ndarray) -> tuple[list[int], list[list[int]]]:
        """add, then over capacity victims and their drops (jit.admit: those same kernels, in
        one call); returns the blocks that left and their records (uses, first, last, tail)."""
        self._scratch(len(self) + 1 - self.cap)
        got = jit.admit(self.s, self.t, self.m, self.c, k, r[0], r[1], r[2], int(tail), rule, now, rank, self.rng,
                        self._out, self._idx, self._key, self._recs)
        if not got:  # (written for speed: most admissions evict nothing)
            if self.synced:
                self.held[k] = None
            return [], []
        out = self._out[:got].tolist()
        if self.synced:
            held = self.held
            held[k] = None
            for v in out:
                del held[v]
        return out, self._recs[:got].tolist()

    def admit_batch(self, ks: list[int], ents: np.ndarray, tails: np.ndarray, rule: int, now: int,
                    rank: np.ndarray) -> tuple[list[int], list[list[int]]]:
        """``admit`` of each of ``ks`` in turn, records ``ents`` and tail flags ``tails``
        (jit.admit_batch: the same kernels, in one call); returns every block that left, in
        turn, and their records."""
        n = len(ks)
        self._scratch(n + self.batch + max(0, len(self) + 1 - self.cap))  # (room for every victim)
        ends = np.empty(n, dtype=np.int64)
        got = jit.admit_batch(self.s, self.t, self.m, self.c, np.asarray(ks, dtype=np.int64), ents, tails, rule,
                              now, rank, self.rng, self._out, self._idx, self._key, self._recs, ends)
        out = self._out[:got].tolist()
        if self.synced:  # the mirror kept in the same order: each block in, then what it pushed out
            held = self.held
            j = 0
            for k, e in zip(ks, ends.tolist(), strict=True):
                held[k] = None
                while j < e:
                    del held[out[j]]
                    j += 1
        return out, self._recs[:got].tolist()

    def victims(self, rule: int, need: int, now: int, rank: np.ndarray) -> list[int]:
        """Blocks to evict (jit.victims: the one victim choice of every path)."""
        self._scratch(need)
        out, idx, key = self._out, self._idx, self._key
        got = jit.victims(self.s, self.m, self.c, rule, need, now, rank, self.rng, out, idx, key)
        return out[:got].tolist()

    def run(self, sig: _Signals, keys: np.ndarray, rule: int, rank: np.ndarray, misses: np.ndarray) -> int:
        """Accesses ``keys`` on this cache alone (a single tier, or a miniature), ranked by one
        rule with one density table (jit.run: the one access path of a single tier and of
        the miniatures); writes the position of each miss into ``misses`` when it is long
        enough; returns the number of misses."""
        lhd = sig.lhd
        hits, ev = (lhd.hits, lhd.evictions) if lhd is not None else (_NO_COUNTS, _NO_COUNTS)
        nm = jit.run(self.s, self.t, self.m, self.c, sig.h, sig.ht, sig.hm, sig.tails, keys, sig.now, rule, rank,
                     hits, ev, self.rng, misses)
        sig.now += len(keys)
        self.synced = False
        return int(nm)


class _Mini:
    """One ranking on a miniature cache fed the sampled blocks."""

    __slots__ = ("rule", "sig", "order")

    def __init__(self, rule: int, capacity: int, seed: int) -> None:
        self.rule = rule
        self.sig = _Signals(capacity, learn=rule == 2)
        self.order = _Order(capacity, seed)
        self.order.use_heap(rule == 1)

    def run(self, keys: Sequence[int] | np.ndarray,
            misses: np.ndarray | None = None) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """Accesses ``keys`` (sampled ones); returns the positions of the misses (written into
        ``misses`` when given, at least as long as ``keys``) and, for the learner, the new
        density table at each reconfiguration (from this position on)."""
        keys = np.asarray(keys, dtype=np.int64)
        sig, order, lhd = self.sig, self.order, self.sig.lhd
        if misses is None:
            misses = np.empty(len(keys), dtype=np.int64)
        nm = 0
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
            m = order.run(sig, keys[a:b], self.rule, lhd.rank if lhd is not None else _NO_TABLE, misses[nm:])
            if a:
                misses[nm:nm + m] += a
            nm += m
            a = b
        return misses[:nm], tables


_NO_TABLE = np.zeros((0, 0), dtype=np.int64)  # the lru and lfu miniatures rank without densities
_NO_MISSES = np.zeros(0, dtype=np.int64)  # the full cache counts its misses only


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
        # a block is sampled when (block * jit.HASH) mod 2^32 < threshold: a 1/rate share
        self.threshold = (1 << 32) // self.rate
        learner = [m.sig.lhd for m in self.minis if m.sig.lhd is not None]
        self.lhd: _LHD = learner[0] if learner else _LHD(cap)
        self.score = np.zeros(len(self.rules))  # each miniature's, updated in place by jit.choose
        self.inc = 1.0
        self.growth = 1.0 + 1.0 / max(1024, _MINI_WINDOW * cap)
        self.rule = self.rules[0]
        self.switches = 0

    def _choose(self, miss: np.ndarray, nmiss: np.ndarray, total: int) -> list[tuple[int, int]]:
        """The scores after each of ``total`` sampled accesses (miniature ``x`` misses at
        ``miss[x, :nmiss[x]]``, increasing, and hits at the others), each access weighing
        1 + 1/W more than the one before; after each, the best miniature's ranking is chosen
        when it beats the one in use. Returns (access, new ranking) at each switch
        (jit.choose: one compiled loop, Python's float operations in the same order)."""
        score = self.score = np.asarray(self.score, dtype=np.float64)  # (no copy but where a list was set)
        at, x = np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int64)
        got, inc, cur = jit.choose(score, self.inc, self.growth, self.rules.index(self.rule), total, miss, nmiss, at, x)
        rules = self.rules
        picks = [(j, rules[c]) for j, c in zip(at[:got].tolist(), x[:got].tolist(), strict=True)]
        self.switches += got
        self.inc, self.rule = float(inc), rules[cur]
        return picks

    def run(self, keys: np.ndarray, events: bool = True) -> list[tuple[int, int, np.ndarray]]:
        """The sampled accesses of ``keys`` go to every miniature (they never look at the full
        cache, so they run first, each over all of them); the best one's ranking is chosen after
        each. Returns what the full cache ranks by over ``keys``: (from this position on,
        ranking, density table), from position 0; ``events=False``: [] (a hierarchy's tiers
        act after the whole request, by the final choice)."""
        out = [(0, self.rule, self.lhd.rank)] if events else []
        if not self.minis or not len(keys):
            return out
        pos = np.empty(len(keys), dtype=np.int64)
        ns = jit.sample(keys, self.threshold, pos)
        if not ns:
            return out
        sampled = pos[:ns]
        skeys = keys[sampled]
        miss = np.empty((len(self.minis), ns), dtype=np.int64)
        nmiss = np.empty(len(self.minis), dtype=np.int64)
        tables: list[tuple[int, np.ndarray]] = []
        for x, m in enumerate(self.minis):
            misses, t = m.run(skeys, miss[x])
            nmiss[x] = len(misses)
            tables += t
        picks = self._choose(miss, nmiss, ns)
        if not events:
            return out
        # merged in order of position: a new table and a new ranking may start at one access
        at = sampled.tolist()
        rule, table = out[0][1], out[0][2]
        changes = sorted([(j, 0, r) for j, r in picks] + [(j, 1, d) for j, d in tables], key=lambda c: (c[0], c[1]))
        for j, what, v in changes:
            if what == 0:
                rule = v  # type: ignore[assignment]
            else:
                table = v  # type: ignore[assignment]
            if out[-1][0] == at[j]:
                out[-1] = (at[j], rule, table)
            else:
                out.append((at[j], rule, table))
        return out


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
        jit.warm()  # (once per process: the compiled kernels load here, not in a replay)
        bad = [r for r in rules if r not in RULES]
        if bad or not rules:
            raise ValueError(f"hotness: rules must be a non-empty subset of {list(RULES)}, got {list(rules)}")
        self.rules = [RULES.index(r) for r in dict.fromkeys(rules)]
        self.seed = int(seed)
        self.sig = _Signals(self.capacity)
        self.chooser = _Chooser(self.capacity, self.seed, self.rules)
        self.order = _Order(self.capacity, (self.seed, 0))
        self.order.set_scale(self.chooser.scale)
        self.peers: Sequence[EvictionPolicy] = (self,)
        self.bottom = True  # evictions from this tier end a block's lifetime
        self._mirrored = False  # members() handed out the residents' dict: keep it synced

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
        self.order.set_scale(self.chooser.scale)
        self.order.rng = jit.rng_state((self.seed, tier))

    def bind(self, trace: Any) -> None:
        """Static facts: which blocks were created as a request's last block."""
        ids = np.asarray(trace.hash_ids, dtype=np.int64)
        offsets = np.asarray(trace.offsets, dtype=np.int64)
        last = np.zeros(len(ids), dtype=bool)
        last[offsets[1:][np.diff(offsets) > 0] - 1] = True
        uniq, first = np.unique(ids, return_index=True)
        tail = frozenset(uniq[last[first]].tolist())
        self.sig.set_tail(tail)
        for m in self.chooser.minis:
            m.sig.set_tail(tail)

    @property
    def rule(self) -> str:
        """The ranking in use now."""
        return RULES[self.chooser.rule]

    def record(self, key: int) -> tuple[int, int, int] | None:
        """(uses, first use, last use) of ``key`` if this tier holds it."""
        return self.order.record(key) if key in self.order else None

    # --- the clock, the miniatures and the signals --------------------------------------
    def observe(self, keys: Sequence[int], new: bool) -> None:
        """Tier 0 sees every access of the hierarchy once: the clock, the miniatures, and the
        records of the blocks some tier holds (a use)."""
        sig = self.sig
        sig.moving.clear()  # (a hierarchy operation's moves complete within it)
        arr = np.asarray(keys, dtype=np.int64)
        for p in self.peers:
            if isinstance(p, Hotness):
                jit.observe(p.order.s, p.order.t, p.order.m, p.order.c, arr, sig.now)
        sig.now += len(arr)
        self.chooser.run(arr, events=False)  # (the tiers act after the whole request: the final choice)

    # --- one tier ---------------------------------------------------------------------
    def __contains__(self, key: int) -> bool:
        return key in self.order

    def members(self) -> Container[int]:
        """The residents' dict (see _Order), kept synced from now on."""
        if not self.order.synced:
            self.order.resync()
        self._mirrored = True
        return self.order.held

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.keys())

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
                if p is not self and isinstance(p, Hotness) and k in p.order:
                    return p.order.record(k)
        return sig.fresh(k)

    def admit(self, key: int) -> list[int]:
        return self.admit_many((key,))

    def admit_many(self, keys: Iterable[int]) -> list[int]:
        """Each key admitted in turn, as ``admit`` one by one (written for speed: the ranking,
        its table and the clock hold through a tier's batch; only observe changes them)."""
        order, sig = self.order, self.sig
        if order.cap == 0:
            return list(keys)
        rule = self._rank()
        rank = self.chooser.lhd.rank
        tail = sig.tail
        bottom, alone = self.bottom, len(self.peers) == 1
        ks = keys if isinstance(keys, list) else list(keys)
        if not bottom and len(ks) > 1:
            # Written for speed: above the bottom no lifetime ends, so the history is not
            # written during the batch, and every entering record (the history's, a moving
            # block's, a copy's) reads the same before the batch as at its turn: one kernel
            # call for the batch, the victims' records moving on after it. (One block: the
            # one-block kernel below, without the batch's arrays.)
            ents = np.array([self._entering(k) for k in ks], dtype=np.int64)
            tails = np.array([k in tail for k in ks], dtype=np.int64)
            out, recs = order.admit_batch(ks, ents, tails, rule, sig.now, rank)
            moving = sig.moving
            for v, r in zip(out, recs, strict=True):
                moving[v] = (r[0], r[1], r[2])
            return out
        evicted: list[int] = []
        for key in ks:
            out, recs = order.admit(key, self._entering(key), key in tail, rule, sig.now, rank)
            if not out:
                continue
            for v, r in zip(out, recs, strict=True):
                # a lifetime ends when the bottom tier drops the block and no tier holds a copy
                if bottom and (alone or not any(v in p for p in self.peers if p is not self)):
                    sig.end(v, (r[0], r[1], r[2], r[3]), sig.now)
                else:
                    sig.moving[v] = (r[0], r[1], r[2])
            evicted.extend(out)
        return evicted

    def remove(self, key: int) -> None:
        self.sig.moving[key] = self.order.drop(key)[:3]

    # --- single tier ------------------------------------------------------------------
    def access(self, key: int) -> bool:
        return self.replay([key]) == 1

    def replay(self, keys: Iterable[int]) -> int:
        """Single tier: the miniatures run first over the sampled accesses (they never look at
        this cache), then this cache runs stretch by stretch, each under the ranking and the
        density table chosen before its first access. A tier of a hierarchy: as the hierarchy
        does it (observe, then a hit touches and a miss admits), one access at a time."""
        sig, order = self.sig, self.order
        if len(self.peers) > 1:
            hits = 0
            for k in keys:
                self.observe([k], False)
                if k in order:
                    self.touch(k)
                    hits += 1
                else:
                    self.admit(k)
            return hits
        arr = np.asarray(keys if isinstance(keys, (list, np.ndarray)) else list(keys), dtype=np.int64)
        events = self.chooser.run(arr)
        misses = 0
        for x, (a, rule, rank) in enumerate(events):
            b = events[x + 1][0] if x + 1 < len(events) else len(arr)
            if b > a:
                order.use_heap(rule == 1)
                misses += order.run(sig, arr[a:b], rule, rank, _NO_MISSES)
        if self._mirrored:  # (a hierarchy's tier never gets here; correct if anything does)
            order.resync()
        return len(arr) - misses
