"""FCFS servers kept as virtual clocks (Lindley's recursion) instead of SimPy resources.

A process that reaches a server at simulated time ``now`` calls ``serve(now, service)``
and gets the time its service ends; it then yields one timeout to that time. Because
SimPy delivers events in time order, every customer that reached the server earlier
has already been booked, so this is exactly first-come-first-served with ``c`` servers:

    start  = max(now, earliest time one of the c servers is free)
    finish = start + service

Written for speed: a ``simpy.Resource`` costs three events per visit (request, grant,
release) and this costs none; tests/test_servers.py checks both give the same waits and
that the queue matches M/D/1 and M/M/1 formulas.
"""

from __future__ import annotations

import math
from heapq import heapreplace
from typing import Any


def timeout_at(env: Any, t: float) -> Any:
    """A SimPy timeout that fires at exactly ``t`` (>= ``env.now``).

    ``env.timeout(t - env.now)`` fires at ``env.now + (t - env.now)``, which floating point
    may round away from ``t`` (never when ``env.now <= t <= 2 env.now``, Sterbenz's lemma); the
    delay is nudged by ulps until the sum is ``t``, so that a process that computed its
    wake-up time ahead (booking several visits in one step) wakes when the event-per-visit
    version would have."""
    now = env.now
    d = t - now
    if now + d == t:  # the usual case (written for speed)
        return env.timeout(d if d > 0.0 else 0.0)
    for _ in range(8):
        s = now + d
        if s == t:
            break
        d = math.nextafter(d, math.inf if s < t else -math.inf)
    return env.timeout(d if d > 0.0 else 0.0)


class FCFSServer:
    """``c`` identical servers in front of one FCFS queue."""

    __slots__ = ("name", "servers", "_free", "busy_s", "served", "wait_s")  # (servers.pxd when compiled)

    def __init__(self, name: str, servers: int = 1) -> None:
        if servers < 1:
            raise ValueError(f"{name}: servers must be >= 1, got {servers}")
        self.name = name
        self.servers = servers
        self._free = [0.0] * servers  # a heap of the times each server becomes free
        self.busy_s = 0.0
        self.served = 0
        self.wait_s = 0.0

    def serve(self, now: float, service_s: float) -> float:
        """Book a service that arrives at ``now``; return when it finishes."""
        free = self._free
        start = free[0] if free[0] > now else now
        finish = start + service_s
        if self.servers == 1:  # a heap of one (written for speed: the usual case)
            free[0] = finish
        else:
            heapreplace(free, finish)
        self.busy_s += service_s
        self.served += 1
        self.wait_s += start - now
        return finish

    def idle(self, now: float) -> bool:
        """Whether a server has been free since before ``now`` (one that finishes at ``now``
        is still running)."""
        return self._free[0] < now

    def utilization(self, span_s: float) -> float:
        return self.busy_s / (span_s * self.servers) if span_s > 0 else 0.0


class PriorityServer(FCFSServer):
    """``c`` identical servers, two classes, non-preemptive priority: foreground before
    background at every moment a server frees, first-come-first-served within a class.

    Foreground customers (a request's KV loads, index round trips) wait for the answer:
    ``serve(now, s)`` books them and returns their finish time, as ``FCFSServer`` does.
    Background customers (demotions, write-backs) wake nobody: ``defer(now, s)`` queues them
    and their start is settled lazily. A background job can start at time ``x`` only if no
    foreground job is waiting then; every foreground arrival before ``t`` has been booked
    when the server is asked anything at ``t`` (SimPy delivers events in time order), so

        settle(t): while a background job is waiting and
                   x = max(its arrival, earliest free server) < t:  start it at x

    is exact, and a foreground arrival at ``t`` then starts at max(t, earliest free server):
    behind the background job in service (non-preemptive) but ahead of the waiting ones.
    Written for speed: no SimPy events at all (tests/test_servers.py checks it against
    ``simpy.PriorityResource`` job by job and against Cobham's formula for M/G/1).
    ``priorities=False`` serves both classes in one FCFS order (a background job is booked
    at once, like a foreground one).
    """

    __slots__ = ("priorities", "_bg_arr", "_bg_svc", "_bg_head", "bg_served", "bg_wait_s", "bytes")

    def __init__(self, name: str, servers: int = 1, priorities: bool = True) -> None:
        super().__init__(name, servers)  # served, wait_s: the foreground's
        self.priorities = priorities
        # The waiting background jobs in arrival order: their arrival and service times from
        # _bg_head on (two lists and a head rather than a deque of tuples: written for speed,
        # no tuple per job and, compiled, no Python call per step)
        self._bg_arr: list[float] = []
        self._bg_svc: list[float] = []
        self._bg_head = 0
        self.bg_served = 0
        self.bg_wait_s = 0.0
        self.bytes = 0  # bytes carried (links and devices count them)

    @property
    def waiting(self) -> int:
        """Background jobs waiting to start."""
        return len(self._bg_arr) - self._bg_head

    def _settle(self, t: float) -> None:
        arrs, svcs, free = self._bg_arr, self._bg_svc, self._free
        h, n = self._bg_head, len(self._bg_arr)
        while h < n:
            arr = arrs[h]
            s = svcs[h]
            f = free[0]
            start = f if f > arr else arr
            if start >= t:
                break
            h += 1
            if self.servers == 1:
                free[0] = start + s
            else:
                heapreplace(free, start + s)
            self.busy_s += s
            self.bg_served += 1
            self.bg_wait_s += start - arr
        if h == n:  # none waits: the lists start again
            if n:
                arrs.clear()
                svcs.clear()
            h = 0
        elif h >= 1024:  # the started ones dropped now and then (a queue that never empties)
            del arrs[:h]
            del svcs[:h]
            h = 0
        self._bg_head = h

    def serve(self, now: float, service_s: float) -> float:
        """Book a foreground service that arrives at ``now``; return when it finishes."""
        if self._bg_head < len(self._bg_arr):
            self._settle(now)
        return FCFSServer.serve(self, now, service_s)

    def defer(self, now: float, service_s: float) -> None:
        """Queue a background service that arrives at ``now``."""
        if self._bg_head < len(self._bg_arr):
            # What starts before ``now`` is decided by now (callers come in time order): a
            # link that carries only background work would otherwise keep every job of the
            # run queued until the end (memory, and the flush's time, linear in the run).
            self._settle(now)
        self._bg_arr.append(now)
        self._bg_svc.append(service_s)
        if not self.priorities:  # one FCFS order: it starts as soon as a server is free
            self._settle(float("inf"))

    def estimate(self, now: float, service_s: float) -> float:
        """When a foreground service arriving at ``now`` would finish (nothing is booked)."""
        if self._bg_head < len(self._bg_arr):
            self._settle(now)
        f = self._free[0]
        return (f if f > now else now) + service_s

    def flush(self) -> None:
        """Start every waiting background job (end of a run: for the utilisation)."""
        self._settle(float("inf"))

    def utilization(self, span_s: float) -> float:
        """Busy share over ``span_s`` (work booked past the span counts too: a run's tail)."""
        self.flush()
        return self.busy_s / (span_s * self.servers) if span_s > 0 else 0.0


# --- a transfer's queues, booked in one call (written for speed: with servers.pxd, the
# compiled build's loops below are C calls on typed queues; Topology's per-transfer work) ---
def serve_all(hops: tuple[tuple[PriorityServer, float], ...], now: float, nbytes: float) -> float:
    """Book a foreground job of ``nbytes`` arriving at ``now`` on every ``(queue, seconds per
    byte)`` of ``hops``; return when the last of them finishes (``now`` if none)."""
    done = now
    for q, spb in hops:
        f = q.serve(now, nbytes * spb)
        if f > done:
            done = f
    return done


def defer_all(hops: tuple[tuple[PriorityServer, float], ...], now: float, nbytes: float) -> None:
    """Queue a background job of ``nbytes`` arriving at ``now`` on every queue of ``hops``."""
    for q, spb in hops:
        q.defer(now, nbytes * spb)


def estimate_all(hops: tuple[tuple[PriorityServer, float], ...], now: float, nbytes: float) -> float:
    """When :func:`serve_all` would finish, without booking anything."""
    done = now
    for q, spb in hops:
        f = q.estimate(now, nbytes * spb)
        if f > done:
            done = f
    return done


def carry(queues: tuple[PriorityServer, ...], nbytes: int) -> None:
    """Count ``nbytes`` on every queue of ``queues``."""
    for q in queues:
        q.bytes += nbytes
