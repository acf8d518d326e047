# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Block ids in C (compiled only: ``python -m kvsim.accel build``).

The simulator asks "is block k there?" a few hundred times a request (a tier's residents,
the index's keys), and block ids are 64-bit integers (trace hash ids). A Python set or dict
answers by hashing the int and comparing it with the stored object, a read of that object
wherever it lies in memory; these tables keep the ids themselves in C arrays, so a probe
reads the table and the one object asked about.

* :class:`IdTable`: 64-bit id -> a non-negative 32-bit value (the tier table's slots):
  open addressing, linear probing, Fibonacci hashing, deletion by backward shift (no
  tombstones), at most half full.
* :class:`IdSet`: a set of ids with the operations the Redis index uses
  (``add``, ``update``, ``difference_update``, ``issuperset``, ``in``, ``len``), the same
  answers as a ``set`` of the same ints (``tests/test_idtable.py``).

An id outside 64 bits raises ``OverflowError`` (a trace's ids are int64).
"""

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc


cdef class IdTable:
    def __cinit__(self):
        self.keys = NULL
        self.vals = NULL
        self.size = 0
        self.count = 0
        self._rehash(1024)

    def __dealloc__(self):
        free(self.keys)
        free(self.vals)

    cdef int _rehash(self, Py_ssize_t size) except -1:
        cdef int64_t *oldk = self.keys
        cdef int32_t *oldv = self.vals
        cdef Py_ssize_t oldsize = self.size, i
        cdef int bits = 0
        while ((<Py_ssize_t>1) << bits) < size:
            bits += 1
        size = (<Py_ssize_t>1) << bits
        cdef int64_t *k = <int64_t *>malloc(size * sizeof(int64_t))
        cdef int32_t *v = <int32_t *>malloc(size * sizeof(int32_t))
        if k == NULL or v == NULL:
            free(k)
            free(v)
            raise MemoryError()
        for i in range(size):
            v[i] = -1
        self.keys, self.vals, self.size, self.shift = k, v, size, 64 - bits
        self.count = 0
        for i in range(oldsize):
            if oldv[i] >= 0:
                self.put(oldk[i], oldv[i])
        free(oldk)
        free(oldv)
        return 0

    cdef Py_ssize_t _home(self, int64_t key):
        return <Py_ssize_t>((<uint64_t>key * <uint64_t>0x9E3779B97F4A7C15) >> self.shift)

    cdef int32_t get(self, int64_t key):
        """``key``'s value, or -1."""
        cdef Py_ssize_t i = self._home(key), m = self.size - 1
        while self.vals[i] >= 0:
            if self.keys[i] == key:
                return self.vals[i]
            i = (i + 1) & m
        return -1

    cdef int put(self, int64_t key, int32_t val) except -1:
        """``key`` -> ``val`` (>= 0), replacing its value if present."""
        cdef Py_ssize_t i = self._home(key), m = self.size - 1
        while self.vals[i] >= 0:
            if self.keys[i] == key:
                self.vals[i] = val
                return 0
            i = (i + 1) & m
        self.keys[i] = key
        self.vals[i] = val
        self.count += 1
        if 2 * self.count > self.size:
            self._rehash(2 * self.size)
        return 0

    cdef bint remove(self, int64_t key):
        """Remove ``key`` (backward shift: the entries after it that probed past it move
        back); False if it was absent."""
        cdef Py_ssize_t i = self._home(key), j, h, m = self.size - 1
        while True:
            if self.vals[i] < 0:
                return False
            if self.keys[i] == key:
                break
            i = (i + 1) & m
        j = i
        while True:
            j = (j + 1) & m
            if self.vals[j] < 0:
                break
            h = self._home(self.keys[j])
            # the entry at j stays if its home lies cyclically in (i, j]
            if (i <= j and i < h <= j) or (i > j and (h > i or h <= j)):
                continue
            self.keys[i] = self.keys[j]
            self.vals[i] = self.vals[j]
            i = j
        self.vals[i] = -1
        self.count -= 1
        return True

    def check(self):
        """Every id is found where it is and counted once; raises AssertionError."""
        cdef Py_ssize_t i, found = 0
        for i in range(self.size):
            if self.vals[i] >= 0:
                found += 1
                if self.get(self.keys[i]) != self.vals[i]:
                    raise AssertionError(f"id {self.keys[i]} is not found where it is")
        if found != self.count:
            raise AssertionError(f"the id table holds {found} ids, counts {self.count}")

    def items(self):
        """``(id, value)`` pairs, in table order."""
        cdef Py_ssize_t i
        return [(self.keys[i], self.vals[i]) for i in range(self.size) if self.vals[i] >= 0]


cdef class IdSet(IdTable):
    """A set of 64-bit block ids."""

    def __contains__(self, key):
        return self.get(key) >= 0

    def __len__(self):
        return self.count

    def __iter__(self):
        cdef Py_ssize_t i
        return iter([self.keys[i] for i in range(self.size) if self.vals[i] >= 0])

    def add(self, key):
        self.put(key, 0)

    def discard(self, key):
        self.remove(key)

    def update(self, keys):
        for k in keys:
            self.put(k, 0)

    def difference_update(self, keys):
        for k in keys:
            self.remove(k)

    def issuperset(self, keys):
        for k in keys:
            if self.get(k) < 0:
                return False
        return True
