"""Compiled kernels of the hotness policy (kvsim/policy/hotness.py), with numba.

Why compiled: a hotness access does several times the work of an LRU access (a use count and
a time on every hit, a history of evicted blocks, LHD's 32 random candidates per eviction,
three miniature caches), and in Python each of those steps costs what LRU's whole access
costs in C (one ``OrderedDict`` operation). Written as loops over arrays and compiled, every
step is a few machine instructions, and the policy replays within a few times LRU's time.

Everything a decision depends on lives here, in arrays, and every path -- a single tier's
replay, a miniature, a tier of a hierarchy (touch, admit and remove a block; admit a batch) -- goes
through these same functions, so that the paths cannot disagree (issue 9).

Layouts (int64 arrays, so numba compiles each kernel once):

* an order (one tier's or one miniature's resident blocks): ``S[slot, field]`` (a slot's
  fields side by side), ``T`` its key -> slot hash table, ``M`` its scalars, and ``C`` what
  LHD reads of a candidate, last use << 6 | class, in 8 bytes per slot (written for speed:
  LHD reads 32 random slots per eviction, and a compact array stays in the CPU's caches). Slots 0..size-1 are the residents; the LRU order is a doubly linked list
  over the slots; LFU's order (fewest uses, then least recently (re)counted) is an indexed
  binary heap of slots keyed by (uses when counted, a counter), kept only while LFU ranks.
  Dropping a slot moves the last slot into its hole (LHD's draws pick slots: the layout is
  part of the seeded result).
* the history of evicted blocks: ``H[entry, field]`` in a FIFO list (oldest first), ``HT``
  its key -> entry table, ``HM`` its scalars; bounded, the oldest dropped.
* a hash table ``T``: ``T[i, 0]`` a key, ``T[i, 1]`` its value (-1: empty; side by side: one
  cache line per probe), linear probing over a power-of-two size at most half full,
  deletion by backward shift.
"""

from __future__ import annotations

from types import FunctionType

import numpy as np
from numba import config, njit
from numba.cpython.unsafe.numbers import leading_zeros  # (numba's clz intrinsic)

# order slot fields
KEY, N, FIRST, LAST, TAIL, CLS, PREV, NEXT, HPOS, HSEQ, HN, HEAP = range(12)
NF = 12  # (HEAP is the heap's array, indexed by heap position, not a field of the slot)
# order scalars (SHIFT: log2 of the scale its LHD classes and ages are counted in)
SIZE, HEAD, TAILP, HSIZE, SEQ, GD, CAP, BATCH, SHIFT = range(9)
NM = 9
# history entry fields and scalars
H_KEY, H_N, H_FIRST, H_LAST, H_PREV, H_NEXT = range(6)
HF = 6
H_COUNT, H_OLD, H_NEW, H_FREE, H_CAP = range(5)
HMN = 5

SAMPLE = 32  # LHD: candidates drawn per block to free
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_MHI = np.uint64(0x2360ED051FC65DA4)  # PCG64's 128-bit multiplier (numpy's default generator)
_MLO = np.uint64(0x4385DF649FCCF645)
_M32 = np.uint64(0xFFFFFFFF)
HASH = np.uint64(2654435761)  # Knuth's multiplicative hash: the miniatures' 1/R sample of block ids


def table(entries: int) -> np.ndarray:
    """An empty hash table for up to ``entries`` keys (at most half full)."""
    size = 1
    while size < 2 * max(entries, 1):
        size *= 2
    t = np.zeros((size, 2), dtype=np.int64)
    t[:, 1] = -1
    return t


def order_arrays(capacity: int, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An empty order of ``capacity`` blocks (one more slot: a block is added, then one evicted)."""
    s = np.full((capacity + 2, NF), -1, dtype=np.int64)
    m = np.zeros(NM, dtype=np.int64)
    m[HEAD] = m[TAILP] = -1
    m[CAP] = capacity
    m[BATCH] = batch
    return s, table(capacity + 2), m, np.zeros(capacity + 2, dtype=np.int64)


def history_arrays(cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An empty history of at most ``cap`` entries (one more while adding)."""
    h = np.full((cap + 1, HF), -1, dtype=np.int64)
    h[:-1, H_NEXT] = np.arange(1, cap + 1)  # the free list: every entry
    hm = np.zeros(HMN, dtype=np.int64)
    hm[H_OLD] = hm[H_NEW] = -1
    hm[H_FREE] = 0
    hm[H_CAP] = cap
    return h, table(cap + 1), hm


def rng_state(seed: object) -> np.ndarray:
    """The state of ``np.random.default_rng(seed)`` (PCG64) as the kernels step it: 128-bit
    state and increment, and the buffered half of a 64-bit output (numpy's next_uint32)."""
    st = np.random.default_rng(seed).bit_generator.state  # type: ignore[arg-type]
    lo = (1 << 64) - 1
    return np.array([st["state"]["state"] >> 64, st["state"]["state"] & lo, st["state"]["inc"] >> 64,
                     st["state"]["inc"] & lo, st["has_uint32"], st["uinteger"]], dtype=np.uint64)


# --- numpy's default generator, stepped here ---------------------------------------------
# Written for speed: LHD draws 32 random slots per eviction; numba's Generator.integers
# costs twice this. The draws equal ``np.random.default_rng(seed).integers(0, size)`` one
# after the other (tests/test_policy_hotness.py checks them against numpy).
def _mulhi(a: np.uint64, b: np.uint64) -> np.uint64:
    a0, a1, b0, b1 = a & _M32, a >> np.uint64(32), b & _M32, b >> np.uint64(32)
    p01, p10 = a0 * b1, a1 * b0
    mid = ((a0 * b0) >> np.uint64(32)) + (p01 & _M32) + (p10 & _M32)
    return a1 * b1 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (mid >> np.uint64(32))


def _next64(st: np.ndarray) -> np.uint64:
    """PCG64 (XSL-RR): the 128-bit LCG step, then the output of the new state."""
    hi, lo = st[0], st[1]
    nlo = lo * _MLO
    nhi = _mulhi(lo, _MLO) + hi * _MLO + lo * _MHI
    lo2 = nlo + st[3]
    nhi = nhi + st[2] + (np.uint64(1) if lo2 < nlo else np.uint64(0))
    st[0], st[1] = nhi, lo2
    x = nhi ^ lo2
    r = nhi >> np.uint64(58)
    return (x >> r) | (x << ((np.uint64(64) - r) & np.uint64(63)))


def _next32(st: np.ndarray) -> np.uint64:
    if st[4]:
        st[4] = 0
        return st[5]
    v = _next64(st)
    st[4] = 1
    st[5] = v >> np.uint64(32)
    return v & _M32


def draw(st: np.ndarray, size: int) -> np.int64:
    """numpy's ``integers(0, size)`` (int64, 1 <= size < 2^32): Lemire's bounded method."""
    if size == 1:
        return np.int64(0)
    excl = np.uint64(size)
    m = _next32(st) * excl
    left = m & _M32
    if left < excl:
        threshold = (_M32 - (excl - np.uint64(1))) % excl
        while left < threshold:
            m = _next32(st) * excl
            left = m & _M32
    return np.int64(m >> np.uint64(32))


def draws(st: np.ndarray, size: int, out: np.ndarray) -> None:
    for j in range(out.shape[0]):
        out[j] = draw(st, size)


# --- hash tables ------------------------------------------------------------------------
def _slot(k: int, mask: int) -> np.int64:
    # (through int64: in plain Python a negative int does not convert to uint64 directly)
    return np.int64((np.uint64(np.int64(k)) * _GOLD) >> np.uint64(32)) & mask


def find(t: np.ndarray, k: int) -> int:
    mask = t.shape[0] - 1
    i = _slot(k, mask)
    while True:
        v = t[i, 1]
        if v < 0:
            return -1
        if t[i, 0] == k:
            return v
        i = (i + 1) & mask


def _insert(t: np.ndarray, k: int, v: int) -> None:
    """Set ``k -> v`` (``k`` absent or present)."""
    mask = t.shape[0] - 1
    i = _slot(k, mask)
    while t[i, 1] >= 0 and t[i, 0] != k:
        i = (i + 1) & mask
    t[i, 0] = k
    t[i, 1] = v


def _delete(t: np.ndarray, k: int) -> None:
    mask = t.shape[0] - 1
    i = _slot(k, mask)
    while t[i, 0] != k or t[i, 1] < 0:
        i = (i + 1) & mask
    t[i, 1] = -1
    j = i
    while True:  # backward shift: close the hole for the entries probed past it
        j = (j + 1) & mask
        if t[j, 1] < 0:
            return
        h = _slot(t[j, 0], mask)
        if (i <= j and i < h <= j) or (i > j and (h > i or h <= j)):
            continue  # its home lies between the hole and it: stays
        t[i, 0] = t[j, 0]
        t[i, 1] = t[j, 1]
        t[j, 1] = -1
        i = j


def fill_table(t: np.ndarray, keys: np.ndarray) -> None:
    for k in keys:
        _insert(t, k, 1)


# --- LHD's classes and age buckets ------------------------------------------------------
# numba's count-leading-zeros intrinsic runs only compiled; as plain Python (NUMBA_DISABLE_JIT=1,
# as mutation testing runs the kernels) int.bit_length stands in for it
if config.DISABLE_JIT:  # type: ignore[attr-defined]

    def _clz(x: np.uint64) -> int:
        return 64 - int(x).bit_length()

else:
    _clz = leading_zeros  # type: ignore[assignment]


def bit_length(x: int) -> int:
    """int.bit_length of 0 <= x < 2^63 (one count-leading-zeros instruction: LHD computes
    it for each of its 32 candidates per eviction)."""
    return 64 - _clz(np.uint64(x))


def bucket(a: int) -> int:
    if a < 8:
        return a
    bl = bit_length(a)
    return (bl - 3) * 4 + ((a >> (bl - 3)) & 3) + 4


def _cls(n: int, first: int, last: int, tail: int, shift: int) -> int:
    """LHD class: 0 a new tail block, 1 a new block, else 2 + half the bits of the mean gap
    between uses (in units of 2^shift accesses)."""
    if n == 1:
        return 1 - tail
    return 2 + bit_length(((last - first) // (n - 1)) >> shift) // 2


def _set_cls(s: np.ndarray, m: np.ndarray, c: np.ndarray, i: int) -> None:
    """Written for speed: a slot's class is kept (set when its record changes), so LHD's
    candidates need no division."""
    x = _cls(s[i, N], s[i, FIRST], s[i, LAST], s[i, TAIL], m[SHIFT])
    s[i, CLS] = x
    c[i] = (s[i, LAST] << 6) | x


# --- the LRU list -----------------------------------------------------------------------
def _unlink(s: np.ndarray, m: np.ndarray, i: int) -> None:
    p, x = s[i, PREV], s[i, NEXT]
    if p >= 0:
        s[p, NEXT] = x
    else:
        m[HEAD] = x
    if x >= 0:
        s[x, PREV] = p
    else:
        m[TAILP] = p


def _append(s: np.ndarray, m: np.ndarray, i: int) -> None:
    t = m[TAILP]
    s[i, PREV] = t
    s[i, NEXT] = -1
    if t >= 0:
        s[t, NEXT] = i
    else:
        m[HEAD] = i
    m[TAILP] = i


def _to_end(s: np.ndarray, m: np.ndarray, i: int) -> None:
    if m[TAILP] != i:
        _unlink(s, m, i)
        _append(s, m, i)


# --- LFU's heap -------------------------------------------------------------------------
def _less(s: np.ndarray, a: int, b: int) -> bool:
    return s[a, HN] < s[b, HN] or (s[a, HN] == s[b, HN] and s[a, HSEQ] < s[b, HSEQ])


def _sift_up(s: np.ndarray, p: int) -> None:
    x = s[p, HEAP]
    while p > 0:
        q = (p - 1) >> 1
        y = s[q, HEAP]
        if not _less(s, x, y):
            break
        s[p, HEAP] = y
        s[y, HPOS] = p
        p = q
    s[p, HEAP] = x
    s[x, HPOS] = p


def _sift_down(s: np.ndarray, m: np.ndarray, p: int) -> None:
    size = m[HSIZE]
    x = s[p, HEAP]
    while True:
        c = 2 * p + 1
        if c >= size:
            break
        if c + 1 < size and _less(s, s[c + 1, HEAP], s[c, HEAP]):
            c += 1
        y = s[c, HEAP]
        if not _less(s, y, x):
            break
        s[p, HEAP] = y
        s[y, HPOS] = p
        p = c
    s[p, HEAP] = x
    s[x, HPOS] = p


def _push(s: np.ndarray, m: np.ndarray, i: int, n: int) -> None:
    """Slot ``i`` is (re)counted with ``n`` uses: it goes after every block counted with n."""
    s[i, HN] = n
    s[i, HSEQ] = m[SEQ]
    m[SEQ] += 1
    p = s[i, HPOS]
    if p < 0:
        p = m[HSIZE]
        m[HSIZE] += 1
        s[p, HEAP] = i
        s[i, HPOS] = p
    _sift_up(s, p)
    _sift_down(s, m, s[i, HPOS])


def _heap_remove(s: np.ndarray, m: np.ndarray, i: int) -> None:
    p = s[i, HPOS]
    s[i, HPOS] = -1
    m[HSIZE] -= 1
    last = m[HSIZE]
    if p == last:
        return
    y = s[last, HEAP]
    s[p, HEAP] = y
    s[y, HPOS] = p
    _sift_up(s, p)
    _sift_down(s, m, s[y, HPOS])


def use_heap(s: np.ndarray, m: np.ndarray, on: bool) -> None:
    """Start (built from the residents, least recent first) or stop keeping LFU's heap."""
    if on == (m[GD] == 1):
        return
    m[GD] = 1 if on else 0
    for i in range(m[SIZE]):
        s[i, HPOS] = -1
    m[HSIZE] = 0
    if on:
        i = m[HEAD]
        while i >= 0:
            _push(s, m, i, s[i, N])
            i = s[i, NEXT]


# --- an order: add, touch, drop, victims ------------------------------------------------
def add(s: np.ndarray, t: np.ndarray, m: np.ndarray, c: np.ndarray, k: int, n: int, first: int, last: int, tail: int) -> None:
    i = m[SIZE]
    m[SIZE] += 1
    s[i, KEY] = k
    s[i, N] = n
    s[i, FIRST] = first
    s[i, LAST] = last
    s[i, TAIL] = tail
    _set_cls(s, m, c, i)
    s[i, HPOS] = -1
    _append(s, m, i)
    _insert(t, k, i)
    if m[GD]:
        _push(s, m, i, n)


def touch(s: np.ndarray, t: np.ndarray, m: np.ndarray, k: int) -> None:
    i = find(t, k)
    _to_end(s, m, i)
    if m[GD]:
        _push(s, m, i, s[i, N])


def drop(s: np.ndarray, t: np.ndarray, m: np.ndarray, c: np.ndarray, k: int) -> tuple[int, int, int, int]:
    """Take ``k`` out; return its record (uses, first use, last use, tail). The last slot
    fills its hole. An absent ``k`` returns uses -1 and changes nothing (deleting it from
    the hash table would probe for ever)."""
    i = find(t, k)
    if i < 0:
        return (-1, 0, 0, 0)
    rec = (s[i, N], s[i, FIRST], s[i, LAST], s[i, TAIL])
    _unlink(s, m, i)
    if s[i, HPOS] >= 0:
        _heap_remove(s, m, i)
    _delete(t, k)
    j = m[SIZE] - 1
    if i != j:
        for f in range(HEAP):
            s[i, f] = s[j, f]
        c[i] = c[j]
        p, x = s[i, PREV], s[i, NEXT]
        if p >= 0:
            s[p, NEXT] = i
        else:
            m[HEAD] = i
        if x >= 0:
            s[x, PREV] = i
        else:
            m[TAILP] = i
        if s[i, HPOS] >= 0:
            s[s[i, HPOS], HEAP] = i
        _insert(t, s[i, KEY], i)
    m[SIZE] = j
    return rec


def victims(s: np.ndarray, m: np.ndarray, c: np.ndarray, rule: int, need: int, now: int, rank: np.ndarray,
            rng: np.ndarray, out: np.ndarray, idx: np.ndarray, key: np.ndarray) -> int:
    """The blocks to evict, written into ``out``; returns how many: ``need`` (lru: the least
    recent; lfu: the fewest uses, then the least recently counted, taken out of the heap), or
    for lhd at least ``need``: the lowest densities (``rank``: their ranks) among SAMPLE
    random residents per block freed, up to BATCH per draw (ties: the first drawn).
    ``out`` holds max(need, BATCH) blocks, ``idx`` and ``key`` SAMPLE times that (scratch)."""
    if rule == 0:
        i = m[HEAD]
        for x in range(need):
            out[x] = s[i, KEY]
            i = s[i, NEXT]
        return need
    if rule == 1:
        for x in range(need):
            i = s[0, HEAP]
            out[x] = s[i, KEY]
            _heap_remove(s, m, i)
        return need
    size = m[SIZE]
    take = max(need, min(m[BATCH], size // 4))
    draws = SAMPLE * take
    nb = rank.shape[1] - 1
    shift = m[SHIFT]
    for j in range(draws):
        i = draw(rng, size)
        idx[j] = i
        x = c[i]
        b = bucket((now - (x >> 6)) >> shift)
        key[j] = rank[x & 63, min(b, nb)] * draws + j  # (density rank, draw): all distinct
    few = 2 * take
    keys = key[:draws]
    part = np.sort(np.partition(keys, few - 1)[:few]) if few < draws else np.sort(keys)
    while True:
        got = 0
        for z in part:  # lowest first, distinct slots
            i = idx[z % draws]
            dup = False
            for y in range(got):
                if out[y] == i:
                    dup = True
                    break
            if not dup:
                out[got] = i
                got += 1
                if got == take:
                    break
        if got == take or len(part) == draws:
            for y in range(got):
                out[y] = s[out[y], KEY]
            return got
        part = np.sort(keys)


def admit(s: np.ndarray, t: np.ndarray, m: np.ndarray, c: np.ndarray, k: int, n: int, first: int, last: int,
          tail: int, rule: int, now: int, rank: np.ndarray, rng: np.ndarray, out: np.ndarray, idx: np.ndarray,
          key: np.ndarray, recs: np.ndarray) -> int:
    """``add``, then, over capacity, ``victims`` and the ``drop`` of each, in one call (written
    for speed: a tier of a hierarchy admits block by block, and each kernel call from Python
    costs about a microsecond). Returns how many blocks left: their keys in ``out``, their
    records (uses, first use, last use, tail) in the rows of ``recs``."""
    add(s, t, m, c, k, n, first, last, tail)
    need = m[SIZE] - m[CAP]
    if need <= 0:
        return 0
    got = victims(s, m, c, rule, need, now, rank, rng, out, idx, key)
    for x in range(got):
        r = drop(s, t, m, c, out[x])
        recs[x, 0] = r[0]
        recs[x, 1] = r[1]
        recs[x, 2] = r[2]
        recs[x, 3] = r[3]
    return got


def admit_batch(s: np.ndarray, t: np.ndarray, m: np.ndarray, c: np.ndarray, keys: np.ndarray, ents: np.ndarray,
                tails: np.ndarray, rule: int, now: int, rank: np.ndarray, rng: np.ndarray, out: np.ndarray,
                idx: np.ndarray, key: np.ndarray, recs: np.ndarray, ends: np.ndarray) -> int:
    """``admit`` of each of ``keys`` in turn (``ents[i]``: its record, uses, first use, last
    use; ``tails[i]``: created as a request's last block), in one call (written for speed: a
    tier admits a request's new blocks together, and a call from Python costs about a
    microsecond). Returns how many blocks left, all of them in turn: their keys in ``out``,
    their records in the rows of ``recs``; ``ends[i]``: how many had left after ``keys[i]``.
    ``out`` holds every block that may leave (``admit``'s room, over the whole batch)."""
    got = 0
    for i in range(len(keys)):
        got += admit(s, t, m, c, keys[i], ents[i, 0], ents[i, 1], ents[i, 2], tails[i], rule, now, rank, rng,
                     out[got:], idx, key, recs[got:])
        ends[i] = got
    return got


# --- the history of evicted blocks and LHD's eviction counts ----------------------------
def hist_pop(h: np.ndarray, ht: np.ndarray, hm: np.ndarray, k: int) -> tuple[int, int, int]:
    """``k``'s record taken out of the history: (uses, first, last), or uses 0 if absent."""
    e = find(ht, k)
    if e < 0:
        return (0, 0, 0)
    rec = (h[e, H_N], h[e, H_FIRST], h[e, H_LAST])
    p, x = h[e, H_PREV], h[e, H_NEXT]
    if p >= 0:
        h[p, H_NEXT] = x
    else:
        hm[H_OLD] = x
    if x >= 0:
        h[x, H_PREV] = p
    else:
        hm[H_NEW] = p
    h[e, H_NEXT] = hm[H_FREE]
    hm[H_FREE] = e
    hm[H_COUNT] -= 1
    _delete(ht, k)
    return rec


def hist_put(h: np.ndarray, ht: np.ndarray, hm: np.ndarray, k: int, n: int, first: int, last: int) -> None:
    """``k`` (in no tier, not in the history) enters it as the newest; the oldest leaves
    when it is over its bound."""
    e = hm[H_FREE]
    hm[H_FREE] = h[e, H_NEXT]
    h[e, H_KEY] = k
    h[e, H_N] = n
    h[e, H_FIRST] = first
    h[e, H_LAST] = last
    p = hm[H_NEW]
    h[e, H_PREV] = p
    h[e, H_NEXT] = -1
    if p >= 0:
        h[p, H_NEXT] = e
    else:
        hm[H_OLD] = e
    hm[H_NEW] = e
    hm[H_COUNT] += 1
    _insert(ht, k, e)
    if hm[H_COUNT] > hm[H_CAP]:
        hist_pop(h, ht, hm, h[hm[H_OLD], H_KEY])


def end(h: np.ndarray, ht: np.ndarray, hm: np.ndarray, k: int, n: int, first: int, last: int, tail: int,
        now: int, evictions: np.ndarray) -> None:
    """``k`` leaves the cache at ``now``: an LHD eviction (``evictions``: the learner's
    counts, empty otherwise), then the history."""
    if evictions.shape[0]:
        evictions[_cls(n, first, last, tail, 0), bucket(now - last)] += 1.0
    hist_put(h, ht, hm, k, n, first, last)


def hist_keys(h: np.ndarray, hm: np.ndarray) -> np.ndarray:
    out = np.empty(hm[H_COUNT], dtype=np.int64)
    e = hm[H_OLD]
    for x in range(hm[H_COUNT]):
        out[x] = h[e, H_KEY]
        e = h[e, H_NEXT]
    return out


def lru_keys(s: np.ndarray, m: np.ndarray) -> np.ndarray:
    out = np.empty(m[SIZE], dtype=np.int64)
    i = m[HEAD]
    for x in range(m[SIZE]):
        out[x] = s[i, KEY]
        i = s[i, NEXT]
    return out


def observe(s: np.ndarray, t: np.ndarray, m: np.ndarray, c: np.ndarray, keys: np.ndarray, now: int) -> int:
    """A use of each resident of ``keys`` at times now + 1, now + 2, ...; returns the clock."""
    for k in keys:
        now += 1
        i = find(t, k)
        if i >= 0:
            s[i, N] += 1
            s[i, LAST] = now
            _set_cls(s, m, c, i)
    return now


def set_shift(s: np.ndarray, m: np.ndarray, c: np.ndarray, shift: int) -> None:
    m[SHIFT] = shift
    for i in range(m[SIZE]):
        _set_cls(s, m, c, i)


# --- one cache alone: the access loop ---------------------------------------------------
def run(s: np.ndarray, t: np.ndarray, m: np.ndarray, c: np.ndarray, h: np.ndarray, ht: np.ndarray, hm: np.ndarray,
        tails: np.ndarray, keys: np.ndarray, now: int, rule: int, rank: np.ndarray,
        hits: np.ndarray, evictions: np.ndarray, rng: np.ndarray, misses: np.ndarray) -> int:
    """Accesses ``keys`` at times now + 1, ... on this cache alone (a single tier, or a
    miniature), ranked by one rule with one density table: a hit counts a use; a miss stores
    the block (its record from the history, or new) and evicts while over capacity -- under
    lhd possibly the block itself. The learner (``hits``/``evictions`` non-empty) counts each
    hit by class and age before it. Writes the position of each miss into ``misses`` (when it
    is long enough); returns the number of misses."""
    cap = m[CAP]
    nm = 0
    keep = misses.shape[0] > 0
    learn = hits.shape[0] > 0
    most = max(1, m[BATCH])  # (scratch for the victims: run adds one block at a time)
    out = np.empty(most, dtype=np.int64)
    idx = np.empty(SAMPLE * most, dtype=np.int64)
    key = np.empty(SAMPLE * most, dtype=np.int64)
    recs = np.empty((most, 4), dtype=np.int64)
    for x in range(keys.shape[0]):
        k = keys[x]
        now += 1
        i = find(t, k) if cap else -1
        if i >= 0:
            last = s[i, LAST]
            if learn:  # (the learner is a miniature: its class is in its own time units)
                hits[s[i, CLS], bucket(now - last)] += 1.0
            s[i, N] += 1
            s[i, LAST] = now
            _set_cls(s, m, c, i)
            _to_end(s, m, i)
            if m[GD]:
                _push(s, m, i, s[i, N])
            continue
        if keep:
            misses[nm] = x
        nm += 1
        if cap == 0:
            continue
        n, first, _ = hist_pop(h, ht, hm, k)
        n += 1
        if n == 1:
            first = now
        tail = 1 if find(tails, k) >= 0 else 0
        if rule == 0 and m[GD] == 0 and m[SIZE] == cap:
            # Written for speed: lru in a full cache; the new block takes its victim's slot,
            # where adding it and dropping the victim (the last slot fills the hole) puts it
            i = m[HEAD]
            v = s[i, KEY]
            vn, vf, vl, vt = s[i, N], s[i, FIRST], s[i, LAST], s[i, TAIL]
            _delete(t, v)
            s[i, KEY] = k
            s[i, N] = n
            s[i, FIRST] = first
            s[i, LAST] = now
            s[i, TAIL] = tail
            _set_cls(s, m, c, i)
            _to_end(s, m, i)
            _insert(t, k, i)
            end(h, ht, hm, v, vn, vf, vl, vt, now, evictions)
            continue
        add(s, t, m, c, k, n, first, now, tail)
        if m[SIZE] > cap:
            got = victims(s, m, c, rule, m[SIZE] - cap, now, rank, rng, out, idx, key)
            for y in range(got):
                r = drop(s, t, m, c, out[y])
                recs[y, 0], recs[y, 1], recs[y, 2], recs[y, 3] = r
            for y in range(got):
                end(h, ht, hm, out[y], recs[y, 0], recs[y, 1], recs[y, 2], recs[y, 3], now, evictions)
    return nm


def sample(keys: np.ndarray, threshold: int, out: np.ndarray) -> int:
    """The positions of the keys the miniatures see, ``(k * HASH) mod 2^32 < threshold`` (in
    64-bit unsigned arithmetic), into ``out``; returns how many."""
    th = np.uint64(threshold)
    n = 0
    for j in range(len(keys)):
        if (np.uint64(keys[j]) * HASH) & _M32 < th:
            out[n] = j
            n += 1
    return n


def choose(score: np.ndarray, inc: float, growth: float, cur: int, total: int, miss: np.ndarray, nmiss: np.ndarray,
           pick_at: np.ndarray, pick_x: np.ndarray) -> tuple[int, float, int]:
    """The miniatures' scores (``score``, updated in place) over their ``total`` sampled
    accesses, miniature ``x`` missing at the positions ``miss[x, :nmiss[x]]`` (increasing)
    and hitting at the others: each access weighs ``inc``, the next one ``growth`` times
    more (a sequential product); when the weight passes 1e100 the scores are divided by it
    and it starts again at 1, before that access's choice; after each access the first best
    miniature becomes ``cur`` when it scores above the one in use, and the access and the
    miniature are written to ``pick_at`` and ``pick_x``. Returns (switches, the weight,
    ``cur``)."""
    nx = len(score)
    at = np.zeros(nx, dtype=np.int64)  # each miniature's next miss
    picks = 0
    for j in range(total):
        for x in range(nx):
            if at[x] < nmiss[x] and miss[x, at[x]] == j:
                at[x] += 1
            else:
                score[x] = score[x] + inc
        inc = inc * growth
        if inc > 1e100:
            for x in range(nx):
                score[x] = score[x] / inc
            inc = 1.0
        best = 0
        for x in range(1, nx):
            if score[x] > score[best]:
                best = x
        if score[best] > score[cur]:
            cur = best
            pick_at[picks] = j
            pick_x[picks] = cur
            picks += 1
    return picks, inc, cur


# numba, applied here by assignment rather than as decorators: mutmut (tools/mutate.py) does
# not mutate decorated functions, so decorated kernels would never be mutation-tested. Every
# function of this module but the array makers in _PYTHON is compiled (cached on disk, in
# __pycache__); the small steps of the hot loops in _INLINE are inlined into their callers.
# With NUMBA_DISABLE_JIT=1 (as tools/mutate.py runs them) njit returns each function itself
# and they run as plain Python, to the same results (tests/test_policy_hotness.py).
_PYTHON = ("table", "order_arrays", "history_arrays", "rng_state", "warm")
_INLINE = ("_mulhi", "_next64", "_next32", "draw", "_slot", "find", "_insert", "bit_length", "bucket", "_cls",
           "_set_cls", "_unlink", "_append", "_to_end", "_less")
for _name, _f in list(globals().items()):
    if isinstance(_f, FunctionType) and _f.__module__ == __name__ and _name not in _PYTHON:
        globals()[_name] = njit(cache=True, inline="always" if _name in _INLINE else "never")(_f)
del _name, _f

_warm = False


def warm() -> float:  # pragma: no mutate block (a warm-up: it changes no result, only when kernels load)
    """Load (or, on a fresh machine, compile and cache) every kernel once per process, with
    the argument types the policy passes; returns the seconds it took (0 after the first
    call). Hotness calls it when constructed, so a replay's time does not include it."""
    global _warm
    if _warm:
        return 0.0
    import time

    t0 = time.perf_counter()
    s, t, m, c = order_arrays(4, 1)
    h, ht, hm = history_arrays(8)
    tails = table(1)
    fill_table(tails, np.array([3], dtype=np.int64))
    rank = np.zeros((34, 245), dtype=np.int64)
    counts = np.zeros((34, 245))
    st = rng_state(0)
    set_shift(s, m, c, 0)
    keys = np.array([1, 2, 3, 4, 5, 1, 6, 2], dtype=np.int64)
    misses = np.empty(len(keys), dtype=np.int64)
    frozen = keys.copy()
    frozen.flags.writeable = False  # (a trace's ids are read-only: a type of their own to numba)
    for rule in (0, 1, 2):
        use_heap(s, m, rule == 1)
        run(s, t, m, c, h, ht, hm, tails, keys, 0, rule, rank, counts, counts, st, misses)
        run(s, t, m, c, h, ht, hm, tails, keys, 0, rule, rank, counts[:0], counts[:0], st, misses[:0])
        run(s, t, m, c, h, ht, hm, tails, frozen, 0, rule, rank, counts[:0], counts[:0], st, misses[:0])
    observe(s, t, m, c, keys, 0)
    find(t, 1)
    touch(s, t, m, int(lru_keys(s, m)[0]))
    add(s, t, m, c, 99, 1, 0, 0, 0)
    out, idx, key = np.empty(4, dtype=np.int64), np.empty(128, dtype=np.int64), np.empty(128, dtype=np.int64)
    for rule in (0, 1, 2):
        use_heap(s, m, rule == 1)
        victims(s, m, c, rule, 1, 10, rank, st, out, idx, key)
    r = drop(s, t, m, c, 99)
    recs = np.empty((4, 4), dtype=np.int64)
    for rule in (0, 1, 2):
        use_heap(s, m, rule == 1)
        admit(s, t, m, c, 98, 1, 0, 0, 0, rule, 10, rank, st, out, idx, key, recs)
        admit_batch(s, t, m, c, np.array([97], dtype=np.int64), np.zeros((1, 3), dtype=np.int64),
                    np.zeros(1, dtype=np.int64), rule, 10, rank, st, out, idx, key, recs, np.empty(1, dtype=np.int64))
    end(h, ht, hm, 99, r[0], r[1], r[2], r[3], 10, counts)
    hist_pop(h, ht, hm, 99)
    hist_keys(h, hm)
    draws(st, 5, out)
    choose(np.zeros(2), 1.0, 1.5, 0, 3, np.zeros((2, 3), dtype=np.int64), np.array([1, 0], dtype=np.int64), out, idx)
    sample(keys, 1 << 31, idx)
    sample(frozen, 1 << 31, idx)
    _warm = True
    return time.perf_counter() - t0
