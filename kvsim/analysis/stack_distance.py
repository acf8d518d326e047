"""Exact LRU stack distances in one pass, and the LRU hit-ratio curve for every capacity.

The stack distance of access ``t`` to block ``b`` is the position of ``b`` in the LRU
stack just before ``t`` (1 = most recently used): one plus the number of distinct blocks
accessed since the previous access to ``b``; an access with no earlier access to its
block (a cold miss) has distance ``-1`` (infinite). An LRU cache of ``C`` blocks hits
exactly the accesses with ``1 <= distance <= C`` (Mattson et al. 1970), so one pass gives
the hit ratio at every capacity at once.

Algorithm (O(n log^2 n) with numpy, no Python loop over accesses)::

    prev[t] = previous position of ids[t], or -1
    distinct blocks in (p, t) = #{j : p < j < t, prev[j] <= p}     (j is the first access
                                                                    of its block after p)
                              = G(t, p) - (p + 1),   G(t, p) = #{j < t : prev[j] <= p}
        (every j <= p has prev[j] < j <= p, so #{j <= p : prev[j] <= p} = p + 1)
    G for all re-accesses at once: offline dominance counting by bit levels. For bit k,
    the positions split into blocks of 2^(k+1); a query t in the right half of its block
    counts the j in the left half with prev[j] <= p (a sort + searchsorted per level).
    Every j < t is counted at exactly one level: the highest bit where j and t differ.

Written for speed: the 288,500 accesses of the Mooncake conversation trace take about
0.3 s here, against several seconds for a Python loop over a Fenwick tree.
"""

from __future__ import annotations

import numpy as np


def previous_occurrence(ids: np.ndarray) -> np.ndarray:
    """``prev[t]``: the last position ``< t`` holding the same id, or -1."""
    ids = np.asarray(ids)
    n = ids.size
    prev = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return prev
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    same = s[1:] == s[:-1]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def stack_distances(ids: np.ndarray) -> np.ndarray:
    """LRU stack distance of every access (1 = the block just used; -1 = first access)."""
    ids = np.asarray(ids)
    n = ids.size
    prev = previous_occurrence(ids)
    sd = np.full(n, -1, dtype=np.int64)
    q = np.flatnonzero(prev >= 0)  # re-accesses, ascending
    if q.size == 0:
        return sd
    p = prev[q]
    g = np.zeros(q.size, dtype=np.int64)  # G(t, p) accumulated over bit levels
    key_prev = prev + 1  # in [0, n - 1]
    m = np.int64(n + 1)
    pos = np.arange(n, dtype=np.int64)
    levels = max(1, int(n - 1).bit_length())
    for k in range(levels):
        half = np.int64(1) << k
        right = ((q >> k) & 1).astype(bool)
        if not right.any():
            continue
        left_mask = ((pos >> k) & 1) == 0
        lpos = pos[left_mask]
        keys = np.sort((lpos >> (k + 1)) * m + key_prev[left_mask])
        qt = q[right]
        blk = qt >> (k + 1)
        # all blocks before `blk` are full, so their left halves hold blk * half points
        hi = np.searchsorted(keys, blk * m + p[right] + 1, side="right")
        g[right] += hi - blk * half
    sd[q] = g - (p + 1) + 1
    return sd


def lru_hits_by_capacity(sd: np.ndarray, capacities: np.ndarray) -> np.ndarray:
    """Number of LRU hits at each capacity (in blocks) from the stack distances."""
    caps = np.asarray(capacities, dtype=np.int64)
    finite = np.sort(sd[sd > 0])
    return np.searchsorted(finite, caps, side="right").astype(np.int64)


def log_capacities(max_capacity: int, points: int = 200) -> np.ndarray:
    """About ``points`` distinct integer capacities from 1 to ``max_capacity``, log-spaced."""
    if max_capacity < 1:
        return np.array([1], dtype=np.int64)
    c = np.unique(np.round(np.logspace(0, np.log10(max_capacity), points)).astype(np.int64))
    return np.unique(np.r_[c, max_capacity])
