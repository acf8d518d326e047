"""The serving node as a SimPy model: one process per request and one per instance loop,
never per block or token.

Life of a request (TTFT = end of its index insert - arrival):

    arrival           from the workload (kvsim.workload: spread within the trace's ticks)
    routing           the router picks an instance (round robin, least loaded, cache aware)
    metadata lookup   index.plan_lookup(all blocks), executed with queueing on the index
    reuse             the longest prefix present in the instance's view (its GPU tier, its
                      host's DRAM, the remote pool, the SSD); hits are promoted (bookkeeping,
                      at this instant, which also reserves their room in the GPU tier)
    fetch             load or recompute: a reused run whose load (its path's queues as they
                      are now) would take longer than recomputing it is recomputed
                      (``load_or_recompute=auto``); the other runs load now, one foreground
                      transfer per source tier, booking every queue on their path, while the
                      request waits (vLLM's asynchronous KV loading, SGLang HiCache's prefetch)
    waiting           in the instance's queue (``queue_s``) until its first chunk is scheduled
                      (QueueHooks.enqueued / .started; a look-ahead policy keeps the blocks
                      of waiting requests: the loads above already brought their reused
                      prefix toward the GPU, and the pins keep it there until they start)
    prefill           iterations of the instance loop (scheduler: fcfs or chunked); the one
                      with a request's first chunk lasts, with L what is left of its loads
                      and C its compute, max(L, C) + min(L, C) / layers (``overlap_load``: KV
                      arrives layer by layer while earlier layers compute); without overlap a
                      request joins the queue only when its loads are done (L + C, but the
                      instance serves others during L)
    store             new blocks into the instance's GPU tier (demotions cascade), index insert
    background        demotions and write-backs become background transfers on their paths
                      (served after every foreground one, non-preemptively); address updates
                      and deletes go to the index; none of it is part of this request's TTFT

    TTFT = metadata + load (exposed) + queue + compute (own chunks) + batch wait + store
    batch wait = the request's iterations' time spent on other requests' chunks and loads

Blocks are stored when their prefill ends, so a concurrent request that needs the same
not-yet-computed blocks recomputes them (no in-flight sharing).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, get_type_hints

import numpy as np
import simpy

from kvsim.index.base import IndexModel
from kvsim.memory import OldObjects
from kvsim.servers import PriorityServer
from kvsim.system.compute import PrefillModel
from kvsim.system.hierarchy import TierHierarchy
from kvsim.system.router import RoundRobin, Router
from kvsim.system.scheduler import QueueHooks, Scheduler
from kvsim.system.topology import Path, Topology
from kvsim.trace.schema import Trace

LOAD_OR_RECOMPUTE = ("auto", "load")
_MAX_PLAN = 64  # iterations planned ahead at most (an arrival undoes the rest)
CHUNK_REQUESTS = 2048  # requests whose blocks are converted to Python ints at once (Cluster._next_chunk)


def pipeline_s(load_s: float, compute_s: float, layers: int) -> float:
    """Time of loading ``load_s`` of KV while computing ``compute_s`` layer by layer (a
    two-stage pipeline over the layers): the slower stream plus one layer of the other."""
    if load_s <= 0.0:
        return compute_s
    if load_s > compute_s:
        return load_s + compute_s / layers
    return compute_s + load_s / layers


class RequestRecord(NamedTuple):
    """One request's result: a row of requests.parquet, whose columns are these fields
    (``tier_hits`` becomes hits_<tier>). A run writes each request's fields straight into
    the columns (:meth:`Cluster._request`), not through an instance of this type."""

    instance: int
    metadata_s: float  # index lookup
    queue_s: float  # waiting in the instance's queue until its first chunk
    load_s: float  # KV-load time not hidden: what its first iteration waits for (overlap_load),
    #                or the whole load before it may be scheduled (no overlap)
    compute_s: float  # its own chunks' compute
    batch_wait_s: float  # its iterations' time spent on other requests' chunks and loads
    store_s: float  # index insert of the new blocks
    ttft_s: float
    load_transfer_s: float  # from joining the queue to the end of its loads
    overlap_saved_s: float  # load + compute - their overlapped time
    prefix_hits: int  # blocks of the longest present prefix
    present_blocks: int  # prefix + blocks present after the first absent one
    new_tokens: int  # tokens computed (not reused, or recomputed)
    recomputed_blocks: int  # reused blocks recomputed because loading them was slower
    load_bytes: int
    iterations: int
    tier_hits: tuple[int, ...]  # prefix blocks found per level of the view


# Column types of requests.parquet, from the record's annotations (tier_hits is split up).
_COLUMN_TYPES = {
    k: np.float64 if v is float else np.int64 for k, v in get_type_hints(RequestRecord).items() if k != "tier_hits"
}


@dataclass
class RunResult:
    records: dict[str, np.ndarray]
    tier_names: list[str]
    link_bytes: dict[str, int]
    server_utilization: dict[str, float]
    sim_time_s: float
    instances: list[dict[str, float]]


class _Req:
    """A request in flight (plain bookkeeping between events)."""

    __slots__ = (
        "i", "view", "blocks", "locs", "cached", "segs", "seg", "off", "remaining", "computed", "started",
        "done", "t_ready", "t_start", "load_exposed", "load_transfer", "overlap_saved", "own_compute",
        "iter_time", "iterations", "recomputed", "load_bytes", "load_end",
    )

    def __init__(self, i: int, view: int, blocks: list[int], locs: list[int], cached: int, n_in: int) -> None:
        self.i = i
        self.view = view
        self.blocks = blocks
        self.locs = locs
        self.cached = cached  # tokens of the reused prefix
        self.segs: list[tuple[int, int]] = [(cached, n_in - cached)]  # (first token, tokens) to compute
        self.seg = 0
        self.off = 0
        self.remaining = n_in - cached
        self.computed = n_in - cached  # tokens to compute in all (recomputed runs included)
        self.started = False
        self.done: simpy.Event | None = None
        self.t_ready = 0.0
        self.t_start = 0.0
        self.load_exposed = 0.0
        self.load_transfer = 0.0
        self.overlap_saved = 0.0
        self.own_compute = 0.0
        self.iter_time = 0.0
        self.iterations = 0
        self.recomputed = 0
        self.load_bytes = 0
        self.load_end = 0.0  # when its loads complete (0: nothing to load)

    def take(self, k: int, flops: Any) -> float:
        """FLOPs of the next ``k`` tokens to compute (in sequence order)."""
        f = 0.0
        segs = self.segs
        self.remaining -= k
        while k:
            start, n = segs[self.seg]
            a = n - self.off
            if a > k:
                a = k
            f += flops(a, start + self.off)
            self.off += a
            k -= a
            if self.off == n:
                self.seg += 1
                self.off = 0
        return f


class Instance:
    """One prefill instance: its queue, its iteration loop's state, its counters."""

    __slots__ = ("index", "env", "queue", "wake", "gate", "gen", "ends", "cum", "spare", "cut", "load", "busy_s",
                 "iterations", "served")

    def __init__(self, index: int, env: simpy.Environment) -> None:
        self.index = index
        self.env = env
        self.queue: list[_Req] = []
        self.wake: simpy.Event | None = None  # set while the loop waits for work
        self.gate: simpy.Event | None = None  # set while it sleeps through planned iterations
        self.gen = 0  # the current plan (older wake-ups are ignored)
        self.ends: list[float] = []  # the planned iterations' end times
        self.cut = 0  # how many planned iterations happen
        self.cum: list[int] = []  # tokens computed by the end of each planned iteration
        self.spare: list[bool] = []  # each planned iteration leaves room in the token budget
        self.load = 0  # tokens assigned and not computed, as of the last iteration accounted
        self.busy_s = 0.0
        self.iterations = 0
        self.served = 0

    @property
    def load_tokens(self) -> int:
        """Tokens assigned and not yet computed at this instant (what routers see),
        counting the planned iterations that have ended."""
        if self.gate is None:
            return self.load
        j = min(bisect_right(self.ends, self.env.now), self.cut)
        return self.load - (self.cum[j - 1] if j else 0)


class _PolicyHooks(QueueHooks):
    """The waiting queues, told to a queue-aware policy (``policy=lookahead``: the blocks of
    requests that entered a queue and have not started are not evicted), then to ``then``."""

    def __init__(self, hierarchy: TierHierarchy, then: QueueHooks | None) -> None:
        self.hier = hierarchy
        self.then = then

    def enqueued(self, instance: int, blocks: Sequence[int], now: float) -> None:
        self.hier.enqueue(blocks)
        if self.then is not None:
            self.then.enqueued(instance, blocks, now)

    def started(self, instance: int, blocks: Sequence[int], now: float) -> None:
        self.hier.dequeue(blocks)
        if self.then is not None:
            self.then.started(instance, blocks, now)


class Cluster:
    def __init__(
        self,
        trace: Trace,
        hierarchy: TierHierarchy,
        topology: Topology,
        index: IndexModel,
        prefill: PrefillModel,
        *,
        scheduler: Scheduler | None = None,
        router: Router | None = None,
        arrival_s: np.ndarray | None = None,
        overlap_load: bool = True,
        load_or_recompute: str = "auto",
        nic: PriorityServer | Sequence[PriorityServer] | None = None,
        hooks: QueueHooks | None = None,
        check_invariants: bool = False,
    ) -> None:
        if load_or_recompute not in LOAD_OR_RECOMPUTE:
            raise ValueError(f"system.load_or_recompute: {load_or_recompute!r} is not one of {list(LOAD_OR_RECOMPUTE)}")
        self.trace = trace
        self.hier = hierarchy
        hierarchy.bind(trace)  # offline facts for the policies (block chains; OPT: next uses)
        self.topo = topology
        self.index = index
        # ``nic``: each instance's host NIC queue (one queue: every instance's). KV traffic and
        # the RDMA index's round trips of a host share it (RdmaClient.attach_nic); an
        # instance's index operations run on its host's (``execute(..., host)``).
        n_views = len(hierarchy.views)
        nics = [] if nic is None else [nic] * n_views if isinstance(nic, PriorityServer) else list(nic)
        if nics and len(nics) != n_views:
            raise ValueError(f"nic: one queue per instance ({n_views}), got {len(nics)}")
        hosts: list[PriorityServer] = []
        for q in nics:
            if not any(q is h for h in hosts):
                hosts.append(q)
        self._host = [next(h for h, q in enumerate(hosts) if q is nics[v]) for v in range(len(nics))] or [0] * n_views
        client = getattr(index, "client", None)
        if client is not None and hasattr(client, "attach_nic"):
            for h, q in enumerate(hosts):
                client.attach_nic(q, h)
        self.prefill = prefill
        self.scheduler = scheduler or Scheduler("fcfs")
        self.router = router or RoundRobin()
        self.overlap = overlap_load
        self.auto_recompute = load_or_recompute == "auto"
        if hierarchy.queue_aware:  # a look-ahead policy learns the waiting queues
            hooks = _PolicyHooks(hierarchy, hooks)
        self.hooks = hooks
        self.block_tokens = trace.block_tokens
        self.block_bytes = prefill.model.block_bytes(trace.block_tokens)
        self.layers = prefill.model.layers
        self.check_invariants = check_invariants
        n = len(trace)
        if arrival_s is None:
            arrival_s = trace.arrival_s - (trace.arrival_s[0] if n else 0.0)
        if len(arrival_s) != n or (n > 1 and np.any(np.diff(arrival_s) < 0)):
            raise ValueError("arrival_s must give every request a time, in trace order, non-decreasing")
        self.arrival_s = np.asarray(arrival_s, dtype=np.float64)
        tiers = hierarchy.tiers
        views = hierarchy.views
        # Tiers reached by only some views (an instance's own GPU tier, a host's DRAM): a block
        # that falls past one view's bottom may still be held there. Never in a tier of every
        # view: a victim that every sharer still reaches elsewhere just loses its copy and is
        # not passed down (TierHierarchy's place rule), so it is never dropped.
        common = set.intersection(*map(set, views))
        private = sorted({t for p in views for t in p} - common)
        self._has_private = bool(private)
        self._not_held_private = hierarchy.not_held_by(private)
        self.env = simpy.Environment()
        self.instances = [Instance(v, self.env) for v in range(len(views))]
        self.router.bind(self.instances, [[hierarchy.members[t] for t in path[:2]] for path in views],
                         hierarchy.local_runs_by([p[0] for p in views], [p[1] if len(p) > 1 else -1 for p in views]))
        # Paths precomputed once: every tier -> each instance's GPU for loads; every move
        # between two tiers below level 0 (demotions, stores written down).
        gpu = [tiers[path[0]].device for path in views]
        self.load_paths: list[list[Path | None]] = [
            [topology.path(t.device, gpu[v]) if t_idx in views[v] else None for v in range(len(views))]
            for t_idx, t in enumerate(tiers)
        ]
        pairs = sorted({(s, d) for path in views for s in path for d in path if d != s and hierarchy.level[d] >= 1})
        self.move_pairs: list[tuple[int, int, Path]] = [
            (s, d, topology.path(tiers[s].device, tiers[d].device)) for s, d in pairs
        ]
        # the same, as [source][destination] -> path (None: not charged here)
        self._move_path: list[list[Path | None]] = [[None] * (len(tiers) + 1) for _ in tiers]
        for s, d, path in self.move_pairs:
            self._move_path[s][d] = path
        self._offsets: list[int] = trace.offsets.tolist()  # Python ints: cheaper to index per request
        self._input_tokens: list[int] = trace.input_tokens.tolist()
        # Requests' blocks as Python ints, converted CHUNK_REQUESTS requests at a time (see
        # _next_chunk); requests [_chunk_lo, _chunk_hi) start at _chunk[off[i] - _chunk_base].
        self._chunk: list[int] = []
        self._chunk_lo = self._chunk_hi = self._chunk_base = 0
        # Each request's RequestRecord goes straight into its columns, a numpy array per field
        # (8 bytes a value, not a Python object: written for memory, a 1 M-request trace keeps
        # ~0.2 GB, not ~0.7 GB; tier_hits is one column per level, _hits). The _c_* names are
        # the same arrays, as typed views in the compiled build (cluster.pxd): a write is a
        # store, where a Python record and a numpy row assignment cost about 5% of a run.
        cols = self._columns = {name: np.zeros(n, dtype=t) for name, t in _COLUMN_TYPES.items()}
        self._c_instance = cols["instance"]
        self._c_metadata_s = cols["metadata_s"]
        self._c_queue_s = cols["queue_s"]
        self._c_load_s = cols["load_s"]
        self._c_compute_s = cols["compute_s"]
        self._c_batch_wait_s = cols["batch_wait_s"]
        self._c_store_s = cols["store_s"]
        self._c_ttft_s = cols["ttft_s"]
        self._c_load_transfer_s = cols["load_transfer_s"]
        self._c_overlap_saved_s = cols["overlap_saved_s"]
        self._c_prefix_hits = cols["prefix_hits"]
        self._c_present_blocks = cols["present_blocks"]
        self._c_new_tokens = cols["new_tokens"]
        self._c_recomputed_blocks = cols["recomputed_blocks"]
        self._c_load_bytes = cols["load_bytes"]
        self._c_iterations = cols["iterations"]
        self._hits = self._c_hits = np.zeros((n, hierarchy.levels), dtype=np.int64)
        self._recorded = 0
        self._finish = self._c_finish = np.zeros(n, dtype=np.float64)
        # bytes of demotions (and stores below the GPU) per request
        self._moved = self._c_moved = np.zeros(n, dtype=np.int64)

    # ------------------------------------------------------------------------------
    def _source(self, progress: Any, old: OldObjects) -> Generator[simpy.Event, Any, None]:
        env = self.env
        arrival = self.arrival_s.tolist()
        step = max(1, len(arrival) // 200)
        tick = old.tick
        for i, t in enumerate(arrival):
            delay = t - env.now
            if delay > 0:
                yield env.timeout(delay)
            env.process(self._request(i))
            tick()
            if progress is not None and i % step == 0:
                progress.update(step if i else 0)

    def _request(self, i: int) -> Generator[simpy.Event, Any, None]:
        env = self.env
        hier = self.hier
        index = self.index
        t_arr = env.now
        off = self._offsets
        if not self._chunk_lo <= i < self._chunk_hi:
            self._next_chunk(i)
        base = self._chunk_base
        blocks = self._chunk[off[i] - base : off[i + 1] - base]
        n_in = self._input_tokens[i]

        # 1. routing, then the metadata lookup of every block of the request
        v = self.router.pick(blocks)
        inst = self.instances[v]
        inst.load += n_in
        host = self._host[v]
        yield from index.execute(env, index.plan_lookup(blocks), host)
        t_md = env.now

        # 2. reuse: the longest prefix present in a tier of the instance's view
        locs, counts, present = hier.prefix(blocks, v)
        p = len(locs)
        if p:
            hier.use(blocks[:p], v, locs)

        # 3. wait for the instance to compute the tokens not reused (at least the last one)
        cached = min(p * self.block_tokens, n_in - 1)
        req = _Req(i, v, blocks, locs, cached, n_in)
        req.done = env.event()
        if p and counts[0] < p:
            self._fetch(req, t_md)
        t_ready = t_md
        if not self.overlap and req.load_end > t_md:
            # No layer-wise overlap: the request is schedulable once its KV is in (vLLM's
            # asynchronous loading); the instance serves others meanwhile.
            yield env.timeout(req.load_end - t_md)
            t_ready = env.now
            req.load_exposed = t_ready - t_md
        req.t_ready = t_ready
        inst.load -= cached
        inst.queue.append(req)
        if self.hooks is not None:
            self.hooks.enqueued(v, blocks, t_md)
        if inst.wake is not None:
            inst.wake.succeed()
            inst.wake = None
        elif inst.gate is not None:
            self._cut(inst, t_ready)
        yield req.done
        t_pf = env.now

        # 4. store the new blocks; the index learns about them
        new = blocks[p:]
        hier.store(new, v)
        # The store's cascade happens now: its demotions go on the links now, and are this
        # request's (drained before the insert yields, when other requests may move blocks).
        moves, demoted, dropped = hier.drain_moves()
        now = env.now
        moved = 0
        defer = self.topo.defer
        bb = self.block_bytes
        move_path = self._move_path
        for s, d, c in moves:  # in move_pairs' order; moves into a GPU tier are the loads, charged above
            path = move_path[s][d]
            if path is not None:
                moved += c
                defer(now, path, c * bb)
        self._c_moved[i] = moved * bb
        yield from index.execute(env, index.plan_insert(new), host)
        t_end = env.now

        # its RequestRecord, field by field into the columns
        own = req.own_compute
        self._c_instance[i] = v
        self._c_metadata_s[i] = t_md - t_arr
        self._c_queue_s[i] = req.t_start - t_ready
        self._c_load_s[i] = req.load_exposed
        self._c_compute_s[i] = own
        self._c_batch_wait_s[i] = max(0.0, (t_pf - req.t_start) - own - (req.load_exposed if self.overlap else 0.0))
        self._c_store_s[i] = t_end - t_pf
        self._c_ttft_s[i] = t_end - t_arr
        self._c_load_transfer_s[i] = req.load_transfer
        self._c_overlap_saved_s[i] = req.overlap_saved
        self._c_prefix_hits[i] = p
        self._c_present_blocks[i] = present
        self._c_new_tokens[i] = req.computed
        self._c_recomputed_blocks[i] = req.recomputed
        self._c_load_bytes[i] = req.load_bytes
        self._c_iterations[i] = req.iterations
        for j in range(len(counts)):  # tier_hits
            self._c_hits[i, j] = counts[j]
        self._recorded += 1

        # 5. background: address updates and deletes on the index
        if self.check_invariants:
            hier.check()
        bg = []
        if demoted:
            bg.extend(index.plan_update(demoted))
        if dropped and self._has_private:
            # A block the shared tiers let go may still sit in another instance's own GPU
            # tier: it stays findable (and indexed) until that copy goes too.
            dropped = self._not_held_private(dropped)
        if dropped:
            bg.extend(index.plan_delete(dropped))
        self._c_finish[i] = (yield from index.execute_detached(env, bg, host)) if bg else env.now

    def _next_chunk(self, i: int) -> None:
        """Convert the blocks of requests i .. i + CHUNK_REQUESTS - 1 to Python ints (written
        for speed: one numpy slice and ``tolist`` per request made runs of a 1 M-request
        trace about 7% slower, and a request's ints come out adjacent in memory this way;
        one chunk's ints at a time, whatever the trace's length)."""
        off = self._offsets
        hi = min(i + CHUNK_REQUESTS, len(off) - 1)
        self._chunk = self.trace.hash_ids[off[i] : off[hi]].tolist()
        self._chunk_lo, self._chunk_hi, self._chunk_base = i, hi, off[i]

    # --- the instance loop -------------------------------------------------------------
    def _fetch(self, req: _Req, now: float) -> None:
        """At ``now``, when ``req`` joins its instance's queue: recompute or load each
        reused run below the GPU tier, and book the loads (they proceed while the request
        waits; its first iteration waits for what is left of them)."""
        locs = req.locs
        level = self.hier.level
        tiers = self.hier.tiers
        bt, bb = self.block_tokens, self.block_bytes
        nbytes: dict[int, int] = {}
        recompute: list[tuple[int, int]] = []
        j, p = 0, len(locs)
        while j < p:
            t = locs[j]
            k = j + 1
            while k < p and locs[k] == t:
                k += 1
            if level[t]:
                run = (k - j) * bb
                if self.auto_recompute:
                    tok0, tok1 = j * bt, min(k * bt, req.cached)
                    path = self.load_paths[t][req.view]
                    assert path is not None
                    load_s = self.topo.estimate(now, path, run) + tiers[t].access_latency_s - now
                    if tok1 > tok0 and load_s > self.prefill.time_s(tok1 - tok0, tok0):
                        recompute.append((tok0, tok1 - tok0))
                        req.recomputed += k - j
                        j = k
                        continue
                nbytes[t] = nbytes.get(t, 0) + run
            j = k
        if recompute:
            extra = sum(n for _, n in recompute)
            req.segs = recompute + req.segs
            req.remaining += extra
            req.computed += extra
            self.instances[req.view].load += extra
        end = now
        for t, b in nbytes.items():
            path = self.load_paths[t][req.view]
            assert path is not None
            e = self.topo.transfer(now, path, b) + tiers[t].access_latency_s
            if e > end:
                end = e
            req.load_bytes += b
        if end > now:
            req.load_end = end
            req.load_transfer = end - now

    def _loop(self, inst: Instance) -> Generator[simpy.Event, Any, None]:
        """The instance's iteration loop.

        Written for speed: after an iteration that starts or loads something, the following
        ones are known in advance as long as nothing new arrives -- the same requests, no
        new start, until the first one that completes a prefill -- so the loop plans them
        and sleeps until the end of the last (one event instead of one per iteration). A
        request that arrives meanwhile cuts the plan at the next iteration boundary
        (``_cut``): the iterations after it are undone and scheduled anew with it."""
        env = self.env
        flops = self.prefill.flops
        rate = self.prefill.flops_per_s
        layers = self.layers
        overlap = self.overlap
        sched = self.scheduler
        fcfs = not sched.chunked
        hooks = self.hooks
        while True:
            if not inst.queue:
                inst.wake = env.event()
                yield inst.wake
            t0 = env.now
            batch = sched.batch(inst.queue)
            load_end = t0
            comp = 0.0
            loaders = []
            rows: list[tuple[_Req, int, float]] = []
            for req, k in batch:
                if not req.started:
                    req.started = True
                    req.t_start = t0
                    if hooks is not None:
                        hooks.started(inst.index, req.blocks, t0)
                    if req.load_end > t0:  # its loads are still in flight
                        loaders.append(req)
                        if req.load_end > load_end:
                            load_end = req.load_end
                own = req.take(k, flops) / rate
                comp += own
                rows.append((req, k, own))
            load = load_end - t0
            dt = pipeline_s(load, comp, layers) if overlap else load + comp
            for req in loaders:
                req.load_exposed = dt - comp
                req.overlap_saved = load + comp - dt
            plan: list[tuple[float, list[tuple[_Req, int, float]]]] = [(dt, rows)]
            done = False
            for r, _, _ in rows:
                if r.remaining == 0:
                    done = True
                    break
            # The state of each request a planned iteration changes, as the first one left
            # it (taken as the plan reaches it: the queue behind the batches may be long).
            snap: dict[int, tuple[_Req, int, int, int]] = {}
            if not fcfs and not done:
                while len(plan) < _MAX_PLAN:
                    nxt = sched.batch(inst.queue)
                    if not all(r.started for r, _ in nxt):
                        break
                    rows_i = []
                    c = 0.0
                    for r, k in nxt:
                        if r.i not in snap:
                            snap[r.i] = (r, r.seg, r.off, r.remaining)
                        own = r.take(k, flops) / rate
                        c += own
                        rows_i.append((r, k, own))
                    plan.append((c, rows_i))
                    if any(r.remaining == 0 for r, _, _ in rows_i):
                        break
            if len(plan) == 1:
                yield env.timeout(dt)
                applied = 1
            else:
                ends = []
                cum = []
                spare = []
                t = t0
                tok = 0
                budget = sched.max_batch_tokens
                for d, rows_i in plan:
                    t += d
                    ends.append(t)
                    k_i = sum(k for _, k, _ in rows_i)
                    tok += k_i
                    cum.append(tok)
                    spare.append(k_i < budget)
                inst.ends = ends
                inst.cum = cum
                inst.spare = spare
                inst.cut = len(plan)
                inst.gate = gate = env.event()
                inst.gen += 1
                env.timeout(t - t0).callbacks.append(partial(self._open, inst, inst.gen))
                yield gate
                inst.gate = None
                applied = inst.cut
                if applied < len(plan):  # cut by an arrival: undo the iterations after it
                    for r, seg, off, rem in snap.values():
                        r.seg, r.off, r.remaining = seg, off, rem
                    for _, rows_i in plan[1:applied]:
                        for r, k, _ in rows_i:
                            r.take(k, flops)
            for d, rows_i in plan[:applied]:
                inst.busy_s += d
                inst.iterations += 1
                for r, k, own in rows_i:
                    r.iter_time += d
                    r.iterations += 1
                    r.own_compute += own
                    inst.load -= k
            finished = False
            last_rows = plan[applied - 1][1]
            for r, _, _ in last_rows:
                if r.remaining == 0:
                    finished = True
                    inst.served += 1
                    assert r.done is not None
                    r.done.succeed()
            if finished:
                # A batch is the head of the queue, in order (Scheduler.batch), so the requests
                # that finished are there: the head is rebuilt, not the whole queue (an
                # overloaded instance's queue grows without bound).
                q = inst.queue
                m = len(last_rows)
                assert q[0] is last_rows[0][0] and q[m - 1] is last_rows[-1][0]
                q[:m] = [r for r in q[:m] if r.remaining]

    def _open(self, inst: Instance, gen: int, _event: simpy.Event) -> None:
        if inst.gen == gen and inst.gate is not None and not inst.gate.triggered:
            inst.gate.succeed()

    def _cut(self, inst: Instance, now: float) -> None:
        """A request joined ``inst``'s queue while it sleeps through planned iterations:
        wake it at the first boundary after which a planned iteration has room left in its
        token budget (the request joins the batch there; an iteration whose budget the
        requests ahead of it fill would not change)."""
        i = bisect_left(inst.ends, now) + 1  # the first iteration that can still change
        spare = inst.spare
        while i < inst.cut and not spare[i]:
            i += 1
        if i >= inst.cut:
            return
        inst.cut = i
        inst.gen += 1
        self.env.timeout(inst.ends[i - 1] - now).callbacks.append(partial(self._open, inst, inst.gen))

    # ------------------------------------------------------------------------------
    def run(self, progress: bool = False) -> RunResult:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(self.trace), unit="req", desc="simulate", mininterval=0.5)
        for inst in self.instances:
            self.env.process(self._loop(inst))
        with OldObjects() as old:
            self.env.process(self._source(bar, old))
            self.env.run()
        if bar is not None:
            bar.update(len(self.trace) - bar.n)
            bar.close()
        return self._result()

    def _result(self) -> RunResult:
        # the last request's background work may end after the last event (it is booked
        # without one: IndexModel.execute_detached)
        span = max(self.env.now, float(self._finish.max())) if len(self._finish) else self.env.now
        tr = self.trace
        n = len(tr)
        if self._recorded < n:
            raise RuntimeError("simulation ended with unfinished requests")
        records: dict[str, np.ndarray] = {
            "arrival_s": self.arrival_s.copy(),
            "trace_arrival_s": tr.arrival_s - (tr.arrival_s[0] if n else 0.0),
            "blocks": tr.blocks_per_request.copy(),
            "input_tokens": tr.input_tokens.copy(),
        }
        levels = [self.hier.tiers[t].name for t in self.hier.views[0]]
        records.update(self._columns)
        for j, name in enumerate(levels):
            records[f"hits_{name}"] = self._hits[:, j]
        records["finish_s"] = self._finish
        records["moved_bytes"] = self._moved
        util = {k: q.utilization(span) for k, q in self.topo.queues.items()}
        per_inst = []
        for inst in self.instances:
            u = inst.busy_s / span if span > 0 else 0.0
            util[f"prefill:{inst.index}"] = u
            per_inst.append({"utilization": u, "iterations": inst.iterations, "served": inst.served})
        util["prefill"] = float(np.mean([d["utilization"] for d in per_inst])) if per_inst else 0.0
        for k, s in self.index.servers().items():
            util[f"index:{k}"] = s.utilization(span)
        return RunResult(
            records=records,
            tier_names=levels,
            link_bytes=self.topo.bytes_moved,
            server_utilization=util,
            sim_time_s=span,
            instances=per_inst,
        )

