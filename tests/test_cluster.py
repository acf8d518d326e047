"""The full SimPy model: accounting identities, invariants, determinism, known answers."""

from __future__ import annotations

import numpy as np
import pytest

from kvsim.app import (
    build_index,
    build_policy_factory,
    build_prefill,
    build_topology,
    tier_specs,
)
from kvsim.index.runs import split_runs
from kvsim.system.cluster import Cluster, RunResult
from kvsim.system.hierarchy import TierHierarchy
from kvsim.trace.schema import Trace


def simulate(cfg, trace: Trace, check: bool = False) -> tuple[RunResult, Cluster]:
    prefill = build_prefill(cfg)
    tiers = tier_specs(cfg, prefill.model.block_bytes(trace.block_tokens))
    hier = TierHierarchy(tiers, build_policy_factory(cfg), promote_on_hit=cfg.system.promote_on_hit)
    c = Cluster(trace, hier, build_topology(cfg), build_index(cfg), prefill, check_invariants=check)
    return c.run(), c


def spaced(trace: Trace, gap_s: float = 1000.0) -> Trace:
    """The same requests, far enough apart that none overlaps another."""
    return Trace(
        arrival_s=np.arange(len(trace), dtype=np.float64) * gap_s,
        input_tokens=trace.input_tokens,
        output_tokens=trace.output_tokens,
        offsets=trace.offsets,
        hash_ids=trace.hash_ids,
    )


def unlimited_prefix_hits(trace: Trace) -> np.ndarray:
    seen: set[int] = set()
    out = np.zeros(len(trace), dtype=np.int64)
    for i, b in enumerate(trace.iter_blocks()):
        ids = b.tolist()
        p = 0
        while p < len(ids) and ids[p] in seen:
            p += 1
        out[i] = p
        seen.update(ids)
    return out


def test_ttft_is_the_sum_of_its_parts(compose_cfg, embedded_trace) -> None:
    res, _ = simulate(compose_cfg(["system.capacity_scale=0.1"]), embedded_trace.head(600))
    r = res.records
    parts = r["metadata_s"] + r["load_s"] + r["queue_s"] + r["compute_s"] + r["store_s"]
    np.testing.assert_allclose(r["ttft_s"], parts, rtol=0, atol=1e-9)
    assert (r["ttft_s"] > 0).all() and (r["queue_s"] >= -1e-12).all()
    tiers = res.tier_names
    np.testing.assert_array_equal(sum(r[f"hits_{t}"] for t in tiers), r["prefix_hits"])
    assert (r["present_blocks"] >= r["prefix_hits"]).all()


def test_capacity_never_exceeded_and_blocks_accounted(compose_cfg, embedded_trace) -> None:
    """check_invariants runs TierHierarchy.check() after every request."""
    cfg = compose_cfg(["system.capacity_scale=0.02"])
    res, c = simulate(cfg, embedded_trace.head(500), check=True)
    caps = [t.capacity_blocks for t in c.hier.tiers]
    assert c.hier.occupancy() == caps  # a small hierarchy fills up
    assert sum(caps) < len(np.unique(embedded_trace.head(500).hash_ids))
    assert res.records["prefix_hits"].sum() > 0


def test_unlimited_capacity_hits_equal_the_trace_prefix_reuse(compose_cfg, embedded_trace) -> None:
    tr = spaced(embedded_trace.head(400))
    res, _ = simulate(compose_cfg(["system.capacity_scale=100"]), tr)
    np.testing.assert_array_equal(res.records["prefix_hits"], unlimited_prefix_hits(tr))


def test_load_bytes_and_link_bytes(compose_cfg, embedded_trace) -> None:
    cfg = compose_cfg(["system.capacity_scale=0.05"])
    res, c = simulate(cfg, embedded_trace.head(800))
    r = res.records
    lower = sum(r[f"hits_{t}"] for t in res.tier_names[1:])
    np.testing.assert_array_equal(r["load_bytes"], lower * c.block_bytes)
    # Every load from a lower tier crosses PCIe into the GPU; demotions out of the GPU too.
    assert res.link_bytes["pcie"] >= r["load_bytes"].sum()
    assert res.link_bytes["rdma"] > 0
    # Demotions per request add up to what crossed the links beyond the loads.
    assert r["moved_bytes"].sum() > 0
    assert r["moved_bytes"].sum() % c.block_bytes == 0
    assert res.link_bytes["pcie"] <= r["load_bytes"].sum() + r["moved_bytes"].sum()


def test_metadata_time_counts_round_trips(compose_cfg, embedded_trace) -> None:
    cfg = compose_cfg()
    tr = spaced(embedded_trace.head(200))
    res, _ = simulate(cfg, tr)
    rtt = cfg.calibration.tcp.rtt_s
    commands = np.array([len(split_runs(b.tolist())) for b in tr.iter_blocks()])
    md = res.records["metadata_s"]
    # No contention when requests do not overlap: one RTT plus service per command.
    assert (md >= commands * rtt).all()
    assert (md <= commands * (rtt + 200e-6)).all()


def test_pipelined_redis_is_faster(compose_cfg, embedded_trace) -> None:
    tr = embedded_trace.head(300)
    plain, _ = simulate(compose_cfg(["index.lookup=all"]), tr)  # a pipeline cannot stop at a miss
    piped, _ = simulate(compose_cfg(["index.pipeline=true", "index.lookup=all"]), tr)
    assert piped.records["metadata_s"].mean() < plain.records["metadata_s"].mean()
    np.testing.assert_array_equal(piped.records["prefix_hits"], plain.records["prefix_hits"])


def test_deterministic(compose_cfg, embedded_trace) -> None:
    cfg = compose_cfg(["system.capacity_scale=0.1"])
    a, _ = simulate(cfg, embedded_trace.head(500))
    b, _ = simulate(cfg, embedded_trace.head(500))
    for k in a.records:
        np.testing.assert_array_equal(a.records[k], b.records[k], err_msg=k)
    assert a.link_bytes == b.link_bytes


def test_more_capacity_more_hits_lower_ttft(compose_cfg, embedded_trace) -> None:
    tr = embedded_trace.head(1000)
    small, _ = simulate(compose_cfg(["system.capacity_scale=0.02"]), tr)
    big, _ = simulate(compose_cfg(["system.capacity_scale=1.0"]), tr)
    assert big.records["prefix_hits"].sum() > small.records["prefix_hits"].sum()
    assert big.records["compute_s"].sum() < small.records["compute_s"].sum()
    assert np.median(big.records["ttft_s"]) <= np.median(small.records["ttft_s"])


@pytest.mark.parametrize("policy", ["fifo", "lfu"])
def test_other_policies_run(compose_cfg, embedded_trace, policy: str) -> None:
    res, _ = simulate(compose_cfg([f"policy={policy}", "system.capacity_scale=0.05"]), embedded_trace.head(300), check=True)
    assert res.records["prefix_hits"].sum() > 0
