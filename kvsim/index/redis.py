"""Redis as a KV-cache metadata index: the baseline of the study kvsim starts from.

Model: one client connection over kernel TCP to a single-threaded server.

    command latency = TCP round trip + wait for the server thread + service time
    get(k)          = GET k                 service = get_s
    range(k1..kn)   = MGET k1..kn           service = mget_base_s + n * mget_per_key_s
                      (or, with ``range_command: zrange``, ZRANGEBYLEX over a sorted set
                      holding keys in id order: zrange_base_s + n * zrange_per_key_s)
    insert(k1..kn)  = MSET                  service = mset_base_s + n * mset_per_key_s
    delete(k1..kn)  = DEL k1..kn            service = del_base_s + n * del_per_key_s

Without pipelining each command waits for its reply before the next is sent; with
``pipeline: true`` a lookup's commands share one round trip and are served back to back.
The server thread is an FCFS queue shared by every client, so its waiting time follows
M/D/1 under Poisson load (checked in tests/test_index_redis.py).
Service times: redis-server 7.0 ``INFO commandstats`` on a 2-vCPU VM (see
``conf/calibration/default.yaml``).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Annotated, Any

import simpy

from kvsim.index.base import KEY_BYTES, VALUE_BYTES, IndexModel, Op
from kvsim.ranges import OneOf, PosInt, Seconds
from kvsim.system.servers import FCFSServer

RESP_OVERHEAD = 16  # bytes of RESP framing per command and per reply (approximate)


class RedisIndex(IndexModel):
    name = "redis"

    def __init__(
        self,
        tcp_rtt_s: Seconds,
        get_s: Seconds,
        mget_base_s: Seconds,
        mget_per_key_s: Seconds,
        mset_base_s: Seconds,
        mset_per_key_s: Seconds,
        del_base_s: Seconds,
        del_per_key_s: Seconds,
        zrange_base_s: Seconds = 1.0e-6,
        zrange_per_key_s: Seconds = 0.05e-6,
        range_command: Annotated[str, OneOf("mget", "zrange")] = "mget",
        pipeline: bool = False,
        server_threads: PosInt = 1,
    ) -> None:
        super().__init__()
        if range_command not in ("mget", "zrange"):
            raise ValueError(f"redis.range_command must be 'mget' or 'zrange', got {range_command!r}")
        self.rtt = tcp_rtt_s
        self.get_s = get_s
        self.mget = (mget_base_s, mget_per_key_s)
        self.zrange = (zrange_base_s, zrange_per_key_s)
        self.mset = (mset_base_s, mset_per_key_s)
        self.dele = (del_base_s, del_per_key_s)
        self.range_command = range_command
        self.pipeline = pipeline
        self.server = FCFSServer("redis", server_threads)

    def servers(self) -> dict[str, Any]:
        return {"redis": self.server}

    def plan_get(self, key: int) -> Op:
        return Op("get", 1, 1, KEY_BYTES + RESP_OVERHEAD, VALUE_BYTES + RESP_OVERHEAD, self.get_s)

    def plan_range(self, keys: Sequence[int]) -> Op:
        n = len(keys)
        base, per = self.zrange if self.range_command == "zrange" else self.mget
        return Op(
            "range",
            n,
            1,
            n * KEY_BYTES + RESP_OVERHEAD,
            n * (KEY_BYTES + VALUE_BYTES if self.range_command == "zrange" else VALUE_BYTES)
            + RESP_OVERHEAD,
            base + n * per,
        )

    def plan_insert(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        base, per = self.mset
        return [Op("insert", n, 1, n * (KEY_BYTES + VALUE_BYTES) + RESP_OVERHEAD, RESP_OVERHEAD, base + n * per)]

    def plan_delete(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        base, per = self.dele
        return [Op("delete", n, 1, n * KEY_BYTES + RESP_OVERHEAD, RESP_OVERHEAD, base + n * per)]

    def execute(self, env: simpy.Environment, ops: list[Op]) -> Generator[simpy.Event, Any, None]:
        if not ops:
            return
        half = self.rtt / 2.0
        serve = self.server.serve
        rec = self.recorder
        if self.pipeline:
            start = env.now
            yield env.timeout(half)
            now = env.now
            # All commands arrive together; the FCFS server runs them back to back.
            done = max(serve(now, op.server_s) for op in ops)
            yield env.timeout(done - env.now + half)
            if rec is not None:
                for op in ops:
                    rec.add(op, start, env.now - start)
            return
        # Sequential commands: one event per server visit; the reply's half round trip
        # and the next command's half round trip are one timeout.
        start = env.now
        yield env.timeout(half)
        last = len(ops) - 1
        for j, op in enumerate(ops):
            done = serve(env.now, op.server_s)
            yield env.timeout(done - env.now + (half if j == last else 2 * half))
            if rec is not None:
                end = env.now if j == last else env.now - half
                rec.add(op, start, end - start)
                start = end
