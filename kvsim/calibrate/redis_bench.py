"""Measure a real Redis server: client round trip, and server time per command.

What is measured, and how it becomes calibration keys (``redis.*``, ``tcp.rtt_s``):

- ``PING`` round trips from this client, p50 and p99. ``tcp.rtt_s`` = PING p50 minus the
  server's own time for PING: the simulator adds the command's service time to the round
  trip, so the round trip must not count it twice.
- Server-side service time per command from ``INFO commandstats`` deltas (``usec`` and
  ``calls`` before and after a run of one command): the time Redis's one thread spends
  executing it, without network or queueing. GET of single keys; MGET, MSET, DEL and
  ZRANGEBYLEX ... LIMIT 0 n at n = 1 and n = ``batch`` (16), turned into ``base + n *
  per_key`` through those two points.
- Keys are 32 bytes (``kvsim:calib:`` + 20 hex digits, so lexical order = id order) and
  values 8 bytes, like kvsim's block index (32-byte block hash -> 8-byte address). ``keys``
  of them are loaded first, plus a sorted set of the same members for ZRANGEBYLEX. MSET
  writes new keys, DEL deletes exactly those (deleting absent keys would be cheaper). All
  keys are removed at the end.

Client-side round trips of GET and MGET are reported too, as a check that round trip +
service time adds up to what a client sees.
"""

from __future__ import annotations

import platform
import re
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from kvsim.calibrate.calfile import Measured, Source
from kvsim.calibrate.resp import RespClient, RespError, encode

PREFIX = b"kvsim:calib:"
ZSET = PREFIX + b"zset"
NEW_BASE = 1 << 60  # ids of keys MSET creates (and DEL removes)
_CMDSTAT = re.compile(r"^cmdstat_(?P<cmd>[^:]+):calls=(?P<calls>\d+),usec=(?P<usec>\d+)", re.M)


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
    other_calls: int = 0  # calls of the same command by other clients meanwhile


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
    timings: dict[str, CommandTiming] = field(default_factory=dict)

    def service(self, cmd: str) -> float:
        return self.timings[cmd].service_s

    def line(self, cmd: str) -> tuple[float, float, str]:
        """(base, per_key, how) through the two measured sizes of ``cmd``."""
        n = self.batch
        t1, tn = self.service(f"{cmd}1"), self.service(f"{cmd}{n}")
        per = (tn - t1) / (n - 1)
        label = "ZRANGEBYLEX LIMIT" if cmd == "zrange" else f"{cmd.upper()} of"
        how = f"{label} 1 / {n}: {us(t1)[:-3]} / {us(tn)} (commandstats, {self.requests} calls each)"
        if per < 0:  # below the resolution of usec counters: no measurable per-key cost
            return (t1 + tn) / 2, 0.0, how + ", no per-key cost measurable"
        return max(t1 - per, 0.0), per, how

    def source(self) -> Source:
        where = f"redis-server {self.redis_version} at {self.host}:{self.port}"
        return Source(
            date=self.date_utc[:10],
            host=self.client_host,
            what=(
                f"{self.date_utc} on {self.client_host}: `python -m kvsim.calibrate redis`, {where}, "
                f"{self.keys} keys of 32 B -> 8 B, {self.requests} calls per command"
            ),
        )

    def measured(self) -> list[Measured]:
        ping = self.service("ping")
        out = [
            Measured(
                "tcp.rtt_s",
                max(self.ping_p50_s - ping, 0.0),
                f"Redis PING p50 {us(self.ping_p50_s)} (p99 {us(self.ping_p99_s)}) from a Python client, "
                f"less PING's {us(ping)} in the server",
            ),
            Measured("redis.get_s", self.service("get"), f"GET, commandstats usec/calls over {self.requests} calls"),
        ]
        for cmd in ("mget", "mset", "del", "zrange"):
            base, per, how = self.line(cmd)
            out.append(Measured(f"redis.{cmd}_base_s", base, f"{how} -> base"))
            out.append(Measured(f"redis.{cmd}_per_key_s", per, f"{how} -> per key"))
        return out

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


def _stats(client: RespClient) -> dict[str, tuple[int, int]]:
    info = client.call("INFO", "commandstats")
    assert isinstance(info, bytes)
    return parse_commandstats(info.decode())


def _measure(client: RespClient, label: str, stat: str, payloads: Sequence[bytes]) -> CommandTiming:
    before = _stats(client).get(stat, (0, 0))
    rtt = _timed(client, payloads)
    after = _stats(client).get(stat, (0, 0))
    calls, usec = after[0] - before[0], after[1] - before[1]
    if calls <= 0:
        raise RuntimeError(f"INFO commandstats counted no {stat} calls: is this a Redis server?")
    return CommandTiming(
        label, len(payloads), usec / calls * 1e-6,
        float(np.percentile(rtt, 50)), float(np.percentile(rtt, 99)), other_calls=calls - len(payloads),
    )


def measure_redis(
    host: str = "127.0.0.1",
    port: int = 6379,
    *,
    requests: int = 10_000,
    keys: int = 100_000,
    batch: int = 16,
    password: str | None = None,
    db: int = 0,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> RedisResult:
    if requests < 10 or keys < 2 * batch or batch < 2:
        raise ValueError("need requests >= 10, batch >= 2 and keys >= 2 * batch")
    say = progress or (lambda s: None)
    rng = np.random.default_rng(seed)
    with RespClient(host, port) as c:
        if password:
            c.call("AUTH", password)
        if db:
            c.call("SELECT", db)
        info_b = c.call("INFO", "server")
        assert isinstance(info_b, bytes)
        version = parse_info(info_b.decode()).get("redis_version", "unknown")
        n_new = 0
        try:
            say(f"loading {keys} keys and a sorted set of them into redis {version} at {host}:{port}")
            chunk = 1000
            for lo in range(0, keys, chunk * 16):
                cmds: list[list[bytes | str | int]] = []
                for a in range(lo, min(lo + chunk * 16, keys), chunk):
                    ids = range(a, min(a + chunk, keys))
                    cmds.append(["MSET", *[x for i in ids for x in (key(i), value(i))]])
                    cmds.append(["ZADD", ZSET, *[x for i in ids for x in (0, key(i))]])
                c.pipeline(cmds)

            def rand_ids(n: int, width: int = 1) -> np.ndarray:
                return rng.integers(0, keys - width + 1, size=n)

            warm = [encode("GET", key(int(i))) for i in rand_ids(min(requests, 1000))]
            _timed(c, warm + [encode("PING")] * min(requests, 1000))
            res = RedisResult(
                host, port, version, platform.node() or socket.gethostname(),
                datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), keys, requests, batch, 0.0, 0.0,
            )
            say(f"PING x {requests}")
            ping = _measure(c, "ping", "ping", [encode("PING")] * requests)
            res.timings["ping"] = ping
            res.ping_p50_s, res.ping_p99_s = ping.client_p50_s, ping.client_p99_s
            say(f"GET x {requests}")
            res.timings["get"] = _measure(c, "get", "get", [encode("GET", key(int(i))) for i in rand_ids(requests)])
            for n in (1, batch):
                say(f"MGET, ZRANGEBYLEX, MSET, DEL of {n} keys x {requests}")
                res.timings[f"mget{n}"] = _measure(
                    c, f"mget{n}", "mget",
                    [encode("MGET", *[key(int(i) + j) for j in range(n)]) for i in rand_ids(requests, n)],
                )
                res.timings[f"zrange{n}"] = _measure(
                    c, f"zrange{n}", "zrangebylex",
                    [encode("ZRANGEBYLEX", ZSET, b"[" + key(int(i)), "+", "LIMIT", 0, n) for i in rand_ids(requests, n)],
                )
                first = NEW_BASE + n_new
                groups = [range(first + g * n, first + (g + 1) * n) for g in range(requests)]
                n_new += requests * n
                res.timings[f"mset{n}"] = _measure(
                    c, f"mset{n}", "mset", [encode("MSET", *[x for i in g for x in (key(i), value(i))]) for g in groups]
                )
                res.timings[f"del{n}"] = _measure(c, f"del{n}", "del", [encode("DEL", *[key(i) for i in g]) for g in groups])
        finally:
            say("removing the calibration keys")
            doomed = list(range(keys)) + list(range(NEW_BASE, NEW_BASE + n_new))
            dels: list[list[bytes | str]] = [["DEL", ZSET]]
            dels += [["DEL", *[key(i) for i in doomed[a : a + 1000]]] for a in range(0, len(doomed), 1000)]
            try:
                for a in range(0, len(dels), 50):
                    c.pipeline(dels[a : a + 50])
            except (OSError, RespError) as e:  # do not hide the error that got us here
                say(f"could not remove the calibration keys ({PREFIX.decode()}*): {e}")
    return res
