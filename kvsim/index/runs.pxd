# split_runs with C integers in the compiled build (kvsim/accel): block ids are int64 (the
# trace's columns), so the runs found are the same.
cimport cython

@cython.locals(n=Py_ssize_t, i=Py_ssize_t, start=Py_ssize_t, prev=cython.longlong, cur=cython.longlong)
cpdef list split_runs(object ids)
