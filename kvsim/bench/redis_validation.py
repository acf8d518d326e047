"""``+experiment=redis_validation``: the Redis index model against a real redis-server.

    python -m kvsim +experiment=redis_validation trace=mooncake_conversation
    python -m kvsim +experiment=redis_validation experiment.redis_url=redis://HOST:6379 \\
        experiment.speedups=[1,10,100] experiment.connections=4 experiment.max_requests=200

1. Server: a ``redis-server`` started on a free loopback port (stopped at the end), or the
   one at ``experiment.redis_url`` (only keys under ``kvsim:val:`` are written, and removed).
   It is loaded with ``experiment.preload_keys`` filler keys (default: one per distinct
   block of the whole trace, so it holds about as many keys as the simulated index does
   after the trace).
2. The command stream: the simulated Redis index (``cfg.index``, which must be ``redis``)
   plans the first ``experiment.max_requests`` requests (or, with ``experiment.requests``, a
   count per speed-up: each replays its own prefix) in arrival order, untimed -- its
   lookup (GET per scattered block, MGET per run, stopping at the first absent block with
   ``lookup: prefix``) and the MSET of its new blocks. Exactly these commands, keys and order
   are sent to the real server and simulated.
3. Calibration from the same server, in the same run, before the filler is loaded and with
   as many keys as it (its GETs and MGETs then miss the caches as a lookup's keys do):
   ``measure_redis`` (server time per command from ``INFO commandstats``, its tail from
   ``INFO latencystats``, the event loop from ``INFO cpu``, the part of it paid once per
   event-loop turn, the MSET of keys an MGET has just read). The stream is planned again
   with these values, so every simulated command's server time is this server's.
4. Per speed-up (``experiment.speedups``; arrivals divided by it), the client and a started
   server pinned to one CPU under SCHED_FIFO (``experiment.cpu``, ``experiment.rt_priority``;
   ``experiment.nice`` where real-time scheduling is not permitted): the stream is replayed
   open loop by :mod:`kvsim.calibrate.replay_client` over ``experiment.connections``
   connections (``experiment.replays`` times, in rounds of every speed-up; the cells pool a
   speed-up's replays), each replay in a key space of its own (keys new to the server,
   deleted after it), timing every command, the client's own send and receive CPU, and pairs of probes
   (one after a sleep, one right after it) of the network + server alone in the replay's
   idle moments (GET/MGET of random filler keys; MSET of new keys, deleted after, read
   first inside a pair as a trace insert's keys are).
5. The model is given what the client adds, measured in *that* replay (not subtracted
   away): the client thread's CPU per command and the lateness of each request's admission
   (``experiment.client``: ``measured``, each command's own; ``drawn``, another command's of
   its kind and place), and the round trip distributions from that replay's probes (round
   trip less send, receive, the calibrated command time and the event loop's: ``io_s`` and,
   fitted per kind on the probes of all replays, per key and per value returned); the first of each
   pair gives the first round trip after the CPU idled. The same stream is then simulated
   ``experiment.sim_runs`` times (seeds 0..) with :class:`kvsim.index.redis.RedisIndex`
   with ``shared_cpu``: the client's and the server's event loops on one CPU, each running
   until it blocks (:mod:`kvsim.index.redis_loop`) -- and the runs pooled.

Outputs: ``redis_validation.csv`` (op, speedup, count, real_p50_s, sim_p50_s, real_p99_s,
sim_p99_s, err_p50, err_p99; err = sim / real - 1), ``redis_validation_latency.parquet``
(every command, real and simulated: ``cmd`` its place in the stream, the same for a command's
real row and its simulated ones, ``run`` the simulated run's seed, ``replay`` which of the
speed-up's replays), ``redis_validation_fit.json`` (calibration and fitted
client per speed-up), ``redis_validation_cdf.png`` (drawn from the parquet by
:mod:`kvsim.report.redis_validation`), ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import simpy

from kvsim.bench.validation_settings import RedisValidationSettings, idle_halves, idle_sets
from kvsim.calibrate.redis_bench import (
    commandstats,
    measure_redis,
    server_cpu,
    settle_keyspace,
)
from kvsim.calibrate.replay_client import (
    MachineShare,
    Probe,
    ReplayResult,
    Unit,
    cpu_mark,
    local_redis_pid,
    machine_share,
    replay_open_loop,
    server_thread_cpu,
)
from kvsim.calibrate.resp import RespClient, encode
from kvsim.index.base import Op, OpRecorder
from kvsim.index.costs import CostDist
from kvsim.index.redis import RedisIndex, command_time
from kvsim.index.redis_loop import LoopCharges
from kvsim.io import write_json, write_with
from kvsim.trace.schema import Trace
from kvsim.workload import Arrivals

log = logging.getLogger("kvsim")

PREFIX = b"kvsim:val:"
FILLER = 1 << 60  # filler key ids (disjoint from block ids)
PROBE = 1 << 61  # probe MSET keys
OP_ORDER = ("get", "range", "insert", "delete")
CSV_COLUMNS = ["op", "speedup", "count", "real_p50_s", "sim_p50_s", "real_p99_s", "sim_p99_s", "err_p50", "err_p99"]


# --- keys and commands ----------------------------------------------------------------
def key(i: int) -> bytes:
    k = PREFIX + b"%022x" % i
    assert len(k) == 32
    return k


def value(i: int) -> bytes:
    return struct.pack("<Q", i & (2**64 - 1))


def command(op: Op, ids: Sequence[int]) -> bytes:
    """The RESP command the Redis model means by ``op`` (MGET for ranges, MSET for inserts)."""
    if op.kind == "get":
        return encode("GET", key(ids[0]))
    if op.kind == "range":
        return encode("MGET", *[key(i) for i in ids])
    if op.kind == "insert":
        return encode("MSET", *[x for i in ids for x in (key(i), value(i))])
    if op.kind == "delete":
        return encode("DEL", *[key(i) for i in ids])
    raise ValueError(f"no command for op kind {op.kind!r}")


@dataclass
class Stream:
    units: list[Unit]
    ops: list[list[Op]]  # the model's ops of each unit
    arrival_s: np.ndarray  # per request
    window_keys: list[int]  # every block id the window writes
    ids: list[list[list[int]]] = dataclasses.field(default_factory=list)  # each command's block ids, per unit

    def units_in(self, space: int) -> list[Unit]:
        """The units with every key moved to key space ``space`` (id + space * 2^64): a
        replay in a space of its own writes keys the server has never held, as the trace's
        new blocks are, not keys deleted a moment before (whose buckets and memory the
        delete has just warmed)."""
        if space == 0:
            return self.units
        shift = space << 64
        return [Unit(u.request, u.kinds, u.keys, [command(op, [i + shift for i in ids]) for op, ids in zip(ops, idss, strict=True)],
                     u.after) for u, ops, idss in zip(self.units, self.ops, self.ids, strict=True)]

    def from_arrival(self) -> np.ndarray:
        """Per command, in stream order: whether its latency runs from its request's arrival
        (the first command of a unit ready at the arrival: a lookup's first) rather than from
        the reply before it (the others, and every command of a unit that follows another)."""
        return np.array([j == 0 and u.after < 0 for u in self.units for j in range(len(u.kinds))], dtype=bool)

    def keys_in(self, space: int) -> list[int]:
        return [i + (space << 64) for i in self.window_keys]

    def head(self, n: int) -> Stream:
        """The stream of the first ``n`` requests (what ``plan_stream`` plans for ``n``: the
        planner works in arrival order, so it is a prefix)."""
        if n >= len(self.arrival_s):
            return self
        cut = next((j for j, u in enumerate(self.units) if u.request >= n), len(self.units))
        ids = self.ids[:cut]
        written = {i for u, idss in zip(self.units[:cut], ids, strict=True) if u.kinds == ["insert"] for i in idss[0]}
        return Stream(self.units[:cut], self.ops[:cut], self.arrival_s[:n], sorted(written), ids)


def plan_stream(trace: Trace, index: RedisIndex, n: int) -> Stream:
    """The first ``n`` requests' commands, as ``index`` plans them in arrival order."""
    if index.pipeline or index.range_command != "mget":
        raise ValueError("redis_validation: index.pipeline must be false and index.range_command mget")
    hid, off = trace.hash_ids, trace.offsets
    n = min(n, len(trace))
    units: list[Unit] = []
    ops_of: list[list[Op]] = []
    written: set[int] = set()
    ids_all: list[list[list[int]]] = []
    for r in range(n):
        blocks = hid[off[r] : off[r + 1]].tolist()
        look = index.plan_lookup(blocks)
        ids_of: list[list[int]] = []
        i = 0
        for op in look:  # plan_lookup's ops cover the blocks run by run, in order
            ids_of.append(blocks[i : i + op.keys])
            i += op.keys
        new = [b for b in blocks if not index.contains(b)]
        units.append(Unit(r, [o.kind for o in look], [o.keys for o in look], [command(o, ids) for o, ids in zip(look, ids_of, strict=True)]))
        ops_of.append(look)
        ids_all.append(ids_of)
        ins = index.plan_insert(new)
        if ins:
            written.update(new)
            units.append(Unit(r, ["insert"], [len(new)], [command(ins[0], new)], after=len(units) - 1))
            ops_of.append(ins)
            ids_all.append([new])
    arrival = trace.arrival_s[:n] - (trace.arrival_s[0] if n else 0.0)
    return Stream(units, ops_of, np.asarray(arrival, dtype=float), sorted(written), ids_all)


# --- the server ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(settings: RedisValidationSettings) -> Iterator[tuple[str, int, int]]:
    """(host, port, db) of the server to validate against; starts one when no URL is given."""
    if settings.redis_url:
        u = urlparse(settings.redis_url)
        if u.scheme not in ("redis", "") or not u.hostname:
            raise ValueError(f"experiment.redis_url: expected redis://HOST:PORT[/DB], got {settings.redis_url!r}")
        yield u.hostname, u.port or 6379, int(u.path.strip("/") or 0)
        return
    binary = shutil.which(settings.redis_server)
    if binary is None:
        raise FileNotFoundError(f"experiment.redis_server: {settings.redis_server!r} not found on PATH "
                                "(install redis-server, or give experiment.redis_url)")
    nice, rt, cpu = settings.nice, settings.rt_priority, settings.pinned_cpu()

    def priority() -> None:  # in the child, before exec: the server's priority and CPU
        if nice is not None:
            _set_nice(nice)
        if rt is not None:
            _set_fifo(rt)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    with tempfile.TemporaryDirectory() as d:
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            port = _free_port()
            proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", d],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=priority,
            )
            if _answers_ping(proc, port, timeout_s=10.0):
                break
            if proc.poll() is None:
                proc.kill()
            err = proc.communicate(timeout=5)[1].decode(errors="replace")
            if attempt == 2:
                raise RuntimeError(f"redis-server did not start on port {port}: {err.strip()[:300]}")
        try:
            yield "127.0.0.1", port, 0
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _answers_ping(proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> bool:
    """Whether the started server answers PING before it exits or ``timeout_s`` passes."""
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout_s:
        try:
            with RespClient("127.0.0.1", port, timeout=1.0) as c:
                if c.call("PING") == "PONG":
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _set_nice(value: int) -> bool:
    """Set this thread's scheduling priority (nice value); False where not permitted."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
        return True
    except OSError:
        return False


def _set_fifo(priority: int) -> bool:
    """Run this thread under SCHED_FIFO at ``priority``; False where not permitted."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (OSError, AttributeError):
        return False


@contextmanager
def priority(nice: int | None, cpu: int | None = None, rt: int | None = None) -> Iterator[str]:
    """Run the replay on ``cpu`` under SCHED_FIFO at ``rt`` where permitted (no other job
    preempts the client, and a timed wait wakes on time), else at ``nice`` (other jobs then
    rarely preempt it); restore all afterwards. Yields the scheduling used: ``fifo``,
    ``nice`` or ``normal``."""
    old_cpus = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    old = os.getpriority(os.PRIO_PROCESS, 0)
    old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
    niced = nice is not None and _set_nice(nice)
    fifo = rt is not None and _set_fifo(rt)
    try:
        yield "fifo" if fifo else "nice" if niced else "normal"
    finally:
        if fifo:
            os.sched_setscheduler(0, old_policy, old_param)
        if niced:
            _set_nice(old)
        if cpu is not None:
            os.sched_setaffinity(0, old_cpus)


@contextmanager
def pinned_server(s: RedisValidationSettings, filler: int) -> Iterator[tuple[str, int, int, str]]:
    """The replay's set-up for a stand-alone measurement (the benchmarks' Redis checks): a
    started redis-server holding ``filler`` filler keys, and this process on its CPU as the
    replay runs (:func:`priority`): yields (host, port, db, the scheduling used). Without the
    server's program, :func:`redis_server`'s one-line FileNotFoundError (a command run through
    :func:`kvsim.errors.cli` exits 2 with it)."""
    with redis_server(s) as (host, port, db):
        with connect(host, port, db) as c:
            load_filler(c, filler)
        with priority(s.nice, s.pinned_cpu(), s.rt_priority) as sched:
            yield host, port, db, sched


def _pipeline_chunks(c: RespClient, cmds: list[list[Any]], chunk: int = 50) -> None:
    for a in range(0, len(cmds), chunk):
        c.pipeline(cmds[a : a + chunk])


def load_filler(c: RespClient, n: int) -> None:
    per = 1000
    _pipeline_chunks(c, [["MSET", *[x for i in range(a, min(a + per, n)) for x in (key(FILLER + i), value(i))]]
                         for a in range(0, n, per)])


def delete_keys(c: RespClient, ids: Sequence[int]) -> None:
    per = 1000
    _pipeline_chunks(c, [["DEL", *[key(i) for i in ids[a : a + per]]] for a in range(0, len(ids), per)])


# --- fitting the client ------------------------------------------------------------------
def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``a + b x`` through the medians of ``y`` at each ``x`` (least squares, weighted by the
    samples at each x; b >= 0; a single x gives b = 0)."""
    xs = np.unique(x)
    if len(xs) == 0:
        return 0.0, 0.0
    med = np.array([np.median(y[x == v]) for v in xs])
    w = np.array([np.sum(x == v) for v in xs], dtype=float)
    if len(xs) == 1:
        return float(med[0]), 0.0
    b, a = np.polyfit(xs.astype(float), med, 1, w=np.sqrt(w))
    if b < 0:
        return float(np.average(med, weights=w)), 0.0
    return float(max(a, 0.0)), float(b)


def _io_slopes(keys: np.ndarray, values: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(b, c)`` of ``y = a + b keys + c values`` through the medians of ``y`` at each
    (keys, values), least squares weighted by the samples there; ``b, c >= 0``."""
    pts = sorted(set(zip(keys.tolist(), values.tolist(), strict=True)))
    if len(pts) < 3:
        return 0.0, 0.0
    med = np.array([np.median(y[(keys == k) & (values == v)]) for k, v in pts])
    w = np.sqrt([np.sum((keys == k) & (values == v)) for k, v in pts])
    x = np.array([[1.0, k, v] for k, v in pts])
    coef = np.linalg.lstsq(x * w[:, None], med * w, rcond=None)[0]
    if coef[1] < 0 or coef[2] < 0:  # one of them not measurable: the other alone
        col = 2 if coef[1] < 0 else 1
        b = max(float(np.linalg.lstsq(x[:, [0, col]] * w[:, None], med * w, rcond=None)[0][1]), 0.0)
        return (0.0, b) if col == 2 else (b, 0.0)
    return float(coef[1]), float(coef[2])


def _tail(ratios: np.ndarray) -> tuple[float, float]:
    r = ratios[np.isfinite(ratios) & (ratios > 0)]
    if len(r) == 0:
        return 1.0, 1.0
    p50, p99, p999 = np.quantile(r, [0.5, 0.99, 0.999])
    return float(max(p99 / p50, 1.0)), float(max(p999 / p50, p99 / p50, 1.0))


def _command_s(base: dict[str, Any], kinds: np.ndarray, keys: np.ndarray, cold: np.ndarray | None = None) -> np.ndarray:
    """The calibrated command time (``INFO commandstats``) of each probe: a warm probe's MSET
    (the second of a pair: its keys were just read, see :func:`_probe`) at the warm line;
    MGET and MSET through their knots where measured (:func:`kvsim.index.redis.command_time`)."""
    warm = ~cold if cold is not None else np.ones(len(kinds), dtype=bool)
    mget = (base["mget_base_s"], base["mget_per_key_s"])
    mset = (base["mset_base_s"], base["mset_per_key_s"])
    msetw = (base.get("mset_warm_base_s", mset[0]), base.get("mset_warm_per_key_s", mset[1]))
    kn = {k: base.get(k, ()) for k in ("mget_knots", "mset_knots", "mset_warm_knots")}
    out = np.zeros(len(kinds))
    for i, (k, n, w) in enumerate(zip(kinds.tolist(), keys.tolist(), warm.tolist(), strict=True)):
        if k == "get":
            out[i] = base["get_s"]
        elif k == "range":
            out[i] = command_time(mget, kn["mget_knots"], n)
        elif k == "insert":
            out[i] = (command_time(msetw, kn["mset_warm_knots"] or kn["mset_knots"], n) if w
                      else command_time(mset, kn["mset_knots"], n))
    return out


def _values_of(kinds: np.ndarray, keys: np.ndarray) -> np.ndarray:
    return np.where(np.isin(kinds, ["get", "range"]), keys, 0.0)  # values in the reply


def _probe_io(io_s: float, slopes: tuple[float, float], kinds: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Each probe's event-loop time as the model takes it: ``io_s`` + per key + per value
    returned (``slopes``: :func:`io_slopes`)."""
    return io_s + slopes[0] * keys + slopes[1] * _values_of(kinds, keys)


def io_slopes(replays: Sequence[ReplayResult], base: dict[str, Any] | Sequence[dict[str, Any]]) -> tuple[float, float]:
    """The time per key of a command and per value in its reply beyond the command and the
    two threads' measured CPU, from the probes of the replays, pooled (the second of each
    pair: inside a burst): their round trip less send, receive and command time, a line
    against keys per kind: ``(per key, per value)`` = (the MSET line's slope, the MGET
    line's less it: an MSET key is two arguments in, an MGET key one in and a value out).
    Without MSET probes, one fit against keys and values. ``base``: the server's
    calibration, or one per replay (each replay's own command times: :func:`burst_factors`)."""
    if not any(r.probe_kind for r in replays):
        return 0.0, 0.0
    bases = [base] * len(replays) if isinstance(base, dict) else list(base)
    parts = [probe_paths(r, b) for r, b in zip(replays, bases, strict=True)]
    kinds, keys, cold, path = (np.concatenate([p[i] for p in parts]) for i in range(4))
    ins, rng_ = ~cold & (kinds == "insert"), ~cold & (kinds == "range")
    if len(np.unique(keys[ins])) >= 2 and len(np.unique(keys[rng_])) >= 2:
        per_key = _line(keys[ins], path[ins])[1]
        return per_key, _line(keys[rng_], path[rng_])[1] - per_key
    return _io_slopes(keys[~cold], _values_of(kinds, keys)[~cold], path[~cold])


NET_MAX_KEYS = 16  # probes that measure the round trip's own part (the calibration's line: 1 and 16 keys)
MIN_NET_PROBES = 20  # fewer such probes: every probe is used


def size_knots(keys: np.ndarray, net: np.ndarray, ok: np.ndarray, rtt_s: float) -> list[tuple[float, float]]:
    """What the probes ``ok`` of more than ``NET_MAX_KEYS`` keys leave beyond the round trip
    ``rtt_s`` (``net``: each probe's round trip less the lines' charges), by bins of 4x more
    keys: (``NET_MAX_KEYS``, 0), then each bin's median keys and median excess (at least 0)
    where the bin holds ``MIN_NET_PROBES`` probes; [] where no bin does."""
    knots = [(float(NET_MAX_KEYS), 0.0)]
    lo = NET_MAX_KEYS
    while (ok & (keys > lo)).any():
        b = ok & (keys > lo) & (keys <= 4 * lo)
        if b.sum() >= MIN_NET_PROBES:
            knots.append((float(np.median(keys[b])), max(float(np.median(net[b])) - rtt_s, 0.0)))
        lo *= 4
    return knots if len(knots) > 1 else []


def fit_client(real: ReplayResult, base: dict[str, Any], slopes: tuple[float, float] = (0.0, 0.0)
               ) -> tuple[dict[str, Any], dict[str, CostDist]]:
    """The network and the client's costs from one replay and its probes.

    The network + server time of one command alone: each probe's round trip less its send,
    its receive, the calibrated command time and the event loop's (``io_s`` and ``slopes``,
    per key and per value: :func:`io_slopes`); the probes wait for their reply in select, as
    the replay does, so a sleeping thread's wake-up is in it. Returned as the model's ``rtt``
    distribution (``CostDist.from_samples`` of the probes of at most ``NET_MAX_KEYS`` keys;
    ``rtt_cold`` from the first probe of each pair, sent after a sleep) and its medians as
    parameters, with the client's turns summarised
    for the report (the simulation takes the client's costs command by command,
    :func:`client_costs`)."""
    kinds = np.array(real.kind)
    keys = real.keys.astype(float)
    values = _values_of(kinds, keys)
    admitted = real.send_s > 0
    sa, sb = _line(keys[admitted], real.send_s[admitted]) if admitted.any() else (0.0, 0.0)
    ra, rb = _line(values, real.recv_s)
    pk, pn, cold, path = probe_paths(real, base)
    per_key, per_value = slopes
    io = _probe_io(base.get("io_s", 0.0), slopes, pk, pn)
    # The round trip's own part (the kernel's, the context switches) is what is left of the
    # probes where the per-key terms are smallest: those of at most NET_MAX_KEYS keys, the
    # sizes the calibration's lines are measured at. Probes of a trace with large commands
    # (the agentic sessions: a median of 24 keys, a tail to 12,482) leave more per key than
    # the fitted lines take (net 19-21 us at 1-16 keys, 73 at 64-256, 140 over 1,024) and
    # raised the median of all to 29 us, charged to every command, small ones included.
    small = pn <= NET_MAX_KEYS
    from_small = bool((~cold & small).sum() >= MIN_NET_PROBES)
    warm = ~cold & small if from_small else ~cold
    first = cold & small if (cold & small).sum() >= MIN_NET_PROBES else cold
    # the event loop is on the reply's path up to the write: what a lone command's round
    # trip leaves for it (the median); the rest of io_s follows the reply
    io_after = float(np.clip(np.median(io[warm] - path[warm]), 0.0, base.get("io_s", 0.0))) if warm.any() else 0.0
    net = path - (io - io_after)
    rtt = CostDist.from_samples(np.maximum(net[warm], 1e-8))
    rtt_cold = CostDist.from_samples(np.maximum(net[first], 1e-8)) if first.any() else rtt
    dists = {"rtt": rtt, "rtt_cold": rtt_cold}
    # What larger probes leave beyond that (the per-key lines miss it; not a straight line
    # in the keys, and where the time goes was not measured), by size: the median excess of the warm
    # probes in each bin of 4x more keys, as points the model adds to a command's event loop
    # (RedisIndex io_extra_knots); bins with fewer than MIN_NET_PROBES probes are left out.
    # MSETs apart from MGETs (mset_io_extra_knots): their excesses differ, and the MGETs,
    # five in six of the probes, had set the points for both.
    insert = pk == "insert"
    knots = size_knots(pn, net, ~cold & ~insert, rtt.p50) if from_small else []
    mset_knots = size_knots(pn, net, ~cold & insert, rtt.p50) if from_small else []
    params = {
        "work_knots": work_knots(probe_work(real)[net_probes(real)], net, warm),
        "client_send_s": sa, "client_send_per_key_s": sb, "client_recv_s": ra, "client_recv_per_key_s": rb,
        "tcp_rtt_s": rtt.p50, "tcp_rtt_p99_s": rtt.p99, "tcp_rtt_p999_s": rtt.p999, "io_after_reply_s": io_after,
        "io_per_key_s": per_key, "io_per_value_s": per_value, "tcp_rtt_cold_s": rtt_cold.p50, "tcp_rtt_cold_p99_s": rtt_cold.p99,
        "io_extra_knots": knots, "mset_io_extra_knots": mset_knots,
    }
    if real.admit_late_s:
        admit = CostDist.from_samples(np.maximum(real.admit_late_s, 0.0))
        params.update({"client_admit_s": admit.p50, "client_admit_p99_s": admit.p99, "client_admit_p999_s": admit.p999})
        corr = cold_wake_corr(probe_lateness(real)[net_probes(real)], net, first)
        if corr is not None:
            params["cold_wake_corr"] = corr
    return params, dists


WORK_BINS = 6  # at most, of MIN_NET_PROBES probes or more each


def probe_work(real: ReplayResult) -> np.ndarray:
    """Per probe, the client's work between the server's last turn and its own (s): for the
    warm probe of a pair of GETs or MGETs, its cold probe's receive and its own send (nothing
    else runs between them); NaN for the others (an MSET pair reads and deletes keys
    between its probes, untimed)."""
    kinds = np.array(real.probe_kind)
    cold = np.asarray(real.probe_cold, dtype=bool)
    send, recv = (np.asarray(getattr(real, f), dtype=float) for f in ("probe_send_s", "probe_recv_s"))
    work = np.full(len(kinds), np.nan)
    pair = np.zeros(len(kinds), dtype=bool)
    pair[1:] = ~cold[1:] & cold[:-1] & np.isin(kinds[1:], ("get", "range")) & (kinds[1:] == kinds[:-1])
    idx = np.flatnonzero(pair)
    work[idx] = recv[idx - 1] + send[idx]
    return work


def work_knots(work: np.ndarray, net: np.ndarray, warm: np.ndarray) -> list[tuple[float, float]]:
    """``RedisIndex(work_knots=...)`` from the warm probes (``warm``, with their ``work``:
    :func:`probe_work`, and ``net``: each one's round trip less its send, receive, command and
    event loop): the probes in up to WORK_BINS bins of equal count by work, each bin's median
    work and its median ``net`` less the median of all of them; none with fewer than two bins
    of MIN_NET_PROBES probes. Why: the round trip after the client's work on the shared CPU
    grows with that work, mostly in the server's own CPU (docs/redis_validation.md, eighteenth
    pass); the model's warm round trip is the median
    over the probes' mix of work, this says how a turn's own work moves it."""
    ok = warm & np.isfinite(work) & (work > 0)
    bins = min(WORK_BINS, int(ok.sum()) // MIN_NET_PROBES)
    if bins < 2:
        return []
    w, n = work[ok], net[ok]
    order = np.argsort(w, kind="stable")
    mid = float(np.median(n))
    knots: list[tuple[float, float]] = []
    for part in np.array_split(order, bins):
        x = float(np.median(w[part]))
        if not knots or x > knots[-1][0]:
            knots.append((x, float(np.median(n[part])) - mid))
    return knots if len(knots) > 1 else []


def probe_paths(real: ReplayResult, base: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The probes the round trips are taken from (:func:`net_probes`): their kinds, keys,
    whether cold, and each one's path, its round trip less send, receive and the command's
    calibrated time (``base``)."""
    m = net_probes(real)
    kinds = np.array(real.probe_kind)[m]
    keys = np.array(real.probe_keys, dtype=float)[m]
    cold = np.array(real.probe_cold, dtype=bool)[m]
    rtt, send, recv = (np.array(getattr(real, f), dtype=float)[m] for f in ("probe_rtt_s", "probe_send_s", "probe_recv_s"))
    return kinds, keys, cold, rtt - send - recv - _command_s(base, kinds, keys, cold)


def net_probes(real: ReplayResult) -> np.ndarray:
    """Which of a replay's probes its round trips are taken from (a mask): those timed with
    no ``/proc`` read around them (``ReplayResult.probe_counted``: the reads shift the round
    trip they bracket), where there are MIN_NET_PROBES of them both cold and warm; else all
    (a server elsewhere, whose CPU is not read, or a replay from before the reads were kept
    off half of the pairs)."""
    n = len(real.probe_kind)
    counted = np.asarray(getattr(real, "probe_counted", []), dtype=bool)
    cold = np.asarray(real.probe_cold, dtype=bool)
    clean = ~counted
    if len(counted) == n and (clean & cold).sum() >= MIN_NET_PROBES and (clean & ~cold).sum() >= MIN_NET_PROBES:
        return clean
    return np.ones(n, dtype=bool)


def probe_lateness(real: ReplayResult) -> np.ndarray:
    """Per probe, how late the sleep before it woke (``ReplayResult.probe_late_s``, recorded
    per cold probe); NaN for the warm ones, and for all where the record does not match."""
    cold = np.asarray(real.probe_cold, dtype=bool)
    late = np.full(len(cold), np.nan)
    if len(real.probe_late_s) == int(cold.sum()):
        late[cold] = real.probe_late_s
    return late


def cold_wake_corr(late: np.ndarray, net: np.ndarray, first: np.ndarray) -> float | None:
    """How a cold round trip goes with how late the sleeping client woke before it
    (``RedisIndex.cold_wake_corr``), from the cold probes that followed a timed sleep:
    their Spearman correlation of the two (``late``, per probe: :func:`probe_lateness`;
    ``net``: each probe's network part, :func:`fit_client`; ``first``: the cold probes that
    make ``rtt_cold``) as a Gaussian copula's correlation, 2 sin(pi rho_s / 6). None with
    fewer than MIN_NET_PROBES such probes.

    Why: in every replay the bursts' first commands took longer, beyond their admission's
    lateness, the later the client woke (Spearman 0.39-0.53 on the conversation trace,
    docs/redis_validation.md, thirteenth pass): one machine state slows the client's wake-up
    and the server's first turn together, and drawn independently the two made the first
    turn's spread too narrow. The probes measure it apart from the stream."""
    ok = np.isfinite(late) & first
    if ok.sum() < MIN_NET_PROBES:
        return None
    rs = float(pd.Series(late[ok]).corr(pd.Series(net[ok]), method="spearman"))
    return float(2.0 * np.sin(np.pi * rs / 6.0)) if np.isfinite(rs) else None


def client_costs(stream: Stream, real: ReplayResult, mode: str, rng: np.random.Generator) -> dict[int, tuple[float, float, float]]:
    """Each command's client costs ``(admit, send, recv)`` for the model, by ``id(op)``.

    ``measured``: the ones the real client spent on that very command (a trace-driven
    client). ``drawn``: those of a random command of the same kind and place (the first of
    its call or not, which decides what its send covers; see replay_client), and the admit
    delay of a random request: the measured distributions, drawn independently."""
    place = []  # (kind, first of its call, admitted) per command, in stream order
    admits = []
    for u in stream.units:
        for j, k in enumerate(u.kinds):
            place.append((k, j == 0, j == 0 and u.after < 0))
        if u.after < 0:
            admits.append(real.admit_of_request.get(u.request, 0.0))
    pool: dict[tuple[str, bool, bool], list[int]] = {}
    for i, key_ in enumerate(place):
        pool.setdefault(key_, []).append(i)
    costs: dict[int, tuple[float, float, float]] = {}
    i = 0
    for u, ops in zip(stream.units, stream.ops, strict=True):
        for j, op in enumerate(ops):
            src = i if mode == "measured" else int(rng.choice(pool[place[i]]))
            admit = 0.0
            if j == 0 and u.after < 0:
                admit = real.admit_of_request.get(u.request, 0.0) if mode == "measured" else float(rng.choice(admits))
            costs[id(op)] = (admit, float(real.send_s[src]), float(real.recv_s[src]))
            i += 1
    return costs


class _PlacedRecorder(OpRecorder):
    """An :class:`OpRecorder` that also keeps each command's place in the stream (``cmd``,
    the real replay's row of the same command), so that the two pair up command by command."""

    def __init__(self, place: dict[int, int]) -> None:
        super().__init__()
        self.place = place
        self.cmd: list[int] = []

    def add(self, op: Op, start: float, latency: float) -> None:
        super().add(op, start, latency)
        self.cmd.append(self.place[id(op)])


def model_params(params: dict[str, Any]) -> dict[str, Any]:
    """The fit's parameters that are :class:`RedisIndex`'s (the client's tails and the cold
    round trip come as distributions: ``use_measured``)."""
    return {k: v for k, v in params.items() if (not k.endswith("_p99_x") or k.startswith("service")) and "_cold" not in k}


def simulate(stream: Stream, params: dict[str, Any], dists: dict[str, CostDist], speedup: float, connections: int,
             seed: int, costs: dict[int, tuple[float, float, float]] | None = None) -> pd.DataFrame:
    """The stream through :class:`RedisIndex` at the same arrival times: one row per command.
    ``costs``: the client's costs per command (:func:`client_costs`)."""
    ix = RedisIndex(connections=connections, lookup="prefix", tails=True, rng=np.random.default_rng(seed),
                    **model_params(params))
    # (params["shared_cpu"]: client and server pinned to one CPU share one queue)
    ix.use_measured(**dists)
    if costs is not None:
        ix.use_measured_ops(costs)
    rec = _PlacedRecorder({id(op): i for i, op in enumerate(op for ops in stream.ops for op in ops)})
    ix.recorder = rec
    env = simpy.Environment()
    by_req: dict[int, list[list[Op]]] = {}
    for u, ops in zip(stream.units, stream.ops, strict=True):
        by_req.setdefault(u.request, []).append(ops)

    def request(units: list[list[Op]]) -> Generator[simpy.Event, Any, None]:
        for ops in units:  # the lookup, then the insert (ready when the lookup is done)
            yield from ix.execute(env, ops)

    def source() -> Generator[simpy.Event, Any, None]:
        for r in np.argsort(stream.arrival_s, kind="stable").tolist():
            delay = float(stream.arrival_s[r]) / speedup - env.now
            if delay > 0:
                yield env.timeout(delay)
            env.process(request(by_req[r]))

    env.process(source())
    env.run()
    df = pd.DataFrame({"op": rec.kind, "keys": rec.keys, "latency_s": rec.latency_s, "cmd": rec.cmd, "run": seed})
    df.attrs["loop"] = ix.loop_charges()
    return df


# --- the server's command times inside a replay --------------------------------------------
STAT_OF = {"get": "get", "range": "mget", "insert": "mset"}  # op kind -> its command in INFO commandstats


def burst_factors(ops: Sequence[Sequence[Op]], server_s: dict[str, float]) -> dict[str, float]:
    """Per command (``get``, ``mget``, ``mset``): the server's own time for the stream's
    commands over a replay (``server_s``: ``INFO commandstats`` around the replay less the
    probes' share, :func:`replay_open_loop` with ``count_probes``; seconds) over what the
    calibration's lines give for the same commands (``ops``' planned server times). 1 where
    either is 0.

    Why: the calibration times each command back to back, the client doing next to nothing
    between them; in a replay the client's Python work runs between the server's turns on the
    same CPU and evicts the server's caches, and the same commands cost the server about
    twice as much. Measured back to back on this VM with a walk over 6 MB of Python objects
    between the commands: MGET of 16 keys 7.7 -> 13.4 us, MSET of 16 12.5 -> 20.4 us, GET
    1.1 -> 2.2 us, little change at 256 keys and more. The factor is a server counter over the
    replay, as the client's costs are the client's own measured CPU: no latency goes into it."""
    exp = dict.fromkeys(("get", "mget", "mset"), 0.0)
    for unit in ops:
        for op in unit:
            if op.kind in STAT_OF:
                exp[STAT_OF[op.kind]] += op.server_s
    return _ratios(server_s, exp)


def _ratios(got: dict[str, float], expected: dict[str, float]) -> dict[str, float]:
    """Per command, measured over expected; 1 where either is 0 (nothing to scale)."""
    return {k: (got.get(k, 0.0) / e if e > 0 and got.get(k, 0.0) > 0 else 1.0) for k, e in expected.items()}


def probe_factors(real: ReplayResult, base: dict[str, Any]) -> dict[str, float]:
    """:func:`burst_factors` of a replay's probes: the server's own time for them
    (``real.probe_server_s``) over the calibration's lines for the same commands (each at
    :func:`_command_s`; a warm MSET probe's untimed MGET of its absent keys at the MGET line).
    The probes' round trips less their commands' time are the network and the event loop."""
    kinds = np.array(real.probe_kind)
    if len(kinds) == 0:
        return dict.fromkeys(("get", "mget", "mset"), 1.0)
    keys = np.array(real.probe_keys, dtype=float)
    cold = np.array(real.probe_cold, dtype=bool)
    t = _command_s(base, kinds, keys, cold)
    exp = {stat: float(t[kinds == k].sum()) for k, stat in STAT_OF.items()}
    before = (kinds == "insert") & ~cold  # the untimed MGET a warm MSET probe sends first
    exp["mget"] += float(_command_s(base, np.full(int(before.sum()), "range"), keys[before]).sum())
    return _ratios(real.probe_server_s, exp)


def scaled_server(server: dict[str, Any], f: dict[str, float]) -> dict[str, Any]:
    """The server's calibration with each command's line times its factor (:func:`burst_factors`)."""
    out = dict(server)
    for name, stat in (("get_s", "get"), ("mget_base_s", "mget"), ("mget_per_key_s", "mget"), ("mset_base_s", "mset"),
                       ("mset_per_key_s", "mset"), ("mset_warm_base_s", "mset"), ("mset_warm_per_key_s", "mset")):
        if name in out:
            out[name] = out[name] * f.get(stat, 1.0)
    for name, stat in (("mget_knots", "mget"), ("mset_knots", "mset"), ("mset_warm_knots", "mset")):
        if name in out:
            out[name] = [(n, t * f.get(stat, 1.0)) for n, t in out[name]]
    return out


@contextmanager
def connect(host: str, port: int, db: int) -> Iterator[RespClient]:
    """A client of the server on database ``db`` (selected when not 0), closed after."""
    with RespClient(host, port) as c:
        if db:
            c.call("SELECT", db)
        yield c


def server_pid(c: RespClient) -> int | None:
    """The pid of the server at the other end of ``c``, where it runs on this machine
    (:func:`local_redis_pid`); else None."""
    info = c.call("INFO", "server")
    return local_redis_pid(info.decode(errors="replace") if isinstance(info, bytes) else "")


def idle_cpu_rate(c: RespClient, seconds: float = 2.0) -> float:
    """The server main thread's CPU per second with nothing to serve (``serverCron``)."""
    a = server_cpu(c)
    time.sleep(seconds)
    b = server_cpu(c)
    return max((b - a) / seconds, 0.0) if a is not None and b is not None else 0.0


class IdleBurst(NamedTuple):
    """One burst of :func:`idle_connection_cost`'s plan: at ``at_s`` (from its start), one GET
    on each connection of set ``conns``; ``gap_s``: the gap measured (its set idled that
    long), None for the burst that starts that gap (not counted)."""

    at_s: float
    conns: int
    gap_s: float | None


def idle_burst_plan(gaps_s: Sequence[float], samples: int, seconds: float, offset: float = 0.0
                    ) -> tuple[list[IdleBurst], int]:
    """The bursts that measure ``samples`` commands after each idle gap of ``gaps_s``, and
    how many sets of connections they use. Each sample is two bursts on one set, ``gap``
    apart; every gap's samples are spread evenly over ``seconds`` (staggered, on as many
    sets as a long gap needs, in turn: :func:`idle_sets`), so that a drift of the machine
    lands on every gap alike and a 3 s gap gets as many samples as a 30 ms one in the same
    time (bursts 3 s apart on one set of connections gave 4 in 12 s; their median moved by
    several us between runs). ``offset`` (a fraction of the gaps' spacing): where a second
    plan over the same time places its bursts, between this one's."""
    gaps = sorted(set(gaps_s))
    step = seconds / samples
    plan: list[IdleBurst] = []
    sets = 0
    for i, g in enumerate(gaps):
        m = idle_sets(g, samples, seconds)
        for k in range(samples):
            t = g + (k + (i + offset) / len(gaps)) * step  # the gaps' bursts interleaved, not coinciding
            plan.append(IdleBurst(t - g, sets + k % m, None))
            plan.append(IdleBurst(t, sets + k % m, g))
        sets += m
    plan.sort(key=lambda b: b.at_s)
    return plan, sets


def shift_estimate(x: Sequence[float], base: Sequence[float]) -> float:
    """How far the values ``x`` lie above ``base``: the Hodges-Lehmann estimate of a shift
    (the median of every difference of a value of ``x`` and one of ``base``), which a few
    bursts that an interrupt or a timer lengthened move less than a difference of medians."""
    return float(np.median(np.subtract.outer(np.asarray(x, dtype=float), np.asarray(base, dtype=float))))


class IdleCosts(NamedTuple):
    """What :func:`idle_connection_cost` measured, each two ways (by ``"cpu"``, the server
    thread's CPU per burst, and ``"latency"``, its last send to first reply)."""

    knots: dict[str, list[tuple[float, float]]]  # bursts on every connection: RedisIndex idle_knots
    lone: dict[str, list[tuple[float, float]]]  # one GET alone: RedisIndex lone_idle_knots
    # what a cold burst's turn costs per command beyond its first (bursts on every connection
    # against lone GETs, both at the shortest gap): RedisIndex cold_per_command_s plus the
    # model's warm per-command charges (:func:`cold_per_command`)
    further: dict[str, float]

    def mean(self, other: IdleCosts) -> IdleCosts:
        """Two measurements (the same gaps) averaged: knots point by point, either alone
        where the other lacks it."""
        ways = self.knots.keys() | other.knots.keys()
        return IdleCosts({by: mean_knots(self.knots.get(by, []), other.knots.get(by, [])) for by in ways},
                         {by: mean_knots(self.lone.get(by, []), other.lone.get(by, [])) for by in ways},
                         {by: float(np.mean([x for x in (self.further.get(by), other.further.get(by)) if x is not None]))
                          for by in self.further.keys() | other.further.keys()})


NO_IDLE_COSTS = IdleCosts({}, {}, {})


def filler_key(rng: np.random.Generator, filler: int) -> bytes:
    """One of the ``filler`` keys loaded before the replays (:func:`load_filler`), at random."""
    return key(FILLER + int(rng.integers(0, max(filler, 1))))


def idle_connection_cost(host: str, port: int, db: int, connections: int, gaps_s: Sequence[float], filler: int,
                         rng: np.random.Generator, samples: int, seconds: float,
                         probe_every_s: float = 0.01, probe_gap_s: float = 0.005) -> IdleCosts:
    """What a command on a connection idle for each of ``gaps_s`` costs the server beyond one
    on a connection idle for the shortest: ``[(gap, seconds per command)]`` for
    ``RedisIndex(idle_knots=...)``, measured two ways; the same for one command alone
    (``lone_idle_knots``); and a cold turn's cost per command beyond its first. Empty where
    the server's thread cannot be read here.

    Bursts of one GET (a filler key) on each of ``connections`` connections, ``samples``
    after each gap (:func:`idle_burst_plan`, over about ``seconds``), and between them as
    many of one GET on one connection (a second plan over the same time), while a GET on another
    connection every ``probe_every_s`` keeps the server and the CPU as busy as the replay's
    probes do (so the gap idles the connections, not the machine); the server thread's CPU
    over each burst (``/proc``: on one CPU it runs the burst's turns while the client waits
    for the replies), and the time from the burst's last send to its first reply (the
    server's turn and the path around it: on one CPU a turn's replies arrive together at its
    end); per gap its shift above the shortest gap's bursts (:func:`idle_knots`), per
    connection. Why: a burst's first commands arrive on
    connections idle since the last burst (30 ms at x100, 3 s at x1 on the conversation
    trace), and on this set-up the server spent 32, 49 and 55 us on a burst of 4 GETs after
    30 ms, 0.3 s and 3 s (docs/redis_validation.md, seventh pass). Why the lone GETs: a
    command alone in its turn need not pay a burst's share of its connection's idleness (here
    it paid as much or more), and a cold burst's further commands cost the server 10-15 us
    where the model charged a warm turn's (docs/redis_validation.md, seventeenth pass)."""
    gaps = sorted(set(gaps_s))
    if len(gaps) < 2:
        return NO_IDLE_COSTS
    wide, sets = idle_burst_plan(gaps, samples, seconds)
    lone, lone_sets = idle_burst_plan(gaps, samples, seconds, offset=0.5) if connections > 1 else ([], 0)
    with ExitStack() as stack:
        probe = stack.enter_context(connect(host, port, db))
        pid = server_pid(probe)
        if pid is None:
            return NO_IDLE_COSTS
        conns = {(w, k): [stack.enter_context(connect(host, port, db)) for _ in range(w)]
                 for w, n in ((connections, sets), (1, lone_sets)) for k in range(n)}

        def get() -> bytes:
            return encode("GET", filler_key(rng, filler))

        got: dict[tuple[str, int], dict[float, list[float]]] = {(by, w): {g: [] for g in gaps}
                                                                for by in ("cpu", "latency") for w in (connections, 1)}
        bursts = sorted([(b, connections) for b in wide] + [(b, 1) for b in lone], key=lambda bw: bw[0].at_s)

        def ping() -> None:
            probe.send(get())
            probe.read()

        t0 = time.perf_counter() + probe_every_s
        for burst, w in bursts:
            busy_until(t0 + burst.at_s, ping, probe_every_s, probe_gap_s)
            cs = conns[w, burst.conns]
            first, server = time_burst(cs, [get() for _ in cs], pid)
            if server is None:
                return NO_IDLE_COSTS
            if burst.gap_s is not None:
                got["cpu", w][burst.gap_s].append(server)
                got["latency", w][burst.gap_s].append(first)
    ways = ("cpu", "latency")
    knots = {by: idle_knots(got[by, connections], connections) for by in ways}
    if not lone:
        return IdleCosts(knots, knots, {})
    return IdleCosts(knots, {by: idle_knots(got[by, 1], 1) for by in ways},
                     {by: shift_estimate(got[by, connections][gaps[0]], got[by, 1][gaps[0]]) / (connections - 1)
                      for by in ways})


def cold_per_command(further_s: float | None, params: dict[str, Any]) -> float | None:
    """``RedisIndex(cold_per_command_s=...)``: what a cold turn's further command cost as
    measured (:attr:`IdleCosts.further`: a GET of a filler key) beyond what the model charges
    a warm turn's further GET at ``params`` (its event loop less the turn's own part, and its
    command at the keys held); None where not measured."""
    if further_s is None:
        return None
    ix = RedisIndex(**{**model_params(params), "connections": 1})
    op = ix.plan_get(0)
    return further_s - (ix.io(op) - ix.turn_s + op.server_s)  # (the command at the keys held: its calibrated time)


def busy_until(end: float, ping: Callable[[], object], every_s: float = 0.01, gap_s: float = 0.005,
               clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], object] = time.sleep) -> None:
    """Until ``end`` (on ``clock``): ``ping()`` (a probe's round trip) every ``every_s`` while
    more than ``gap_s`` is left, then awake to ``end`` (as the replay's client before an
    arrival), so that a gap idles the measured connections, not the CPU or the server."""
    while (left := end - clock()) > gap_s:
        ping()
        sleep(min(every_s, max(left - gap_s, 0.0)))
    while clock() < end:
        pass


def time_burst(conns: Sequence[RespClient], payloads: Sequence[bytes], pid: int | None) -> tuple[float, float | None]:
    """Send ``payloads[i]`` on ``conns[i]``, all before any reply is read, then read the
    replies in connection order: (seconds from the last send to the first reply, the server
    thread's CPU over the burst; None where it cannot be read). On one CPU a server turn's
    replies arrive together at its end, so the first reply times the whole turn."""
    c0 = server_thread_cpu(pid) if pid is not None else None
    for c, payload in zip(conns, payloads, strict=True):
        c.send(payload)
    t_sent = time.perf_counter()
    first = 0.0
    for c in conns:
        c.read()
        first = first or time.perf_counter()
    c1 = server_thread_cpu(pid) if pid is not None else None
    return first - t_sent, (c1 - c0 if c0 is not None and c1 is not None else None)


def idle_knots(samples: dict[float, list[float]], connections: int) -> list[tuple[float, float]]:
    """Per idle gap (the shortest first), its bursts' shift above the shortest gap's
    (:func:`shift_estimate`), per connection: ``RedisIndex(idle_knots=...)``."""
    gaps = sorted(samples)
    base = samples[gaps[0]]
    return [(g, max(shift_estimate(samples[g], base) / connections, 0.0)) for g in gaps]


def mean_knots(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Two measurements of :func:`idle_connection_cost` at the same gaps, averaged point by
    point (the same gaps, in the same order); either alone where the other is empty."""
    if not a or not b:
        return list(a or b)
    return [(g, (x + y) / 2) for (g, x), (_, y) in zip(a, b, strict=True)]


def _knots_json(knots: Sequence[tuple[float, float]]) -> list[list[float]]:
    return [list(x) for x in knots]


def _us(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 1e6:.2f} us"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def stream_loop_cpu(real: ReplayResult, cron_s: float, reading_s: float) -> float:
    """The server thread's CPU over the stream's stretches (:attr:`ReplayResult.stream_cpu_s`)
    less the commands' own time, the idle rate's share (``cron_s`` per second) and the INFO
    reading that ends each stretch (a lone turn of ``reading_s`` beyond its command): what
    the stream's turns cost the event loop and the kernel in the server's thread."""
    return (real.stream_cpu_s - real.stream_usec_s - cron_s * real.stream_window_s
            - real.stream_windows * reading_s)


def loop_per_command(real: ReplayResult, cron_s: float, io_s: float) -> float | None:
    """The server's event-loop CPU per command inside a replay's stream: the main thread's
    CPU over the stretches that held the stream's commands and no probe
    (:attr:`ReplayResult.stream_cpu_s`) less the commands' own time, the idle rate's share
    (``cron_s`` per second) and the INFO reading that ends each stretch (a turn of its own,
    ``io_s``), per command; None when not measured (no ``INFO cpu``, no stretch).

    A diagnostic, recorded beside the model's charge (:meth:`RedisIndex.loop_charges`), not a
    model input: part of what it counts the model books in the round trip and the size
    excess, both fitted from the probes (docs/redis_validation.md, fourth pass)."""
    cmds = real.stream_calls - real.stream_windows
    if cmds <= 0 or real.stream_cpu_s <= 0:
        return None
    return stream_loop_cpu(real, cron_s, io_s) / cmds


def turns_per_command(real: ReplayResult) -> float | None:
    """The server's event-loop turns per command inside a replay's stream: its main thread's
    context switches over the stream's stretches (one per turn: a turn ends by blocking in
    ``epoll_wait``) per command of the stream; None when not measured (a server elsewhere).
    Compared with the model's turns (:meth:`RedisIndex.loop_charges`): a check of the model's
    alternation of the two loops on one CPU, which decides how many commands share a turn."""
    cmds = real.stream_calls - real.stream_windows
    return real.stream_switches / cmds if real.stream_switches is not None and cmds > 0 else None


def cpu_per_turn(real: ReplayResult, cron_s: float, io_s: float) -> tuple[float | None, float | None]:
    """The server thread's CPU per event-loop turn beyond its commands' own time (the idle
    rate's share and each reading's own INFO turn, ``io_s``, left out): over the stream's
    stretches, and over the probe pairs' (a turn outside a burst, the first of each pair
    after a sleep); None where not measured. A diagnostic (docs/redis_validation.md, fifth
    pass)."""
    stream = pair = None
    if real.stream_switches and real.stream_cpu_s > 0:
        stream = stream_loop_cpu(real, cron_s, io_s) / real.stream_switches
    if real.pair_switches and real.pair_cpu_s > 0:
        net = real.pair_cpu_s - sum(real.probe_server_s.values()) - cron_s * real.pair_window_s - real.probe_pairs * io_s
        pair = net / real.pair_switches
    return stream, pair


def probe_turn_cpu(real: ReplayResult) -> dict[str, float | None]:
    """Median server CPU of a lone GET probe's turn (its command included), the first of a
    pair (after a sleep: cold) and the second (right after it), from the server thread's
    ``/proc`` counters; None where not measured. A diagnostic (docs/redis_validation.md,
    fifth pass): beside :func:`cpu_per_turn`'s stream figure, what a turn costs alone."""
    kinds = np.array(real.probe_kind)
    cpu = np.array(real.probe_server_cpu_s, dtype=float)
    cold = np.array(real.probe_cold, dtype=bool)
    out: dict[str, float | None] = {}
    for name, mask in (("cold_get_s", cold), ("warm_get_s", ~cold)):
        x = cpu[(kinds == "get") & mask] if len(cpu) == len(kinds) else np.zeros(0)
        x = x[np.isfinite(x)]
        out[name] = float(np.median(x)) if len(x) else None
    return out


def burst_turn_extra(real: ReplayResult, charges: Sequence[LoopCharges], base: dict[str, Any],
                     slopes: tuple[float, float], cron_s: float) -> float | None:
    """What a warm server turn inside the replay's bursts costs beyond the model's charge for
    it, from the server's own CPU (``RedisIndex(turn_extra_s=...)``); None where not measured.

    The server's CPU over the stream's stretches less its commands' own time, the idle
    rate's share and each stretch's closing reading (a lone warm turn), against what the
    model charges the server for the same stream (``charges``: its simulated runs' event-loop
    charges and turns, :meth:`RedisIndex.loop_charges`): the event loop, plus per turn the
    server's share of the round trip, which the probes' own turns measure (the server
    thread's CPU from ``/proc`` over each probe of at most ``NET_MAX_KEYS`` keys, less its
    command at the probes' measured time, ``base``, and its event loop, ``io_s`` and
    ``slopes``, as :func:`fit_client` takes them from its round trip; the median of the warm
    probes, and of the cold ones for the first turn after the CPU idled). The difference
    per warm turn is what a turn inside a burst costs beyond a lone warm one: the server's
    counters, not the latencies, decide it (docs/redis_validation.md, sixth pass)."""
    kinds = np.array(real.probe_kind)
    cpu = np.array(real.probe_server_cpu_s, dtype=float)
    if not charges or len(cpu) != len(kinds) or len(cpu) == 0 or real.stream_cpu_s <= 0:
        return None
    keys = np.array(real.probe_keys, dtype=float)
    cold = np.array(real.probe_cold, dtype=bool)
    io_s = float(base.get("io_s", 0.0))
    share = cpu - _command_s(base, kinds, keys, cold) - _probe_io(io_s, slopes, kinds, keys)
    small = np.isfinite(share) & (keys <= NET_MAX_KEYS)
    if (small & cold).sum() < MIN_NET_PROBES or (small & ~cold).sum() < MIN_NET_PROBES:
        return None
    share_warm, share_cold = float(np.median(share[small & ~cold])), float(np.median(share[small & cold]))
    real_s = stream_loop_cpu(real, cron_s, io_s + share_warm)
    extra = [(real_s - ch.loop_s - (ch.turns - ch.cold_turns) * share_warm - ch.cold_turns * share_cold)
             / (ch.turns - ch.cold_turns) for ch in charges if ch.turns > ch.cold_turns]
    return float(np.mean(extra)) if extra else None


PLACES = ((0, 0), (1, 1), (2, 2), (3, 5), (6, 10), (11, 1 << 30))  # a wait's place in its burst, binned


def turn_profile(real: ReplayResult) -> list[dict[str, Any]]:
    """The server thread's CPU over the client's waits for replies (``turn_cpu``), by the
    wait's place in its busy period, binned (``PLACES``): per bin the waits, the median CPU
    and the median replies a wait brought. A diagnostic of how a burst's turns cost the
    server along the burst (docs/redis_validation.md, sixth pass); empty if not measured."""
    if not real.turn_server_cpu:
        return []
    place, cpu, replies = (np.array(x) for x in zip(*real.turn_server_cpu, strict=True))
    out = []
    for lo, hi in PLACES:
        m = (place >= lo) & (place <= hi)
        if m.any():
            out.append({"from": lo, "to": hi, "waits": int(m.sum()), "cpu_p50_s": float(np.median(cpu[m])),
                        "replies_p50": float(np.median(replies[m]))})
    return out


def command_usec(c: RespClient) -> dict[str, float]:
    """``INFO commandstats``: seconds spent in each command so far."""
    return {k: v[1] * 1e-6 for k, v in commandstats(c).items()}


# --- the experiment ---------------------------------------------------------------------
def _probe(kind: str, m: int, start: int) -> Probe:
    """A command of the stream's shape on keys that do not disturb it, all from ``start``:
    GET / MGET of filler keys (keys not read lately, as the calibration's: they miss the
    caches as a lookup's keys do), MSET of probe keys new to the server, deleted right after
    it, untimed (the server's key count stays put). An MSET inside a pair (the second) first
    reads its keys, untimed, as a trace insert's lookup has (the calibration's warm line);
    the first of a pair does not (the MSET line)."""
    if kind == "get":
        return Probe(kind, m, encode("GET", key(FILLER + start)))
    if kind == "range":
        return Probe(kind, m, encode("MGET", *[key(FILLER + start + i) for i in range(m)]))
    ids = [PROBE + start + i for i in range(m)]
    return Probe(kind, m, encode("MSET", *[x for i in ids for x in (key(i), value(i))]), encode("DEL", *[key(i) for i in ids]),
                 before=encode("MGET", *[key(i) for i in ids]))


def _probes(stream: Stream, rng: np.random.Generator, filler: int, n: int = 4096) -> list[Probe]:
    """``n`` probes of shapes drawn from the stream's commands, reading random filler keys."""
    shapes = [(k, m) for u in stream.units for k, m in zip(u.kinds, u.keys, strict=True)]
    pick = rng.integers(0, len(shapes), size=n)
    out = []
    for j in pick.tolist():
        kind, m = shapes[j]
        out.append(_probe(kind, m, int(rng.integers(0, max(filler - m, 0) + 1))))
    return out


def _percentiles(x: np.ndarray) -> tuple[float, float]:
    return float(np.quantile(x, 0.5)), float(np.quantile(x, 0.99))


def compare(real: pd.DataFrame, sim: pd.DataFrame, speedup: float) -> list[dict[str, Any]]:
    rows = []
    for op in OP_ORDER:
        r = real.loc[real["op"] == op, "latency_s"].to_numpy()
        s = sim.loc[sim["op"] == op, "latency_s"].to_numpy()
        if len(r) == 0:
            continue
        r50, r99 = _percentiles(r)
        s50, s99 = _percentiles(s)
        rows.append({"op": op, "speedup": speedup, "count": len(r), "real_p50_s": r50, "sim_p50_s": s50,
                     "real_p99_s": r99, "sim_p99_s": s99, "err_p50": s50 / r50 - 1.0, "err_p99": s99 / r99 - 1.0})
    return rows


def paired_lateness(real: pd.DataFrame, sim: pd.DataFrame, groups: Sequence[str] | None = None) -> dict[str, float]:
    """Per op kind, the median over its commands of (the command's mean simulated latency
    over the runs - its measured one), paired by ``cmd``: how late the model is command by
    command, which a cell's p50 error can overstate where the latencies have a gap near
    their median (docs/redis_validation.md, sixth pass). Seconds; kinds absent: left out.
    ``groups``: a label per row of ``real`` to group by instead of the kind (in the order
    the labels first appear)."""
    mean = sim.groupby("cmd")["latency_s"].mean()
    r = real.set_index("cmd")
    d = mean.reindex(r.index) - r["latency_s"]
    labels = r["op"].to_numpy() if groups is None else np.asarray(groups)
    present = dict.fromkeys(labels.tolist())
    order = [op for op in OP_ORDER if op in present] if groups is None else present
    return {str(g): float(d[labels == g].median()) for g in order}


MEDIAN_WINDOW = 0.1  # median_gap looks between the quantiles 0.5 -+ this: a gap there when
MEDIAN_SPREAD = 0.5  # ... they are at least this fraction of the median apart (few values between)
MEDIAN_GAP = 0.08  # ... and two consecutive values in it at least this fraction (the gap's place)


class MedianGap(NamedTuple):
    """A gap in a cell's latencies at their median (:func:`median_gap`)."""

    split_s: float  # the gap's middle
    real_below: float  # the fraction of the measured commands under it
    sim_below: float  # ... of the simulated ones

    def p50_quantiles(self) -> tuple[float, float] | None:
        """The quantile of the lower mode that each p50 is (measured, simulated), when both
        p50s are in the lower mode; None otherwise."""
        if min(self.real_below, self.sim_below) < 0.5:
            return None
        return 0.5 / self.real_below, 0.5 / self.sim_below


def median_gap(real: np.ndarray, sim: np.ndarray) -> MedianGap | None:
    """Where a cell's measured latencies have a gap at their median (two modes, the median
    between them), what its p50 then compares. A gap: the 40th and 60th percentiles of the
    measured values half the median apart or more, and two consecutive values between them
    8% of it apart or more; the widest such step splits both distributions (None without
    such a gap).

    Why: on the conversation trace the gets' p50 sits between a mode of lookups answered
    in one server turn and one of those that waited for more; the two fractions below the
    gap agree to within half a percent while the p50s differ by up to 13%, because each p50
    is the lower mode's p93-p98, a tail of it (docs/redis_validation.md, ninth pass)."""
    r = np.sort(np.asarray(real, dtype=float))
    s = np.asarray(sim, dtype=float)
    if len(r) < 10 or len(s) == 0:
        return None
    lo, hi = (int(np.floor(q * (len(r) - 1))) for q in (0.5 - MEDIAN_WINDOW, 0.5 + MEDIAN_WINDOW))
    steps = np.diff(r[lo : hi + 1])
    if len(steps) == 0:
        return None
    k = int(np.argmax(steps))
    median = float(np.median(r))
    if median <= 0 or r[hi] - r[lo] < MEDIAN_SPREAD * median or steps[k] < MEDIAN_GAP * median:
        return None
    split = float((r[lo + k] + r[lo + k + 1]) / 2)
    return MedianGap(split, float(np.mean(r < split)), float(np.mean(s < split)))


class Calibrated(NamedTuple):
    """The server as measured before the replays (:func:`calibrate_server`)."""

    cal: Any  # kvsim.calibrate.redis_bench's measurement (its summary goes to the fit json)
    held: Any  # the server's key count after the filler (DBSIZE)
    base: dict[str, Any]  # every measured redis.* value, with the once-per-turn event loop and the warm MSET line
    server: dict[str, Any]  # of those, the model's server settings (times, knots, service tails)
    sim_stream: Stream  # the stream planned again by a model with these command times


class Replayed(NamedTuple):
    """One speed-up's replay (:func:`replay_speedups`)."""

    real: ReplayResult
    factors: dict[str, float]  # the stream's commands' server time over the calibration's, by command
    sched: str  # how the client and the server were scheduled (:func:`priority`)
    beside: MachineShare | None = None  # what the rest of the machine took meanwhile (None: not read)


class SpeedupResult(NamedTuple):
    """One speed-up's replay set beside its simulations (:func:`fit_speedup`)."""

    cells: list[dict[str, Any]]  # redis_validation.csv's rows of this speed-up
    real: pd.DataFrame  # one row per command (op, keys, latency_s, cmd, run)
    sim: pd.DataFrame  # the same for every simulated run
    fit: dict[str, Any]  # the fit json's client_by_speedup entry


def calibrate_server(host: str, port: int, db: int, s: RedisValidationSettings, preload: int, seed: int,
                     trace: Trace, planner: RedisIndex, stream: Stream) -> Calibrated:
    """Measure the server (as many keys as the filler, before it is loaded: its GETs and
    MGETs read keys not read lately, which miss the caches as a lookup's keys do), load the
    filler and let the key space settle, and plan the stream again with the measured times."""
    log.info("redis_validation: calibrating the server at %s:%d with %d keys", host, port, preload)
    with priority(s.nice, s.pinned_cpu(), s.rt_priority):
        keys_ = max(preload, 2000)
        cal = measure_redis(host, port, requests=s.calibrate_requests, keys=keys_, db=db, seed=seed,
                            large_sizes=[n for n in s.large_sizes if n <= keys_])
    with connect(host, port, db) as c:
        load_filler(c, preload)
        held = c.call("DBSIZE")
        settle_keyspace(c, int(held) if isinstance(held, int) else preload)  # replays start after the rehash
    base: dict[str, Any] = {m.key.split(".", 1)[1]: m.value for m in cal.measured() if m.key.startswith("redis.")}
    base["turn_s"] = cal.turn_s  # the event loop's part paid once per turn (not a calibration-file key)
    warm = cal.mset_warm()  # an MSET of keys its lookup has just read (not a calibration-file key)
    if warm is not None:
        base["mset_warm_base_s"], base["mset_warm_per_key_s"] = warm
    for cmd, name in (("mget", "mget_knots"), ("mset", "mset_knots"), ("msetwarm", "mset_warm_knots")):
        base[name] = cal.knots(cmd)  # MGET's and MSET's time at more key counts (large_sizes)
    server = {k: v for k, v in base.items() if k.endswith(("_s", "_knots")) or k.startswith("service_")}
    log.info("redis_validation: server thread per command: event loop %.2f us (%.2f us of it once per turn) "
             "+ %.3f us/key, + the command (GET %.2f us)", server.get("io_s", 0.0) * 1e6, cal.turn_s * 1e6,
             server.get("io_per_key_s", 0.0) * 1e6, server["get_s"] * 1e6)
    # the simulated commands' server times are this server's: the stream planned again by a
    # model with the calibration just measured (the same commands, keys and order)
    sim_stream = plan_stream(trace, RedisIndex(tcp_rtt_s=0.0, lookup=planner.lookup, **server), len(stream.arrival_s))
    if [u.payloads for u in sim_stream.units] != [u.payloads for u in stream.units]:
        raise AssertionError("redis_validation: the calibrated model planned other commands")
    return Calibrated(cal, held, base, server, sim_stream)


def replay_name(speedup: float, replay: int, replays: int) -> str:
    """A replay's name in the log: ``x10``, or ``x10 #2`` where a speed-up has several."""
    return f"x{speedup:g}" + (f" #{replay + 1}" if replays > 1 else "")


def key_spaces(s: RedisValidationSettings) -> range:
    """The key spaces of a run's replays (:func:`replay_speedups`): one per replay."""
    return range(1, len(s.speedups) * s.replays + 1)


def replay_speedups(host: str, port: int, db: int, s: RedisValidationSettings, stream: Stream, sim_stream: Stream,
                    counts: dict[float, int], probes: list[Probe]) -> dict[float, list[Replayed]]:
    """Each speed-up's replays of its prefix of the stream (``s.replays`` rounds, every
    speed-up once per round, so that a slow spell of the machine falls on all of them), and
    the stream's commands' own time on the server inside each as a factor of the
    calibration's back-to-back lines (the client's work between the server's turns evicts
    its caches)."""
    replays: dict[float, list[Replayed]] = {sp: [] for sp in s.speedups}
    spaces = iter(key_spaces(s))
    with connect(host, port, db) as c:
        pid = server_pid(c)
    for rnd, speedup in ((r, sp) for r in range(s.replays) for sp in s.speedups):
        space = next(spaces)
        what = replay_name(speedup, rnd, s.replays)
        # each replay in a key space of its own: its keys are new to the server, as the
        # trace's new blocks are; deleted after it (the key count stays put)
        with connect(host, port, db) as c:
            usec0 = command_usec(c)
        part = stream.head(counts[speedup])
        with priority(s.nice, s.pinned_cpu(), s.rt_priority) as sched:
            mark = cpu_mark(pid)
            real = replay_open_loop(host, port, part.units_in(space), part.arrival_s.tolist(),
                                    speedup, s.connections, probes, s.probe_gap_s, s.probe_every_s,
                                    count_probes=s.burst_costs, turn_cpu=s.turn_profile)
            beside = machine_share(mark, cpu_mark(pid))
        with connect(host, port, db) as c:
            probe_s = real.probe_server_s
            usec = {k: v - usec0.get(k, 0.0) - probe_s.get(k, 0.0) for k, v in command_usec(c).items()}
            delete_keys(c, part.keys_in(space))
        factors = (burst_factors(sim_stream.head(counts[speedup]).ops, usec) if s.burst_costs
                   else dict.fromkeys(("get", "mget", "mset"), 1.0))
        log.info("redis_validation: %s: the commands' server time over the calibration's: %s", what,
                 ", ".join(f"{k} {v:.2f}x" for k, v in factors.items()))
        if beside is not None:
            log.info("redis_validation: %s: beside the replay the rest of the machine took %.1f%% of its CPU "
                     "(other processes and interrupts; the hypervisor %.1f%% more)", what, 100 * beside.others,
                     100 * beside.steal)
        replays[speedup].append(Replayed(real, factors, sched, beside))
    return replays


CAPTURE_FILE = "redis_validation_replays.pkl"  # experiment.capture: the Captures of a run


class Capture(NamedTuple):
    """One speed-up's replay and everything :func:`fit_speedup` took with it
    (``experiment.capture``): simulated again by :func:`refit` with other parameters, no
    server needed (``python -m kvsim.bench.redis_refit``)."""

    trace: Trace
    lookup: str  # the planner's lookup rule
    settings: RedisValidationSettings
    speedup: float
    requests: int  # replayed
    rep: Replayed
    base: dict[str, Any]
    server: dict[str, Any]
    pfactors: dict[str, float]
    slopes: tuple[float, float]
    cron_s: float
    idle: IdleCosts | list[tuple[float, float]]  # (a list: captured before the lone GETs were measured)
    replay: int = 0  # which of the speed-up's replays (experiment.replays)


def refit(c: Capture, overrides: dict[str, Any] | None = None) -> SpeedupResult:
    """A captured replay simulated and compared again; ``overrides``: the model's
    parameters (``RedisIndex`` keyword arguments) set over the fitted ones. Without them,
    the run's own result (the simulations are seeded)."""
    return fit_speedup(c.trace, c.lookup, c.settings, c.speedup, c.requests, c.rep, c.base, c.server, c.pfactors,
                       c.slopes, c.cron_s, c.idle, overrides, c.replay)


def refit_all(captures: Sequence[Capture], overrides: dict[str, Any] | None = None) -> dict[float, SpeedupResult]:
    """Every captured replay simulated again (:func:`refit`), each speed-up's replays pooled
    (:func:`pool`), in the run's order of speed-ups."""
    parts: dict[float, list[SpeedupResult]] = {}
    for c in sorted(captures, key=lambda c: c.replay):
        parts.setdefault(c.speedup, []).append(refit(c, overrides))
    return {sp: pool(sp, ps) for sp, ps in parts.items()}


def pool(speedup: float, parts: Sequence[SpeedupResult]) -> SpeedupResult:
    """A speed-up's replays as one sample (``replay`` numbers their rows): its cells compare
    the latencies of every replay with those of every simulated run of every replay. One
    replay's p50 is not a stable figure where a kind's latencies have two modes and about
    half of them lie in each: identical replays of the conversation trace's stream put the
    gets' p50 at 223 and 418 us at x10 (docs/redis_validation.md, eleventh pass). The fit is
    the first replay's; ``fit["replays"]`` holds every replay's cells and scalar fit values."""
    real = pd.concat([p.real.assign(replay=k) for k, p in enumerate(parts)], ignore_index=True)
    sim = pd.concat([p.sim.assign(replay=k) for k, p in enumerate(parts)], ignore_index=True)
    cells = compare(real, sim, speedup)
    fit = {**parts[0].fit, "replays": [{"cells": p.cells, **{k: v for k, v in p.fit.items() if isinstance(v, (int, float))}}
                                       for p in parts]}
    if len(parts) > 1:
        for g in cells:
            per = [c for p in parts for c in p.cells if c["op"] == g["op"]]
            log.info("redis_validation: x%-4g %-6s %d replays pooled: p50 %+.1f%% (replays %s), p99 %+.1f%% (replays %s)",
                     speedup, g["op"], len(parts), 100 * g["err_p50"], " ".join(f"{100 * c['err_p50']:+.1f}" for c in per),
                     100 * g["err_p99"], " ".join(f"{100 * c['err_p99']:+.1f}" for c in per))
    return SpeedupResult(cells, real, sim, fit)


def fit_speedup(trace: Trace, lookup: str, s: RedisValidationSettings, speedup: float, count: int,
                rep: Replayed, base: dict[str, Any], server: dict[str, Any], pfactors: dict[str, float],
                slopes: tuple[float, float], cron_s: float, idle: IdleCosts | Sequence[tuple[float, float]] = (),
                overrides: dict[str, Any] | None = None, replay: int = 0) -> SpeedupResult:
    """One speed-up: the client and network fitted on its replay (``base``: the server at the
    probes' command factors ``pfactors``), the model simulated ``s.sim_runs`` times with the
    server at the stream's factors and, where measured, a burst's warm turns at their cost on
    the server's counters, and ``idle`` (:func:`idle_connection_cost`, by ``s.idle_by``: idle_knots,
    lone_idle_knots and cold_per_command_s; knots alone from a capture made before those);
    compared cell by cell and command by command, and logged. ``lookup``: the planner's
    lookup rule; ``overrides``: model parameters set over the fitted ones (:func:`refit`);
    ``replay``: which of the speed-up's replays (for the log)."""
    real, factors = rep.real, rep.factors
    x = replay_name(speedup, replay, s.replays)
    fit, dists = fit_client(real, base, slopes)
    server_sp = scaled_server(server, factors)
    fixed = overrides or {}
    params = {**server_sp, **fit, "shared_cpu": s.pinned_cpu() is not None}
    if not s.client_work:
        params["work_knots"] = []
    if isinstance(idle, IdleCosts):
        by = s.idle_by
        params |= {"idle_knots": idle.knots.get(by, []), "lone_idle_knots": (idle.lone.get(by) or None) if s.lone_idle else None}
        cold = cold_per_command(idle.further.get(by), params)
        if cold is not None:
            params["cold_per_command_s"] = cold
    else:
        params["idle_knots"] = list(idle)
    params |= fixed
    # the stream planned again with this replay's command times (same commands)
    stream_sp = plan_stream(trace, RedisIndex(tcp_rtt_s=0.0, lookup=lookup, **server_sp), count)
    costs = [client_costs(stream_sp, real, s.client, np.random.default_rng(k)) for k in range(s.sim_runs)]
    sims = [simulate(stream_sp, params, dists, speedup, s.connections, k, costs[k]) for k in range(s.sim_runs)]
    # a burst's warm turns at their cost on the server's counters: the model run without it
    # gives its charges for the same stream; with it, its turns shift a little (fuller
    # turns), so the cost is measured again against those
    real_df = pd.DataFrame({"op": real.kind, "keys": real.keys, "latency_s": real.latency_s,
                            "cmd": np.arange(len(real.kind)), "run": 0})
    plain: list[dict[str, Any]] | None = None  # the cells without it, for the log
    # (measured only when an override does not fix it: its simulations would be thrown away)
    for _ in range(2 if s.burst_turns and params["shared_cpu"] and "turn_extra_s" not in fixed else 0):
        extra = burst_turn_extra(real, [d.attrs["loop"] for d in sims if d.attrs["loop"]], base, slopes, cron_s)
        if extra is None:
            break
        if plain is None:
            plain = compare(real_df, pd.concat(sims, ignore_index=True), speedup)
        params = {**params, "turn_extra_s": extra}
        sims = [simulate(stream_sp, params, dists, speedup, s.connections, k, costs[k]) for k in range(s.sim_runs)]
    if plain is not None:
        log.info("redis_validation: %s: a warm turn in a burst costs the server %s beyond the model's lone turn "
                 "(the server's CPU counters); without it: %s", x, _us(params["turn_extra_s"]),
                 ", ".join(f"{g['op']} {100 * g['err_p50']:+.1f}% / {100 * g['err_p99']:+.1f}%" for g in plain))
    loop = _loop_figures(real, sims[0].attrs["loop"], float(server_sp.get("io_s", 0.0)), cron_s, x)
    sim = pd.concat(sims, ignore_index=True)
    cells = compare(real_df, sim, speedup)
    profile = turn_profile(real)
    if profile:
        log.info("redis_validation: %s: the server's CPU per client wait by its place in the burst: %s", x,
                 ", ".join(f"{b['from']}-{b['to'] if b['to'] < 1 << 30 else ''}: {_us(b['cpu_p50_s'])} "
                           f"({b['replies_p50']:g} replies, {b['waits']} waits)" for b in profile))
    gaps = {g["op"]: gap for g in cells
            if (gap := median_gap(real_df.loc[real_df["op"] == g["op"], "latency_s"].to_numpy(),
                                  sim.loc[sim["op"] == g["op"], "latency_s"].to_numpy())) is not None}
    for op, gap in gaps.items():
        qs = gap.p50_quantiles()
        log.info("redis_validation: %s: the %ss' p50 is in a gap of their latencies (at %s): below it %.1f%% of "
                 "the measured and %.1f%% of the simulated commands%s", x, op, _us(gap.split_s),
                 100 * gap.real_below, 100 * gap.sim_below,
                 f"; each p50 is its lower mode's p{100 * qs[0]:.1f} and p{100 * qs[1]:.1f}" if qs else "")
    paired = paired_lateness(real_df, sim)
    # the same by where a command's latency starts: a burst that starts late in the real
    # system shows in the lookups' first commands only (docs/redis_validation.md, seventh pass)
    by_start = paired_lateness(real_df, sim, np.where(stream_sp.from_arrival(), "arrival", "reply").tolist())
    log.info("redis_validation: %s: command by command, the model is late by (median): %s; timed from the "
             "request's arrival (a lookup's first command) %s, from the reply before %s", x,
             ", ".join(f"{op} {_us(v)}" for op, v in paired.items()), _us(by_start.get("arrival")),
             _us(by_start.get("reply")))
    entry = {**fit, "turn_extra_s": params.get("turn_extra_s"), "cold_per_command_s": params.get("cold_per_command_s"),
             "lone_idle_knots": params.get("lone_idle_knots"), "work_knots": params.get("work_knots"),
             "paired_late_s": paired,
             "median_gap": {op: gap._asdict() for op, gap in gaps.items()},
             "paired_late_by_start_s": by_start, "turn_profile": profile,
             "command_time_x": factors, "probe_command_time_x": pfactors, "event_loop_per_command": loop,
             "idle_cpu_per_s": cron_s, "probes": len(real.probe_rtt_s), "replay_wall_s": real.wall_s,
             "sched": rep.sched, "nice": s.nice,
             "machine_others_share": rep.beside.others if rep.beside else None,
             "machine_steal_share": rep.beside.steal if rep.beside else None,
             "admit_late_p50_s": float(np.median(real.admit_late_s)) if real.admit_late_s else 0.0}
    if "cold_wake_corr" in params:
        log.info("redis_validation: %s: a cold round trip with the client's wake-up lateness, on the cold probes: "
                 "correlation %.2f (Gaussian copula)", x, params["cold_wake_corr"])
    for g in cells:
        log.info("redis_validation: %-5s %-6s n=%4d p50 real %7.1f sim %7.1f us (%+.1f%%)  p99 real %7.1f "
                 "sim %7.1f us (%+.1f%%)", x, g["op"], g["count"], g["real_p50_s"] * 1e6,
                 g["sim_p50_s"] * 1e6, 100 * g["err_p50"], g["real_p99_s"] * 1e6, g["sim_p99_s"] * 1e6,
                 100 * g["err_p99"])
    return SpeedupResult(cells, real_df, sim, entry)


def _loop_figures(real: ReplayResult, charged: LoopCharges | None, io_s: float, cron_s: float,
                  x: str) -> dict[str, float | None]:
    """The server's event loop in the replay against the model's charges (the fit json's
    ``event_loop_per_command``), logged."""
    per_turn = cpu_per_turn(real, cron_s, io_s)
    alone = probe_turn_cpu(real)
    log.info("redis_validation: %s: the server's CPU per turn beyond its commands: %s in the stream, "
             "%s in the probe pairs (%s turns per pair); a lone GET's turn %s cold, %s warm (p50)", x,
             _us(per_turn[0]), _us(per_turn[1]),
             _num(real.pair_switches / real.probe_pairs if real.pair_switches and real.probe_pairs else None),
             _us(alone["cold_get_s"]), _us(alone["warm_get_s"]))
    loop: dict[str, float | None] = {
        "real_s": loop_per_command(real, cron_s, io_s),
        "real_turn_s": per_turn[0], "probe_turn_s": per_turn[1],
        "get_probe_turn_cold_s": alone["cold_get_s"], "get_probe_turn_warm_s": alone["warm_get_s"],
        "model_s": charged[0] / charged[1] if charged and charged[1] else None,
        "real_turns_per_command": turns_per_command(real),
        "model_turns_per_command": charged[2] / charged[1] if charged and charged[1] else None}
    log.info("redis_validation: %s: the event loop per command inside the stream: server CPU %s, model %s "
             "(idle: %.1f us/s); server turns per command %s, model %s", x,
             _us(loop["real_s"]), _us(loop["model_s"]), cron_s * 1e6,
             _num(loop["real_turns_per_command"]), _num(loop["model_turns_per_command"]))
    return loop


def run_redis_validation(trace: Trace, arr: Arrivals, planner: RedisIndex, s: RedisValidationSettings, out_dir: Path,
                         seed: int = 0) -> dict[str, Any]:
    """The mode: the command stream ``planner`` issues for ``trace`` (timed by ``arr``)
    against a real redis-server, and through the model calibrated on that server, by the
    settings ``s``; tables and fit into ``out_dir`` (the figure is drawn from them:
    :func:`kvsim.report.redis_validation.plot_cdfs`). The Hydra edge builds the
    arguments: :func:`kvsim.modes.redis_validation`."""
    out = Path(out_dir)
    t0 = time.perf_counter()
    counts = dict(zip(s.speedups, s.counts(), strict=True))  # requests replayed per speed-up
    stream = plan_stream(trace, planner, max(counts.values()))
    n_cmd = sum(len(u.payloads) for u in stream.units)
    preload = int(s.preload_keys if s.preload_keys is not None else len(np.unique(trace.hash_ids)))
    log.info("redis_validation: %d requests (%s per speed-up), %d commands, %d filler keys, speed-ups %s, %d connections",
             len(stream.arrival_s), ", ".join(f"x{sp:g}: {n}" for sp, n in counts.items()), n_cmd, preload,
             s.speedups, s.connections)
    results: dict[float, SpeedupResult] = {}
    with redis_server(s) as (host, port, db):
        try:
            srv = calibrate_server(host, port, db, s, preload, seed, trace, planner, stream)
            probes = _probes(stream, np.random.default_rng(seed), preload)
            with RespClient(host, port) as c:
                cron_s = idle_cpu_rate(c)  # the server's own CPU per second while idle (serverCron)
            # Half the idle measurement before the replays and half after, the term their mean:
            # it drifts by a few us over minutes on one server (docs/redis_validation.md, eighth
            # pass), and the two halves bracket the replays it is for.
            rng_idle = np.random.default_rng(seed + 1)
            half_samples, half_seconds = idle_halves(s.idle_samples, s.idle_seconds)

            def measure_idle(when: str) -> IdleCosts:
                with priority(s.nice, s.pinned_cpu(), s.rt_priority):
                    got = idle_connection_cost(host, port, db, s.connections, s.idle_gaps_s, preload, rng_idle,
                                               half_samples, half_seconds)
                for by, knots in got.knots.items():
                    lone = got.lone.get(by, [])
                    log.info("redis_validation: %s the replays, a command on a connection idle %s costs the server "
                             "%s more than after %g s, alone in its turn %s; a cold turn's further command %s (%s%s)",
                             when, ", ".join(f"{g:g} s" for g, _ in knots[1:]), ", ".join(_us(x) for _, x in knots[1:]),
                             knots[0][0], ", ".join(_us(x) for _, x in lone[1:]) or "n/a", _us(got.further.get(by)),
                             "its thread's CPU" if by == "cpu" else "the burst's first reply", ", used" if by == s.idle_by else "")
                return got

            idle_before = measure_idle("before")
            replays = replay_speedups(host, port, db, s, stream, srv.sim_stream, counts, probes)
            idle_after = measure_idle("after")
            idle = idle_before.mean(idle_after)
            # the probes' commands at their own factor: their round trips less that are the
            # network and the event loop (each replay's own)
            runs = [(sp, k, r) for sp, rs in replays.items() for k, r in enumerate(rs)]
            pfactors = {(sp, k): (probe_factors(r.real, srv.base) if s.burst_costs else dict.fromkeys(r.factors, 1.0))
                        for sp, k, r in runs}
            for (sp, k), f in pfactors.items():
                log.info("redis_validation: %s: the probes' commands' server time over the calibration's: %s",
                         replay_name(sp, k, s.replays), ", ".join(f"{c} {v:.2f}x" for c, v in f.items()))
            bases = {run: scaled_server(srv.base, f) for run, f in pfactors.items()}
            # the time per key beyond the command and the two threads' measured CPU: the
            # probes' round trips, per kind (an MSET's after its keys were read, as a trace insert's)
            slopes = io_slopes([r.real for _, _, r in runs], [bases[sp, k] for sp, k, _ in runs])
            log.info("redis_validation: per key %.3f us, per value returned %.3f us (the probes; INFO cpu: %.3f us per key)",
                     slopes[0] * 1e6, slopes[1] * 1e6, float(srv.base.get("io_per_key_s", 0.0)) * 1e6)
            captures = [Capture(trace, planner.lookup, s, sp, counts[sp], r, bases[sp, k], srv.server,
                                pfactors[sp, k], slopes, cron_s, idle, k) for sp, k, r in runs]
            if s.capture:
                blob = pickle.dumps(captures)

                def save(path: Path) -> None:
                    path.write_bytes(blob)

                write_with(out / CAPTURE_FILE, save)
            results = refit_all(captures)
        finally:
            if s.redis_url:  # someone else's server: leave it as we found it
                with connect(host, port, db) as c:
                    delete_keys(c, [k for sp in key_spaces(s) for k in stream.keys_in(sp)]
                                + [FILLER + i for i in range(preload)])
    table = pd.DataFrame([g for r in results.values() for g in r.cells], columns=CSV_COLUMNS)
    write_with(out / "redis_validation.csv", lambda p: table.to_csv(p, index=False))
    lat_df = pd.concat([df.assign(source=source, speedup=sp) for sp, r in results.items()
                        for source, df in (("real", r.real), ("sim", r.sim))], ignore_index=True)
    write_with(out / "redis_validation_latency.parquet", lambda p: lat_df.to_parquet(p, index=False))
    write_json(out / "redis_validation_fit.json", {
        "server": {"redis_version": srv.cal.redis_version, "keys_held": srv.held, **srv.server},
        "calibration": srv.cal.summary(), "client_by_speedup": {f"{sp:g}": r.fit for sp, r in results.items()},
        "replays": s.replays,
        "settings": asdict(s), "probe_round_trip_per_key_s": slopes[0], "probe_round_trip_per_value_s": slopes[1],
        "idle_connection_s": _knots_json(idle.knots.get(s.idle_by, [])), "idle_connection_by": s.idle_by,
        "idle_connection_before_s": _knots_json(idle_before.knots.get(s.idle_by, [])),
        "idle_connection_after_s": _knots_json(idle_after.knots.get(s.idle_by, [])),
        # every way measured, the one used and the other (for the record)
        **{f"idle_connection_{by}_s": _knots_json(k) for by, k in idle.knots.items()},
        **{f"lone_idle_connection_{by}_s": _knots_json(k) for by, k in idle.lone.items()},
        **{f"cold_turn_further_command_{by}_s": x for by, x in idle.further.items()}})
    summary = {
        "mode": "redis_validation",
        "trace": trace.name,
        "requests": len(stream.arrival_s),
        "requests_by_speedup": {f"{sp:g}": n for sp, n in counts.items()},
        "commands": n_cmd,
        "speedups": s.speedups,
        "replays": s.replays,
        "connections": s.connections,
        "workload": arr.summary(),
        "max_abs_err_p50": float(table["err_p50"].abs().max()) if len(table) else float("nan"),
        "max_abs_err_p99": float(table["err_p99"].abs().max()) if len(table) else float("nan"),
        "figure": None,  # drawn from the saved files by the edge (kvsim.modes)
        "wall_time_s": time.perf_counter() - t0,
    }
    write_json(out / "summary.json", summary)
    return summary
