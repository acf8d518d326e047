"""The RDMA client: unloaded round trips worked out by hand, queue pairs shared by
operations, a NIC shared by everything (and swappable), doorbells."""

from __future__ import annotations

import pytest
import simpy

from kvsim.index.rdma import ATOMIC, READ, WRITE, RdmaClient
from kvsim.servers import FCFSServer

from .index_util import CAL, client

NIC = 1 / 215e6
B = 1 / 11.5e9
QP = 1 / 2.5e6


def test_unloaded_round_trips_by_hand() -> None:
    c = client()
    # one 1 KB READ: the measured small READ + one message + 1024 B on the link: 1.993695 us
    assert c.unloaded_s(READ, 1, 1024) == pytest.approx(1.9e-6 + NIC + 1024 * B)
    assert c.unloaded_s(READ, 1, 1024) == pytest.approx(1.993695e-6, rel=1e-6)
    # a signaled WRITE completes after twice the one-way time; a CAS after its round trip
    assert c.unloaded_s(WRITE, 1, 8) == pytest.approx(2 * 1.32e-6 + NIC + 8 * B)
    assert c.unloaded_s(ATOMIC, 1, 8) == pytest.approx(2.0e-6 + NIC + 8 * B)
    # 32 READs in one batch: 31 more messages on the queue pair (12.4 us), 32 on the NIC
    assert c.unloaded_s(READ, 32, 32 * 1024) == pytest.approx(1.9e-6 + 31 * QP + 32 * NIC + 32 * 1024 * B)
    assert c.unloaded_s(READ, 32, 32 * 1024) == pytest.approx(17.3e-6, abs=0.05e-6)
    # without doorbell batching each further work request rings its own doorbell (0.1 us)
    assert c.unloaded_s(READ, 4, 4096, doorbells=4) - c.unloaded_s(READ, 4, 4096, doorbells=1) == pytest.approx(0.3e-6)
    assert client(doorbell_batch=False).doorbells(4) == 4 and c.doorbells(4) == 1


def test_post_matches_unloaded_when_alone_and_queues_otherwise() -> None:
    c = client(queue_pairs=1)
    assert c.post(0.0, 0, READ, 1, 1024) == pytest.approx(c.unloaded_s(READ, 1, 1024))
    # a second batch on the same queue pair, posted at once, waits for the first's messages
    c2 = client(queue_pairs=1)
    first = c2.post(0.0, 0, READ, 4, 4096)
    second = c2.post(0.0, 0, READ, 4, 4096)
    assert second - first == pytest.approx(4 * QP)  # the QP was busy 4 messages' time
    # on different queue pairs only the NIC is shared: one NIC service apart
    c3 = client(queue_pairs=2)
    a = c3.post(0.0, c3.next_qp(), READ, 4, 4096)
    b = c3.post(0.0, c3.next_qp(), READ, 4, 4096)
    assert b - a == pytest.approx(min(4 * NIC + 4096 * B, c3.quantum_s))


def test_large_batches_hold_the_shared_nic_one_quantum() -> None:
    c = client()
    assert c.quantum_s == pytest.approx(NIC + 4096 * B)  # one 4 KB packet
    t1 = c.post(0.0, 0, READ, 64, 64 * 2876)  # 184 KB of leaves
    t2 = c.post(0.0, 1, READ, 1, 64)  # a small READ behind it waits one quantum, not 16 us
    assert t2 == pytest.approx(c.quantum_s + c.unloaded_s(READ, 1, 64))
    assert t1 == pytest.approx(c.unloaded_s(READ, 64, 64 * 2876))


def test_the_nic_is_swappable_for_a_hosts_nic() -> None:
    host_nic = FCFSServer("host_nic", 1)
    host_nic.serve(0.0, 5e-6)  # a KV transfer holds the host's NIC for 5 us
    c = client()
    c.attach_nic(host_nic)
    assert c.post(0.0, 0, READ, 1, 64) == pytest.approx(5e-6 + c.unloaded_s(READ, 1, 64))
    assert c.servers() == {"rdma_nic": host_nic}
    assert host_nic.served == 2


def test_bad_settings_fail_at_construction() -> None:
    for bad in (dict(queue_pairs=0), dict(sharers=-1), dict(key_order="sorted"), dict(bandwidth_Bps=0.0)):
        with pytest.raises(ValueError):
            RdmaClient(**{**CAL, **bad})  # type: ignore[arg-type]


def test_execute_walks_the_rounds_and_records_them() -> None:
    from kvsim.index.base import OpRecorder
    from kvsim.index.sherman import ShermanIndex

    ix = ShermanIndex(client(queue_pairs=1))
    ix.tree.bulk_load(list(range(1000)))
    ix.plan_get(0)
    ix.recorder = OpRecorder()
    env = simpy.Environment()

    def proc():  # type: ignore[no-untyped-def]
        yield from ix.execute(env, ix.plan_lookup([3, 10, 11, 12, 40]))

    for _ in range(20):  # 20 lookups at the same instant share the queue pair and the NIC
        env.process(proc())
    env.run()
    df = ix.recorder.to_frame("sherman")
    assert set(df["op"].astype(str)) == {"get", "range"}
    assert df["latency_s"].min() == pytest.approx(ix.client.unloaded_s(READ, 1, 1024) + 0.2e-6)
    assert df["latency_s"].max() > 19 * QP  # the 20th waited for the others' messages


def test_a_hosts_index_is_checked_and_one_sided_ops_use_no_server() -> None:
    with pytest.raises(ValueError, match="host must be >= 0, got -1"):
        client().attach_nic(FCFSServer("host_nic", 1), host=-1)
    from kvsim.index.rdma import RoundBuilder

    b = RoundBuilder(client())
    b.add(READ, 2, read_bytes=128)
    op = b.op("range", 2, 0.2e-6)
    assert (op.kind, op.keys, op.round_trips, op.bytes_received, op.server_s, op.client_s) == ("range", 2, 1, 128, 0.0, 0.2e-6)
