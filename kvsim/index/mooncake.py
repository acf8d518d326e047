"""Mooncake Store's master as a KV-cache metadata index: where Mooncake keeps per-block
metadata (kvcache-ai/Mooncake ``mooncake-store``: ``master_service.h``,
``kNumShards = 1024``), beside the study's Redis baseline.

Model: RPCs over TCP (coro_rpc) to a master whose in-memory hash map is split into
``shards`` shards, each behind its own mutex; ``rpc_threads`` worker threads serve RPCs
from one FCFS queue.

    RPC latency   = TCP round trip + wait for a worker + rpc_base_s + keys * per_key_s
    get(k)        = ExistKey / GetReplicaList(k)                       1 RPC
    range(k1..kn) = BatchGetReplicaList(k1..kn)                        1 RPC
    insert(keys)  = BatchPutStart + BatchPutEnd (allocate, then commit) 2 RPCs
    delete(keys)  = BatchRemove                                        1 RPC

The map is real (a dict per shard) so shard balance and hit counts can be reported, and it
answers ``contains`` for the lookup rule. Each RPC's round trip is drawn from the TCP round
trip's calibrated distribution (kvsim.index.costs); the master's per-RPC costs are
inferred constants (no measured tail).
Shard-mutex contention is not modelled: with 1,024 shards and a handful of worker
threads, two RPCs of one client rarely meet on a shard.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import simpy

from kvsim.index.base import KEY_BYTES, VALUE_BYTES, IndexModel, Lookup, Op
from kvsim.index.costs import CostDist, Sampler
from kvsim.index.keys import mix64
from kvsim.ranges import PosInt, Seconds, Seed
from kvsim.servers import FCFSServer

RPC_HEADER = 32  # bytes of coro_rpc framing per request and per reply (approximate)


class MooncakeMasterIndex(IndexModel):
    name = "mooncake"

    def __init__(
        self,
        rpc_rtt_s: Seconds,
        rpc_base_s: Seconds,
        per_key_s: Seconds,
        rpc_threads: PosInt = 4,
        shards: PosInt = 1024,
        replica_bytes: PosInt = VALUE_BYTES,
        rpc_rtt_p99_s: Seconds | None = None,
        rpc_rtt_p999_s: Seconds | None = None,
        lookup: Lookup = "prefix",
        tails: bool = True,
        seed: Seed = 0,
        rng: Any = None,
    ) -> None:
        super().__init__(lookup=lookup)
        if shards < 1:
            raise ValueError(f"mooncake.shards must be >= 1, got {shards}")
        self.rtt = rpc_rtt_s
        self.base = rpc_base_s
        self.per_key = per_key_s
        self.n_shards = shards
        self.shards: list[dict[int, int]] = [{} for _ in range(shards)]
        self.replica_bytes = replica_bytes
        self.server = FCFSServer("mooncake_master", rpc_threads)
        self.found = 0
        self.asked = 0
        sampler = Sampler(rng if rng is not None else np.random.default_rng(seed), enabled=tails)
        self.rtt_draw = sampler.bind(CostDist(rpc_rtt_s, rpc_rtt_p99_s, rpc_rtt_p999_s))

    def servers(self) -> dict[str, Any]:
        return {"mooncake_master": self.server}

    def _shard(self, key: int) -> dict[int, int]:
        return self.shards[mix64(key) % self.n_shards]

    def contains(self, block: int) -> bool:
        return block in self._shard(block)

    def __contains__(self, key: int) -> bool:
        return key in self._shard(key)

    def unloaded_s(self, op: Op) -> float:
        return sum(service + rtt for service, rtt in op.rounds)

    def _rpc(self, n: int) -> tuple[float, float]:
        return (self.base + n * self.per_key, self.rtt)

    def _lookup(self, kind: str, keys: Sequence[int]) -> Op:
        n = len(keys)
        hits = sum(1 for k in keys if k in self._shard(k))
        self.asked += n
        self.found += hits
        return Op(
            kind,
            n,
            1,
            n * KEY_BYTES + RPC_HEADER,
            hits * self.replica_bytes + n + RPC_HEADER,
            self.base + n * self.per_key,
            rounds=(self._rpc(n),),
        )

    def plan_get(self, key: int) -> Op:
        return self._lookup("get", [key])

    def plan_range(self, keys: Sequence[int]) -> Op:
        return self._lookup("range", keys)

    def plan_insert(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        for k in keys:
            self._shard(k)[k] = 1
        r = self._rpc(n)
        return [
            Op(
                "insert",
                n,
                2,
                2 * n * KEY_BYTES + n * self.replica_bytes + 2 * RPC_HEADER,
                n * self.replica_bytes + 2 * RPC_HEADER,
                2 * r[0],
                rounds=(r, r),
            )
        ]

    def plan_delete(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        for k in keys:
            self._shard(k).pop(k, None)
        return [Op("delete", n, 1, n * KEY_BYTES + RPC_HEADER, RPC_HEADER, self.base + n * self.per_key, rounds=(self._rpc(n),))]

    def execute(self, env: simpy.Environment, ops: list[Op], host: int = 0) -> Generator[simpy.Event, Any, None]:
        # Each RPC: half a round trip out, FCFS on the workers, half back. The reply's
        # half and the next RPC's half are one timeout (one event per RPC).
        if not ops:
            return
        serve = self.server.serve
        rec = self.recorder
        draw = self.rtt_draw
        start = env.now
        half = draw() / 2.0
        yield env.timeout(half)
        n_ops = len(ops)
        for j, op in enumerate(ops):
            rounds = op.rounds
            last_r = len(rounds) - 1
            for r, (service, _) in enumerate(rounds):
                now = env.now
                done = serve(now, service)
                final = j == n_ops - 1 and r == last_r
                nxt = 0.0 if final else draw() / 2.0
                yield env.timeout(done - now + half + nxt)
                half = nxt
            if rec is not None:
                end = env.now - half
                rec.add(op, start, end - start)
                start = end

    def stats(self) -> dict[str, float]:
        sizes = [len(s) for s in self.shards]
        n = sum(sizes)
        return {
            "keys": n,
            "shards": self.n_shards,
            "max_shard_keys": max(sizes),
            "mean_shard_keys": n / self.n_shards,
            "found_ratio": self.found / self.asked if self.asked else 0.0,
        }
