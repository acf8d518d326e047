"""Topology: paths, bottlenecks, transfer times and contention."""

from __future__ import annotations

import pytest

from kvsim.system.topology import Link, Topology


def _topo() -> Topology:
    return Topology(
        ["gpu", "host", "ssd", "nic", "remote"],
        [
            Link("gpu", "host", 25e9, 2e-6, name="pcie"),
            Link("host", "ssd", 7e9, 0.0, name="ssd"),
            Link("host", "nic", 25e9, 2e-6, name="nic_pcie"),
            Link("nic", "remote", 11.5e9, 1e-6, name="rdma"),
        ],
    )


def test_path_bottleneck_and_latency() -> None:
    t = _topo()
    p = t.path("remote", "gpu")
    assert p.links == ("rdma", "nic_pcie", "pcie")
    assert p.bottleneck == "rdma" and p.bandwidth_Bps == 11.5e9
    assert p.latency_s == pytest.approx(5e-6)
    assert t.path("gpu", "gpu").links == ()


def test_transfer_time_and_bytes() -> None:
    t = _topo()
    p = t.path("ssd", "gpu")
    nbytes = 64 * 2**20
    done = t.transfer(0.0, p, nbytes)
    assert done == pytest.approx(nbytes / 7e9 + 2e-6)
    assert t.bytes_moved["ssd"] == nbytes and t.bytes_moved["pcie"] == nbytes
    assert t.bytes_moved["rdma"] == 0


def test_contention_on_the_bottleneck() -> None:
    """Two transfers started together on one link: the second waits for the first."""
    t = _topo()
    p = t.path("remote", "gpu")
    one = 11.5e9 * 1e-3  # 1 ms of link time
    a = t.transfer(0.0, p, int(one))
    b = t.transfer(0.0, p, int(one))
    assert b - a == pytest.approx(1e-3, rel=1e-6)
    # A transfer on a disjoint bottleneck is not delayed.
    c = t.transfer(0.0, t.path("ssd", "gpu"), int(7e9 * 1e-3))
    assert c == pytest.approx(1e-3 + 2e-6)


def test_bad_topologies() -> None:
    with pytest.raises(ValueError, match="unknown device 'x'"):
        Topology(["a"], [Link("a", "x", 1.0, 0.0)])
    with pytest.raises(ValueError, match="bandwidth"):
        Topology(["a", "b"], [Link("a", "b", 0.0, 0.0)])
    t = Topology(["a", "b", "c"], [Link("a", "b", 1.0, 0.0)])
    with pytest.raises(ValueError, match="no path from 'a' to 'c'"):
        t.path("a", "c")
