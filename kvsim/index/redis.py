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
``pipeline: true`` a lookup's commands share one round trip and are served back to back
(so the client cannot stop at the first absent block: it needs ``lookup: all``).
The server thread is an FCFS queue shared by every client, so its waiting time follows
M/D/1 under Poisson load (checked in tests/test_index_redis.py).

Costs are distributions (kvsim.index.costs): each command's round trip is drawn from the
calibrated TCP round trip (``tcp_rtt_s`` median, ``tcp_rtt_p99_s``, ``tcp_rtt_p999_s``) and its
service time from the calibrated time per call (a mean: ``INFO commandstats``) times a
factor of mean 1 whose tail is ``service_p99_x`` / ``service_p999_x`` times the median (the
per-command latency percentiles of ``INFO latencystats``).

Server time grows with the keys the server holds (a bigger dict misses more caches, a
taller skip list): the model holds the set of keys it was given (which also answers
``contains`` for the lookup rule) and multiplies every service time by
``scale(n)``, piecewise linear in log10(n) through (1,000 keys, ``scale_1k_keys``),
(``keys_held``, 1) and (1,000,000 keys, ``scale_1m_keys``), flat outside: the calibrated
times are those at ``keys_held`` keys, and the two scales are measured by
``python -m kvsim.calibrate redis`` at 1,000 and 1,000,000 keys. ``keys_held: 0`` turns it off.
Service times: see ``conf/calibration/default.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import simpy

from kvsim.index.base import KEY_BYTES, VALUE_BYTES, IndexModel, Op
from kvsim.index.costs import CostDist, Sampler
from kvsim.system.servers import FCFSServer

RESP_OVERHEAD = 16  # bytes of RESP framing per command and per reply (approximate)


def _scale_knots(keys_held: float, s1k: float, s1m: float) -> tuple[list[float], list[float]]:
    if keys_held <= 0:
        return [0.0], [1.0]
    pts = {3.0: s1k, 6.0: s1m}
    pts[math.log10(max(keys_held, 1.0))] = 1.0  # the calibrated point wins a tie
    xs = sorted(pts)
    return xs, [pts[x] for x in xs]


class RedisIndex(IndexModel):
    name = "redis"

    def __init__(
        self,
        tcp_rtt_s: float,
        get_s: float,
        mget_base_s: float,
        mget_per_key_s: float,
        mset_base_s: float,
        mset_per_key_s: float,
        del_base_s: float,
        del_per_key_s: float,
        zrange_base_s: float = 1.0e-6,
        zrange_per_key_s: float = 0.05e-6,
        range_command: str = "mget",
        pipeline: bool = False,
        server_threads: int = 1,
        tcp_rtt_p99_s: float | None = None,
        tcp_rtt_p999_s: float | None = None,
        service_p99_x: float = 1.0,
        service_p999_x: float | None = None,
        keys_held: float = 0.0,
        scale_1k_keys: float = 1.0,
        scale_1m_keys: float = 1.0,
        lookup: str = "prefix",
        tails: bool = True,
        seed: int = 0,
        rng: Any = None,
    ) -> None:
        super().__init__(lookup=lookup)
        if range_command not in ("mget", "zrange"):
            raise ValueError(f"redis.range_command must be 'mget' or 'zrange', got {range_command!r}")
        if pipeline and lookup == "prefix":
            raise ValueError("redis.pipeline: pipelined commands are all sent before any reply, so the "
                             "client cannot stop at the first absent block: set index.lookup=all")
        self.rtt = tcp_rtt_s
        self.get_s = get_s
        self.mget = (mget_base_s, mget_per_key_s)
        self.zrange = (zrange_base_s, zrange_per_key_s)
        self.mset = (mset_base_s, mset_per_key_s)
        self.dele = (del_base_s, del_per_key_s)
        self.range_command = range_command
        self.pipeline = pipeline
        self.server = FCFSServer("redis", server_threads)
        self.held: set[int] = set()
        self._sx, self._sy = _scale_knots(keys_held, scale_1k_keys, scale_1m_keys)
        self.sampler = Sampler(rng if rng is not None else np.random.default_rng(seed), enabled=tails)
        self.rtt_draw = self.sampler.bind(CostDist(tcp_rtt_s, tcp_rtt_p99_s, tcp_rtt_p999_s))
        p99x = max(service_p99_x, 1.0)
        self.service_draw = self.sampler.bind(
            CostDist(1.0, p99x, None if service_p999_x is None else max(service_p999_x, p99x), anchor="mean")
        )

    def servers(self) -> dict[str, Any]:
        return {"redis": self.server}

    def contains(self, block: int) -> bool:
        return block in self.held

    def key_scale(self, n: int | None = None) -> float:
        """Service time at ``n`` keys held (default: now) over the calibrated one."""
        xs, ys = self._sx, self._sy
        if len(xs) == 1:
            return ys[0]
        x = math.log10(max(len(self.held) if n is None else n, 1))
        if x <= xs[0]:
            return ys[0]
        for i in range(1, len(xs)):
            if x <= xs[i]:
                f = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
                return ys[i - 1] + f * (ys[i] - ys[i - 1])
        return ys[-1]

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
        self.held.update(keys)
        base, per = self.mset
        return [Op("insert", n, 1, n * (KEY_BYTES + VALUE_BYTES) + RESP_OVERHEAD, RESP_OVERHEAD, base + n * per)]

    def plan_delete(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        self.held.difference_update(keys)
        base, per = self.dele
        return [Op("delete", n, 1, n * KEY_BYTES + RESP_OVERHEAD, RESP_OVERHEAD, base + n * per)]

    def unloaded_s(self, op: Op) -> float:
        return self.rtt + op.server_s * self.key_scale()

    def stats(self) -> dict[str, float]:
        return {"keys": len(self.held), "key_scale": self.key_scale()}

    def execute(self, env: simpy.Environment, ops: list[Op]) -> Generator[simpy.Event, Any, None]:
        if not ops:
            return
        serve = self.server.serve
        rec = self.recorder
        rtt = self.rtt_draw
        svc = self.service_draw
        scale = self.key_scale()
        if self.pipeline:
            start = env.now
            r = rtt()
            yield env.timeout(r / 2.0)
            now = env.now
            # All commands arrive together; the FCFS server runs them back to back.
            done = max(serve(now, op.server_s * scale * svc()) for op in ops)
            yield env.timeout(done - env.now + r / 2.0)
            if rec is not None:
                for op in ops:
                    rec.add(op, start, env.now - start)
            return
        # Sequential commands: one event per server visit; the reply's half round trip
        # and the next command's half round trip are one timeout.
        start = env.now
        half = rtt() / 2.0
        yield env.timeout(half)
        last = len(ops) - 1
        for j, op in enumerate(ops):
            done = serve(env.now, op.server_s * scale * svc())
            nxt = rtt() / 2.0 if j < last else 0.0
            yield env.timeout(done - env.now + half + nxt)
            if rec is not None:
                end = env.now - nxt
                rec.add(op, start, end - start)
                start = end
            half = nxt
