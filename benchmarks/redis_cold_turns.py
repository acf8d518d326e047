"""What a cold turn and the turns after it cost a real redis-server, measured apart from any
trace (docs/redis_validation.md, sixteenth pass: the tables there come from this script).

    python benchmarks/redis_cold_turns.py [--rounds 200] [--chains 300]

The set-up of ``+experiment=redis_validation``: a redis-server started on a free loopback
port with 200,000 filler keys, it and this client pinned to one CPU under SCHED_FIFO where
permitted. Every sample follows a 10 ms sleep (the CPU idles, as before a replay's tick or a
cold probe). Two measurements:

1. **Cold turns by their commands** (``--rounds`` rounds of four kinds in turn): a lone GET on
   a connection used every round; 4 GETs on 4 connections used every round (about 45 ms
   idle); 4 GETs on one of 8 sets of 4 connections (about 0.35 s idle); 1 GET on one of 8
   single connections (about 0.35 s idle). The time from the last send to the first reply
   (on one CPU a turn's replies arrive together at its end) and the server thread's CPU over
   it; the shifts between kinds (Hodges-Lehmann). The model charges each further command of a
   turn ``io_s - turn_s`` and its command time, measured warm and back to back.
2. **The round trips after a cold one** (``--chains`` chains): 8 GETs back to back after the
   sleep; each one's round trip less its send and receive, p50 by place.
3. **Cold turns by the kinds of their commands** (``--rounds`` rounds): a lone GET, MGET of 8
   filler keys and MSET of 8 new keys, and turns of a GET after a GET, a GET after an MGET,
   and an MGET, an MSET and two GETs, on connections used every round: whether a further
   command's cold cost depends on what shares its turn (the replay's ticks mix the three).

Prints three tables; without redis-server, one line and exit 2.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack

import numpy as np

import kvsim.bench.redis_validation as rv
from kvsim.bench.validation_settings import RedisValidationSettings
from kvsim.calibrate.replay_client import TimedConnection
from kvsim.errors import cli

FILLER_KEYS = 200_000


def get(rng: np.random.Generator) -> bytes:
    return rv.encode("GET", rv.filler_key(rng, FILLER_KEYS))


def cold_burst(conns: list[rv.RespClient], payloads: list[bytes], pid: int | None) -> tuple[float, float]:
    """After a 10 ms sleep, ``payloads[i]`` on ``conns[i]`` (:func:`rv.time_burst`): (first
    reply us, server CPU us; NaN where it cannot be read)."""
    time.sleep(0.01)
    first, server = rv.time_burst(conns, payloads, pid)
    return first * 1e6, (server * 1e6 if server is not None else float("nan"))


def cold_turns(host: str, port: int, db: int, rounds: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per kind, one row per sample: (first reply us, server CPU us)."""
    with ExitStack() as st:
        def conn() -> rv.RespClient:
            return st.enter_context(rv.connect(host, port, db))

        lone = conn()
        pid = rv.server_pid(lone)
        hot4 = [conn() for _ in range(4)]
        idle4 = [[conn() for _ in range(4)] for _ in range(8)]
        idle1 = [[conn()] for _ in range(8)]

        def burst(conns: list[rv.RespClient]) -> tuple[float, float]:
            return cold_burst(conns, [get(rng) for _ in conns], pid)

        out: dict[str, list[tuple[float, float]]] = {k: [] for k in ("lone", "hot4", "idle4", "idle1")}
        for n in range(rounds):
            out["lone"].append(burst([lone]))
            out["hot4"].append(burst(hot4))
            out["idle4"].append(burst(idle4[n % 8]))
            out["idle1"].append(burst(idle1[n % 8]))
    return {k: np.array(v[8:]) for k, v in out.items()}  # the first round of each set idled less


def warm_chains(host: str, port: int, chains: int, rng: np.random.Generator, length: int = 8) -> np.ndarray:
    """One row per chain: each round trip less its send and receive (the replay's probe
    timing, ``time_probe``), us."""
    out = np.zeros((chains, length))
    with TimedConnection(host, port) as conn:
        for n in range(chains):
            time.sleep(0.01)
            for k in range(length):
                out[n, k] = conn.round_trip_s(get(rng)) * 1e6
    return out


def mixed_turns(host: str, port: int, db: int, rounds: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per kind of turn, one row per sample: (first reply us, server CPU us)."""
    n = 0

    def mget() -> bytes:
        return rv.encode("MGET", *[rv.filler_key(rng, FILLER_KEYS) for _ in range(8)])

    def mset() -> bytes:
        nonlocal n
        n += 1
        return rv.encode("MSET", *[x for j in range(8) for x in (rv.key(rv.PROBE + 8 * n + j), rv.value(j))])

    kinds = {"get": lambda: [get(rng)], "mget": lambda: [mget()], "mset": lambda: [mset()],
             "get+get": lambda: [get(rng), get(rng)], "mget+get": lambda: [mget(), get(rng)],
             "mget+mset+2get": lambda: [mget(), mset(), get(rng), get(rng)]}
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with ExitStack() as st:
        conns = [st.enter_context(rv.connect(host, port, db)) for _ in range(4)]
        pid = rv.server_pid(conns[0])
        for _ in range(rounds):
            for k, make in kinds.items():
                payloads = make()
                out[k].append(cold_burst(conns[:len(payloads)], payloads, pid))
    return {k: np.array(v[8:]) for k, v in out.items()}


def shifts(turns: dict[str, np.ndarray], x: str, base: str) -> tuple[float, float]:
    """(first reply, server CPU) shift of kind ``x`` above ``base`` (Hodges-Lehmann), us."""
    a, b = turns[x], turns[base]
    lat, cpu = (rv.shift_estimate(a[:, i].tolist(), b[:, i].tolist()) for i in (0, 1))
    return lat, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--chains", type=int, default=300)
    args = ap.parse_args()
    s = RedisValidationSettings()
    rng = np.random.default_rng(11)
    with rv.pinned_server(s, FILLER_KEYS) as (host, port, db, sched):
        turns = cold_turns(host, port, db, args.rounds, rng)
        chains = warm_chains(host, port, args.chains, rng)
        mixed = mixed_turns(host, port, db, args.rounds, rng)
    print(f"scheduling: {sched}; {args.rounds} rounds, {args.chains} chains")
    print("cold turns (after a 10 ms sleep): first reply / server CPU, p50, us")
    for k, a in turns.items():
        print(f"  {k:6s} {np.median(a[:, 0]):7.1f} / {np.nanmedian(a[:, 1]):7.1f}")
    for name, x, base in (("4 GETs (45 ms idle) less a lone GET", "hot4", "lone"),
                          ("4 GETs on connections idle 0.35 s less 45 ms", "idle4", "hot4"),
                          ("1 GET on a connection idle 0.35 s less a lone GET", "idle1", "lone")):
        lat, cpu = shifts(turns, x, base)
        print(f"  {name}: {lat:+.1f} / {cpu:+.1f}")
    print("round trips after a 10 ms sleep, less send and receive, p50 by place, us")
    print("  " + " ".join(f"{v:6.1f}" for v in np.median(chains, axis=0)))
    print("cold turns by their commands' kinds: first reply / server CPU, p50, us")
    for k, a in mixed.items():
        print(f"  {k:15s} {np.median(a[:, 0]):7.1f} / {np.nanmedian(a[:, 1]):7.1f}")
    for x, base in (("get+get", "get"), ("mget+get", "mget"), ("mget+mset+2get", "mget")):
        lat, cpu = shifts(mixed, x, base)
        print(f"  {x} less {base}: {lat:+.1f} / {cpu:+.1f}")
    return 0


if __name__ == "__main__":
    cli(main, prog="redis_cold_turns")  # a missing redis-server: one line, exit 2
