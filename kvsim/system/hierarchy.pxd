# The tier hierarchy as an extension type in the compiled build (kvsim/accel): its methods
# read its fields directly. Every field keeps its Python value (object).
cdef class TierHierarchy:
    cdef public object tiers, policies, n, levels, level, parent, views, members, movable, sharers, moves
    cdef public object demoted, dropped, inclusive, admit_tier, promote_on_hit, single
    cdef public object _below_views, _caps, _copies, _filters, _held_above, _held_below, _newest, _nofilter
    cdef public object _observe, _path_members, _remove, _simple, _table, _top, _total, _touch, _view_top
    cdef public object _zeros
