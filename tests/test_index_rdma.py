"""The RDMA cost model: unloaded round trips, per-queue-pair pipelining, a shared NIC."""

from __future__ import annotations

import pytest
import simpy

from kvsim.index.base import Op, OpRecorder
from kvsim.index.rdma import ATOMIC, READ, WRITE, RdmaFabric, RdmaIndex


def fabric(**kw: float) -> RdmaFabric:
    args = dict(read_rtt_s=1.9e-6, write_rtt_s=2.64e-6, atomic_rtt_s=2.0e-6, bandwidth_Bps=11.5e9, message_rate_per_s=2.5e6)
    args.update(kw)
    return RdmaFabric(**args)  # type: ignore[arg-type]


def test_unloaded_round_trips() -> None:
    f = fabric()
    # one 1 KB READ: the measured small READ + serialisation ("about 2.0 us")
    assert f.unloaded_s(READ, 1, 1024) == pytest.approx(1.9e-6 + 1024 / 11.5e9 + 1 / 215e6)
    assert f.unloaded_s(READ, 1, 1024) == pytest.approx(2.0e-6, abs=0.02e-6)
    # each further message of a batch adds one queue-pair message time (1 / 2.5 M/s)
    assert f.unloaded_s(READ, 32, 32 * 1024) - f.unloaded_s(READ, 1, 32 * 1024) == pytest.approx(31 * 0.4e-6 + 31 / 215e6)
    assert f.unloaded_s(WRITE, 1, 8) > f.unloaded_s(ATOMIC, 1, 8) > f.unloaded_s(READ, 1, 8)
    # without doorbell batching each extra work request rings its own doorbell
    g = fabric(mmio_s=0.1e-6)
    assert g.unloaded_s(READ, 4, 4096, doorbells=4) - g.unloaded_s(READ, 4, 4096, doorbells=1) == pytest.approx(0.3e-6)


def test_large_batches_hold_the_nic_one_quantum() -> None:
    f = fabric()
    booked, fixed = f.round(READ, 64, 64 * 2876)
    assert booked == pytest.approx(f.quantum_s)
    assert booked + fixed == pytest.approx(f.unloaded_s(READ, 64, 64 * 2876))
    small_b, _ = f.round(READ, 1, 64)
    assert small_b < f.quantum_s


class _Probe(RdmaIndex):
    name = "probe"

    def __init__(self) -> None:
        super().__init__()
        self.fabric = fabric()

    def plan_get(self, key: int) -> Op:
        r = self.fabric.round(READ, 1, 1024)
        return Op("get", 1, 1, 0, 1024, 0.0, 0, (r,), 0.5e-6)

    def plan_range(self, keys):  # type: ignore[no-untyped-def]
        r = self.fabric.round(READ, 2, 2048)
        return Op("range", len(keys), 2, 0, 2048, 0.0, 0, (r, r), 0.0)

    def plan_insert(self, keys):  # type: ignore[no-untyped-def]
        return []

    def plan_delete(self, keys):  # type: ignore[no-untyped-def]
        return []


def test_execute_time_is_the_sum_of_rounds_plus_client_cpu() -> None:
    ix = _Probe()
    ix.recorder = OpRecorder()
    env = simpy.Environment()

    def p():  # type: ignore[no-untyped-def]
        yield from ix.execute(env, ix.plan_lookup([1, 5, 6]))

    env.process(p())
    env.run()
    get = ix.fabric.unloaded_s(READ, 1, 1024) + 0.5e-6
    rng = 2 * ix.fabric.unloaded_s(READ, 2, 2048)
    assert ix.recorder.latency_s == pytest.approx([get, rng])
    assert env.now == pytest.approx(get + rng)
    assert ix.servers()["rdma_nic"].served == 3


def test_simultaneous_ops_queue_fcfs_on_the_nic() -> None:
    ix = _Probe()
    ix.recorder = OpRecorder()
    env = simpy.Environment()

    def p():  # type: ignore[no-untyped-def]
        yield from ix.execute(env, [ix.plan_get(0)])

    for _ in range(10):
        env.process(p())
    env.run()
    s, _ = ix.fabric.round(READ, 1, 1024)
    lat = sorted(ix.recorder.latency_s)
    assert lat[-1] - lat[0] == pytest.approx(9 * s)
