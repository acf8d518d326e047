# A cost draw and its sampler as extension types in the compiled build (kvsim/accel): a draw
# is a C call on its fields (several a metadata call). Values keep their Python types.
cdef class Sampler:
    cdef public object rng
    cdef public object enabled
    cdef public object block
    cdef public object next_level


cdef class Draw:
    cdef public object dist
    cdef public list _table
    cdef public Sampler _sampler
    cdef public object value
