"""Shared helpers of the index tests: the default calibration's numbers, an RDMA client
with constant costs (tails off, so expected values can be worked out by hand), and running
planned ops (writes of the RDMA trees change the tree only when they execute)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import simpy

from kvsim.index.base import IndexModel, Op, OpRecorder
from kvsim.index.rdma import RdmaClient

# conf/calibration/default.yaml (rdma.*, rdma_client.*)
CAL: dict[str, Any] = dict(
    read_rtt_s=1.9e-6,
    write_one_way_s=1.32e-6,
    atomic_rtt_s=2.0e-6,
    bandwidth_Bps=11.5e9,
    message_rate_per_s=2.5e6,
    nic_message_rate_per_s=215e6,
    nic_quantum_bytes=4096,
    mmio_s=0.1e-6,
    local_lookup_s=0.2e-6,
)


def client(**kw: Any) -> RdmaClient:
    """Constant costs, no coherence traffic, a queue pair per operation unless asked."""
    return RdmaClient(**{**CAL, "tails": False, "sharers": 0, "queue_pairs": 64, **kw})


def load(ix: IndexModel, keys: Sequence[int]) -> None:
    """Insert ``keys`` untimed (the structure as after the writes)."""
    ix.apply(ix.plan_insert(keys))


def execute(ix: IndexModel, ops: list[Op], env: simpy.Environment | None = None) -> list[float]:
    """Run ``ops`` one after another from one process; their latencies. Without ``env``,
    one clock per index, carried on from call to call (lock words remember when they
    were released)."""
    if env is None:
        env = getattr(ix, "_test_env", None) or simpy.Environment()
        ix._test_env = env  # type: ignore[attr-defined]
    rec = OpRecorder()
    ix.recorder = rec

    def proc():  # type: ignore[no-untyped-def]
        yield from ix.execute(env, ops)

    env.process(proc())
    env.run()
    ix.recorder = None
    return list(rec.latency_s)
