# A request in flight and an instance as extension types in the compiled build
# (kvsim/accel): their own methods read their fields directly. Every field keeps its Python
# value (object).
cdef class _Req:
    cdef public object i, view, blocks, locs, cached, segs, seg, off, remaining, computed, started
    cdef public object done, t_ready, t_start, load_exposed, load_transfer, overlap_saved, own_compute
    cdef public object iter_time, iterations, recomputed, load_bytes, load_end


cdef class Instance:
    cdef public object index, env, queue, wake, gate, gen, ends, cum, spare, cut, load, busy_s
    cdef public object iterations, served


cdef class Cluster:
    cdef public object trace, hier, topo, index, prefill, scheduler, router, overlap, auto_recompute, hooks
    cdef public object block_tokens, block_bytes, layers, check_invariants, arrival_s, env, instances
    cdef public object load_paths, move_pairs, _move_path, _host, _has_private, _not_held_private
    cdef public object _offsets, _input_tokens, _chunk, _chunk_lo, _chunk_hi, _chunk_base
    cdef public object _hits, _recorded, _finish, _moved
    cdef public object _columns
    # the columns' typed views (Cluster.__init__): a record's write is a store
    cdef long long[:] _c_instance, _c_prefix_hits, _c_present_blocks, _c_new_tokens, _c_recomputed_blocks
    cdef long long[:] _c_load_bytes, _c_iterations, _c_moved
    cdef double[:] _c_metadata_s, _c_queue_s, _c_load_s, _c_compute_s, _c_batch_wait_s, _c_store_s, _c_ttft_s
    cdef double[:] _c_load_transfer_s, _c_overlap_saved_s, _c_finish
    cdef long long[:, :] _c_hits
