cimport cython

# The servers as extension types in the compiled build (kvsim/accel): their attributes are
# fields and their methods C calls from each other. Python's values are kept: times and
# busy sums are C doubles (Python's floats), counts Python ints.
cdef class FCFSServer:
    cdef public object name
    cdef public Py_ssize_t servers
    cdef public list _free
    cdef public double busy_s
    cdef public object served
    cdef public double wait_s

    @cython.locals(free=list, start=double, finish=double)
    cpdef double serve(self, double now, double service_s)
    cpdef bint idle(self, double now)


cdef class PriorityServer(FCFSServer):
    cdef public bint priorities
    cdef public list _bg_arr, _bg_svc
    cdef public Py_ssize_t _bg_head
    cdef public object bg_served
    cdef public double bg_wait_s
    cdef public object bytes

    @cython.locals(arrs=list, svcs=list, free=list, h=Py_ssize_t, n=Py_ssize_t, arr=double, s=double,
                   f=double, start=double)
    cpdef _settle(self, double t)
    cpdef defer(self, double now, double service_s)
    cpdef double estimate(self, double now, double service_s)


@cython.locals(q=PriorityServer, spb=double, f=double, done=double)
cpdef double serve_all(tuple hops, double now, double nbytes)

@cython.locals(q=PriorityServer, spb=double)
cpdef defer_all(tuple hops, double now, double nbytes)

@cython.locals(q=PriorityServer, spb=double, f=double, done=double)
cpdef double estimate_all(tuple hops, double now, double nbytes)

@cython.locals(q=PriorityServer)
cpdef carry(tuple queues, object nbytes)
