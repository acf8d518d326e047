# The id table's C interface, for the other compiled modules (kvsim/system/lrutable.pyx).
from libc.stdint cimport int32_t, int64_t

cdef class IdTable:
    cdef int64_t *keys       # open addressing, linear probing
    cdef int32_t *vals       # -1: an empty cell
    cdef Py_ssize_t size     # cells, a power of two, at least twice the ids held
    cdef int shift           # 64 - log2(size): Fibonacci hashing's shift
    cdef readonly Py_ssize_t count

    cdef int _rehash(self, Py_ssize_t size) except -1
    cdef Py_ssize_t _home(self, int64_t key)
    cdef int32_t get(self, int64_t key)
    cdef int put(self, int64_t key, int32_t val) except -1
    cdef bint remove(self, int64_t key)
