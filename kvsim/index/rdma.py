"""One-sided RDMA from one compute node to one memory node: the client every RDMA index
shares (:class:`RdmaClient`, built once from the ``index.client`` config node).

Every round trip of a one-sided index (Sherman, CHIME, the extent index) is a batch of
``messages`` work requests posted together on one queue pair and completed together:

    completion = post + wait(QP) + wait(NIC) + booked + fixed
    fixed      = rtt(kind) + (messages - 1) / qp_rate + (doorbells - 1) * mmio_s
                 + (nic_service - booked)
    nic_service = messages / nic_rate + bytes / bandwidth,  booked = min(nic_service, quantum)

``rtt(kind)`` is the small-message round trip of a READ, a signaled WRITE (twice the
one-way figure: the completion waits for the ACK) or an atomic, *drawn* from its
calibrated distribution (median, p99, p99.9; :mod:`kvsim.index.costs`) for every round.

Queue pairs. The client owns ``queue_pairs`` queue pairs and gives them to operations in
turn (one operation's rounds stay on one queue pair, as a thread posts on its own QP). A
queue pair completes about ``qp_rate`` small work requests per second when it keeps many
in flight (the calibration's ``rdma.message_rate_per_s``), so a batch occupies its QP for
``messages / qp_rate`` and concurrent operations on one QP wait for each other (a virtual
clock per QP); the first message's time is already in the measured round trip, hence
``messages - 1`` in ``fixed``. With ``queue_pairs`` large no two operations share a QP.

NIC. Concurrent operations share the client NIC and the link: one FCFS server (any object
with ``serve(now, service_s) -> finish``, so the serving node can hand every RDMA client of
a host its NIC: :meth:`RdmaClient.attach_nic`) whose service is the batch's messages at the
NIC's message rate (215 M/s, ConnectX-6) and its bytes at the link bandwidth. The NIC
arbitrates between queue pairs round robin, packet by packet, so a large batch holds the
shared server for at most one quantum (a 4 KB packet) and the rest of its transfer time
is private to it (exact for small messages; one event per round trip). The NIC is booked
when the batch is posted, before any QP wait (the QP wait is rare and short; booking at
the posting instant keeps the NIC's virtual clock exactly FCFS).

So an unloaded 1 KB READ costs 1.9 + 0.005 + 0.089 = 1.99 us with the default
calibration's medians (the "one 1 KB READ, about 2.0 us" of the calibration notes) and a
batch of 32 leaf READs 1.9 + 12.4 + 3.0 = 17.3 us. ``doorbells`` is the number of MMIO
doorbells rung for the batch: one with doorbell batching, one per work request without
(``doorbell_batch``). A batch's kind is the slowest of its work requests (a WRITE + unlock
batch is a WRITE). Memory-node CPU is not involved.

The client also holds what every index's compute side shares: the CPU cost of one probe of
a local cache (``local_lookup_s``), the key order (``key_order``) and ``sharers``, the
number of *other* compute nodes that cache the same remote index (the coherence cost each
cache pays; see the indexes).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import numpy as np
import simpy

from kvsim.index.base import IndexModel, Lookup, Op
from kvsim.index.cache import NodeCache
from kvsim.index.costs import CostDist, Draw, Sampler
from kvsim.index.keys import KEY_ORDERS, KeyMap
from kvsim.ranges import Bytes, KeyOrder, NonNegInt, OneOf, PosInt, Rate, Seconds, Seed
from kvsim.servers import FCFSServer

READ, WRITE, ATOMIC = 0, 1, 2
KIND_NAMES = ("read", "write", "atomic")
Round = tuple[int, int, int, int]  # (kind, messages, bytes, doorbells)


class Nic(Protocol):
    """What the client needs of a NIC: FCFS booking (``FCFSServer`` or a host's NIC)."""

    def serve(self, now: float, service_s: float) -> float: ...

    def utilization(self, span_s: float) -> float: ...


class RdmaClient:
    """The compute node's side of one-sided RDMA: queue pairs, NIC, costs, key order."""

    def __init__(
        self,
        read_rtt_s: Seconds,
        write_one_way_s: Seconds,
        atomic_rtt_s: Seconds,
        bandwidth_Bps: Rate,
        message_rate_per_s: Rate,
        nic_message_rate_per_s: Rate = 215e6,
        nic_quantum_bytes: PosInt = 4096,
        mmio_s: Seconds = 0.0,
        local_lookup_s: Seconds = 0.0,
        queue_pairs: PosInt = 8,
        doorbell_batch: bool = True,
        key_order: KeyOrder = "remapped",
        sharers: NonNegInt = 0,
        read_rtt_p99_s: Seconds | None = None,
        read_rtt_p999_s: Seconds | None = None,
        write_one_way_p99_s: Seconds | None = None,
        write_one_way_p999_s: Seconds | None = None,
        atomic_rtt_p99_s: Seconds | None = None,
        atomic_rtt_p999_s: Seconds | None = None,
        tails: bool = True,
    ) -> None:
        if bandwidth_Bps <= 0 or message_rate_per_s <= 0 or nic_message_rate_per_s <= 0:
            raise ValueError("rdma bandwidth and message rates must be positive")
        if queue_pairs < 1:
            raise ValueError(f"client.queue_pairs must be >= 1, got {queue_pairs}")
        if sharers < 0:
            raise ValueError(f"client.sharers must be >= 0, got {sharers}")
        if key_order not in KEY_ORDERS:
            raise ValueError(f"client.key_order must be one of {KEY_ORDERS}, got {key_order!r}")
        self.qp_msg_s = 1.0 / message_rate_per_s
        self.nic_msg_s = 1.0 / nic_message_rate_per_s
        self.byte_s = 1.0 / bandwidth_Bps
        self.mmio_s = mmio_s
        self.quantum_s = self.nic_msg_s + nic_quantum_bytes * self.byte_s
        self.local_lookup_s = local_lookup_s
        self.queue_pairs = queue_pairs
        self.doorbell_batch = doorbell_batch
        self.key_order = key_order
        self.sharers = sharers
        self.tails = tails

        # A signaled WRITE completes after about twice the one-way time (calibration notes).
        def two(x: float | None) -> float | None:
            return None if x is None else 2.0 * x

        self.dists = (
            CostDist(read_rtt_s, read_rtt_p99_s, read_rtt_p999_s),
            CostDist(2.0 * write_one_way_s, two(write_one_way_p99_s), two(write_one_way_p999_s)),
            CostDist(atomic_rtt_s, atomic_rtt_p99_s, atomic_rtt_p999_s),
        )
        self.rtt = tuple(d.p50 for d in self.dists)  # medians: unloaded costs
        self.half_s = read_rtt_s / 2.0  # one way: when a CAS reaches the lock word
        # Per host (a serving node with several hosts gives each its own NIC): the NIC and
        # ``queue_pairs`` queue pairs; queue pair q belongs to host q // queue_pairs.
        self.nics: list[Nic] = [FCFSServer("rdma_nic", 1)]
        self._qp_nic: list[Nic] = [self.nics[0]] * queue_pairs
        self._qp_free = [0.0] * queue_pairs
        self._next_qp = [0]
        self.bind(None)

    # --- set-up -------------------------------------------------------------------------
    def bind(self, rng: np.random.Generator | None) -> None:
        """Draw this client's costs from ``rng`` (the run's generator)."""
        self.sampler = Sampler(rng, enabled=self.tails)
        self.draw: tuple[Draw, Draw, Draw] = tuple(self.sampler.bind(d) for d in self.dists)  # type: ignore[assignment]

    @property
    def nic(self) -> Nic:
        """Host 0's NIC (the only one outside a serving node with several hosts)."""
        return self.nics[0]

    def attach_nic(self, nic: Nic, host: int = 0) -> None:
        """Host ``host``'s operations queue on ``nic`` (that host's NIC, shared with its KV
        transfers) instead of a private one; the host gets its own queue pairs."""
        if host < 0:
            raise ValueError(f"host must be >= 0, got {host}")
        qps = self.queue_pairs
        while len(self.nics) <= host:
            h = len(self.nics)
            self.nics.append(FCFSServer(f"rdma_nic{h}", 1))
            self._qp_nic.extend([self.nics[h]] * qps)
            self._qp_free.extend([0.0] * qps)
            self._next_qp.append(0)
        self.nics[host] = nic
        self._qp_nic[host * qps : (host + 1) * qps] = [nic] * qps

    def doorbells(self, messages: int) -> int:
        return 1 if self.doorbell_batch else messages

    def next_qp(self, host: int = 0) -> int:
        """The next of ``host``'s queue pairs, in turn."""
        q = self._next_qp[host]
        self._next_qp[host] = q + 1 if q + 1 < self.queue_pairs else 0
        return host * self.queue_pairs + q

    # --- timing ----------------------------------------------------------------------------
    def post(self, now: float, qp: int, kind: int, messages: int, nbytes: int, doorbells: int = 1) -> float:
        """Book one batch posted at ``now`` on queue pair ``qp``; return its completion."""
        service = messages * self.nic_msg_s + nbytes * self.byte_s
        booked = service if service < self.quantum_s else self.quantum_s
        nic_begin = self._qp_nic[qp].serve(now, booked) - booked
        free = self._qp_free
        q_begin = free[qp] if free[qp] > now else now
        free[qp] = q_begin + messages * self.qp_msg_s
        begin = nic_begin if nic_begin > q_begin else q_begin
        fixed = self.draw[kind]() + (messages - 1) * self.qp_msg_s + (doorbells - 1) * self.mmio_s
        return begin + booked + fixed + (service - booked)

    def unloaded_s(self, kind: int, messages: int, nbytes: int, doorbells: int = 1) -> float:
        """A batch's time with no queueing and the median round trip."""
        service = messages * self.nic_msg_s + nbytes * self.byte_s
        return self.rtt[kind] + (messages - 1) * self.qp_msg_s + (doorbells - 1) * self.mmio_s + service

    def servers(self) -> dict[str, Any]:
        return {"rdma_nic" if h == 0 else f"rdma_nic{h}": n for h, n in enumerate(self.nics)}


class RoundBuilder:
    """Accumulates the round trips of one operation (a small helper for the planners)."""

    __slots__ = ("client", "rounds", "sent", "received", "atomics")

    def __init__(self, client: RdmaClient) -> None:
        self.client = client
        self.rounds: list[Round] = []
        self.sent = 0
        self.received = 0
        self.atomics = 0

    def add(self, kind: int, messages: int, read_bytes: int = 0, write_bytes: int = 0, doorbells: int | None = None) -> None:
        if messages <= 0:
            return
        db = self.client.doorbells(messages) if doorbells is None else doorbells
        self.rounds.append((kind, messages, read_bytes + write_bytes, db))
        self.received += read_bytes
        self.sent += write_bytes
        if kind == ATOMIC:
            self.atomics += messages

    def op(self, kind: str, keys: int, client_s: float = 0.0) -> Op:
        return Op(kind, keys, len(self.rounds), self.sent, self.received, 0.0, self.atomics, tuple(self.rounds), client_s)


@dataclass(slots=True)
class WriteJob:
    """A write whose effect on the structure happens when it executes (see remote_tree)."""

    keys: list[int]  # index keys (after the key order)
    delete: bool
    rounds: list[Round] = field(default_factory=list)  # what it posted, filled as it runs


class RdmaIndex(IndexModel):
    """Base of the one-sided indexes: the client, the node cache, the key order, and
    ``execute``, which walks each op's round trips (and runs deferred writes)."""

    def __init__(
        self,
        client: RdmaClient,
        *,
        cache_bytes: Bytes = 0.0,
        cache_policy: Annotated[str, OneOf("lru", "sample2")] = "lru",
        lookup: Lookup = "prefix",
        seed: Seed = 0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(lookup=lookup)
        if not isinstance(client, RdmaClient):
            raise TypeError(f"client must be an RdmaClient, got {type(client).__name__}")
        self.client = client
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        client.bind(self.rng)
        self.local_lookup_s = client.local_lookup_s
        self.cache = NodeCache(cache_bytes, cache_policy, seed)
        self.keymap = KeyMap(client.key_order)
        self.key_order = client.key_order

    def _doorbells(self, messages: int) -> int:
        return self.client.doorbells(messages)

    def servers(self) -> dict[str, Any]:
        return self.client.servers()

    def unloaded_s(self, op: Op) -> float:
        u = self.client.unloaded_s
        return sum(u(k, m, nb, db) for k, m, nb, db in op.rounds) + op.client_s

    def execute(self, env: simpy.Environment, ops: list[Op], host: int = 0) -> Generator[simpy.Event, Any, None]:
        # One timeout per round trip: the NIC is booked at the instant the batch is posted
        # (exact FCFS, see kvsim.servers); client CPU joins the last one.
        post = self.client.post
        rec = self.recorder
        for op in ops:
            start = env.now
            if op.write is not None:
                yield from self._run_write(env, op, host)
            else:
                rounds = op.rounds
                if not rounds:
                    if op.client_s > 0.0:
                        yield env.timeout(op.client_s)
                else:
                    qp = self.client.next_qp(host)
                    last = len(rounds) - 1
                    for j, (kind, m, nb, db) in enumerate(rounds):
                        now = env.now
                        done = post(now, qp, kind, m, nb, db)
                        yield env.timeout(done - now + (op.client_s if j == last else 0.0))
            if rec is not None:
                rec.add(op, start, env.now - start)

    def _run_write(self, env: simpy.Environment, op: Op, host: int = 0) -> Generator[simpy.Event, Any, None]:
        raise NotImplementedError(f"{self.name} plans no deferred writes")
        yield  # pragma: no cover
