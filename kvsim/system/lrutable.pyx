# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Every LRU tier of a hierarchy in one table (compiled only: ``python -m kvsim.accel build``).

The tier hierarchy's common case is LRU in every tier, and its cost was the tiers' own
dictionaries: a block demoted from a GPU tier to the host's DRAM, the remote pool and an SSD
was inserted into and deleted from four ``OrderedDict``s (two hash operations and a node
allocation each), and a cascade's victims were checked against the tiers below by building
sets. Here a block has one slot for as long as any tier holds it (found by its id in a
:class:`kvsim.idtable.IdTable`: no Python object touched but the one asked about), and each
tier is a doubly linked list through the slots (C arrays) with a bit per tier saying who
holds the block; a move between tiers is a few array writes, a "held by a tier below" check
a mask test. The orders are those of :class:`kvsim.policy.lru.LRU` exactly (admission at the
most recent end, a resident block admitted again keeps its place, victims from the least
recent end), or of :class:`kvsim.policy.fifo.FIFO` (``touches=False``: a hit moves nothing):
:class:`kvsim.system.hierarchy.TierHierarchy` uses the table when every tier is plain LRU,
or every tier plain FIFO, and the build is there, and its records are then the same as
without it (``tests/test_lrutable.py``). Without the build the hierarchy uses the policies'
own dictionaries, as before.
"""

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint32_t
from libc.stdlib cimport free, realloc

from kvsim.idtable cimport IdTable

cdef enum:
    MAX_TIERS = 32  # tiers of one hierarchy: a mask's bits


cdef class LRUTable:
    """``n`` LRU tiers of ``caps[t]`` blocks; ``parent[t]``: the tier below ``t`` on its chain
    (-1: none); ``level[t]``: its level in its views; ``movable[s][u]``: a block promoted from
    ``s`` to ``u`` leaves ``s`` (the hierarchy's exclusive-move rule). ``touches=False``: FIFO
    tiers instead (a hit leaves a block where it is; admission and eviction as LRU's), as
    :class:`kvsim.policy.fifo.FIFO`."""

    cdef readonly int n
    cdef readonly bint touches  # a hit moves the block to the recent end (LRU), or not (FIFO)
    cdef IdTable idt         # block id -> slot
    cdef list keys           # slot -> the block's id as given (None: free)
    cdef uint32_t *mask      # slot -> bit t set when tier t holds it
    cdef int32_t *prv        # [slot * n + t]: the list of tier t
    cdef int32_t *nxt
    cdef int32_t head[MAX_TIERS]
    cdef int32_t tail[MAX_TIERS]
    cdef Py_ssize_t size[MAX_TIERS]
    cdef Py_ssize_t cap[MAX_TIERS]
    cdef int32_t parent[MAX_TIERS]
    cdef int32_t level[MAX_TIERS]
    cdef uint32_t below[MAX_TIERS]    # tiers under t on its chain
    cdef uint32_t movable[MAX_TIERS]  # bit u of movable[s]: a promotion s -> u leaves s
    cdef int32_t free_head
    cdef Py_ssize_t slots
    cdef int64_t *ids        # slot -> its block's id (no Python object read to free it)
    cdef int32_t *buf        # a cascade's blocks between two levels, as slots
    cdef Py_ssize_t buf_cap

    def __cinit__(self):
        self.mask = NULL
        self.prv = NULL
        self.nxt = NULL
        self.ids = NULL
        self.buf = NULL
        self.buf_cap = 0

    def __init__(self, caps, parent, level, movable, touches=True):
        cdef int t, u, a
        n = len(caps)
        if not 0 < n <= MAX_TIERS:
            raise ValueError(f"LRUTable: 1 to {MAX_TIERS} tiers, got {n}")
        self.n = n
        self.touches = touches
        self.keys = []
        self.idt = IdTable()
        self.free_head = -1
        self.slots = 0
        for t in range(n):
            if caps[t] < 0:
                raise ValueError(f"capacity must be >= 0, got {caps[t]}")
            self.head[t] = -1
            self.tail[t] = -1
            self.size[t] = 0
            self.cap[t] = caps[t]
            self.parent[t] = parent[t]
            self.level[t] = level[t]
            self.movable[t] = 0
            for u in range(n):
                if movable[t][u]:
                    self.movable[t] |= (<uint32_t>1) << u
        for t in range(n):
            self.below[t] = 0
            a = self.parent[t]
            while a >= 0:
                self.below[t] |= (<uint32_t>1) << a
                a = self.parent[a]
        self._grow(1024)

    def __dealloc__(self):
        free(self.mask)
        free(self.prv)
        free(self.nxt)
        free(self.ids)
        free(self.buf)

    cdef int _grow(self, Py_ssize_t want) except -1:
        cdef Py_ssize_t old = self.slots, i
        cdef int n = self.n
        cdef Py_ssize_t new = old * 2 if old else 64
        while new < want:
            new *= 2
        cdef uint32_t *m = <uint32_t *>realloc(self.mask, new * sizeof(uint32_t))
        if m == NULL:
            raise MemoryError()
        self.mask = m
        cdef int32_t *p = <int32_t *>realloc(self.prv, new * n * sizeof(int32_t))
        if p == NULL:
            raise MemoryError()
        self.prv = p
        p = <int32_t *>realloc(self.nxt, new * n * sizeof(int32_t))
        if p == NULL:
            raise MemoryError()
        self.nxt = p
        cdef int64_t *q = <int64_t *>realloc(self.ids, new * sizeof(int64_t))
        if q == NULL:
            raise MemoryError()
        self.ids = q
        for i in range(old, new):
            self.keys.append(None)
            self.mask[i] = 0
            # free slots are chained through tier 0's next field
            self.nxt[i * n] = i + 1 if i + 1 < new else self.free_head
        self.free_head = old
        self.slots = new
        return 0

    # --- slots ---------------------------------------------------------------------------
    cdef inline int32_t _slot(self, object key) except -2:
        """The slot of ``key`` (an int of 64 bits: OverflowError otherwise), or -1."""
        return self.idt.get(key)

    cdef int32_t _new_slot(self, object key) except -1:
        cdef int32_t s
        cdef int64_t k = key
        if self.free_head < 0:
            self._grow(self.slots + 1)
        s = self.free_head
        self.free_head = self.nxt[s * self.n]
        self.keys[s] = key
        self.ids[s] = k
        self.mask[s] = 0
        self.idt.put(k, s)
        return s

    cdef int _free_slot(self, int32_t s) except -1:
        self.idt.remove(self.ids[s])
        self.keys[s] = None
        self.nxt[s * self.n] = self.free_head
        self.free_head = s
        return 0

    # --- one tier's list ---------------------------------------------------------------------
    cdef inline void _link(self, int t, int32_t s):
        """``s`` joins tier ``t`` at its most recent end."""
        cdef int n = self.n
        cdef int32_t last = self.tail[t]
        self.prv[s * n + t] = last
        self.nxt[s * n + t] = -1
        if last >= 0:
            self.nxt[last * n + t] = s
        else:
            self.head[t] = s
        self.tail[t] = s
        self.mask[s] |= (<uint32_t>1) << t
        self.size[t] += 1

    cdef inline void _unlink(self, int t, int32_t s):
        cdef int n = self.n
        cdef int32_t p = self.prv[s * n + t]
        cdef int32_t q = self.nxt[s * n + t]
        if p >= 0:
            self.nxt[p * n + t] = q
        else:
            self.head[t] = q
        if q >= 0:
            self.prv[q * n + t] = p
        else:
            self.tail[t] = p
        self.mask[s] &= ~((<uint32_t>1) << t)
        self.size[t] -= 1

    cdef Py_ssize_t _admit(self, int t, Py_ssize_t m, list demoted):
        """LRU admission of the ``m`` slots in ``buf`` into ``t``; its victims, in eviction
        order, go to ``buf`` (returns how many), less those a tier below still holds
        (appended to ``demoted``: that copy becomes the fastest, no bytes move; ``demoted``
        None: every victim). Victims are never more than the blocks admitted, and those are
        linked before the first victim is written over them."""
        cdef Py_ssize_t i, over, nv = 0
        cdef int32_t s
        cdef uint32_t bit = (<uint32_t>1) << t
        cdef uint32_t below = self.below[t] if demoted is not None else 0
        for i in range(m):
            s = self.buf[i]
            if self.mask[s] & bit:
                continue  # resident: keeps its place (as OrderedDict[k] = None)
            self._link(t, s)
        over = self.size[t] - self.cap[t]
        while over > 0:
            s = self.head[t]
            self._unlink(t, s)
            if self.mask[s] & below:
                demoted.append(self.keys[s])
            else:
                self.buf[nv] = s
                nv += 1
            over -= 1
        return nv

    cdef int _to_slots(self, list keys) except -1:
        """``keys`` into ``buf`` as slots (a new slot for an id not held)."""
        cdef Py_ssize_t i, m = PyList_GET_SIZE(keys)
        cdef int32_t *b
        cdef int32_t slot
        if m > self.buf_cap:
            b = <int32_t *>realloc(self.buf, m * sizeof(int32_t))
            if b == NULL:
                raise MemoryError()
            self.buf, self.buf_cap = b, m
        for i in range(m):
            k = <object>PyList_GET_ITEM(keys, i)
            slot = self._slot(k)
            self.buf[i] = slot if slot >= 0 else self._new_slot(k)
        return 0

    # --- the hierarchy's operations -------------------------------------------------------------
    def place(self, list keys, int tier, int src, list moves, list demoted, list dropped):
        """The hierarchy's cascade (``TierHierarchy._place_copies``): ``keys`` arrive at
        ``tier`` from ``src`` (-1: computed); victims go on down the chain; below the bottom
        they are dropped. Counts moves[source][destination] (destination n: dropped). The
        blocks go from level to level as slots (one id lookup a block, at the first)."""
        cdef int t = tier, s = src, n = self.n
        cdef Py_ssize_t i, m = PyList_GET_SIZE(keys)
        cdef int32_t slot
        if m == 0:
            return
        while t >= 0 and self.cap[t] == 0:
            t = self.parent[t]
        if t < 0:
            if s >= 0:
                row = moves[s]
                row[n] = row[n] + m
            dropped.extend(keys)
            self.release(keys)
            return
        self._to_slots(keys)
        if s >= 0:
            row = moves[s]
            row[t] = row[t] + m
            demoted.extend(keys)
        while True:
            m = self._admit(t, m, demoted)
            if m == 0:
                return
            s = t
            t = self.parent[t]
            while t >= 0 and self.cap[t] == 0:
                t = self.parent[t]
            row = moves[s]
            if t < 0:
                row[n] = row[n] + m
                for i in range(m):
                    slot = self.buf[i]
                    dropped.append(self.keys[slot])
                    if self.mask[slot] == 0:
                        self._free_slot(slot)
                return
            row[t] = row[t] + m
            for i in range(m):
                demoted.append(self.keys[self.buf[i]])

    def use(self, list keys, list locs, int top, list moves, list demoted, list dropped):
        """Resident ``keys`` at tiers ``locs`` reused by a view whose fastest tier with room is
        ``top`` (-1: none): each is touched, those below ``top`` promoted to it (and taken
        out of their tier when the move rule allows), then placed at ``top``."""
        cdef Py_ssize_t i, m = PyList_GET_SIZE(keys)
        cdef int t
        cdef int32_t s
        cdef int top_level = self.level[top] if top >= 0 else 0
        if PyList_GET_SIZE(locs) != m:
            raise ValueError("keys and locs differ in length")
        up = []
        for i in range(m):
            k = <object>PyList_GET_ITEM(keys, i)
            t = <int>(<object>PyList_GET_ITEM(locs, i))
            s = self._slot(k)
            if s < 0 or not (self.mask[s] >> t) & 1:
                raise KeyError(k)
            if top >= 0 and self.level[t] > top_level:
                if (self.movable[t] >> top) & 1:
                    self._unlink(t, s)
                else:
                    self._touch(t, s)
                row = moves[t]
                row[top] = row[top] + 1
                up.append(k)
            else:
                self._touch(t, s)
        if up:
            self.place(up, top, -1, moves, demoted, dropped)

    cdef inline void _touch(self, int t, int32_t s):
        if self.touches and self.tail[t] != s:
            self._unlink(t, s)
            self._link(t, s)

    def release(self, keys):
        """Free the slots of ``keys`` that no tier holds (blocks dropped from the hierarchy)."""
        cdef int32_t s
        for k in keys:
            s = self._slot(k)
            if s >= 0 and self.mask[s] == 0:
                self._free_slot(s)

    # --- one tier, as a policy sees it -------------------------------------------------------------
    def admit_many(self, int t, keys):
        """Admit ``keys`` into ``t`` (LRU); every victim, in eviction order (OrderedPolicy's)."""
        cdef Py_ssize_t nv
        keys = list(keys)
        if self.cap[t] == 0:
            return keys
        self._to_slots(keys)
        nv = self._admit(t, PyList_GET_SIZE(keys), None)
        return [self.keys[self.buf[i]] for i in range(nv)]

    def touch(self, int t, key):
        if not self.touches:
            return  # FIFO: a hit changes nothing (FIFO.touch asks nothing either)
        cdef int32_t s = self._slot(key)
        if s < 0 or not (self.mask[s] >> t) & 1:
            raise KeyError(key)
        self._touch(t, s)

    def remove(self, int t, key):
        cdef int32_t s = self._slot(key)
        if s < 0 or not (self.mask[s] >> t) & 1:
            raise KeyError(key)
        self._unlink(t, s)

    def contains(self, int t, key):
        cdef int32_t s = self._slot(key)
        return s >= 0 and (self.mask[s] >> t) & 1 == 1

    def length(self, int t):
        return self.size[t]

    def order(self, int t):
        """Tier ``t``'s blocks from the next victim to the most recent."""
        cdef int32_t s = self.head[t]
        out = []
        while s >= 0:
            out.append(self.keys[s])
            s = self.nxt[s * self.n + t]
        return out

    def not_held(self, list keys, tiers):
        """``keys`` that no tier of ``tiers`` holds, in order."""
        cdef uint32_t want = 0
        cdef int32_t s
        cdef Py_ssize_t i
        for t in tiers:
            want |= (<uint32_t>1) << <int>t
        out = []
        for i in range(PyList_GET_SIZE(keys)):
            k = <object>PyList_GET_ITEM(keys, i)
            s = self._slot(k)
            if s < 0 or not self.mask[s] & want:
                out.append(k)
        return out

    def prefix(self, list blocks, tuple path):
        """The cluster's prefix lookup for a view whose tiers are ``path`` (fastest first):
        ``(locs, counts, present)``: the fastest tier holding each block of the longest
        prefix held by the view, how many of them each level holds, and the blocks held in
        all (the prefix, and any beyond the first absent one)."""
        cdef int L = len(path), j, t
        cdef int tiers[MAX_TIERS]
        cdef Py_ssize_t counts[MAX_TIERS]
        cdef uint32_t vm = 0, mk
        cdef Py_ssize_t i, m = PyList_GET_SIZE(blocks), p, present
        cdef int32_t s
        if L > MAX_TIERS:
            raise ValueError("a view of more tiers than the table")
        for j in range(L):
            t = path[j]
            tiers[j] = t
            counts[j] = 0
            vm |= (<uint32_t>1) << t
        locs = []
        for i in range(m):
            s = self._slot(<object>PyList_GET_ITEM(blocks, i))
            if s < 0:
                break
            mk = self.mask[s] & vm
            if mk == 0:
                break
            j = 0
            while not (mk >> tiers[j]) & 1:
                j += 1
            locs.append(tiers[j])
            counts[j] += 1
        p = PyList_GET_SIZE(locs)
        present = p
        for i in range(p + 1, m):
            s = self._slot(<object>PyList_GET_ITEM(blocks, i))
            if s >= 0 and self.mask[s] & vm:
                present += 1
        return locs, [counts[j] for j in range(L)], present

    def local_runs(self, blocks, gpu, dram):
        """Cache-aware routing's measure for every instance k at once: ``(g, d)``, the
        leading blocks held by its GPU tier ``gpu[k]``, and those with the run continued
        through its GPU and DRAM tier ``dram[k]`` (-1: none) together (``blocks``: any
        sequence; a list is read as it is)."""
        return self._local_runs(blocks if type(blocks) is list else list(blocks), gpu, dram)

    cdef list _local_runs(self, list blocks, gpu, dram):
        cdef int K = len(gpu), k
        cdef int g_t[MAX_TIERS]
        cdef int d_t[MAX_TIERS]
        cdef int state[MAX_TIERS]  # 0: in the GPU run, 1: in the GPU-and-DRAM run, 2: done
        cdef Py_ssize_t g[MAX_TIERS]
        cdef Py_ssize_t d[MAX_TIERS]
        cdef Py_ssize_t i, m = PyList_GET_SIZE(blocks)
        cdef uint32_t mk
        cdef int32_t s
        cdef bint alive
        if K > MAX_TIERS or len(dram) != K:
            raise ValueError("one GPU and one DRAM tier (or -1) per instance, at most 32")
        for k in range(K):
            g_t[k] = gpu[k]
            d_t[k] = dram[k]
            state[k] = 0
            g[k] = 0
            d[k] = 0
        for i in range(m):
            s = self._slot(<object>PyList_GET_ITEM(blocks, i))
            mk = self.mask[s] if s >= 0 else 0
            alive = False
            for k in range(K):
                if state[k] == 0:
                    if (mk >> g_t[k]) & 1:
                        g[k] += 1
                        d[k] += 1
                        alive = True
                        continue
                    state[k] = 1
                if state[k] == 1:
                    if d_t[k] >= 0 and ((mk >> d_t[k]) & 1 or (mk >> g_t[k]) & 1):
                        d[k] += 1
                        alive = True
                    else:
                        state[k] = 2
            if not alive:
                break
        return [(g[k], d[k]) for k in range(K)]

    def view(self, int t):
        """Tier ``t``'s blocks as a container (``key in``, ``len``, iteration in LRU order)."""
        return TierView(self, t)

    def check(self):
        """Invariants: every tier's list and mask bits agree, sizes within capacity, every
        id in the table names its slot; raises AssertionError."""
        cdef int t
        cdef int32_t s, prev
        cdef Py_ssize_t count
        for t in range(self.n):
            count = 0
            prev = -1
            s = self.head[t]
            while s >= 0:
                if not (self.mask[s] >> t) & 1:
                    raise AssertionError(f"slot {s} in tier {t}'s list without its bit")
                if self.prv[s * self.n + t] != prev:
                    raise AssertionError(f"tier {t}'s list is broken at slot {s}")
                prev = s
                s = self.nxt[s * self.n + t]
                count += 1
            if count != self.size[t] or prev != self.tail[t]:
                raise AssertionError(f"tier {t} lists {count} blocks, counts {self.size[t]}")
            if self.size[t] > self.cap[t]:
                raise AssertionError(f"tier {t} holds {self.size[t]} > {self.cap[t]}")
        self.idt.check()
        for k, s in self.idt.items():
            if self.keys[s] is None or self.keys[s] != k or self.ids[s] != k:
                raise AssertionError(f"slot {s} holds {self.keys[s]!r}, the table says {k}")

    def slots_held(self):
        """Blocks with a slot (held by a tier, or in flight between two)."""
        return self.idt.count


cdef class TierView:
    """One tier of an :class:`LRUTable` as a container."""

    cdef LRUTable table
    cdef readonly int tier

    def __init__(self, LRUTable table, int tier):
        self.table = table
        self.tier = tier

    def __contains__(self, key):
        cdef int32_t s = self.table._slot(key)
        return s >= 0 and (self.table.mask[s] >> self.tier) & 1 == 1

    def __len__(self):
        return self.table.size[self.tier]

    def __iter__(self):
        return iter(self.table.order(self.tier))
