# The prefill compute model as an extension type in the compiled build (kvsim/accel):
# flops() reads its fields directly (every chunk). Fields keep their Python values.
cdef class PrefillModel:
    cdef public object model, gpu, _flops_s, _dense, _attn
