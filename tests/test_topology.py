"""Topology: paths, per-direction queues, every hop booked, device media, priorities, expansion."""

from __future__ import annotations

import pytest

from kvsim.system.topology import Device, Layout, Link, Topology, expand

MS = 1e-3


def _topo(**kw) -> Topology:
    return Topology(
        ["gpu", "host", "ssd", "nic", "remote"],
        [
            Link("gpu", "host", 25e9, 2e-6, name="pcie"),
            Link("ssd", "host", 7e9, 0.0, name="ssd", reverse_bandwidth_Bps=5e9),
            Link("host", "nic", 25e9, 2e-6, name="nic_pcie"),
            Link("nic", "remote", 11.5e9, 1e-6, name="rdma"),
        ],
        **kw,
    )


def test_path_bottleneck_and_latency() -> None:
    t = _topo()
    p = t.path("remote", "gpu")
    assert p.links == ("rdma", "nic_pcie", "pcie")
    assert p.bottleneck == "rdma" and p.bandwidth_Bps == 11.5e9
    assert p.latency_s == pytest.approx(5e-6)
    assert [q.name for q, _ in p.hops] == ["link:rdma:remote->nic", "link:nic_pcie:nic->host", "link:pcie:host->gpu"]
    assert t.path("gpu", "gpu").links == ()


def test_transfer_time_and_bytes_on_every_hop() -> None:
    t = _topo()
    nbytes = 64 * 2**20
    done = t.transfer(0.0, t.path("ssd", "gpu"), nbytes)
    assert done == pytest.approx(nbytes / 7e9 + 2e-6)  # the slowest hop + the latencies
    b = t.bytes_moved
    assert b["ssd:ssd->host"] == nbytes and b["pcie:host->gpu"] == nbytes
    assert b["ssd:host->ssd"] == 0 and b["rdma:remote->nic"] == 0
    # the other direction has its own bandwidth (an SSD link written more slowly)
    assert t.transfer(1.0, t.path("gpu", "ssd"), nbytes) == pytest.approx(1.0 + nbytes / 5e9 + 2e-6)


def test_contention_on_a_shared_hop() -> None:
    """Two transfers started together on one path: the second waits for the first at the
    slowest hop; a transfer sharing only a fast hop waits only for that hop's share."""
    t = _topo()
    p = t.path("remote", "gpu")
    one = int(11.5e9 * MS)  # 1 ms of RDMA time, 0.46 ms of PCIe time
    a = t.transfer(0.0, p, one)
    b = t.transfer(0.0, p, one)
    assert b - a == pytest.approx(MS, rel=1e-6)
    # ssd -> host does not touch PCIe to the GPU: not delayed
    c = t.transfer(0.0, t.path("ssd", "host"), int(7e9 * MS))
    assert c == pytest.approx(MS)
    # host -> gpu shares the PCIe hop, busy for 2 x 0.46 ms
    d = t.transfer(0.0, t.path("host", "gpu"), int(25e9 * 0.1 * MS))
    assert d == pytest.approx(2 * one / 25e9 + 0.1 * MS + 2e-6, rel=1e-6)


def test_opposite_directions_do_not_slow_each_other() -> None:
    nbytes = int(25e9 * MS)  # 1 ms on PCIe
    t = _topo()
    up = t.transfer(0.0, t.path("host", "gpu"), nbytes)
    down = t.transfer(0.0, t.path("gpu", "host"), nbytes)
    assert up == pytest.approx(MS + 2e-6) and down == pytest.approx(MS + 2e-6)
    # half duplex: one queue per link, the second waits
    h = _topo(full_duplex=False)
    h.transfer(0.0, h.path("host", "gpu"), nbytes)
    assert h.transfer(0.0, h.path("gpu", "host"), nbytes) == pytest.approx(2 * MS + 2e-6)


def test_foreground_overtakes_waiting_background_but_not_the_one_in_service() -> None:
    t = _topo()
    down, up = t.path("gpu", "host"), t.path("host", "gpu")
    nbytes = int(25e9 * MS)
    t.defer(0.0, down, nbytes)  # background, in service [0, 1 ms)
    t.defer(0.0, down, nbytes)  # background, waiting
    fg = t.transfer(0.5 * MS, down, nbytes)
    assert fg == pytest.approx(2 * MS + 2e-6)  # after the one in service, before the waiting one
    assert t.transfer(0.5 * MS, up, nbytes) == pytest.approx(1.5 * MS + 2e-6)  # other direction: free
    q = t.queues["link:pcie:gpu->host"]
    q.flush()
    assert q.bg_wait_s == pytest.approx(2 * MS)  # the second background job started at 2 ms
    assert t.estimate(0.0, up, nbytes) == pytest.approx(1.5 * MS + MS + 2e-6)  # booked nothing
    assert t.bytes_moved["pcie:gpu->host"] == 3 * nbytes


def test_device_medium_reads_and_writes_share_one_queue() -> None:
    t = Topology(
        ["host", "ssd"], [Link("ssd", "host", 8e9, 0.0, name="ssd")], media=[Device("ssd", 7e9, 5e9)]
    )
    nbytes = int(7e9 * MS)
    write = t.transfer(0.0, t.path("host", "ssd"), int(5e9 * MS))  # 1 ms of flash write
    read = t.transfer(0.0, t.path("ssd", "host"), nbytes)  # waits for the write: one medium
    assert write == pytest.approx(MS) and read == pytest.approx(2 * MS)
    assert t.path("ssd", "host").bottleneck == "device:ssd"
    assert t.bytes_moved["ssd"] == nbytes + int(5e9 * MS)


def test_expand_instances_and_hosts() -> None:
    lay = Layout(6, 4, {"gpu": "instance", "host": "host", "nic": "host", "remote": "cluster"})
    assert lay.hosts == 2 and lay.host_of(5) == 1 and lay.device("host", 5) == "host1"
    devs, links, _ = expand(
        lay,
        ["gpu", "host", "nic", "remote"],
        [Link("gpu", "host", 25e9, 0.0, name="pcie"), Link("host", "nic", 25e9, 0.0, name="nic_pcie"),
         Link("nic", "remote", 11.5e9, 0.0, name="rdma")],
        [],
    )
    assert sorted(devs) == sorted([f"gpu{i}" for i in range(6)] + ["host0", "host1", "nic0", "nic1", "remote"])
    names = {ln.key: (ln.a, ln.b) for ln in links}
    assert names["pcie5"] == ("gpu5", "host1") and names["rdma1"] == ("nic1", "remote")
    t = Topology(devs, links)
    assert t.path("gpu0", "gpu5").links == ("pcie0", "nic_pcie0", "rdma0", "rdma1", "nic_pcie1", "pcie5")


def test_bad_topologies() -> None:
    with pytest.raises(ValueError, match="unknown device 'x'"):
        Topology(["a"], [Link("a", "x", 1.0, 0.0)])
    with pytest.raises(ValueError, match="bandwidth"):
        Topology(["a", "b"], [Link("a", "b", 0.0, 0.0)])
    t = Topology(["a", "b", "c"], [Link("a", "b", 1.0, 0.0)])
    with pytest.raises(ValueError, match="no path from 'a' to 'c'"):
        t.path("a", "c")
    with pytest.raises(ValueError, match="scope"):
        Layout(1, 1, {"gpu": "rack"})


def test_slowest_hop_only_is_the_previous_model() -> None:
    """every_hop=False: a transfer queues only at its bottleneck; the faster hops carry its
    bytes but another transfer on them does not wait."""
    t = _topo(every_hop=False)
    one = int(11.5e9 * MS)
    t.transfer(0.0, t.path("remote", "gpu"), one)
    assert t.transfer(0.0, t.path("host", "gpu"), int(25e9 * MS)) == pytest.approx(MS + 2e-6)
    assert t.bytes_moved["pcie:host->gpu"] == one + int(25e9 * MS)
