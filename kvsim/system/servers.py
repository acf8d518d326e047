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

import heapq


class FCFSServer:
    """``c`` identical servers in front of one FCFS queue."""

    __slots__ = ("name", "servers", "_free", "busy_s", "served", "wait_s")

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
        heapq.heapreplace(free, finish)
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
