"""The serving node as a SimPy model: one process per request, never per block.

Life of a request (TTFT = store_end - arrival):

    arrival           the request enters the waiting queue: hierarchy.enqueue(blocks) (a
                      look-ahead policy pins them; a prefetching one has the blocks below
                      the GPU moved up now, on their links, and the request waits for them)
    metadata lookup   index.plan_lookup(all blocks), executed with queueing on the index
    reuse             the longest prefix of blocks present in any tier is reused; hits are
                      promoted (bookkeeping, at this instant); the request leaves the
                      queue: hierarchy.dequeue(blocks)
    KV load           one transfer per source tier, all started together, each queued on
                      the bottleneck link of its path to the GPU
    prefill           FCFS on the prefill instances; compute for the tokens not reused
    store             new blocks enter the top tier; index insert of the new blocks
    background        demotions caused by the above become transfers on their links and
                      address updates / deletes on the index; they load the shared
                      resources but are not part of this request's TTFT

Blocks are stored when their prefill ends, so a concurrent request that needs the same
not-yet-computed blocks recomputes them (no in-flight sharing).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from kvsim.index.base import IndexModel
from kvsim.system.compute import PrefillModel
from kvsim.system.hierarchy import TierHierarchy
from kvsim.system.servers import FCFSServer
from kvsim.system.topology import Path, Topology
from kvsim.trace.schema import Trace

_FLOAT_COLS = ("metadata_s", "load_s", "queue_s", "compute_s", "store_s", "ttft_s")
_INT_COLS = ("prefix_hits", "present_blocks", "new_tokens", "load_bytes")


@dataclass
class RunResult:
    records: dict[str, np.ndarray]
    tier_names: list[str]
    link_bytes: dict[str, int]
    server_utilization: dict[str, float]
    sim_time_s: float


class Cluster:
    def __init__(
        self,
        trace: Trace,
        hierarchy: TierHierarchy,
        topology: Topology,
        index: IndexModel,
        prefill: PrefillModel,
        gpu_device: str = "gpu",
        check_invariants: bool = False,
    ) -> None:
        self.trace = trace
        self.hier = hierarchy
        hierarchy.bind(trace)  # offline facts for the policies (block chains; OPT: next uses)
        self.topo = topology
        self.index = index
        self.prefill = prefill
        self.block_tokens = trace.block_tokens
        self.block_bytes = prefill.model.block_bytes(trace.block_tokens)
        self.gpu = FCFSServer("prefill", prefill.gpu.instances)
        self.check_invariants = check_invariants
        self._queue_aware = hierarchy.policies[0].queue_aware
        tiers = hierarchy.tiers
        # Paths precomputed once: tier -> GPU for loads, tier -> next tier for demotions.
        self.load_paths: list[Path] = [topology.path(t.device, gpu_device) for t in tiers]
        # Demotions (and any other move between two tiers below the GPU's loads).
        self.move_pairs: list[tuple[int, int, Path]] = [
            (s, d, topology.path(a.device, b.device))
            for s, a in enumerate(tiers)
            for d, b in enumerate(tiers)
            if d >= 1 and d != s
        ]
        n = len(trace)
        self._rows: list[tuple[Any, ...] | None] = [None] * n
        self._finish = [0.0] * n
        self._moved = [0] * n  # bytes of demotions (and stores below the GPU) per request
        self.env = simpy.Environment()

    # ------------------------------------------------------------------------------
    def _source(self, progress: Any) -> Generator[simpy.Event, Any, None]:
        env = self.env
        arrival = self.trace.arrival_s
        start = float(arrival[0]) if len(arrival) else 0.0
        step = max(1, len(arrival) // 200)
        for i in range(len(arrival)):
            delay = float(arrival[i]) - start - env.now
            if delay > 0:
                yield env.timeout(delay)
            env.process(self._request(i))
            if progress is not None and i % step == 0:
                progress.update(step if i else 0)

    def _request(self, i: int) -> Generator[simpy.Event, Any, None]:
        env = self.env
        hier = self.hier
        index = self.index
        t_arr = env.now
        tr = self.trace
        blocks = tr.hash_ids[tr.offsets[i] : tr.offsets[i + 1]].tolist()

        # 0. the waiting queue (look-ahead policies): prefetch moves start now
        ready = t_arr
        if self._queue_aware:
            up = hier.enqueue(blocks)
            for t in range(1, hier.n):
                if up[t]:
                    end = self.topo.transfer(t_arr, self.load_paths[t], up[t] * self.block_bytes)
                    ready = max(ready, end + hier.tiers[t].access_latency_s)

        # 1. metadata lookup of every block of the request
        yield from index.execute(env, index.plan_lookup(blocks))
        t_md = env.now

        # 2. reuse: the longest prefix present in some tier
        where = hier.where
        nt = hier.n
        counts = [0] * nt
        p = 0
        for b in blocks:
            t = where.get(b, -1)
            if t < 0:
                break
            counts[t] += 1
            p += 1
        present = p + sum(1 for b in blocks[p:] if b in where)
        if p:
            hier.use(blocks[:p])
        if self._queue_aware:
            hier.dequeue(blocks)

        # 3. load the reused blocks, one transfer per source tier, in parallel (and wait
        # for this request's prefetches)
        done = max(t_md, ready)
        load_bytes = 0
        for t in range(1, nt):
            c = counts[t]
            if c:
                nbytes = c * self.block_bytes
                load_bytes += nbytes
                end = self.topo.transfer(t_md, self.load_paths[t], nbytes) + hier.tiers[t].access_latency_s
                if end > done:
                    done = end
        if done > t_md:
            yield env.timeout(done - t_md)
        t_load = env.now

        # 4. prefill of the tokens not reused (at least the last token)
        n_in = int(tr.input_tokens[i])
        cached_tokens = min(p * self.block_tokens, n_in - 1)
        n_new = n_in - cached_tokens
        service = self.prefill.time_s(n_new, cached_tokens)
        end = self.gpu.serve(t_load, service)
        yield env.timeout(end - t_load)
        t_cmp = env.now

        # 5. store the new blocks; the index learns about them
        new = blocks[p:]
        hier.store(new)
        yield from index.execute(env, index.plan_insert(new))
        t_end = env.now

        # One tuple per request, turned into columns at the end (cheaper than numpy setitems).
        self._rows[i] = (
            t_md - t_arr, t_load - t_md, end - service - t_load, service, t_end - t_cmp,
            t_end - t_arr, p, present, n_new, load_bytes, counts,
        )

        # 6. background: demotions on the links, address updates and deletes on the index
        moves, demoted, dropped = hier.drain()
        now = env.now
        moved = 0
        for s, d, path in self.move_pairs:  # moves into tier 0 are the loads, charged above
            c = moves[s][d]
            if c:
                moved += c
                self.topo.transfer(now, path, c * self.block_bytes)
        self._moved[i] = moved * self.block_bytes
        if self.check_invariants:
            hier.check()
        bg = []
        if demoted:
            bg.extend(index.plan_update(demoted))
        if dropped:
            bg.extend(index.plan_delete(dropped))
        if bg:
            yield from index.execute(env, bg)
        self._finish[i] = env.now

    # ------------------------------------------------------------------------------
    def run(self, progress: bool = False) -> RunResult:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(self.trace), unit="req", desc="simulate", mininterval=0.5)
        self.env.process(self._source(bar))
        self.env.run()
        if bar is not None:
            bar.update(len(self.trace) - bar.n)
            bar.close()
        span = self.env.now
        records: dict[str, np.ndarray] = {
            "arrival_s": self.trace.arrival_s - (self.trace.arrival_s[0] if len(self.trace) else 0.0),
            "blocks": self.trace.blocks_per_request.copy(),
            "input_tokens": self.trace.input_tokens.copy(),
        }
        n = len(self.trace)
        rows = self._rows
        if n and any(r is None for r in rows):
            raise RuntimeError("simulation ended with unfinished requests")
        cols = list(zip(*rows, strict=True)) if n else [()] * 11
        for j, name in enumerate(_FLOAT_COLS):
            records[name] = np.asarray(cols[j], dtype=np.float64)
        for j, name in enumerate(_INT_COLS, start=len(_FLOAT_COLS)):
            records[name] = np.asarray(cols[j], dtype=np.int64)
        hits = np.asarray(cols[-1], dtype=np.int64).reshape(n, len(self.hier.tiers))
        for j, t in enumerate(self.hier.tiers):
            records[f"hits_{t.name}"] = hits[:, j]
        records["finish_s"] = np.asarray(self._finish, dtype=np.float64)
        records["moved_bytes"] = np.asarray(self._moved, dtype=np.int64)
        util = {f"link:{k}": s.utilization(span) for k, s in self.topo.servers.items()}
        util["prefill"] = self.gpu.utilization(span)
        for k, s in self.index.servers().items():
            util[f"index:{k}"] = s.utilization(span)
        return RunResult(
            records=records,
            tier_names=[t.name for t in self.hier.tiers],
            link_bytes=dict(self.topo.bytes_moved),
            server_utilization=util,
            sim_time_s=span,
        )
