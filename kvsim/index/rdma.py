"""One-sided RDMA from one compute node to one memory node, as a cost model.

Every round trip of a one-sided index (Sherman, CHIME, the extent index) is a batch of
work requests posted together on one queue pair and completed together. Its time is

    round  = fixed + wait(NIC) + nic_service
    fixed  = rtt(kind) + (messages - 1) / qp_rate + (doorbells - 1) * mmio_s
    nic_service = messages / nic_rate + bytes / bandwidth

``rtt(kind)`` is the measured small-message round trip of a READ, a signaled WRITE
(twice the one-way figure) or an atomic. A queue pair completes about ``qp_rate``
small work requests per second when it keeps many in flight (2.5 M/s, the calibration's
``rdma.message_rate_per_s``), so each further message of a batch adds ``1 / qp_rate``;
this pipelining is private to the operation (each concurrent request runs on its own
thread and queue pair, as Sherman's and CHIME's clients do). What concurrent requests
share is the client NIC and the link: one FCFS server (``FCFSServer``) whose service is
the batch's messages at the NIC's message rate (215 M/s, ConnectX-6) and its bytes at
the link bandwidth. The NIC arbitrates between queue pairs round robin, packet by
packet, so a large batch holds the shared server for at most one quantum (a 4 KB
packet, ``nic_quantum_bytes``) before others get their turn: the booked service is
``min(nic_service, quantum)`` and the rest of the batch's own transfer time is private
to it (an approximation of round-robin sharing that is exact for small messages and
keeps one event per round trip). So an unloaded 1 KB READ costs 1.9 + 0.005 + 0.089 = 1.99 us with
the default calibration, matching the "one 1 KB READ, about 2.0 us" figure of the
calibration notes, and a batch of 32 leaf READs 1.9 + 12.4 + 3.0 = 17 us.
``doorbells`` is the number of MMIO doorbells the client rings for the batch: one with
doorbell batching, one per work request without it (the measured round trip already
holds one).

A batch's kind is the slowest of its work requests (a WRITE + unlock batch is a WRITE).
Memory-node CPU is not involved (one-sided verbs).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from kvsim.index.base import IndexModel, Op
from kvsim.index.cache import NodeCache
from kvsim.index.keys import KeyMap
from kvsim.system.servers import FCFSServer

READ, WRITE, ATOMIC = 0, 1, 2
KIND_NAMES = ("read", "write", "atomic")


class RdmaFabric:
    """Timing of RDMA round trips over one client NIC (a shared FCFS server)."""

    def __init__(
        self,
        read_rtt_s: float,
        write_rtt_s: float,
        atomic_rtt_s: float,
        bandwidth_Bps: float,
        message_rate_per_s: float,
        mmio_s: float = 0.0,
        nic_message_rate_per_s: float = 215e6,
        nic_quantum_bytes: int = 4096,
    ) -> None:
        if bandwidth_Bps <= 0 or message_rate_per_s <= 0 or nic_message_rate_per_s <= 0:
            raise ValueError("rdma bandwidth and message rates must be positive")
        self.qp_msg_s = 1.0 / message_rate_per_s
        self.nic_msg_s = 1.0 / nic_message_rate_per_s
        self.byte_s = 1.0 / bandwidth_Bps
        self.rtt = (read_rtt_s, write_rtt_s, atomic_rtt_s)
        self.mmio_s = mmio_s
        self.quantum_s = self.nic_msg_s + nic_quantum_bytes * self.byte_s
        self.nic = FCFSServer("rdma_nic", 1)

    def round(self, kind: int, messages: int, nbytes: int, doorbells: int = 1) -> tuple[float, float]:
        """``(nic_service_s, fixed_s)`` of one batch of ``messages`` work requests."""
        service = messages * self.nic_msg_s + nbytes * self.byte_s
        fixed = self.rtt[kind] + max(0, messages - 1) * self.qp_msg_s + max(0, doorbells - 1) * self.mmio_s
        booked = service if service < self.quantum_s else self.quantum_s
        return (booked, fixed + service - booked)

    def unloaded_s(self, kind: int, messages: int, nbytes: int, doorbells: int = 1) -> float:
        s, f = self.round(kind, messages, nbytes, doorbells)
        return s + f


class RoundBuilder:
    """Accumulates the round trips of one operation (a small helper for the planners)."""

    __slots__ = ("fabric", "rounds", "sent", "received", "atomics")

    def __init__(self, fabric: RdmaFabric) -> None:
        self.fabric = fabric
        self.rounds: list[tuple[float, float]] = []
        self.sent = 0
        self.received = 0
        self.atomics = 0

    def add(self, kind: int, messages: int, read_bytes: int = 0, write_bytes: int = 0, doorbells: int = 1) -> None:
        if messages <= 0:
            return
        self.rounds.append(self.fabric.round(kind, messages, read_bytes + write_bytes, doorbells))
        self.received += read_bytes
        self.sent += write_bytes
        if kind == ATOMIC:
            self.atomics += messages

    def op(self, kind: str, keys: int, client_s: float = 0.0) -> Op:
        return Op(
            kind,
            keys,
            len(self.rounds),
            self.sent,
            self.received,
            0.0,
            self.atomics,
            tuple(self.rounds),
            client_s,
        )


class RdmaIndex(IndexModel):
    """Base of the one-sided indexes: ``execute`` walks each op's round trips."""

    fabric: RdmaFabric

    def _connect(
        self,
        *,
        read_rtt_s: float,
        write_one_way_s: float,
        atomic_rtt_s: float,
        bandwidth_Bps: float,
        message_rate_per_s: float,
        mmio_s: float,
        nic_message_rate_per_s: float,
        nic_quantum_bytes: int,
        local_lookup_s: float,
        cache_bytes: float,
        cache_policy: str,
        key_order: str,
        seed: int,
    ) -> None:
        """The client side every one-sided index has: its NIC queue, the CPU cost of a
        local lookup, the compute-side node cache and the key order."""
        # A signaled WRITE completes after about twice the one-way time (calibration notes).
        self.fabric = RdmaFabric(
            read_rtt_s,
            2.0 * write_one_way_s,
            atomic_rtt_s,
            bandwidth_Bps,
            message_rate_per_s,
            mmio_s,
            nic_message_rate_per_s,
            nic_quantum_bytes,
        )
        self.local_lookup_s = local_lookup_s
        self.cache = NodeCache(cache_bytes, cache_policy, seed)
        self.keymap = KeyMap(key_order)
        self.key_order = key_order

    def servers(self) -> dict[str, Any]:
        return {"rdma_nic": self.fabric.nic}

    def execute(self, env: simpy.Environment, ops: list[Op]) -> Generator[simpy.Event, Any, None]:
        # One timeout per round trip: the NIC is booked at the instant the batch is
        # posted (exact FCFS, see kvsim.system.servers); client CPU joins the last one.
        serve = self.fabric.nic.serve
        rec = self.recorder
        for op in ops:
            start = env.now
            rounds = op.rounds
            if not rounds:
                if op.client_s > 0.0:
                    yield env.timeout(op.client_s)
            else:
                last = len(rounds) - 1
                for j, (service, fixed) in enumerate(rounds):
                    now = env.now
                    done = serve(now, service)
                    yield env.timeout(done - now + fixed + (op.client_s if j == last else 0.0))
            if rec is not None:
                rec.add(op, start, env.now - start)
