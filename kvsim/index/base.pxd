# Op as an extension type in the compiled build (kvsim/accel): C fields and a compiled
# __init__ (several Ops a request). Every field keeps its Python value.
cdef class Op:
    cdef public object kind, keys, round_trips, bytes_sent, bytes_received, server_s, atomics
    cdef public object rounds, client_s, write, lock_wait_s, cas_retries
