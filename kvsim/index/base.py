"""The metadata-index interface.

A request asks the index "which of my blocks exist, and where?" (32-byte block hash ->
8-byte address). An index model turns each operation on its data structure into
:class:`Op` cost recipes (round trips, bytes, server CPU time, atomics); ``execute``
turns the recipes into simulated time, queueing on the shared resources it owns.

Operation kinds: ``get`` (one scattered block), ``range`` (a run of contiguous
blocks), ``insert`` (new blocks, or new addresses of moved blocks), ``delete``
(blocks dropped from the bottom tier).

One lookup rule for every index (``lookup``), implemented once here in
:meth:`IndexModel.plan_lookup`: the request's blocks are asked run by run (a range query per
run of contiguous ids, a get per scattered id), and with ``lookup="prefix"`` (the default)
the client stops after the operation that finds the first absent block: block ids stand
for chained prefix hashes, so nothing after an absent block can be reused, and a lookup
answers "how long is my cached prefix". ``lookup="all"`` asks every block. An index only
says what one get or one range costs (``plan_get``, ``plan_range``) and whether it holds a
block (``contains``); an index that walks a chain (radix, extent) may keep state between
the operations of one lookup (``_lookup_begin``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from typing import Annotated, Any

import simpy

from kvsim.index.runs import split_runs
from kvsim.ranges import OneOf

OP_KINDS = ("get", "range", "insert", "delete")
LOOKUP_RULES = ("prefix", "all")
Lookup = Annotated[str, OneOf(*LOOKUP_RULES)]
KEY_BYTES = 32  # SHA-256 of the chained prefix
VALUE_BYTES = 8  # address of the block


class Op:
    """The cost recipe of one metadata operation.

    ``server_s`` is the service time on an index server (Redis thread, RPC worker, radix
    lock). One-sided RDMA indexes have no server CPU: their cost is ``rounds``, one
    ``(nic_service_s, fixed_s)`` pair per round trip, where ``nic_service_s`` occupies the
    client NIC/link (messages / message rate + bytes / bandwidth) and ``fixed_s`` is the
    propagation and posting latency that does not queue (see :mod:`kvsim.index.rdma`).
    ``client_s`` is CPU time on the client (cache probes, sorting a range's entries).
    ``write`` is set on writes whose effect on the structure happens when they execute
    (the RDMA trees): their rounds, bytes, ``lock_wait_s`` and ``cas_retries`` are filled in
    by ``execute``.
    """

    # Not a dataclass: with kvsim/index/base.pxd the compiled build makes it an extension type
    # (its fields C fields, its __init__ compiled: several Ops a request), which a dataclass
    # cannot be.
    __slots__ = ("kind", "keys", "round_trips", "bytes_sent", "bytes_received", "server_s", "atomics",
                 "rounds", "client_s", "write", "lock_wait_s", "cas_retries")

    def __init__(self, kind: str, keys: int, round_trips: int, bytes_sent: int, bytes_received: int,
                 server_s: float, atomics: int = 0, rounds: tuple[tuple[Any, ...], ...] = (),
                 client_s: float = 0.0, write: Any = None, lock_wait_s: float = 0.0,
                 cas_retries: int = 0) -> None:
        self.kind = kind
        self.keys = keys
        self.round_trips = round_trips
        self.bytes_sent = bytes_sent
        self.bytes_received = bytes_received
        self.server_s = server_s  # service time on the index server (CPU or memory node)
        self.atomics = atomics
        self.rounds = rounds
        self.client_s = client_s
        self.write = write
        self.lock_wait_s = lock_wait_s
        self.cas_retries = cas_retries

    def __repr__(self) -> str:
        return "Op(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in Op.__slots__) + ")"


class OpRecorder:
    """Collects one row per metadata operation (columns kept as Python lists for speed)."""

    def __init__(self) -> None:
        self.kind: list[str] = []
        self.start_s: list[float] = []
        self.latency_s: list[float] = []
        self.keys: list[int] = []
        self.round_trips: list[int] = []
        self.bytes: list[int] = []
        self.lock_wait_s: list[float] = []
        self.cas_retries: list[int] = []

    def add(self, op: Op, start: float, latency: float) -> None:
        self.kind.append(op.kind)
        self.start_s.append(start)
        self.latency_s.append(latency)
        self.keys.append(op.keys)
        self.round_trips.append(op.round_trips)
        self.bytes.append(op.bytes_sent + op.bytes_received)
        self.lock_wait_s.append(op.lock_wait_s)
        self.cas_retries.append(op.cas_retries)

    def to_frame(self, index_name: str) -> Any:
        import pandas as pd

        return pd.DataFrame(
            {
                "index": index_name,
                "op": pd.Categorical(self.kind, categories=list(OP_KINDS)),
                "time_s": self.start_s,
                "latency_s": self.latency_s,
                "keys": self.keys,
                "round_trips": self.round_trips,
                "bytes": self.bytes,
                "lock_wait_s": self.lock_wait_s,
                "cas_retries": self.cas_retries,
            }
        )


class IndexModel(ABC):
    name = "base"

    def __init__(self, lookup: Lookup = "prefix") -> None:
        if lookup not in LOOKUP_RULES:
            raise ValueError(f"index.lookup must be one of {LOOKUP_RULES}, got {lookup!r}")
        self.lookup = lookup
        self.recorder: OpRecorder | None = None

    # --- planning: what each operation costs -------------------------------------
    @abstractmethod
    def plan_get(self, key: int) -> Op: ...

    @abstractmethod
    def plan_range(self, keys: Sequence[int]) -> Op: ...

    @abstractmethod
    def plan_insert(self, keys: Sequence[int]) -> list[Op]: ...

    @abstractmethod
    def plan_delete(self, keys: Sequence[int]) -> list[Op]: ...

    @abstractmethod
    def contains(self, block: int) -> bool:
        """Whether the index holds ``block`` now."""

    def held_set(self) -> set[int] | None:
        """The set of keys held, when ``contains`` is exactly membership in it (the lookup
        rule then checks a run in one C-level ``issuperset``: written for speed); else None."""
        return None

    def plan_update(self, keys: Sequence[int]) -> list[Op]:
        """New addresses for resident keys (demotion); an upsert by default (op kind insert)."""
        return self.plan_insert(keys)

    def plan_lookup(self, keys: Sequence[int]) -> list[Op]:
        """The lookup rule (module docstring): runs in order, stopping with ``prefix``
        after the operation that meets the first absent block."""
        self._lookup_begin(keys)
        stop = self.lookup == "prefix"
        contains = self.contains
        held = self.held_set()
        ops = []
        for start, length in split_runs(keys):
            if length == 1:
                ops.append(self.plan_get(keys[start]))
                if stop and not contains(keys[start]):
                    break
                continue
            run = keys[start : start + length]
            ops.append(self.plan_range(run))
            if stop and not (held.issuperset(run) if held is not None else all(contains(b) for b in run)):
                break
        self._lookup_end()
        return ops

    def _lookup_begin(self, keys: Sequence[int]) -> None:  # noqa: B027 (a hook: most indexes need none)
        """Hook: a lookup of ``keys`` starts (chain-walking indexes reset their walk)."""

    def _lookup_end(self) -> None:  # noqa: B027
        """Hook: the lookup's ops are planned."""

    def apply(self, ops: list[Op]) -> None:  # noqa: B027
        """Apply planned writes to the structure without timing them (an untimed preload).
        Indexes whose writes change the structure when planned have nothing to do."""

    # --- timing: how long the operations take, with queueing -----------------------
    @abstractmethod
    def execute(self, env: simpy.Environment, ops: list[Op], host: int = 0) -> Generator[simpy.Event, Any, None]:
        """Run ``ops`` one after another from one client (``yield from`` in a process), on
        host ``host``'s NIC where the index's traffic shares one (the RDMA indexes)."""

    def execute_detached(self, env: simpy.Environment, ops: list[Op],
                         host: int = 0) -> Generator[simpy.Event, Any, float]:
        """:meth:`execute` for work that nothing waits on (a request's background updates
        and deletes): returns the time the last op ends. An index may return as soon as that
        time is known, before it comes, with its bookings and draws made as :meth:`execute`
        makes them (written for speed: one event less)."""
        yield from self.execute(env, ops, host)
        return float(env.now)

    @abstractmethod
    def unloaded_s(self, op: Op) -> float:
        """``op``'s time with no queueing and median costs: what it costs alone."""

    def servers(self) -> dict[str, Any]:
        """Shared resources, for utilization reports."""
        return {}

    def stats(self) -> dict[str, float]:
        """The structure's state (keys held, cache hit ratio, ...), for reports."""
        return {}
