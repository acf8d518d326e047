"""The full SimPy model: accounting identities, invariants, determinism, and known answers
(a chunked schedule and the overlap formula worked by hand, routing, load-or-recompute)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pytest

from kvsim.app import build_cluster
from kvsim.index.base import IndexModel, Op
from kvsim.index.runs import split_runs
from kvsim.policy.lru import LRU
from kvsim.system.cluster import Cluster, RequestRecord, RunResult, pipeline_s
from kvsim.system.compute import GPUSpec, ModelSpec, PrefillModel
from kvsim.system.hierarchy import TierHierarchy
from kvsim.system.node import TierTemplate, node_tiers
from kvsim.system.scheduler import QueueHooks, Scheduler
from kvsim.system.topology import Layout, Link, Topology, expand
from kvsim.trace.schema import Trace


def simulate(cfg, trace: Trace, check: bool = False) -> tuple[RunResult, Cluster]:
    c, _ = build_cluster(cfg, trace, check_invariants=check)
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


PARTS = ("metadata_s", "queue_s", "load_s", "compute_s", "batch_wait_s", "store_s")


@pytest.mark.parametrize("overrides", [[], ["scheduler=fcfs", "system.overlap_load=false"], ["gpu.instances=1"]])
def test_ttft_is_the_sum_of_its_parts(compose_cfg, embedded_trace, overrides) -> None:
    res, c = simulate(compose_cfg(["system.capacity_scale=0.05", *overrides]), embedded_trace.head(600))
    r = res.records
    np.testing.assert_allclose(r["ttft_s"], sum(r[k] for k in PARTS), rtol=0, atol=1e-9)
    for k in PARTS:
        assert (r[k] >= -1e-12).all(), k
    assert (r["ttft_s"] > 0).all()
    # every token assigned to an instance was computed there
    assert [i.load_tokens for i in c.instances] == [0] * len(c.instances)
    np.testing.assert_array_equal(sum(r[f"hits_{t}"] for t in res.tier_names), r["prefix_hits"])
    assert (r["present_blocks"] >= r["prefix_hits"]).all()
    assert (r["recomputed_blocks"] <= r["prefix_hits"]).all()
    # a request that loaded nothing exposes no load of its own (another's loads in its first
    # iteration count as batch wait)
    assert (r["load_s"][r["load_bytes"] == 0] == 0).all() and (r["load_s"] > 0).any()


def test_every_field_of_the_request_record_is_a_column_and_written(compose_cfg, embedded_trace) -> None:
    """The record goes into its columns field by field (Cluster._request): a field left out
    would stay zero. In this run each of them is non-zero for some request."""
    res, _ = simulate(compose_cfg(["system.capacity_scale=0.05"]), embedded_trace.head(600))
    fields = [f for f in RequestRecord._fields if f != "tier_hits"]
    assert set(fields) <= set(res.records)
    assert [f for f in fields if not res.records[f].any()] == []
    assert sum(res.records[f"hits_{t}"] for t in res.tier_names).any()


def test_capacity_never_exceeded_and_blocks_accounted(compose_cfg, embedded_trace) -> None:
    """check_invariants runs TierHierarchy.check() after every request."""
    for n in (1, 4):
        cfg = compose_cfg(["system.capacity_scale=0.01", f"gpu.instances={n}", "system.instances_per_host=2"])
        res, c = simulate(cfg, embedded_trace.head(500), check=True)
        caps = [t.capacity_blocks for t in c.hier.tiers]
        assert c.hier.occupancy() == caps  # a small hierarchy fills up
        assert sum(caps) < len(np.unique(embedded_trace.head(500).hash_ids))
        assert res.records["prefix_hits"].sum() > 0
        assert len(c.hier.views) == n and len({c.hier.tiers[v[1]].device for v in c.hier.views}) == (n + 1) // 2


def test_unlimited_capacity_hits_equal_the_trace_prefix_reuse(compose_cfg, embedded_trace) -> None:
    tr = spaced(embedded_trace.head(400))
    one = ["system.capacity_scale=100", "system.load_or_recompute=load", "trace.spread=none"]
    res, _ = simulate(compose_cfg([*one, "gpu.instances=1"]), tr)
    np.testing.assert_array_equal(res.records["prefix_hits"], unlimited_prefix_hits(tr))
    # Several instances: a block computed on one stays in its private GPU tier, out of the
    # others' reach, so they can only hit less.
    res4, _ = simulate(compose_cfg([*one, "router=round_robin"]), tr)
    assert (res4.records["prefix_hits"] <= unlimited_prefix_hits(tr)).all()
    assert res4.records["prefix_hits"].sum() < res.records["prefix_hits"].sum()


def test_load_bytes_and_link_bytes(compose_cfg, embedded_trace) -> None:
    cfg = compose_cfg(["system.capacity_scale=0.05", "system.load_or_recompute=load", "gpu.instances=1"])
    res, c = simulate(cfg, embedded_trace.head(800))
    r = res.records
    lower = sum(r[f"hits_{t}"] for t in res.tier_names[1:])
    np.testing.assert_array_equal(r["load_bytes"], lower * c.block_bytes)
    b = res.link_bytes
    # Every load from a lower tier crosses PCIe into the GPU; demotions out of it go the other way.
    assert b["pcie0:host0->gpu0"] == r["load_bytes"].sum()
    assert b["rdma0:nic0->remote"] > 0 and b["ssd"] > 0  # demotions reach the pool and the SSD
    assert r["moved_bytes"].sum() > 0 and r["moved_bytes"].sum() % c.block_bytes == 0
    assert b["pcie0:gpu0->host0"] <= r["moved_bytes"].sum()
    assert set(res.server_utilization) >= {"link:pcie0:host0->gpu0", "link:pcie0:gpu0->host0", "device:ssd", "prefill:0"}


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
    # round robin (the node helper's routing); a pipeline cannot stop at a miss: lookup=all
    plain, _ = simulate(compose_cfg(["router=round_robin", "index.lookup=all"]), tr)
    piped, _ = simulate(compose_cfg(["router=round_robin", "index.pipeline=true", "index.lookup=all"]), tr)
    assert piped.records["metadata_s"].mean() < plain.records["metadata_s"].mean()
    np.testing.assert_array_equal(piped.records["prefix_hits"], plain.records["prefix_hits"])


def test_deterministic_and_seeded(compose_cfg, embedded_trace) -> None:
    cfg = compose_cfg(["system.capacity_scale=0.1"])
    a, _ = simulate(cfg, embedded_trace.head(500))
    b, _ = simulate(cfg, embedded_trace.head(500))
    for k in a.records:
        np.testing.assert_array_equal(a.records[k], b.records[k], err_msg=k)
    assert a.link_bytes == b.link_bytes
    other, _ = simulate(compose_cfg(["system.capacity_scale=0.1", "seed=1"]), embedded_trace.head(500))
    assert not np.array_equal(other.records["arrival_s"], a.records["arrival_s"])


def test_requests_blocks_converted_a_chunk_at_a_time(compose_cfg, embedded_trace, monkeypatch) -> None:
    """With chunks of 7 requests (60 requests: 9 chunks, the last of 4), every request sees
    exactly its own blocks, the records equal those of one chunk for all, and the chunk held
    at the end is the last one's blocks only."""
    import kvsim.system.cluster as cluster_mod

    cfg = compose_cfg(["system.capacity_scale=0.1"])
    trace = embedded_trace.head(60)
    whole, _ = simulate(cfg, trace)
    monkeypatch.setattr(cluster_mod, "CHUNK_REQUESTS", 7)
    seen: list[tuple[int, ...]] = []

    class Spy(QueueHooks):
        def enqueued(self, instance: int, blocks, now: float) -> None:  # noqa: ANN001
            seen.append(tuple(blocks))

    c, _ = build_cluster(cfg, trace)
    c.hooks = Spy()
    chunked = c.run()
    assert sorted(seen) == sorted(tuple(trace.blocks(i).tolist()) for i in range(60))
    for k in whole.records:
        np.testing.assert_array_equal(chunked.records[k], whole.records[k], err_msg=k)
    assert c._chunk == trace.hash_ids[trace.offsets[56]:trace.offsets[60]].tolist()


def test_the_run_spans_every_requests_background_work(compose_cfg, embedded_trace) -> None:
    """A request's background updates and deletes are booked without an event for their end
    (IndexModel.execute_detached): the run still lasts until the last of them ends, and the
    utilizations are taken over that span. Small tiers, so that requests demote and drop."""
    r, _ = simulate(compose_cfg(["system.capacity_scale=0.05"]), embedded_trace.head(300))
    finish = r.records["finish_s"]
    assert (finish >= r.records["arrival_s"] + r.records["ttft_s"]).all()
    assert (finish > r.records["arrival_s"] + r.records["ttft_s"]).any()  # some background work
    assert r.sim_time_s >= finish.max()


def test_more_capacity_more_hits_lower_ttft(compose_cfg, embedded_trace) -> None:
    tr = embedded_trace.head(1000)
    small, _ = simulate(compose_cfg(["system.capacity_scale=0.02"]), tr)
    big, _ = simulate(compose_cfg(["system.capacity_scale=1.0"]), tr)
    assert big.records["prefix_hits"].sum() > small.records["prefix_hits"].sum()
    assert big.records["compute_s"].sum() < small.records["compute_s"].sum()
    assert np.median(big.records["ttft_s"]) <= np.median(small.records["ttft_s"])


@pytest.mark.parametrize("policy", ["fifo", "lfu", "hotness"])
def test_other_policies_run(compose_cfg, embedded_trace, policy: str) -> None:
    res, _ = simulate(compose_cfg([f"policy={policy}", "system.capacity_scale=0.05"]), embedded_trace.head(300), check=True)
    assert res.records["prefix_hits"].sum() > 0


def test_rdma_index_shares_the_hosts_nic_with_kv_traffic(compose_cfg, embedded_trace) -> None:
    c, _ = build_cluster(compose_cfg(["index=sherman"]), embedded_trace.head(200))
    nic = c.topo.queues["link:rdma0:remote->nic0"]
    assert c.index.client.nic is nic  # type: ignore[attr-defined]
    c.run()
    assert nic.served > 0  # index round trips and KV loads from the pool alike


def test_each_hosts_index_traffic_goes_through_its_own_nic(compose_cfg, embedded_trace) -> None:
    # Two hosts, pool and KV loads aside (nothing below DRAM is ever loaded with this much
    # DRAM): what each host's NIC serves is that host's index round trips.
    cfg_overrides = ["index=sherman", "gpu.instances=8", "system.instances_per_host=4", "router=round_robin"]
    c, _ = build_cluster(compose_cfg(cfg_overrides), embedded_trace.head(200))
    nics = [c.topo.queues[f"link:rdma{h}:remote->nic{h}"] for h in (0, 1)]
    client = c.index.client  # type: ignore[attr-defined]
    assert client.nics[0] is nics[0] and client.nics[1] is nics[1]
    assert c._host == [0] * 4 + [1] * 4
    c.run()
    # round robin over 8 instances: half the requests on each host, so both NICs carry some
    assert nics[0].served > 0 and nics[1].served > 0
    # the same run with an index that never touches the NIC: host 1's NIC serves nothing
    c2, _ = build_cluster(compose_cfg(["index=redis", *cfg_overrides[1:]]), embedded_trace.head(200))
    c2.run()
    assert c2.topo.queues["link:rdma1:remote->nic1"].served == 0
    qps = client.queue_pairs
    assert len(client._qp_free) == 2 * qps and {id(q) for q in client._qp_nic[qps:]} == {id(nics[1])}


# --- hand-worked cases on a tiny node built without Hydra ------------------------------------
class NullIndex(IndexModel):
    """An index that costs nothing (so the hand-worked times hold exactly)."""

    name = "null"

    def plan_get(self, key: int) -> Op:
        return Op("get", 1, 0, 0, 0, 0.0)

    def plan_range(self, keys) -> Op:  # noqa: ANN001
        return Op("range", len(keys), 0, 0, 0, 0.0)

    def plan_insert(self, keys) -> list[Op]:  # noqa: ANN001
        return []

    def plan_delete(self, keys) -> list[Op]:  # noqa: ANN001
        return []

    def execute(self, env, ops, host=0) -> Generator[Any, Any, None]:  # noqa: ANN001
        return
        yield

    def contains(self, key: int) -> bool:  # every block "present": the lookup plans them all
        return True

    def unloaded_s(self, op: Op) -> float:
        return 0.0


MODEL = ModelSpec("tiny", 1e9, 4, 8, 2, 64)  # 2 KiB of KV per token: 1 MiB per 512-token block
GPU = GPUSpec("g", 1e15, 0.0, mfu=0.5)
RATE = 0.5e15
DENSE, ATTN = 2 * 1e9, 4 * 4 * 8 * 64


def hand_flops(n: int, ctx: int) -> float:
    return DENSE * n + ATTN * n * (ctx + (n + 1) / 2)


def tiny_trace(reqs: list[tuple[float, int, list[int]]]) -> Trace:
    return Trace(
        arrival_s=np.array([r[0] for r in reqs], dtype=np.float64),
        input_tokens=np.array([r[1] for r in reqs], dtype=np.int64),
        output_tokens=np.ones(len(reqs), dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum([len(r[2]) for r in reqs])]).astype(np.int64),
        hash_ids=np.array([b for r in reqs for b in r[2]], dtype=np.int64),
    )


def tiny_node(trace: Trace, gpu_blocks: int, dram_blocks: int, pcie_Bps: float, policy: Any = LRU, **kw) -> Cluster:
    layout = Layout(1, 1, {"gpu": "instance", "host": "host"})
    tiers, views = node_tiers(layout, [TierTemplate("gpu", "gpu", gpu_blocks), TierTemplate("dram", "host", dram_blocks)])
    devs, links, media = expand(layout, ["gpu", "host"], [Link("gpu", "host", pcie_Bps, 0.0, name="pcie")], [])
    return Cluster(trace, TierHierarchy(tiers, policy, views=views), Topology(devs, links, media), NullIndex(),
                   PrefillModel(MODEL, GPU), **kw)


def test_chunked_schedule_by_hand() -> None:
    """Budget 1000 tokens per iteration, 600 per request; A (1500 tokens) and B (700) arrive
    together, A first:
        iteration 1: A 600 [0, 600),    B 400 [0, 400)
        iteration 2: A 600 [600, 1200), B 300 [400, 700)    -> B's prefill ends
        iteration 3: A 300 [1200, 1500)                     -> A's prefill ends"""
    tr = tiny_trace([(0.0, 1500, [0, 1, 2]), (0.0, 700, [10, 11])])
    c = tiny_node(tr, 100, 100, 25e9, scheduler=Scheduler("chunked", 1000, 600))
    r = c.run().records
    a = [hand_flops(600, 0), hand_flops(600, 600), hand_flops(300, 1200)]
    b = [hand_flops(400, 0), hand_flops(300, 400)]
    it = [(a[0] + b[0]) / RATE, (a[1] + b[1]) / RATE, a[2] / RATE]
    assert r["ttft_s"][1] == pytest.approx(it[0] + it[1], rel=1e-12)
    assert r["ttft_s"][0] == pytest.approx(sum(it), rel=1e-12)
    assert r["compute_s"][0] == pytest.approx(sum(a) / RATE) and r["compute_s"][1] == pytest.approx(sum(b) / RATE)
    assert r["batch_wait_s"][1] == pytest.approx(sum(a[:2]) / RATE)  # B's iterations also computed A
    assert list(r["iterations"]) == [3, 2] and list(r["new_tokens"]) == [1500, 700]
    assert c.instances[0].iterations == 3
    # FCFS: A alone, then B alone.
    f = tiny_node(tr, 100, 100, 25e9, scheduler=Scheduler("fcfs")).run().records
    assert f["ttft_s"][0] == pytest.approx(hand_flops(1500, 0) / RATE)
    assert f["ttft_s"][1] == pytest.approx((hand_flops(1500, 0) + hand_flops(700, 0)) / RATE)
    assert f["queue_s"][1] == pytest.approx(hand_flops(1500, 0) / RATE) and f["batch_wait_s"][1] == 0


class _CountingQueue(list):
    """An instance's queue that counts the entries its readers visit (iteration, slices)."""

    visited = 0

    def __iter__(self):  # noqa: ANN204
        for r in super().__iter__():
            _CountingQueue.visited += 1
            yield r

    def __getitem__(self, i):  # noqa: ANN001, ANN204
        out = super().__getitem__(i)
        if isinstance(i, slice):
            _CountingQueue.visited += len(out)
        return out


def _queue_visits(n: int, scheduler: Scheduler) -> float:
    """Entries of the waiting queue visited per request when ``n`` requests of 2000 tokens
    arrive together (a backlog of ``n``)."""
    tr = tiny_trace([(0.0, 2000, [10 * i, 10 * i + 1]) for i in range(n)])
    c = tiny_node(tr, 1000, 1000, 25e9, scheduler=scheduler)
    for inst in c.instances:
        inst.queue = _CountingQueue()
    _CountingQueue.visited = 0
    r = c.run().records
    assert len(r["ttft_s"]) == n and (np.diff(r["ttft_s"]) >= 0).all()  # served in order
    # (the queue is kept, not rebuilt: a new list per finished request is a visit of all)
    assert all(type(inst.queue) is _CountingQueue for inst in c.instances)
    return _CountingQueue.visited / n


@pytest.mark.parametrize("scheduler", [Scheduler("chunked", 1000, 400), Scheduler("fcfs")], ids=["chunked", "fcfs"])
def test_a_backlog_does_not_slow_the_iteration_loop(scheduler: Scheduler) -> None:
    """An overloaded instance's queue grows without bound (a day of requests at a rate above
    capacity): the loop may read only the head of its queue, the batches it plans, never the
    whole backlog per iteration (which made 200 k requests take ten times as long as 50 k)."""
    few, many = _queue_visits(50, scheduler), _queue_visits(400, scheduler)
    assert many <= few * 1.1 + 1


def test_a_run_freezes_its_old_objects_and_thaws_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backlog of a long run is kept out of full collections (kvsim.memory.OldObjects,
    every 10 requests here) while it runs, and nothing stays frozen after it."""
    import gc

    import kvsim.system.cluster as cluster_module
    from kvsim.memory import OldObjects

    seen: list[int] = []

    class Often(OldObjects):
        def __init__(self) -> None:
            super().__init__(every=10)

    class Spy(QueueHooks):
        def enqueued(self, instance: int, blocks: Any, now: float) -> None:
            seen.append(gc.get_freeze_count())

    monkeypatch.setattr(cluster_module, "OldObjects", Often)
    tr = tiny_trace([(i * 1e-4, 2000, [10 * i, 10 * i + 1]) for i in range(50)])  # a backlog builds
    tiny_node(tr, 1000, 1000, 25e9, scheduler=Scheduler("chunked", 1000, 400), hooks=Spy()).run()
    assert len(seen) == 50 and seen[0] == 0 and seen[-1] > 0
    assert gc.get_freeze_count() == 0


def _reuse_case(overlap: bool, pcie_Bps: float, recompute: str = "load") -> tuple[dict[str, np.ndarray], float, float]:
    """Request 0 computes blocks 0-3 (2048 tokens); the GPU tier holds none, so they go to
    DRAM; request 1 (2560 tokens) reuses them, loading 4 MiB over PCIe, and computes 512."""
    tr = tiny_trace([(0.0, 2048, [0, 1, 2, 3]), (10.0, 2560, [0, 1, 2, 3, 4])])
    c = tiny_node(tr, 0, 100, pcie_Bps, scheduler=Scheduler("fcfs"), overlap_load=overlap, load_or_recompute=recompute)
    r = c.run().records
    load = 4 * 2**20 / pcie_Bps
    comp = hand_flops(512, 2048) / RATE
    return r, load, comp


@pytest.mark.parametrize("pcie_Bps", [25e9, 0.1e9])  # load hidden by compute / compute hidden by load
def test_overlap_formula_by_hand(pcie_Bps: float) -> None:
    r, load, comp = _reuse_case(True, pcie_Bps)
    assert r["prefix_hits"][1] == 4 and r["hits_dram"][1] == 4 and r["load_bytes"][1] == 4 * 2**20
    # 4 layers: the slower stream plus one layer of the other
    expect = max(load, comp) + min(load, comp) / 4
    assert r["ttft_s"][1] == pytest.approx(expect, rel=1e-9)
    assert pipeline_s(load, comp, 4) == pytest.approx(expect)
    assert r["load_s"][1] == pytest.approx(expect - comp, rel=1e-9)
    assert r["overlap_saved_s"][1] == pytest.approx(load + comp - expect, rel=1e-9)
    off, _, _ = _reuse_case(False, pcie_Bps)
    assert off["ttft_s"][1] == pytest.approx(load + comp, rel=1e-9)
    assert off["overlap_saved_s"][1] == 0


def test_loads_proceed_while_the_request_waits() -> None:
    """Request 2 reuses blocks 0-3 from DRAM but waits (FCFS) behind request 1's 2560-token
    prefill; its 4 MiB load (0.17 ms) ends long before: nothing of it is exposed."""
    tr = tiny_trace([(0.0, 2048, [0, 1, 2, 3]), (10.0, 2560, [20, 21, 22, 23, 24]), (10.0, 2560, [0, 1, 2, 3, 4])])
    r = tiny_node(tr, 0, 100, 25e9, scheduler=Scheduler("fcfs")).run().records
    first = hand_flops(2560, 0) / RATE
    assert r["queue_s"][2] == pytest.approx(first) and r["load_s"][2] == 0.0
    assert r["load_transfer_s"][2] == pytest.approx(4 * 2**20 / 25e9)
    assert r["ttft_s"][2] == pytest.approx(first + hand_flops(512, 2048) / RATE, rel=1e-9)


def test_load_or_recompute_by_hand() -> None:
    """At 10 MB/s the 4 MiB load takes 0.42 s, recomputing the 2048 tokens 4.1 ms: auto
    recomputes them (all 2560 tokens computed, no bytes loaded); load waits for the link."""
    r, load, _ = _reuse_case(True, 10e6, "auto")
    assert r["recomputed_blocks"][1] == 4 and r["load_bytes"][1] == 0 and r["prefix_hits"][1] == 4
    assert r["new_tokens"][1] == 2560
    assert r["ttft_s"][1] == pytest.approx(hand_flops(2560, 0) / RATE, rel=1e-9)
    slow, load, comp = _reuse_case(True, 10e6, "load")
    assert slow["ttft_s"][1] == pytest.approx(load + comp / 4, rel=1e-9)
    fast, _, _ = _reuse_case(True, 25e9, "auto")  # a fast link: the blocks load
    assert fast["recomputed_blocks"][1] == 0 and fast["load_bytes"][1] == 4 * 2**20


def test_queue_hooks_see_every_request() -> None:
    seen: list[tuple[str, int, tuple[int, ...]]] = []

    class Spy(QueueHooks):
        def enqueued(self, instance: int, blocks, now: float) -> None:  # noqa: ANN001
            seen.append(("enqueued", instance, tuple(blocks)))

        def started(self, instance: int, blocks, now: float) -> None:  # noqa: ANN001
            seen.append(("started", instance, tuple(blocks)))

    tr = tiny_trace([(0.0, 1500, [0, 1, 2]), (0.0, 700, [10, 11])])
    tiny_node(tr, 100, 100, 25e9, scheduler=Scheduler("fcfs"), hooks=Spy()).run()
    assert seen == [("enqueued", 0, (0, 1, 2)), ("enqueued", 0, (10, 11)), ("started", 0, (0, 1, 2)),
                    ("started", 0, (10, 11))]


# --- routing -----------------------------------------------------------------------------
def test_routers_spread_or_follow_the_cache(compose_cfg, embedded_trace) -> None:
    tr = embedded_trace.head(400)
    rr, _ = simulate(compose_cfg(["router=round_robin"]), tr)
    assert np.array_equal(rr.records["instance"], np.arange(len(tr)) % 4)
    ll, _ = simulate(compose_cfg(["router=least_loaded"]), tr)
    assert set(ll.records["instance"]) == {0, 1, 2, 3}
    ca, _ = simulate(compose_cfg(["router=cache_aware"]), tr)
    assert ca.records["hits_gpu"].sum() > rr.records["hits_gpu"].sum()


def test_cache_aware_gets_at_least_the_hits_of_round_robin(compose_cfg, real_trace) -> None:
    rr, _ = simulate(compose_cfg(["router=round_robin"]), real_trace)
    ca, _ = simulate(compose_cfg(["router=cache_aware"]), real_trace)
    assert ca.records["prefix_hits"].sum() >= rr.records["prefix_hits"].sum()
    assert ca.records["hits_gpu"].sum() > rr.records["hits_gpu"].sum()


@pytest.mark.parametrize("overrides", [[], ["gpu.instances=1", "gpu.peak_flops=200e12"],
                                       ["system.overlap_load=false", "scheduler.chunk_tokens=2048"]])
def test_planned_iterations_equal_one_event_per_iteration(compose_cfg, embedded_trace, monkeypatch, overrides) -> None:
    """The loop's plan-ahead (one event for a run of iterations, cut by arrivals) is a speed
    device only: every record equals the one-iteration-at-a-time loop's, also under load."""
    import kvsim.system.cluster as cl

    cfg = compose_cfg(["system.capacity_scale=0.1", *overrides])
    tr = embedded_trace.head(700)
    fast, cf = simulate(cfg, tr)
    monkeypatch.setattr(cl, "_MAX_PLAN", 1)
    slow, cs = simulate(cfg, tr)
    for k in fast.records:
        np.testing.assert_allclose(fast.records[k], slow.records[k], rtol=1e-12, atol=1e-12, err_msg=k)
    assert [i.iterations for i in cf.instances] == [i.iterations for i in cs.instances]
    assert next(cf.env._eid) < next(cs.env._eid)  # fewer events scheduled


def test_a_slow_tiers_access_latency_counts_in_load_or_recompute() -> None:
    """The 4 MiB over 25 GB/s PCIe takes 0.168 ms; recomputing the 2048 reused tokens
    takes hand_flops(2048, 0) / RATE = 8.23 ms. The DRAM tier's access latency is part of
    the load: at 50 ms auto recomputes; at 1 ms it loads, and the exposed load is
    0.168 ms + 1 ms, overlapped layer by layer with the 512 new tokens' compute."""
    def case(latency_s: float) -> dict[str, np.ndarray]:
        tr = tiny_trace([(0.0, 2048, [0, 1, 2, 3]), (10.0, 2560, [0, 1, 2, 3, 4])])
        layout = Layout(1, 1, {"gpu": "instance", "host": "host"})
        tiers, views = node_tiers(layout, [TierTemplate("gpu", "gpu", 0),
                                           TierTemplate("dram", "host", 100, access_latency_s=latency_s)])
        devs, links, media = expand(layout, ["gpu", "host"], [Link("gpu", "host", 25e9, 0.0, name="pcie")], [])
        return Cluster(tr, TierHierarchy(tiers, LRU, views=views), Topology(devs, links, media), NullIndex(),
                       PrefillModel(MODEL, GPU), scheduler=Scheduler("fcfs"), overlap_load=True,
                       load_or_recompute="auto").run().records

    slow = case(0.05)
    assert slow["recomputed_blocks"][1] == 4 and slow["load_bytes"][1] == 0 and slow["new_tokens"][1] == 2560
    assert slow["ttft_s"][1] == pytest.approx(hand_flops(2560, 0) / RATE, rel=1e-9)
    fast = case(1e-3)
    load = 4 * 2**20 / 25e9 + 1e-3
    comp = hand_flops(512, 2048) / RATE
    assert fast["recomputed_blocks"][1] == 0 and fast["load_bytes"][1] == 4 * 2**20
    assert fast["load_transfer_s"][1] == pytest.approx(load, rel=1e-9)
    assert fast["ttft_s"][1] == pytest.approx(max(load, comp) + min(load, comp) / 4, rel=1e-9)


def test_the_default_scheduler_is_fcfs() -> None:
    """A Cluster built without a scheduler runs FCFS: B (700 tokens) waits for all of A's
    1,500, then computes alone."""
    tr = tiny_trace([(0.0, 1500, [0, 1, 2]), (0.0, 700, [10, 11])])
    r = tiny_node(tr, 100, 100, 25e9).run().records
    assert r["ttft_s"][0] == pytest.approx(hand_flops(1500, 0) / RATE, rel=1e-12)
    assert r["ttft_s"][1] == pytest.approx((hand_flops(1500, 0) + hand_flops(700, 0)) / RATE, rel=1e-12)
    assert list(r["iterations"]) == [1, 1]


def test_instance_counters_and_present_blocks_by_hand() -> None:
    """The chunked case above: the instance is busy for the three iterations' sum and served
    two requests. Then present blocks: r0 stores [0 2 3]; r1 asks [0 1 2 3]: its prefix stops
    at block 1 (1 hit), but 2 and 3 are present after the gap: present_blocks = 3."""
    tr = tiny_trace([(0.0, 1500, [0, 1, 2]), (0.0, 700, [10, 11])])
    c = tiny_node(tr, 100, 100, 25e9, scheduler=Scheduler("chunked", 1000, 600))
    c.run()
    a = [hand_flops(600, 0), hand_flops(600, 600), hand_flops(300, 1200)]
    b = [hand_flops(400, 0), hand_flops(300, 400)]
    inst = c.instances[0]
    assert inst.busy_s == pytest.approx((sum(a) + sum(b)) / RATE, rel=1e-12)
    assert inst.served == 2 and inst.iterations == 3
    tr = tiny_trace([(0.0, 1536, [0, 2, 3]), (10.0, 2048, [0, 1, 2, 3])])
    r = tiny_node(tr, 100, 100, 25e9).run().records
    assert list(r["prefix_hits"]) == [0, 1] and list(r["present_blocks"]) == [0, 3]



class IndexLog(NullIndex):
    """A costless index that keeps the set of keys the cluster has inserted and not deleted,
    and checks at every delete that no tier holds what is deleted."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[int] = set()
        self.hier: TierHierarchy | None = None
        self.deletes = 0

    def plan_insert(self, keys) -> list[Op]:  # noqa: ANN001
        self.keys.update(keys)
        return []

    def plan_delete(self, keys) -> list[Op]:  # noqa: ANN001
        assert self.hier is not None and not any(self.hier.held_anywhere(k) for k in keys)
        self.keys.difference_update(keys)
        self.deletes += len(keys)
        return []


def test_a_block_in_another_instances_gpu_stays_indexed() -> None:
    # Two instances (round robin) with 2-block GPU tiers over one shared 1-block DRAM tier.
    # Both instances compute blocks 1 and 2 (neither reaches the other's GPU tier); then
    # each stores new blocks, pushing its 1 and 2 through the one-block DRAM tier. Blocks
    # that fall past DRAM while the other instance's GPU still holds them must stay indexed:
    # the index always names every block some tier holds, and deletes only what none holds.
    layout = Layout(2, 2, {"gpu": "instance", "host": "host"})
    tiers, views = node_tiers(layout, [TierTemplate("gpu", "gpu", 2), TierTemplate("dram", "host", 1)])
    devs, links, media = expand(layout, ["gpu", "host"], [Link("gpu", "host", 1e12, 0.0, name="pcie")], [])
    tr = tiny_trace([(0.0, 1024, [1, 2]), (100.0, 1024, [1, 2]), (200.0, 1024, [5, 6]), (300.0, 1024, [7, 8])])
    hier = TierHierarchy(tiers, LRU, views=views)
    index = IndexLog()
    index.hier = hier
    c = Cluster(tr, hier, Topology(devs, links, media), index, PrefillModel(MODEL, GPU), check_invariants=True)
    c.run()
    held = {k for k in range(10) if hier.held_anywhere(k)}
    assert held == {1, 5, 6, 7, 8} and index.keys == held and index.deletes == 1
