"""The metadata-index interface.

A request asks the index "which of my blocks exist, and where?" (32-byte block hash ->
8-byte address). An index model turns each operation on its data structure into
:class:`Op` cost recipes (round trips, bytes, server CPU time, atomics); ``execute``
turns the recipes into simulated time, queueing on the shared resources it owns.

Operation kinds: ``get`` (one scattered block), ``range`` (a run of contiguous
blocks), ``insert`` (new blocks, or new addresses of moved blocks), ``delete``
(blocks dropped from the bottom tier).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import simpy

from kvsim.index.runs import split_runs

OP_KINDS = ("get", "range", "insert", "delete")
KEY_BYTES = 32  # SHA-256 of the chained prefix
VALUE_BYTES = 8  # address of the block


@dataclass(slots=True)
class Op:
    """The cost recipe of one metadata operation.

    ``server_s`` is the service time on an index server (Redis thread, RPC worker, radix
    lock). One-sided RDMA indexes have no server CPU: their cost is ``rounds``, one
    ``(nic_service_s, fixed_s)`` pair per round trip, where ``nic_service_s`` occupies the
    client NIC/link (messages / message rate + bytes / bandwidth) and ``fixed_s`` is the
    propagation and posting latency that does not queue (see :mod:`kvsim.index.rdma`).
    ``client_s`` is CPU time on the client (cache probes, sorting a range's entries).
    """

    kind: str
    keys: int
    round_trips: int
    bytes_sent: int
    bytes_received: int
    server_s: float  # service time on the index server (CPU or memory node)
    atomics: int = 0
    rounds: tuple[tuple[float, float], ...] = ()
    client_s: float = 0.0


class OpRecorder:
    """Collects one row per metadata operation (columns kept as Python lists for speed)."""

    def __init__(self) -> None:
        self.kind: list[str] = []
        self.start_s: list[float] = []
        self.latency_s: list[float] = []
        self.keys: list[int] = []
        self.round_trips: list[int] = []
        self.bytes: list[int] = []

    def add(self, op: Op, start: float, latency: float) -> None:
        self.kind.append(op.kind)
        self.start_s.append(start)
        self.latency_s.append(latency)
        self.keys.append(op.keys)
        self.round_trips.append(op.round_trips)
        self.bytes.append(op.bytes_sent + op.bytes_received)

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
            }
        )


class IndexModel(ABC):
    name = "base"

    def __init__(self) -> None:
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

    def plan_update(self, keys: Sequence[int]) -> list[Op]:
        """New addresses for resident keys (demotion); an upsert by default (op kind insert)."""
        return self.plan_insert(keys)

    def plan_lookup(self, keys: Sequence[int]) -> list[Op]:
        """A range query per run of two or more contiguous ids, a get per scattered id."""
        ops = []
        for start, length in split_runs(keys):
            if length == 1:
                ops.append(self.plan_get(keys[start]))
            else:
                ops.append(self.plan_range(keys[start : start + length]))
        return ops

    # --- timing: how long the operations take, with queueing -----------------------
    @abstractmethod
    def execute(self, env: simpy.Environment, ops: list[Op]) -> Generator[simpy.Event, Any, None]:
        """Run ``ops`` one after another from one client (``yield from`` in a process)."""

    def servers(self) -> dict[str, Any]:
        """Shared resources, for utilization reports."""
        return {}
