"""Measure a real Redis server: client round trip, and server time per command.

What is measured, and how it becomes calibration keys (``redis.*``, ``tcp.rtt_s``):

- ``PING`` round trips from this client, p50 and p99. ``tcp.rtt_s`` = PING p50 minus the
  server's own time for PING: the simulator adds the command's service time to the round
  trip, so the round trip must not count it twice.
- Server-side service time per command from ``INFO commandstats`` deltas (``usec`` and
  ``calls`` before and after a run of one command): the time Redis's one thread spends
  executing it, without network or queueing. GET of single keys; MGET, MSET, DEL and
  ZRANGEBYLEX ... LIMIT 0 n at n = 1 and n = ``batch`` (16), turned into ``base + n *
  per_key`` through those two points. Costs grow with the number of keys held (a GET
  misses more caches in a bigger dict, ZRANGEBYLEX walks a taller skip list), so ``keys``
  should be about the number of blocks the simulated index holds: the default, 200,000, is
  about the 182,790 distinct blocks of the Mooncake conversation trace.
- Keys are 32 bytes (``kvsim:calib:`` + 20 hex digits, so lexical order = id order) and
  values 8 bytes, like kvsim's block index (32-byte block hash -> 8-byte address). ``keys``
  of them are loaded first, plus a sorted set of the same members for ZRANGEBYLEX. MSET
  writes new keys and DEL deletes exactly those right after, in turn, so the key count stays
  put (deleting absent keys would be cheaper; a growing dict would charge rehashing to MSET).
  All keys are removed at the end.

Tails, beside each median (the simulator draws every cost from a distribution fitted to
them, kvsim.index.costs):

- ``tcp.rtt_p99_s`` / ``tcp.rtt_p999_s``: PING's client-side p99 / p99.9, less PING's
  server time.
- ``redis.service_p99_x`` / ``redis.service_p999_x``: the server's own per-call latency
  percentiles (``INFO latencystats``, Redis 7: p50, p99, p99.9 per command), as p99 / p50
  and p99.9 / p50, the median over the measured commands whose p50 is at least 1 us (the
  histogram's resolution). Reset with ``CONFIG RESETSTAT`` before the timed rounds.

Key-count growth (``scale_keys``, e.g. ``(1000, 1000000)``): the server times are measured
again with that many keys loaded, and ``redis.scale_1k_keys`` / ``redis.scale_1m_keys`` are
the median over commands of (time there) / (time at ``keys``); ``redis.keys_held`` is
``keys``. Without it those keys keep their defaults.

The server thread's time per command beyond the command itself (``redis.io_s``: epoll, read,
parse, write: ``INFO cpu``'s main-thread CPU over the timed calls less their commandstats
time, per call; the median over the rounds). On a loopback VM it is about 13 us against a
GET's 0.1-2 us: the thread is busy far longer per command than commandstats says, which is
what decides queueing when clients send at once. ``tcp.rtt_s`` is then PING's round trip
less PING's whole time on the server thread.

Where a key's cost lies (``msetwarm``): a key's first touch misses the caches (its hash
bucket, its entry), later touches do not. An MSET of new keys costs 0.6-0.7 us per key on
this VM, but 0.19-0.21 us right after an MGET of the same (absent) keys, which paid 0.47-0.51
us per key for the misses; an MGET of present keys not touched lately costs 0.49-0.53 us per
key, of keys just read 0.09-0.12. A lookup that stops at the first absent block has read
the run of new blocks its insert then writes, so the MSET of those keys is measured that way
too: ``mgetabsent``/``msetwarm``/``delwarm`` of 1 and ``batch`` new keys in turn, giving
``RedisResult.mset_warm()``; the GETs and MGETs read random keys of the ``keys`` loaded,
which should therefore be about as many as the server holds (so they miss as the trace's do).
Not a key of the calibration file (the validation uses it: ``redis.mset_warm_*``).

The event loop's turn (``turn_s``, with ``turns``): a turn of the server's event loop (one
``epoll_wait`` return, the commands read, run, and their replies written in ``beforeSleep``)
costs a part once, whatever the number of commands in it. Measured as the main thread's CPU
(``INFO cpu``, less the GETs' commandstats time) per round of k GETs, one on each of k
connections, all sent before any reply is read (k = 1, 2, 4, 8), through ``a + b k``:
``turn_s`` = a. The k commands of a round reach the server in one turn when the client and
the server share one CPU under SCHED_FIFO (``+experiment=redis_validation`` calibrates so),
since the woken server does not preempt the client; where the server runs elsewhere a round
may take several turns and ``turn_s`` comes out smaller (0: one turn per command, the model
without turns). ``io_s`` is the time per command with one command per turn, so the model
charges ``turn_s`` once per turn and ``io_s - turn_s`` per command. On this VM: 3.9-4.7 us of
a one-GET turn's 10.5-11.3 us. Not a key of the calibration file: only the model of a client
and server sharing one CPU (``redis.shared_cpu``) has turns.

Client-side round trips of GET and MGET are reported too, as a check that round trip +
service time adds up to what a client sees.
"""

from __future__ import annotations

import contextlib
import platform
import re
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from kvsim.calibrate.calfile import CalibrationError, Measured, Source
from kvsim.calibrate.resp import RespClient, RespError, encode

PREFIX = b"kvsim:calib:"
ZSET = PREFIX + b"zset"
NEW_BASE = 1 << 60
BLOCKS = 10  # server times: the median over this many rounds of calls  # ids of keys MSET creates (and DEL removes)
_CMDSTAT = re.compile(r"^cmdstat_(?P<cmd>[^:]+):calls=(?P<calls>\d+),usec=(?P<usec>\d+)", re.M)
_LATSTAT = re.compile(
    r"^latency_percentiles_usec_(?P<cmd>[^:]+):p50=(?P<p50>[\d.]+),p99=(?P<p99>[\d.]+),p99\.9=(?P<p999>[\d.]+)", re.M
)


def us(s: float) -> str:
    """Seconds as microseconds for a comment: 3 significant digits, no exponent."""
    x = s * 1e6
    return f"{x:.0f} us" if x >= 100 else f"{x:.3g} us"


def key(i: int) -> bytes:
    k = PREFIX + b"%020x" % i
    assert len(k) == 32
    return k


def value(i: int) -> bytes:
    return struct.pack("<Q", i)


def parse_commandstats(info: str) -> dict[str, tuple[int, int]]:
    """``INFO commandstats`` text -> {command: (calls, usec)} (lower-case names)."""
    return {m["cmd"].lower(): (int(m["calls"]), int(m["usec"])) for m in _CMDSTAT.finditer(info)}


def parse_latencystats(info: str) -> dict[str, tuple[float, float, float]]:
    """``INFO latencystats`` text -> {command: (p50, p99, p99.9) in seconds}."""
    return {
        m["cmd"].lower(): (float(m["p50"]) * 1e-6, float(m["p99"]) * 1e-6, float(m["p999"]) * 1e-6)
        for m in _LATSTAT.finditer(info)
    }


def parse_info(info: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in info.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


@dataclass
class CommandTiming:
    command: str  # e.g. "mget16"
    calls: int
    service_s: float  # server time per call (INFO commandstats)
    client_p50_s: float  # round trip seen by this client
    client_p99_s: float
    client_p999_s: float = float("nan")
    other_calls: int = 0  # calls of the same command by other clients meanwhile
    block_min_s: float = float("nan")  # the spread of the per-block server times
    block_max_s: float = float("nan")


@dataclass
class RedisResult:
    host: str
    port: int
    redis_version: str
    client_host: str
    date_utc: str
    keys: int
    requests: int
    batch: int
    ping_p50_s: float
    ping_p99_s: float
    ping_p999_s: float = float("nan")
    timings: dict[str, CommandTiming] = field(default_factory=dict)
    latency: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # INFO latencystats
    io_s: float | None = None  # server main-thread CPU per call beyond the command (INFO cpu)
    io_per_key_s: float = 0.0  # ... and per key of the command (arguments parsed, values written)
    scaled: dict[int, dict[str, float]] = field(default_factory=dict)  # keys -> command -> service_s
    turn_s: float = 0.0  # the event loop's CPU once per turn (INFO cpu, rounds of k GETs on k connections)

    def mset_warm(self) -> tuple[float, float] | None:
        """(base, per key) of an MSET of new keys an MGET has just looked up (``msetwarm``), or None."""
        if f"msetwarm{self.batch}" not in self.timings:
            return None
        base, per, _ = self.line("msetwarm")
        return base, per
    turns: dict[int, float] = field(default_factory=dict)  # k -> server CPU per round of k GETs beyond the GETs
    large: tuple[int, ...] = ()  # key counts measured beyond ``batch`` (``large_sizes``)

    def knots(self, cmd: str) -> list[tuple[float, float]]:
        """``(keys, seconds)`` of ``cmd`` (``mget``, ``mset``, ``msetwarm``) at ``batch`` keys and
        at each larger size measured (``large_sizes``): the model's ``*_knots`` (empty when no
        larger size was measured)."""
        sizes = [n for n in self.large if f"{cmd}{n}" in self.timings]
        if not sizes or f"{cmd}{self.batch}" not in self.timings:
            return []
        return [(float(n), self.service(f"{cmd}{n}")) for n in (self.batch, *sizes)]

    def service(self, cmd: str) -> float:
        return self.timings[cmd].service_s

    def line(self, cmd: str) -> tuple[float, float, str]:
        """(base, per_key, how) through the two measured sizes of ``cmd``."""
        n = self.batch
        t1, tn = self.service(f"{cmd}1"), self.service(f"{cmd}{n}")
        per = (tn - t1) / (n - 1)
        label = "ZRANGEBYLEX LIMIT" if cmd == "zrange" else f"{cmd.upper()} of"
        how = f"{label} 1 / {n}: {us(t1)[:-3]} / {us(tn)} (commandstats, median of {BLOCKS} rounds of {self.requests // BLOCKS} calls)"
        if per < 0:  # below the resolution of usec counters: no measurable per-key cost
            return (t1 + tn) / 2, 0.0, how + ", no per-key cost measurable"
        return max(t1 - per, 0.0), per, how

    def source(self) -> Source:
        where = f"redis-server {self.redis_version} at {self.host}:{self.port}"
        return Source(
            date=self.date_utc[:16] + "Z",
            host=self.client_host,
            what=(
                f"`python -m kvsim.calibrate redis`, {where}, "
                f"{self.keys} keys of 32 B -> 8 B, {self.requests} calls per command"
            ),
        )

    def service_tail(self) -> tuple[float, float, str] | None:
        """(p99 / p50, p99.9 / p50, how) of the server's per-call latency, or None."""
        rows = [(c, p) for c, p in self.latency.items() if c in _TIMED and p[0] >= 1e-6]
        if not rows:
            return None
        x99 = float(np.median([p99 / p50 for _, (p50, p99, _) in rows]))
        x999 = float(np.median([p999 / p50 for _, (p50, _, p999) in rows]))
        cmds = ", ".join(f"{c.upper()} {p50 * 1e6:.3g}/{p99 * 1e6:.3g}/{p999 * 1e6:.3g}" for c, (p50, p99, p999) in sorted(rows))
        return x99, max(x999, x99), f"INFO latencystats p50/p99/p99.9 (us): {cmds}; median over commands"

    def measured(self) -> list[Measured]:
        io = (self.io_s or 0.0) + self.io_per_key_s
        ping = self.service("ping") + io  # PING's whole time on the server thread
        rtt = max(self.ping_p50_s - ping, 0.0)
        less = f"less PING's {us(ping)} on the server thread" + (f" ({us(io)} of it the event loop)" if io else "")
        out = [
            Measured(
                "tcp.rtt_s",
                rtt,
                f"Redis PING p50 {us(self.ping_p50_s)} (p99 {us(self.ping_p99_s)}) from a Python client, {less}",
            ),
            Measured("tcp.rtt_p99_s", max(self.ping_p99_s - ping, rtt), f"Redis PING p99 {us(self.ping_p99_s)}, {less}"),
            Measured(
                "tcp.rtt_p999_s",
                max(self.ping_p999_s - ping, self.ping_p99_s - ping, rtt),
                f"Redis PING p99.9 {us(self.ping_p999_s)}, {less}",
            ),
            Measured(
                "redis.get_s", self.service("get"),
                f"GET, commandstats usec/calls, median of {BLOCKS} rounds of {self.requests // BLOCKS} calls",
            ),
        ]
        for cmd in ("mget", "mset", "del", "zrange"):
            base, per, how = self.line(cmd)
            out.append(Measured(f"redis.{cmd}_base_s", base, f"{how} -> base"))
            out.append(Measured(f"redis.{cmd}_per_key_s", per, f"{how} -> per key"))
        if self.io_s is not None:
            how = (f"the server main thread's CPU per call beyond the command itself (INFO cpu used_cpu_*_main_thread "
                   f"deltas less commandstats usec, per call; medians of the rounds at 1 and {self.batch} keys)")
            out.append(Measured("redis.io_s", self.io_s, f"{how} -> base"))
            out.append(Measured("redis.io_per_key_s", self.io_per_key_s, f"{how} -> per key"))
        tail = self.service_tail()
        if tail is not None:
            x99, x999, how = tail
            out.append(Measured("redis.service_p99_x", x99, f"{how}: p99 / p50"))
            out.append(Measured("redis.service_p999_x", x999, f"{how}: p99.9 / p50"))
        if self.scaled:
            out.append(Measured("redis.keys_held", float(self.keys), "the keys loaded when the *_s values were measured"))
            for n, name in ((1000, "scale_1k_keys"), (1_000_000, "scale_1m_keys")):
                if n in self.scaled:
                    r = self.scale_at(n)
                    out.append(Measured(f"redis.{name}", r, f"service time at {n} keys / at {self.keys}, median over "
                                        f"{', '.join(sorted(self.scaled[n]))}"))
        return out

    def scale_at(self, n: int) -> float:
        at = self.scaled[n]
        return float(np.median([at[c] / self.service(c) for c in at if self.service(c) > 0]))

    def summary(self) -> dict[str, object]:
        return {
            "server": f"{self.host}:{self.port}",
            "redis_version": self.redis_version,
            "client_host": self.client_host,
            "date_utc": self.date_utc,
            "keys": self.keys,
            "requests": self.requests,
            "ping_p50_s": self.ping_p50_s,
            "ping_p99_s": self.ping_p99_s,
            "ping_p999_s": self.ping_p999_s,
            "latencystats": self.latency,
            "scaled": {str(k): v for k, v in self.scaled.items()},
            "turn_s": self.turn_s,
            "mset_warm": self.mset_warm(),
            "turns": {str(k): v for k, v in self.turns.items()},
            "commands": {k: vars(t) for k, t in self.timings.items()},
            "calibration": {m.key: m.value for m in self.measured()},
        }


def _timed(client: RespClient, payloads: Sequence[bytes]) -> np.ndarray:
    """Send each payload and wait for its reply; round-trip times in seconds."""
    t = np.empty(len(payloads))
    clock = time.perf_counter_ns
    for i, p in enumerate(payloads):
        t0 = clock()
        client.send(p)
        client.read()
        t[i] = (clock() - t0) * 1e-9
    return t


def _info(client: RespClient, section: str) -> str:
    """``INFO section`` as text; any other reply means the server is not a Redis server."""
    info = client.call("INFO", section)
    if not isinstance(info, bytes):
        raise RespError(f"INFO {section} replied {info!r}, not text: is this a Redis server?")
    return info.decode(errors="replace")


def commandstats(client: RespClient) -> dict[str, tuple[int, int]]:
    return parse_commandstats(_info(client, "commandstats"))


Spec = tuple[str, str, Sequence[bytes]]  # (label, commandstats name, one payload per call)


def main_thread_cpu(info: dict[str, str]) -> float | None:
    """The main thread's CPU seconds in parsed ``INFO cpu`` fields, or None (older servers)."""
    try:
        return float(info["used_cpu_sys_main_thread"]) + float(info["used_cpu_user_main_thread"])
    except (KeyError, ValueError):
        return None


def server_cpu(client: RespClient) -> float | None:
    """The server's main-thread CPU seconds so far (``INFO cpu``), or None (older servers)."""
    return main_thread_cpu(parse_info(_info(client, "cpu")))


def _measure_rotating(client: RespClient, groups: Sequence[Sequence[Spec]], blocks: int = BLOCKS,
                      io: list[tuple[str, float]] | None = None) -> list[CommandTiming]:
    """Time every command of ``groups`` in ``blocks`` rounds.

    A group's commands run in turn (the i-th call of each, then the (i+1)-th: PING beside
    GET, MSET beside the DEL that undoes it). Each round runs one slice of every group, so
    every command samples the same stretches of time, and a burst of load on a shared
    machine touches all of them alike. Server time per command: the INFO commandstats
    delta around each slice, and the median over the rounds of the mean per call. With
    ``io``, each slice's server main-thread CPU beyond the commands' own time, per call
    (the event loop: epoll, read, parse, write), is appended to it with the group's label.
    """
    n = len(groups[0][0][2])
    for g in groups:
        stats = [stat for _, stat, _ in g]
        if len(set(stats)) != len(stats):
            raise ValueError("commands run in turn must be different commands")
        if any(len(p) != n for _, _, p in g):
            raise ValueError("every command needs the same number of calls")
    bounds = np.linspace(0, n, min(blocks, n) + 1).astype(int)
    specs = [spec for g in groups for spec in g]
    rtt = {label: np.empty(n) for label, _, _ in specs}
    means: dict[str, list[float]] = {label: [] for label, _, _ in specs}
    pooled = {label: [0, 0] for label in rtt}  # usec and calls over every round
    other = dict.fromkeys(rtt, 0)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        for g in groups:
            order = [ps[i] for i in range(lo, hi) for _, _, ps in g]
            before = commandstats(client)
            cpu0 = server_cpu(client) if io is not None else None
            t = _timed(client, order).reshape(hi - lo, len(g))
            cpu1 = server_cpu(client) if io is not None else None
            after = commandstats(client)
            if io is not None and cpu0 is not None and cpu1 is not None:
                own = sum(after.get(st, (0, 0))[1] - before.get(st, (0, 0))[1] for _, st, _ in g) * 1e-6
                io.append((g[-1][0], max(cpu1 - cpu0 - own, 0.0) / len(order)))
            for j, (label, stat, _) in enumerate(g):
                rtt[label][lo:hi] = t[:, j]
                calls = after.get(stat, (0, 0))[0] - before.get(stat, (0, 0))[0]
                usec = after.get(stat, (0, 0))[1] - before.get(stat, (0, 0))[1]
                if calls <= 0:
                    raise RespError(f"INFO commandstats counted no {stat} calls: is this a Redis server?")
                means[label].append(usec / calls * 1e-6)
                pooled[label][0] += usec
                pooled[label][1] += calls
                other[label] += calls - (hi - lo)
    return [
        CommandTiming(
            label, n, _server_time(means[label], pooled[label][0], pooled[label][1], n // (len(bounds) - 1)), float(np.percentile(rtt[label], 50)),
            float(np.percentile(rtt[label], 99)), float(np.percentile(rtt[label], 99.9)), other_calls=other[label],
            block_min_s=min(means[label]), block_max_s=max(means[label]),
        )
        for label, _, _ in specs
    ]


def _server_time(means: Sequence[float], usec: int, calls: int, per_round: int) -> float:
    """A command's server time from its rounds: the median of the rounds' means, unless
    that is below what a round can resolve. Redis counts each call's time in whole
    microseconds (unbiased on average, as a call starts at any point of a microsecond), so a
    round of ``per_round`` calls of a command much faster than a microsecond often counts 0
    and the median can be 0 (seen at 3 calls a round of sub-microsecond commands); there the
    mean over every round (``usec`` over ``calls``) is the estimate."""
    median = float(np.median(means))
    if median * 1e6 * max(per_round, 1) >= 1.0 or calls <= 0:
        return median
    return usec / calls * 1e-6


def _measure_turns(c: RespClient, host: str, port: int, loaded: int, rng: np.random.Generator,
                   auth: Sequence[Sequence[str | int]] = (), ks: Sequence[int] = (1, 2, 4, 8), rounds: int = 100,
                   blocks: int = BLOCKS // 2) -> tuple[float, dict[int, float]]:
    """``(turn_s, {k: CPU per round})``: the server main thread's CPU per round of k GETs of
    random loaded keys, one on each of k connections, all sent before any reply is read
    (``INFO cpu`` deltas less the GETs' commandstats usec; the median over ``blocks``
    rounds of ``rounds``), and the intercept of ``a + b k`` through them (>= 0): the part of
    a turn's time that does not grow with its commands."""
    conns = [RespClient(host, port) for _ in range(max(ks))]
    try:
        for x in conns:
            for cmd in auth:
                x.call(*cmd)
        per: dict[int, list[float]] = {k: [] for k in ks}
        for _ in range(blocks):
            for k in ks:
                payloads = [encode("GET", key(int(i))) for i in rng.integers(0, loaded, size=rounds * k)]
                before = commandstats(c).get("get", (0, 0))[1]
                cpu0 = server_cpu(c)
                for r in range(rounds):
                    for j in range(k):
                        conns[j].send(payloads[r * k + j])
                    for j in range(k):
                        conns[j].read()
                cpu1 = server_cpu(c)
                after = commandstats(c).get("get", (0, 0))[1]
                if cpu0 is None or cpu1 is None:
                    return 0.0, {}
                per[k].append((cpu1 - cpu0 - (after - before) * 1e-6) / rounds)
    finally:
        for x in conns:
            x.close()
    med = {k: float(np.median(v)) for k, v in per.items()}
    b, a = np.polyfit(np.array(list(med), dtype=float), np.array(list(med.values())), 1)
    return float(np.clip(a, 0.0, med[min(ks)])), med


_TIMED = ("get", "mget", "zrangebylex", "mset", "del")  # commands whose latency tails count


def load_keys(c: RespClient, lo: int, hi: int) -> None:
    """Keys ``lo`` .. ``hi - 1`` and their sorted-set members, pipelined."""
    chunk = 1000
    for start in range(lo, hi, chunk * 16):
        cmds: list[list[bytes | str | int]] = []
        for a in range(start, min(start + chunk * 16, hi), chunk):
            ids = range(a, min(a + chunk, hi))
            cmds.append(["MSET", *[x for i in ids for x in (key(i), value(i))]])
            cmds.append(["ZADD", ZSET, *[x for i in ids for x in (0, key(i))]])
        c.pipeline(cmds)


SETTLE = 1 << 61  # key ids looked up (never stored) to finish a rehash (disjoint from the others)


def settle_keyspace(c: RespClient, keys: int) -> int:
    """Finish the keyspace's incremental rehash before anything is timed; returns the lookups sent.

    Redis doubles its keyspace dict when the keys reach a power of two and moves the old
    table's buckets over incrementally: one bucket per dict lookup or insert, plus 1 ms per
    ``serverCron`` tick (10 a second). Right after a load past a power of two (e.g. 535,083
    keys, past 2^19) every command also does rehash work: measured here (redis 7.0, 2,000
    calls each, right after the load) MSET of 16 new keys 43-60 us and warm MSET 39-44 us at
    535,083 keys, against 16-18 and 5 us at 500,000, and the rehash was still on 3 s after
    the load (over within 20 s). A calibration taken then prices every command at a
    transient the replay (seconds later) and a steady index do not see. A lookup of an
    absent key touches no key and does one rehash step, which moves at least one non-empty
    bucket unless it skips ten empty ones; the old table of a growth has at most ``keys``
    buckets, so ``2 x`` the next power of two above ``keys`` lookups end it, without DEBUG
    (disabled by default since Redis 7.0). (A shrink, below 10% fill, starts from a table
    that is nearly empty, which the server's own cron walks through quickly.)"""
    per = 1000
    calls = -(-2 * (1 << max(int(keys), 1).bit_length()) // per)
    # the same absent keys each time: a step is done per lookup, whatever the key (so the
    # commands are built once: memory does not grow with the keys held)
    cmd: list[bytes | str] = ["EXISTS", *[key(SETTLE + i) for i in range(per)]]
    for a in range(0, calls, 50):
        c.pipeline([cmd] * min(50, calls - a))
    return calls * per


def _groups(rng: np.random.Generator, loaded: int, requests: int, batch: int, first_new: int,
            sizes: Sequence[int], warm: bool = False) -> tuple[list[list[Spec]], int]:
    """The commands to time with ``loaded`` keys held; returns them and the new keys used.

    PING beside GET: the round trip and GET's client-side time see the same load. MSET of new
    keys beside the DEL of the same keys: the index keeps its size (a full cache inserting new
    blocks and deleting evicted ones), so no dict growth is charged to MSET, and DEL deletes
    keys that exist."""

    def rand_ids(n: int, width: int = 1) -> np.ndarray:
        return rng.integers(0, loaded - width + 1, size=n)

    groups: list[list[Spec]] = [[
        ("ping", "ping", [encode("PING")] * requests),
        ("get", "get", [encode("GET", key(int(i))) for i in rand_ids(requests)]),
    ]]
    used = 0
    for n in sizes:
        groups.append([(f"mget{n}", "mget", [
            encode("MGET", *[key(int(i) + j) for j in range(n)]) for i in rand_ids(requests, n)])])
        groups.append([(f"zrange{n}", "zrangebylex", [
            encode("ZRANGEBYLEX", ZSET, b"[" + key(int(i)), "+", "LIMIT", 0, n) for i in rand_ids(requests, n)])])
        first = first_new + used
        fresh = [range(first + g * n, first + (g + 1) * n) for g in range(requests)]
        used += requests * n
        groups.append([
            (f"mset{n}", "mset", [encode("MSET", *[x for i in g for x in (key(i), value(i))]) for g in fresh]),
            (f"del{n}", "del", [encode("DEL", *[key(i) for i in g]) for g in fresh]),
        ])
        if warm:  # MSET of new keys that an MGET has just looked up (absent), as an insert after its lookup
            first = first_new + used
            fresh = [range(first + g * n, first + (g + 1) * n) for g in range(requests)]
            used += requests * n
            groups.append([
                (f"mgetabsent{n}", "mget", [encode("MGET", *[key(i) for i in g]) for g in fresh]),
                (f"msetwarm{n}", "mset", [encode("MSET", *[x for i in g for x in (key(i), value(i))]) for g in fresh]),
                (f"delwarm{n}", "del", [encode("DEL", *[key(i) for i in g]) for g in fresh]),
            ])
    return groups, used


def measure_redis(
    host: str = "127.0.0.1",
    port: int = 6379,
    *,
    requests: int = 10_000,
    keys: int = 200_000,
    batch: int = 16,
    password: str | None = None,
    db: int = 0,
    seed: int = 0,
    scale_keys: Sequence[int] = (),
    large_sizes: Sequence[int] = (),
    progress: Callable[[str], None] | None = None,
) -> RedisResult:
    if requests < 10 or keys < 2 * batch or batch < 2:
        raise CalibrationError("need --requests >= 10, --batch >= 2 and --keys >= 2 * batch")
    if any(n < 2 * batch for n in scale_keys):
        raise CalibrationError(f"--key-scaling: every key count must be >= 2 * batch ({2 * batch})")
    say = progress or (lambda s: None)
    rng = np.random.default_rng(seed)
    with RespClient(host, port) as c:
        if password:
            c.call("AUTH", password)
        if db:
            c.call("SELECT", db)
        version = parse_info(_info(c, "server")).get("redis_version", "unknown")
        n_new = 0
        loaded = 0
        try:
            res = RedisResult(
                host, port, version, platform.node() or socket.gethostname(),
                datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), keys, requests, batch, 0.0, 0.0,
            )
            # key-count growth: the smaller counts before the main load, the larger after
            small = sorted(n for n in scale_keys if n < keys)
            large = sorted(n for n in scale_keys if n > keys)
            scale_req = max(10, requests // 4)

            def scaled(n: int) -> None:  # server times with ``n`` keys loaded
                nonlocal loaded, n_new
                say(f"server times with {n} keys loaded")
                load_keys(c, loaded, n)
                loaded = n
                settle_keyspace(c, loaded)
                g, used = _groups(rng, loaded, scale_req, batch, NEW_BASE + n_new, (batch,))
                n_new += used
                res.scaled[n] = {t.command: t.service_s for t in _measure_rotating(c, g) if t.command != "ping"}

            for n in small:
                scaled(n)
            say(f"loading {keys} keys and a sorted set of them into redis {version} at {host}:{port}")
            load_keys(c, loaded, keys)
            loaded = keys
            settle_keyspace(c, loaded)  # time the steady state, not the rehash the load began
            warm = [encode("GET", key(int(i))) for i in rng.integers(0, keys, size=min(requests, 1000))]
            _timed(c, warm + [encode("PING")] * min(requests, 1000))
            groups, used = _groups(rng, loaded, requests, batch, NEW_BASE + n_new, (1, batch), warm=True)
            n_new += used
            say(f"PING, GET, MGET, ZRANGEBYLEX, MSET, DEL of 1 and {batch} keys: {requests} calls each "
                f"in {BLOCKS} rounds")
            with contextlib.suppress(RespError):  # the server's own per-call latency percentiles, from now on
                c.call("CONFIG", "RESETSTAT")
            io: list[tuple[str, float]] = []
            for t in _measure_rotating(c, groups, io=io):
                res.timings[t.command] = t
            if io:  # base + per key through the medians at 1 key and at ``batch`` keys
                one = [v for lab, v in io if not lab.endswith(str(batch))]
                many = [v for lab, v in io if lab.endswith(str(batch))]
                a, b = float(np.median(one)), float(np.median(many)) if many else float(np.median(one))
                res.io_per_key_s = max((b - a) / (batch - 1), 0.0)
                res.io_s = max(a - res.io_per_key_s, 0.0)
            lat = c.call("INFO", "latencystats")
            if isinstance(lat, bytes):
                res.latency = parse_latencystats(lat.decode())
            for n in sorted(m for m in large_sizes if m > batch):  # after latencystats: not in the tails
                if n > loaded:
                    raise CalibrationError(f"large_sizes: {n} keys in one command, but only {loaded} keys loaded")
                calls = max(10, requests * batch // n)  # about as many keys per size as at ``batch``
                say(f"MGET, MSET of {n} keys: {calls} calls each")
                g, used = _groups(rng, loaded, calls, batch, NEW_BASE + n_new, (n,), warm=True)
                n_new += used
                g = [grp for grp in g if not grp[0][0].startswith(("ping", "zrange"))]
                for t in _measure_rotating(c, g):
                    res.timings[t.command] = t
                res.large += (n,)
            if res.io_s is not None:  # after latencystats: its GETs are not the timed ones
                auth: list[list[str | int]] = []
                if password:
                    auth.append(["AUTH", password])
                if db:
                    auth.append(["SELECT", db])
                res.turn_s, res.turns = _measure_turns(c, host, port, loaded, rng, auth)
                res.turn_s = min(res.turn_s, res.io_s)
            ping = res.timings["ping"]
            res.ping_p50_s, res.ping_p99_s, res.ping_p999_s = ping.client_p50_s, ping.client_p99_s, ping.client_p999_s
            for n in large:
                scaled(n)
            for at in res.scaled.values():  # the main run's name for the same command
                for cmd in list(at):
                    if cmd not in res.timings:
                        del at[cmd]
        finally:
            say("removing the calibration keys")
            doomed = list(range(loaded)) + list(range(NEW_BASE, NEW_BASE + n_new))
            dels: list[list[bytes | str]] = [["DEL", ZSET]]
            dels += [["DEL", *[key(i) for i in doomed[a : a + 1000]]] for a in range(0, len(doomed), 1000)]
            try:
                for a in range(0, len(dels), 50):
                    c.pipeline(dels[a : a + 50])
            except (OSError, RespError) as e:  # do not hide the error that got us here
                say(f"could not remove the calibration keys ({PREFIX.decode()}*): {e}")
    return res
