"""What a connection's idleness costs the commands after its first, and whether a connection's
history of reply sizes changes a command's round trip, on a real redis-server
(docs/redis_validation.md, nineteenth pass: the second of its two runs is this script).

    python benchmarks/redis_idle_chains.py [--rounds 80] [--places 60] [--pairs 300]

The set-up of ``+experiment=redis_validation``: a redis-server started on a free loopback
port with 200,000 filler keys, it and this client pinned to one CPU under SCHED_FIFO where
permitted, and a probe connection sending one GET every 10 ms throughout the gaps (as the
replay's probes keep the machine busy between bursts: the gap idles the connections, not the
CPU). Three measurements:

1. **A burst's chains after a gap** (``--rounds`` rounds of each gap, 30 ms, 0.3 s, 3 s):
   four connections idle for the gap, then a chain of four GETs on each, the next sent as each
   reply is parsed (as the replay's client does): the first reply, the last, and the time
   between them (the twelve later commands) per gap, and their shifts over the 30 ms gap's.
2. **One connection's chain by place** (``--places`` rounds of each gap): six GETs one after
   another after the gap; each one's round trip less its send and receive, p50 by place, and
   the shift of each place over the 30 ms gap's.
3. **Segment size** (``--pairs`` rounds): two connections, one that first received two MGETs of
   1,024 keys (Linux's estimate of the peer's segment size, ``rcv_mss``, grows with them), one
   that never did; a cold GET, a warm MGET of 16 keys, a GET, an MGET of 16 keys on each after
   a 10 ms sleep; p50 by place and the first connection's shift over the second's, with
   ``ss -ti``'s view of both (segments sent without data: immediate acknowledgements).

Shifts are Hodges-Lehmann estimates (``shift_estimate``). Without redis-server: one line,
exit 2.
"""

from __future__ import annotations

import argparse
import selectors
import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack

import numpy as np

import kvsim.bench.redis_validation as rv
from kvsim.bench.validation_settings import RedisValidationSettings
from kvsim.calibrate.replay_client import TimedConnection, read_available, reply_end
from kvsim.errors import cli

FILLER_KEYS = 200_000
GAPS_S = (0.03, 0.3, 3.0)
SKIP = 3  # first rounds left out (the server's and the CPU's first touches)


def idle_for(gap_s: float, probe: TimedConnection, get: Callable[[], bytes]) -> None:
    """``gap_s`` from now, a GET on ``probe`` every 10 ms meanwhile, awake at the end."""
    rv.busy_until(time.perf_counter() + gap_s, lambda: probe.round_trip_s(get()))


def chains(conns: list[TimedConnection], length: int, get: Callable[[], bytes]) -> tuple[float, float]:
    """A chain of ``length`` GETs on every connection at once: (first reply, last reply) in us
    from the first send."""
    sel = selectors.SelectSelector()
    for i, c in enumerate(conns):
        sel.register(c.sock, selectors.EVENT_READ, i)
    left = [length - 1] * len(conns)
    bufs = [bytearray() for _ in conns]
    replies: list[float] = []
    t0 = time.perf_counter()
    for c in conns:
        c.sock.sendall(get())
    pending = len(conns)
    try:
        while pending:
            for key, _ in sel.select(1.0):
                i = key.data
                bufs[i] += read_available(conns[i].sock)
                if reply_end(bufs[i]) < 0:
                    continue
                bufs[i] = bytearray()
                replies.append(time.perf_counter() - t0)
                if left[i]:
                    left[i] -= 1
                    conns[i].sock.sendall(get())
                else:
                    pending -= 1
    finally:
        sel.close()
    return replies[0] * 1e6, replies[-1] * 1e6


def shifts(by_gap: dict[float, np.ndarray]) -> dict[float, np.ndarray]:
    """Each gap's shift over the shortest's, column by column."""
    base = by_gap[GAPS_S[0]]
    return {g: np.array([rv.shift_estimate(a[:, j].tolist(), base[:, j].tolist()) for j in range(a.shape[1])]) for g, a in by_gap.items()}


def ss_info(port: int, named: dict[str, TimedConnection]) -> dict[str, str]:
    """``ss -tni``'s segment size and segment counts of the ``named`` client connections to
    ``port`` (empty where ``ss`` is missing)."""
    if shutil.which("ss") is None:
        return {}
    out = subprocess.run(["ss", "-tni", "state", "established", f"( dport = :{port} )"], capture_output=True, text=True).stdout
    lines = out.splitlines()
    local = {c.sock.getsockname()[1]: name for name, c in named.items()}
    keep = ("rcvmss", "segs_out", "data_segs_out")
    got = {}
    for head, info in zip(lines, lines[1:], strict=False):
        fields = head.split()  # Recv-Q, Send-Q, local address:port, peer address:port
        port_of = fields[2].rsplit(":", 1)[-1] if len(fields) > 3 else ""
        if port_of.isdigit() and int(port_of) in local:
            got[local[int(port_of)]] = " ".join(w for w in info.split() if w.startswith(keep))
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=80, help="rounds of each gap, measurement 1")
    ap.add_argument("--places", type=int, default=60, help="rounds of each gap, measurement 2")
    ap.add_argument("--pairs", type=int, default=300, help="rounds, measurement 3")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    s = RedisValidationSettings()
    rng = np.random.default_rng(args.seed)

    def keys(n: int) -> list[bytes]:
        return [rv.filler_key(rng, FILLER_KEYS) for _ in range(n)]

    def get() -> bytes:
        return rv.encode("GET", *keys(1))

    def mget(n: int) -> bytes:
        return rv.encode("MGET", *keys(n))

    with rv.pinned_server(s, FILLER_KEYS) as (host, port, _db, sched), ExitStack() as conns:

        def connection() -> TimedConnection:
            return conns.enter_context(TimedConnection(host, port))

        probe = connection()
        wide = [connection() for _ in range(4)]
        lone = connection()
        burst: dict[float, list[tuple[float, float, float]]] = {g: [] for g in GAPS_S}
        for _ in range(args.rounds):
            for g in GAPS_S:
                idle_for(g, probe, get)
                first, last = chains(wide, 4, get)
                burst[g].append((first, last, last - first))
        place: dict[float, list[list[float]]] = {g: [] for g in GAPS_S}
        for _ in range(args.places):
            for g in GAPS_S:
                idle_for(g, probe, get)
                place[g].append([lone.round_trip_s(get()) * 1e6 for _ in range(6)])
        small, large = connection(), connection()
        for _ in range(2):
            large.round_trip_s(mget(1024))
        seg: dict[str, list[list[float]]] = {"large": [], "small": []}
        for _ in range(args.pairs):
            for name, conn in (("large", large), ("small", small)):
                time.sleep(0.01)
                seg[name].append([conn.round_trip_s(p) * 1e6 for p in (get(), mget(16), get(), mget(16))])
        seen = ss_info(port, {"once received large replies": large, "never": small})
    print(f"scheduling: {sched}")
    b = {g: np.array(v[SKIP:]) for g, v in burst.items()}
    print(f"\n1. four connections idle for the gap, then four GETs in a chain on each ({args.rounds} rounds), us")
    print("gap      first reply   last reply   last - first   shifts: first  last - first  per later command")
    for g, sh in shifts(b).items():
        med = np.median(b[g], axis=0)
        print(f"{g:5.2f} s  {med[0]:11.1f}  {med[1]:11.1f}  {med[2]:13.1f}   {sh[0]:+13.1f}  {sh[2]:+12.1f}  {sh[2] / 12:+17.2f}")
    p = {g: np.array(v[SKIP:]) for g, v in place.items()}
    print(f"\n2. one connection idle for the gap, then six GETs in a chain ({args.places} rounds): round trip less send and receive, us")
    for g, sh in shifts(p).items():
        print(f"{g:5.2f} s  p50 by place " + " ".join(f"{v:6.1f}" for v in np.median(p[g], axis=0))
              + "   shift " + " ".join(f"{v:+5.1f}" for v in sh))
    a, z = np.array(seg["large"][SKIP:]), np.array(seg["small"][SKIP:])
    print(f"\n3. after a 10 ms sleep: GET, MGET 16, GET, MGET 16 ({args.pairs} rounds), us")
    print("once received large replies  p50 " + " ".join(f"{v:6.1f}" for v in np.median(a, axis=0)))
    print("never                        p50 " + " ".join(f"{v:6.1f}" for v in np.median(z, axis=0)))
    print("shift, the first over the second " + " ".join(f"{rv.shift_estimate(a[:, j].tolist(), z[:, j].tolist()):+6.1f}" for j in range(4)))
    for name, line in seen.items():
        print(f"  ss -ti, {name}: {line}")
    return 0


if __name__ == "__main__":
    cli(main, prog="redis_idle_chains")  # a missing redis-server: one line, exit 2
