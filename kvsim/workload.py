"""Arrivals: when each request of a trace reaches the system (the one place that decides it).

Mooncake timestamps have a resolution of about 3 s (the conversation trace: 1,180 distinct
timestamps for 12,031 requests, consecutive ones 2.997-3.003 s apart), so a literal replay
releases every request of a tick at the same instant: bursts that are an artefact of the
logging, not of the workload. With ``spread="tick"`` the requests that share a timestamp are
spread uniformly over their tick:

    tick     = trace.tick_s if given, else infer_tick(timestamps)
    for each group of requests with the same timestamp t (in trace order):
        width = min(tick, next distinct timestamp - t)      (so trace order is kept)
        arrivals = t + sorted(uniform(0, width) draws, one per request)

Sorted draws keep the requests of a tick in trace order (a conversation's next turn is never
in the same tick as its previous one, but the file order is the best order we know) and are
distributed like independent uniform arrivals. ``spread="none"`` is the literal replay.
The draws come from the run's seeded generator, so a run is reproducible.

``infer_tick``: the timestamps' resolution is the smallest common gap between distinct
timestamps (their 5th percentile), accepted only if nearly every gap (90%) is a whole multiple of it
within 1% -- quantised timestamps; for timestamps that are not quantised (a Poisson
trace) it returns 0 and nothing is spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPREADS = ("tick", "none")


@dataclass(frozen=True)
class Arrivals:
    """Arrival time of every request (seconds from the first, in trace order, non-decreasing)."""

    times_s: np.ndarray
    spread: str
    tick_s: float  # the tick used (0: none)
    tick_inferred: bool  # True when tick_s came from the timestamps

    def summary(self) -> dict[str, object]:
        return {"spread": self.spread, "tick_s": self.tick_s, "tick_inferred": self.tick_inferred}


def infer_tick(timestamps_s: np.ndarray, tolerance: float = 0.01, share: float = 0.9) -> float:
    """The resolution of quantised timestamps, or 0.0 when they are not quantised."""
    u = np.unique(np.asarray(timestamps_s, dtype=np.float64))
    if len(u) < 3 or len(u) == len(timestamps_s):  # too few, or no two requests share a tick
        return 0.0
    gaps = np.diff(u)
    tick = float(np.quantile(gaps, 0.05))
    if tick <= 0.0:
        return 0.0
    k = np.maximum(np.rint(gaps / tick), 1.0)
    on_grid = np.abs(gaps - k * tick) <= tolerance * tick * k
    return tick if on_grid.mean() >= share else 0.0


def arrivals(
    timestamps_s: np.ndarray,
    spread: str = "tick",
    tick_s: float | None = None,
    rng: np.random.Generator | None = None,
) -> Arrivals:
    """Arrival times of the requests with timestamps ``timestamps_s`` (non-decreasing)."""
    if spread not in SPREADS:
        raise ValueError(f"trace.spread: {spread!r} is not one of {list(SPREADS)}")
    if tick_s is not None and not tick_s >= 0.0:
        raise ValueError(f"trace.tick_s: must be >= 0 (or null to infer it), got {tick_s}")
    ts = np.asarray(timestamps_s, dtype=np.float64)
    n = len(ts)
    base = ts - ts[0] if n else ts.copy()
    inferred = tick_s is None
    tick = infer_tick(ts) if tick_s is None else float(tick_s)
    if spread == "none" or tick <= 0.0 or n == 0:
        return Arrivals(base, spread, tick, inferred)
    if rng is None:
        raise ValueError("arrivals: spread='tick' needs the run's random generator")
    # Groups of equal timestamps: start index of each request's group and the group's width.
    new_group = np.r_[True, base[1:] != base[:-1]]
    gid = np.cumsum(new_group) - 1
    starts = base[new_group]
    nxt = np.r_[starts[1:], np.inf]
    width = np.minimum(tick, nxt - starts)[gid]
    u = rng.uniform(0.0, 1.0, n)
    # Sort the draws within each group (groups are contiguous and in order).
    u = u[np.lexsort((u, gid))]
    return Arrivals(base + u * width, spread, tick, inferred)
