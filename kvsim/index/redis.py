"""Redis as a KV-cache metadata index: the baseline of the study kvsim starts from.

Model: one client connection over kernel TCP to a single-threaded server.

    command latency = TCP round trip + wait for the server thread + service time
    service time    = io_s + io_per_key_s x keys (the event loop's epoll, read, parse of the
                      arguments, write of the reply) + the command's own time (``INFO
                      commandstats``):
    get(k)          = GET k                 service = get_s
    range(k1..kn)   = MGET k1..kn           service = mget_base_s + n * mget_per_key_s
                      (or, with ``range_command: zrange``, ZRANGEBYLEX over a sorted set
                      holding keys in id order: zrange_base_s + n * zrange_per_key_s)
    insert(k1..kn)  = MSET                  service = mset_base_s + n * mset_per_key_s
                      (keys the request's lookup has just read cost mset_warm_per_key_s:
                      the lookup's misses brought their buckets into cache)
    (MGET's and MSET's time beyond the line's key counts: ``mget_knots``, ``mset_knots``,
    ``mset_warm_knots``, (keys, seconds) points measured at more key counts, piecewise
    linear: :func:`command_time`)
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

The client (what a client process adds, measured by ``+experiment=redis_validation``):
``connections`` > 0 gives the client that many connections, handed to ``execute`` calls in
turn; a call holds its connection for all its commands (one command in flight per
connection: no pipelining), and a call that finds its connection busy waits for it (FIFO).
The client's own CPU per command -- encoding and sending it (``client_send_s`` +
``client_send_per_key_s`` per key; MSET counts a key and its value as one) and receiving and
parsing the reply (``client_recv_s`` + ``client_recv_per_key_s`` per value returned) -- runs
on one client thread, an FCFS server shared by every connection, and its distribution has
the tail ``client_p99_x`` / ``client_p999_x`` (times its median). So a command costs

    [wait for the connection] + [wait for the client thread] + send + rtt/2
    + [wait for the server thread] + service + rtt/2 + [wait for the client thread] + receive

With the defaults (no connections limit, no client costs) a client's costs are inside the
calibrated round trip, as ``python -m kvsim.calibrate redis`` measures it.
``io_after_reply_s``: the part of the event loop's time that comes after the reply is
written (``beforeSleep``, the next ``epoll_wait``): it keeps the thread busy but no reply
waits for it.

``shared_cpu`` (needs ``connections`` >= 1): the client and the server run on one CPU, each
an event loop that runs until it blocks (the set-up ``+experiment=redis_validation``
measures, pinned under SCHED_FIFO): the client's turns and the server's turns alternate, a
server turn serves every command that came in since its last and its replies reach the
client together when it ends; the round trip draw is then each server turn's own time
(context switches, the kernel's loopback work), ``rtt_cold`` for the first turn after the CPU
idled (:mod:`kvsim.index.redis_loop`), at a quantile drawn with ``cold_wake_corr`` (a Gaussian
copula) to the quantile of how late the client woke for it (``client_admit_*``): one machine
state slows both (:meth:`RedisIndex.cold_level`). ``io_per_value_s``: the event loop's time per value in
a GET's or MGET's reply. ``turn_s``: the part of ``io_s`` (measured with one command per
turn) that a server turn pays once however many commands it runs (``epoll_wait``,
``beforeSleep``: ``python -m kvsim.calibrate redis`` measures it, rounds of k commands on k
connections), so a turn of k commands costs ``turn_s + k (io_s - turn_s)`` + their commands.
``turn_extra_s``: what a warm turn inside a burst costs beyond that and its round trip (the
validation measures it on the server's CPU counters; 0 by default, negative where the
model's per-command charges exceed the server's own CPU). ``idle_knots``: (seconds a
connection was idle, seconds) points: what the server spends beyond a warm command on a
command that arrives on a connection idle that long (its socket and client state gone cold
in the caches), linear in log10 of the idle time between points, 0 before the first, the
last's beyond it (with ``shared_cpu``; the validation measures it: a burst of GETs on every
connection after idle gaps of 30 ms to 3 s, the server thread's CPU per burst);
``lone_idle_knots`` the same for a command alone in its turn (measured with bursts of one
GET; ``idle_knots`` where not given). ``cold_per_command_s``: what each command of the first
turn after the CPU idled costs beyond its first and the warm per-command charges (measured:
bursts of GETs on every connection against lone GETs, both after a sleep; 0 by default).
``work_knots``: (seconds of the client's work since the server's last turn, seconds) points:
what a warm turn's round trip costs beyond the median one after that much client work on
the shared CPU (the validation's warm probes took 5-17 us more after 0.1-0.5 ms of client
work than after less than 30 us; the caches the client's work evicts are part of it, not all:
a client spinning without touching memory also makes the next turn dearer), linear in log10 of the work between points, the first's value before it
and the last's beyond; charged to the event loop (with ``shared_cpu``; none by default).

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

import importlib
import math
from collections.abc import Generator, Sequence
from statistics import NormalDist
from typing import Annotated, Any, cast

import numpy as np
import simpy

from kvsim.index.base import KEY_BYTES, VALUE_BYTES, IndexModel, Lookup, Op
from kvsim.index.costs import CostDist, Sampler
from kvsim.index.redis_loop import LoopCharges, OneCpuLoops
from kvsim.ranges import NonNegFloat, NonNegInt, OneOf, PosFloat, PosInt, Range, Seconds, Seed
from kvsim.servers import FCFSServer, timeout_at

Factor = Annotated[float, Range(ge=1.0)]  # a tail as a multiple of the median (>= 1)

RESP_OVERHEAD = 16  # bytes of RESP framing per command and per reply (approximate)
_NORMAL = NormalDist()


Knots = Sequence[tuple[float, float]]  # (keys, seconds) points of a command's time beyond its line


def _through(knots: Knots, n: float) -> float | None:
    """Linear through ``knots`` (increasing keys) at ``n`` keys from the first point to the
    last; None beyond the last (each caller extends the curve its own way)."""
    if n == knots[0][0]:
        return knots[0][1]
    for (a, ta), (b, tb) in zip(knots, knots[1:], strict=False):
        if n <= b:
            return ta + (tb - ta) * (n - a) / (b - a)
    return None


def extra_time(knots: Knots, n: float) -> float:
    """``knots`` (keys, seconds) at ``n`` keys: 0 up to the first point, linear between
    points, the last point's value beyond it."""
    if not knots or n < knots[0][0]:
        return 0.0
    t = _through(knots, n)
    return knots[-1][1] if t is None else t


def _log_knots(name: str, knots: Knots, what: str, signed: bool = False) -> Knots:
    """``knots`` (seconds > 0 increasing, seconds: >= 0 unless ``signed``) checked, with their
    first coordinate in log10 (the idle and work terms' points are decades apart)."""
    if any(b[0] <= a[0] for a, b in zip(knots, knots[1:], strict=False)) or any(
            x <= 0 or (t < 0 and not signed) for x, t in knots):
        raise ValueError(f"redis.{name}: (seconds > 0, seconds{'' if signed else ' >= 0'}) points with increasing "
                         f"{what}, got {list(knots)}")
    return tuple((math.log10(x), float(t)) for x, t in knots)


def command_time(line: tuple[float, float], knots: Knots, n: float) -> float:
    """A command's time at ``n`` keys: ``base + per_key n`` up to the first knot's key count;
    beyond it piecewise linear through the knots (``(keys, seconds)``, increasing keys), and
    past the last knot its last segment's slope (the line's slope with one knot). Why: a
    command's time per key is not one constant over 1 to 12,000 keys (measured on this VM:
    MSET 0.78 us per key from 1 to 16 keys, 0.65-0.67 from 256 to 4,096), and a line through
    1 and 16 keys misprices the agentic trace's lookups of thousands."""
    base, per = line
    if not knots or n <= knots[0][0]:
        return base + per * n
    t = _through(knots, n)
    if t is not None:
        return t
    if len(knots) == 1:
        a, ta = knots[0]
        return ta + per * (n - a)
    (a, ta), (b, tb) = knots[-2], knots[-1]
    return tb + (tb - ta) / (b - a) * (n - b)


try:  # compiled only (python -m kvsim.accel build): block ids in C, a set's answers
    _IdSet: Any = importlib.import_module("kvsim.idtable").IdSet
except ImportError:
    _IdSet = set


def new_id_set() -> set[int]:
    """An empty set of block ids: :class:`kvsim.idtable.IdSet` where compiled (the ids in a
    C table: the index's key set is asked about every block of every request), else a set."""
    return cast(set[int], _IdSet())


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
        tcp_rtt_p99_s: Seconds | None = None,
        tcp_rtt_p999_s: Seconds | None = None,
        service_p99_x: Factor = 1.0,
        service_p999_x: Factor | None = None,
        keys_held: NonNegFloat = 0.0,
        scale_1k_keys: PosFloat = 1.0,
        scale_1m_keys: PosFloat = 1.0,
        io_s: Seconds = 0.0,
        io_per_key_s: Seconds = 0.0,
        io_after_reply_s: Seconds = 0.0,
        io_per_value_s: Seconds = 0.0,
        turn_s: Seconds = 0.0,
        turn_extra_s: float = 0.0,
        mset_warm_base_s: Seconds | None = None,
        mset_warm_per_key_s: Seconds | None = None,
        mget_knots: Knots = (),
        mset_knots: Knots = (),
        mset_warm_knots: Knots = (),
        io_extra_knots: Knots = (),
        mset_io_extra_knots: Knots | None = None,
        idle_knots: Knots = (),
        lone_idle_knots: Knots | None = None,
        cold_per_command_s: float = 0.0,
        work_knots: Knots = (),
        shared_cpu: bool = False,
        connections: NonNegInt = 0,
        client_send_s: Seconds = 0.0,
        client_send_per_key_s: Seconds = 0.0,
        client_recv_s: Seconds = 0.0,
        client_recv_per_key_s: Seconds = 0.0,
        client_p99_x: Factor = 1.0,
        client_p999_x: Factor | None = None,
        client_wake_s: Seconds = 0.0,
        client_wake_p99_s: Seconds | None = None,
        client_wake_p999_s: Seconds | None = None,
        client_admit_s: Seconds = 0.0,
        client_admit_p99_s: Seconds | None = None,
        client_admit_p999_s: Seconds | None = None,
        cold_wake_corr: Annotated[float, Range(ge=-1.0, le=1.0)] = 0.0,
        lookup: Lookup = "prefix",
        tails: bool = True,
        seed: Seed = 0,
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
        if io_s < 0 or io_per_key_s < 0:
            raise ValueError(f"redis.io_s and io_per_key_s must be >= 0, got {io_s}, {io_per_key_s}")
        self.io_s = io_s
        self.io_per_key = io_per_key_s
        self.io_per_value = io_per_value_s
        if io_after_reply_s > io_s:
            raise ValueError(f"redis.io_after_reply_s ({io_after_reply_s}) exceeds io_s ({io_s})")
        self.io_after = io_after_reply_s
        if turn_s > io_s:
            raise ValueError(f"redis.turn_s ({turn_s}) exceeds io_s ({io_s}): it is the part of a one-command turn paid once")
        self.turn_s = turn_s
        # (shared_cpu) a warm turn's cost beyond a lone warm turn's, measured inside bursts;
        # may be negative: the model's per-command charges above the server's own CPU
        self.turn_extra_s = turn_extra_s
        # in log10 of the idle time: the measured points are decades apart (30 ms, 0.3 s, 3 s)
        self.idle_log_knots = _log_knots("idle_knots", idle_knots, "idle times")
        # a command alone in its turn: what it pays is measured apart (bursts of one GET), as
        # it need not be a burst's share (docs/redis_validation.md, seventeenth pass)
        self.lone_idle_log_knots = (self.idle_log_knots if lone_idle_knots is None
                                    else _log_knots("lone_idle_knots", lone_idle_knots, "idle times"))
        # (shared_cpu) each command of a cold turn beyond its first: its connection's and
        # client's state is as cold as the first's, whose cost the cold round trip holds
        self.cold_per_command_s = cold_per_command_s
        # (shared_cpu) a warm turn by the client's work before it, in log10 of the work: the
        # probes' work spans three decades (20 us to 20 ms); a shift from the median: any sign
        self.work_log_knots = _log_knots("work_knots", work_knots, "work", signed=True)
        # an insert's keys that its lookup has just read (absent) are in cache: the warm line
        self.mset_warm = (mset_base_s if mset_warm_base_s is None else mset_warm_base_s,
                          mset_per_key_s if mset_warm_per_key_s is None else mset_warm_per_key_s)
        for name, kn in (("mget_knots", mget_knots), ("mset_knots", mset_knots), ("mset_warm_knots", mset_warm_knots),
                         ("io_extra_knots", io_extra_knots), ("mset_io_extra_knots", mset_io_extra_knots or ())):
            if any(b[0] <= a[0] for a, b in zip(kn, kn[1:], strict=False)) or any(t < 0 or k < 1 for k, t in kn):
                raise ValueError(f"redis.{name}: (keys >= 1, seconds >= 0) points with increasing keys, got {list(kn)}")
        self.mget_knots, self.mset_knots, warm_knots = (tuple((float(k), float(t)) for k, t in kn)
                                                        for kn in (mget_knots, mset_knots, mset_warm_knots))
        self.mset_warm_knots = warm_knots or self.mset_knots
        # a command's time on the round trip's path beyond the per-key lines, by its keys
        # (measured by the validation's probes; none by default): 0 up to the first point,
        # linear between points, the last point's value beyond
        self.io_extra_knots = tuple((float(k), float(t)) for k, t in io_extra_knots)
        # an MSET's own points: its keys are 2n arguments in and no values out, an MGET's n in
        # and n values out, and the two leave different excesses by size (the MGETs' charged
        # to the agentic sessions' MSETs had made them 20-27% dear); None: the points above
        self.mset_io_extra_knots = (self.io_extra_knots if mset_io_extra_knots is None
                                    else tuple((float(k), float(t)) for k, t in mset_io_extra_knots))
        self._track = self.mset_warm != self.mset or self.mset_warm_knots != self.mset_knots  # (bookkeeping only when it changes a cost)
        self._touched: set[int] = set()  # the keys the last lookup read
        self.held: set[int] = new_id_set()
        self._sx, self._sy = _scale_knots(keys_held, scale_1k_keys, scale_1m_keys)
        self._scale_memo: dict[int, float] = {}  # keys held -> key_scale
        self.sampler = Sampler(rng if rng is not None else np.random.default_rng(seed), enabled=tails)
        self.rtt_draw = self.sampler.bind(CostDist(tcp_rtt_s, tcp_rtt_p99_s, tcp_rtt_p999_s))
        self.rtt_cold_draw = self.rtt_draw  # the first round trip after the CPU idled (shared_cpu)
        p99x = max(service_p99_x, 1.0)
        self.service_draw = self.sampler.bind(
            CostDist(1.0, p99x, None if service_p999_x is None else max(service_p999_x, p99x), anchor="mean")
        )
        if connections < 0:
            raise ValueError(f"redis.connections must be >= 0, got {connections}")
        self.connections = connections
        self.send = (client_send_s, client_send_per_key_s)
        self.recv = (client_recv_s, client_recv_per_key_s)
        c99 = max(client_p99_x, 1.0)
        factor = CostDist(1.0, c99, None if client_p999_x is None else max(client_p999_x, c99))
        self.send_draw = self.sampler.bind(factor)
        self.recv_draw = self.sampler.bind(factor)
        # with shared_cpu the client and the server run on one CPU: one queue for both
        self.client = self.server if shared_cpu else FCFSServer("redis_client", 1)
        self.shared_cpu = shared_cpu
        self.wake_draw = self.sampler.bind(CostDist(client_wake_s, client_wake_p99_s, client_wake_p999_s))
        self.admit_draw = self.sampler.bind(CostDist(client_admit_s, client_admit_p99_s, client_admit_p999_s))
        self.wakes = client_wake_s > 0 or client_admit_s > 0
        if not -1.0 <= cold_wake_corr <= 1.0:
            raise ValueError(f"redis.cold_wake_corr must be in [-1, 1], got {cold_wake_corr}")
        self.cold_wake_corr = cold_wake_corr
        self._client_costs = any(v > 0 for v in (*self.send, *self.recv)) or self.wakes
        self._measured: dict[int, tuple[float, float, float]] = {}
        self._conns: list[simpy.Resource] = []
        self._conn_env: simpy.Environment | None = None
        self._next_conn = 0
        if shared_cpu and connections < 1:
            raise ValueError("redis.shared_cpu: the client's event loop needs connections >= 1")
        self._loops: OneCpuLoops | None = None

    def servers(self) -> dict[str, Any]:
        if self._client_costs and not self.shared_cpu:
            return {"redis": self.server, "redis_client": self.client}
        return {"redis": self.server}

    def use_measured(self, **dists: CostDist) -> None:
        """Draw costs from measured distributions (``CostDist.from_samples``) instead of the
        calibrated quantile fits: ``rtt`` (seconds), ``service``, ``send``, ``recv`` (factors
        of the calibrated time, median 1; ``service`` mean 1), ``wake``, ``admit`` (seconds)."""
        names = {"rtt": "rtt_draw", "rtt_cold": "rtt_cold_draw", "service": "service_draw", "send": "send_draw", "recv": "recv_draw",
                 "wake": "wake_draw", "admit": "admit_draw"}
        for k, d in dists.items():
            if k not in names:
                raise ValueError(f"use_measured: unknown cost {k!r} (known: {sorted(names)})")
            setattr(self, names[k], self.sampler.bind(d))
        if "wake" in dists or "admit" in dists:
            self.wakes = True
            self._client_costs = True

    def use_measured_ops(self, costs: dict[int, tuple[float, float, float]]) -> None:
        """Per command (by ``id(op)``): ``(admit, send, recv)`` measured for it, used instead
        of drawn ones (a trace-driven client: the client's own costs as one real client
        spent them, command by command; ``admit`` counts for a call's first command)."""
        self._measured = costs
        self.wakes = True
        self._client_costs = True

    def idle_extra(self, idle_s: float, alone: bool = False) -> float:
        """The server's extra time for a command on a connection idle ``idle_s``
        (``idle_knots``; ``lone_idle_knots`` for a command ``alone`` in its turn)."""
        knots = self.lone_idle_log_knots if alone else self.idle_log_knots
        if not knots or idle_s <= 0:
            return 0.0
        return extra_time(knots, math.log10(idle_s))  # (a connection never used: inf, the last point)

    def work_shift(self, work_s: float) -> float:
        """A warm turn's round trip after ``work_s`` of the client's work since the server's
        last turn, beyond the median one (``work_knots``; flat beyond the end points)."""
        knots = self.work_log_knots
        if not knots:
            return 0.0
        x = math.log10(work_s) if work_s > 0 else -math.inf
        if x <= knots[0][0]:
            return knots[0][1]
        t = _through(knots, x)
        return knots[-1][1] if t is None else t

    def cold_level(self, late: float) -> float | None:
        """(shared_cpu) The quantile level (in (0, 1)) of the cold round trip of the first server turn
        after the client woke ``late`` from its sleep, drawn with ``cold_wake_corr`` (a
        Gaussian copula's correlation) to that lateness's level in the client's wake-up
        distribution (``client_admit_*``): one machine state -- idle CPUs in deep sleep,
        caches gone cold -- slows both, and the validation measures the two together on its
        cold probes. None (the round trip drawn on its own) when the correlation is 0 or
        either distribution is a constant."""
        rho = self.cold_wake_corr
        if not rho:
            return None
        u = self.admit_draw.level_of(late)
        if u is None or self.rtt_cold_draw.table is None:
            return None
        z = rho * _NORMAL.inv_cdf(u) + math.sqrt(1.0 - rho * rho) * float(self.sampler.rng.standard_normal())
        return _NORMAL.cdf(z)

    def client_costs(self, op: Op) -> tuple[float, float]:
        """(send, receive) CPU of ``op`` on the client thread, at the medians."""
        values = op.keys if op.kind in ("get", "range") else 0  # replies: GET/MGET values, MSET OK, DEL n
        return self.send[0] + self.send[1] * op.keys, self.recv[0] + self.recv[1] * values

    def contains(self, block: int) -> bool:
        return block in self.held

    def held_set(self) -> set[int]:
        return self.held

    def key_scale(self, n: int | None = None) -> float:
        """Service time at ``n`` keys held (default: now) over the calibrated one."""
        xs, ys = self._sx, self._sy
        if len(xs) == 1:
            return ys[0]
        if n is None:
            n = len(self.held)
        # Written for speed: asked once per call, and the number of keys held hovers around
        # a level, so the values are kept (a few thousand at most).
        memo = self._scale_memo
        s = memo.get(n)
        if s is None:
            if len(memo) >= 4096:
                memo.clear()
            s = memo[n] = self._key_scale(n)
        return s

    def _key_scale(self, n: int) -> float:
        xs, ys = self._sx, self._sy
        x = math.log10(max(n, 1))
        if x <= xs[0]:
            return ys[0]
        for i in range(1, len(xs)):
            if x <= xs[i]:
                f = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
                return ys[i - 1] + f * (ys[i] - ys[i - 1])
        return ys[-1]

    def _lookup_begin(self, keys: Sequence[int]) -> None:
        self._touched = set()

    def plan_get(self, key: int) -> Op:
        if self._track:
            self._touched.add(key)
        return Op("get", 1, 1, KEY_BYTES + RESP_OVERHEAD, VALUE_BYTES + RESP_OVERHEAD, self.get_s)

    def plan_range(self, keys: Sequence[int]) -> Op:
        n = len(keys)
        if self._track:
            self._touched.update(keys)
        zr = self.range_command == "zrange"
        return Op(
            "range",
            n,
            1,
            n * KEY_BYTES + RESP_OVERHEAD,
            n * (KEY_BYTES + VALUE_BYTES if zr else VALUE_BYTES)
            + RESP_OVERHEAD,
            command_time(self.zrange, (), n) if zr else command_time(self.mget, self.mget_knots, n),
        )

    def plan_insert(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        self.held.update(keys)
        base, per = self.mset
        touched = self._touched
        warm = sum(1 for k in keys if k in touched) if touched else 0
        self._touched = set()
        if self.mset_knots or self.mset_warm_knots:  # each key at its curve's time per key at n keys
            server = (command_time(self.mset, self.mset_knots, n) * (n - warm)
                      + command_time(self.mset_warm, self.mset_warm_knots, n) * warm) / n
        else:
            server = (base if warm < n else self.mset_warm[0]) + (n - warm) * per + warm * self.mset_warm[1]
        return [Op("insert", n, 1, n * (KEY_BYTES + VALUE_BYTES) + RESP_OVERHEAD, RESP_OVERHEAD, server)]

    def plan_delete(self, keys: Sequence[int]) -> list[Op]:
        n = len(keys)
        if n == 0:
            return []
        self.held.difference_update(keys)
        base, per = self.dele
        return [Op("delete", n, 1, n * KEY_BYTES + RESP_OVERHEAD, RESP_OVERHEAD, base + n * per)]

    def unloaded_s(self, op: Op) -> float:
        return self.rtt + self.io(op) + op.server_s * self.key_scale() + sum(self.client_costs(op))

    def io(self, op: Op) -> float:
        """The server thread's event-loop time for ``op`` (outside the command itself)."""
        kind, keys = op.kind, op.keys
        values = keys if kind in ("get", "range") else 0  # values in the reply
        t = self.io_s + self.io_per_key * keys + self.io_per_value * values
        kn = self.mset_io_extra_knots if kind == "insert" else self.io_extra_knots
        return t + extra_time(kn, keys) if kn else t

    def stats(self) -> dict[str, float]:
        return {"keys": len(self.held), "key_scale": self.key_scale()}

    def loop_charges(self) -> LoopCharges | None:
        """With ``shared_cpu``: the event-loop time charged so far, the commands served, the
        server turns that served them and how many of those were cold; None otherwise."""
        lp = self._loops
        return None if lp is None else lp.charges()

    def execute(self, env: simpy.Environment, ops: list[Op], host: int = 0,
                detached: bool = False) -> Generator[simpy.Event, Any, Any]:
        """Returns the time the last op ends. ``detached`` (:meth:`execute_detached`): the
        sequential path, without a recorder, returns it as soon as it is known, without
        waiting for it (every booking and draw is made by then); the other paths wait."""
        if not ops:
            return env.now
        serve = self.server.serve
        rec = self.recorder
        rtt = self.rtt_draw
        svc = self.service_draw
        scale = self.key_scale()
        if self.pipeline:
            start = env.now
            r = rtt()
            now = start + r / 2.0
            if not now < env.peek():  # see below: booked ahead when nothing comes first
                yield env.timeout(r / 2.0)
            # All commands arrive together; the FCFS server runs them back to back.
            done = max(serve(now, self.io(op) + op.server_s * scale * svc()) for op in ops)
            yield timeout_at(env, now + (done - now + r / 2.0))
            if rec is not None:
                for op in ops:
                    rec.add(op, start, env.now - start)
            return env.now
        if self.shared_cpu:
            yield from self._execute_loops(env, ops)
            return env.now
        if self.connections or self._client_costs:
            yield from self._execute_client(env, ops)
            return env.now
        detached = detached and rec is None  # (a recorder's rows come in the order ops end)
        # Sequential commands: the reply's half round trip and the next command's half round
        # trip are one wait. Written for speed: a command is booked on the server at its
        # arrival time ``t`` without waking the process there when no event is scheduled
        # before ``t`` (env.peek()): nothing else can run, so nobody else can reach the server
        # or draw a cost first, and the bookings, draws and records happen in the same order,
        # with the same numbers, as with one event per command (the times are computed as
        # SimPy computes them, and timeout_at lands on them exactly). Usually the whole
        # call is one event.
        start = env.now
        half = rtt() / 2.0
        t = start + half
        first = env.peek()
        if not t < first:
            yield env.timeout(half)
            first = env.peek()
        last = len(ops) - 1
        io = self.io
        for j, op in enumerate(ops):
            now = t  # the command reaches the server
            done = serve(now, io(op) + op.server_s * scale * svc())
            nxt = rtt() / 2.0 if j < last else 0.0
            t = now + (done - now + half + nxt)
            half = nxt
            if j == last and detached:
                return t
            if j == last or not t < first:
                yield timeout_at(env, t)
                first = env.peek()
            if rec is not None:
                end = t - nxt
                rec.add(op, start, end - start)
                start = end
        return env.now

    def execute_detached(self, env: simpy.Environment, ops: list[Op],
                         host: int = 0) -> Generator[simpy.Event, Any, float]:
        # execute's own generator (this is not one): ``yield from`` reaches it with no frame
        # between, once per request
        return self.execute(env, ops, host, detached=True)

    def _costs(self, ops: list[Op]) -> list[tuple[float, float, float]]:
        """Each command's client costs ``(admit, send, recv)``: measured for it
        (:meth:`use_measured_ops`), else drawn (``admit`` counts for a call's first command)."""
        measured = self._measured
        out = []
        for j, op in enumerate(ops):
            m = measured.get(id(op)) if measured else None
            if m is None:
                send, recv = self.client_costs(op)
                admit = self.admit_draw() if j == 0 and self.wakes else 0.0
                out.append((admit, send * self.send_draw(), recv * self.recv_draw()))
            else:
                out.append(m)
        return out

    def _execute_loops(self, env: simpy.Environment, ops: list[Op]) -> Generator[simpy.Event, Any, None]:
        """Client and server as event loops on one CPU (:mod:`kvsim.index.redis_loop`)."""
        if self._loops is None or self._loops.env is not env:
            self._loops = OneCpuLoops(env, self, self.connections)
        yield self._loops.submit(ops, self._costs(ops))

    def _execute_client(self, env: simpy.Environment, ops: list[Op]) -> Generator[simpy.Event, Any, None]:
        """Commands through the client: a connection, the client thread, the server."""
        rec = self.recorder
        start = env.now
        req = conn = None
        if self.connections:
            if self._conn_env is not env:
                self._conns = [simpy.Resource(env, 1) for _ in range(self.connections)]
                self._conn_env = env
            conn = self._conns[self._next_conn]
            self._next_conn = (self._next_conn + 1) % self.connections
            req = conn.request()
            yield req
        thread = self.client
        client = thread.serve
        server = self.server.serve
        sdraw, rdraw, rtt, svc, wake = self.send_draw, self.recv_draw, self.rtt_draw, self.service_draw, self.wake_draw
        wakes = self.wakes
        scale = self.key_scale()
        admit = self.admit_draw
        measured = self._measured
        costs = []
        for op in ops:
            m = measured.get(id(op)) if measured else None
            if m is None:
                send, recv = self.client_costs(op)
                costs.append((0.0, send * sdraw(), recv * rdraw(), False))
            else:
                costs.append((m[0], m[1], m[2], True))
        # The first command: a sleeping thread wakes up (a timed wait: admit) and sends it.
        now = env.now
        a0, send, _, known = costs[0]
        w = (a0 if known else admit()) if wakes and thread.idle(now) else 0.0
        sent = client(now, w + send) if send > 0 or w > 0 else now
        last = len(ops) - 1
        for j, op in enumerate(ops):
            half = rtt() / 2.0
            yield env.timeout(sent - env.now + half)  # the command reaches the server
            done = server(env.now, self.io(op) + op.server_s * scale * svc()) - self.io_after
            yield env.timeout(done - env.now + half)  # the reply reaches the client
            # the thread takes the reply (waking first if it sleeps) and, in the same turn,
            # sends the call's next command (as an event loop does): one booking
            now = env.now
            recv = costs[j][2]
            nxt = costs[j + 1][1] if j < last else 0.0
            w = wake() if wakes and thread.idle(now) else 0.0
            sent = client(now, w + recv + nxt) if (recv > 0 or w > 0 or nxt > 0) else now
            parsed = sent - nxt
            if rec is not None:
                rec.add(op, start, parsed - start)
            start = parsed
        if sent > env.now:
            yield env.timeout(sent - env.now)
        if conn is not None and req is not None:
            conn.release(req)
