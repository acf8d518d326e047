"""Split a request's block ids into contiguous runs (range queries) and singletons (gets)."""

from __future__ import annotations

from collections.abc import Sequence


def split_runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs with ``ids[i+1] == ids[i] + 1``, as ``(start_index, length)`` pairs.

    >>> split_runs([0, 5, 6, 7, 9])
    [(0, 1), (1, 3), (4, 1)]
    """
    runs: list[tuple[int, int]] = []
    n = len(ids)
    if n == 0:
        return runs
    start = 0
    prev = ids[0]
    for i in range(1, n):
        cur = ids[i]
        if cur != prev + 1:
            runs.append((start, i - start))
            start = i
        prev = cur
    runs.append((start, n - start))
    return runs
