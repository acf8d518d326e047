"""Settings of ``+experiment=redis_validation`` (``mode: redis_validation``): the schema,
its defaults (written only here) and the check run before it starts. Kept apart from
:mod:`kvsim.bench.redis_validation` so that checking a config imports no pandas."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

from omegaconf import DictConfig

from kvsim.errors import ConfigError
from kvsim.ranges import OneOf, PosFloat, PosInt, Range, Seconds


@dataclass
class RedisValidationSettings:
    """``experiment.*`` of ``+experiment=redis_validation``: every setting and its default."""

    redis_url: str | None = None  # redis://HOST:PORT[/DB]; None: start redis-server on a free loopback port
    redis_server: str = "redis-server"  # the binary to start
    speedups: list[PosFloat] = field(default_factory=lambda: [1.0, 10.0, 100.0])  # arrivals divided by each
    connections: PosInt = 4  # client connections (one command in flight on each)
    max_requests: PosInt = 200  # a prefix of the trace (200 conversation requests: 72 s at x1)
    # requests replayed at each speed-up, in experiment.speedups' order (each a prefix of the
    # trace); None: max_requests at each. A short replay (x10, x100) can afford more commands
    # per cell than the real-time one within the same wall time
    requests: list[PosInt] | None = None
    preload_keys: Annotated[int, Range(ge=0)] | None = None  # filler keys; None: the trace's distinct blocks
    calibrate_requests: Annotated[int, Range(ge=10)] = 2000
    sim_runs: PosInt = 5  # simulated replays pooled per speed-up (seeds 0..)
    # each speed-up's stream replayed this many times (in rounds: every speed-up once per
    # round), each replay simulated sim_runs times with its own measured inputs; a cell
    # compares the latencies of all its replays with those of all their simulations
    replays: PosInt = 1
    probe_gap_s: Seconds = 0.005  # probes only while idle and the next arrival is this far
    probe_every_s: Seconds = 0.01  # a pair of probes (after a sleep, then right after) per this interval
    nice: Annotated[int, Range(ge=-20, le=19)] | None = -20  # priority of the client and the started server
    # SCHED_FIFO priority of the client and the started server (where permitted; None: normal
    # scheduling at ``nice``): on their one CPU each loop then runs until it blocks, no other
    # job preempts them, and timed waits wake on time (no timer slack)
    rt_priority: Annotated[int, Range(ge=1, le=99)] | None = 10
    cpu: int | None = -1  # pin the client and the started server to this CPU (-1: the last; None: don't)
    client: Annotated[str, OneOf("measured", "drawn")] = "measured"  # each command's own client costs, or drawn
    # each replay's own command times (INFO commandstats over it, per command, as a factor of
    # the calibration's back-to-back lines); false: the calibration's
    burst_costs: bool = True
    # a warm server turn inside a burst at its cost on the server's CPU counters over each
    # replay (beyond the model's lone turn: RedisIndex turn_extra_s); false: the lone turn's
    burst_turns: bool = True
    # what a command on an idle connection costs the server beyond a warm one (RedisIndex
    # idle_knots), measured around the replays: a GET on each connection after idle gaps of
    # these lengths (the first is the baseline) while probes keep the server busy, the server
    # thread's CPU per burst (idle_samples per gap, staggered over idle_seconds; half before
    # the replays and half after, the term their mean); fewer than two gaps: no such term
    # (each half the longest gap, then half of idle_seconds: 12 s as set; 18 s with the 12 s
    # used up to the fifteenth pass, docs/redis_validation.md); between them as many lone GETs
    # on connections of their own (RedisIndex lone_idle_knots, and against the bursts at the
    # first gap cold_per_command_s)
    idle_gaps_s: list[PosFloat] = field(default_factory=lambda: [0.03, 0.3, 3.0])
    # the term from the server thread's CPU per burst (cpu) or from the time between a
    # burst's last send and its first reply (latency); both are measured and logged, the
    # other kept in the fit json (docs/redis_validation.md, sixteenth pass: why cpu)
    idle_by: Annotated[str, OneOf("cpu", "latency")] = "cpu"
    # a command alone in its turn at the lone GETs' own idle cost (RedisIndex lone_idle_knots)
    # instead of a burst's per command; measured and kept in the fit json either way. Off by
    # default: one GET's shift is noisy (0 to 30 us at 3 s across runs) and it moved nothing
    # but the held-out agentic inserts, both ways (docs/redis_validation.md, seventeenth pass)
    lone_idle: bool = False
    # a warm turn's round trip by the client's work since the server's last turn (RedisIndex
    # work_knots), from the warm probes at their own work (their cold probe's reply parsed,
    # their command encoded); false: every warm turn at the probes' median
    client_work: bool = True
    idle_samples: PosInt = 32
    idle_seconds: PosFloat = 6.0
    # a diagnostic: the server thread's CPU over each of the client's waits for replies, by
    # its place in the burst (kvsim.calibrate.replay_client turn_cpu), in the log and fit json
    turn_profile: bool = False
    # keep each speed-up's replay and fit inputs (redis_validation_replays.pkl), so that the
    # model can be simulated again on them with other parameters, without a server:
    # python -m kvsim.bench.redis_refit RUN_DIR --set KEY=VALUE
    capture: bool = False
    # MGET and MSET calibrated at these key counts too (beyond 1 and 16; each at most the keys
    # loaded): the model's time per key, piecewise linear between them
    large_sizes: list[PosInt] = field(default_factory=lambda: [256, 4096])

    def counts(self) -> list[int]:
        """The requests replayed at each speed-up, in ``speedups``' order."""
        return [int(n) for n in self.requests] if self.requests is not None else [int(self.max_requests)] * len(self.speedups)

    def pinned_cpu(self) -> int | None:
        """The CPU the client and a started server share (None: not pinned)."""
        import os

        if self.cpu is None or self.redis_url:
            return None
        cpus = sorted(os.sched_getaffinity(0))
        return cpus[self.cpu] if -len(cpus) <= self.cpu < len(cpus) else None


# Connections the idle measurement may open (a process's file descriptors are often capped at 1,024)
IDLE_CONNECTIONS_MAX = 512


def idle_halves(samples: int, seconds: float) -> tuple[int, float]:
    """Samples per gap and seconds of each of the idle measurement's two halves (before the
    replays and after): what idle_samples and idle_seconds come to in one."""
    return max(1, samples // 2), seconds / 2


def idle_sets(gap_s: float, samples: int, seconds: float) -> int:
    """Sets of connections that ``samples`` staggered samples of ``gap_s`` over ``seconds``
    take in turn (kvsim.bench.redis_validation.idle_burst_plan): the fewest whose turn comes
    round after more than the gap, so that a set's next gap starts after its last sample
    (the small tolerance: a gap a whole number of steps long, 0.3 s in 0.1 s steps, divides
    to just under it in floating point)."""
    return math.floor(gap_s / (seconds / samples) * (1 + 1e-9)) + 1


def check_config(cfg: DictConfig) -> None:
    """Before the run: the index is the Redis model (its commands are what is replayed)."""
    if cfg.index.get("name") != "redis":
        raise ConfigError(f"index: redis_validation replays the Redis model's commands: index=redis, got index={cfg.index.get('name')}")
    if cfg.index.get("pipeline") or cfg.index.get("range_command") != "mget":
        raise ConfigError("index: redis_validation needs index.pipeline=false and index.range_command=mget")
    exp = cfg.get("experiment") or {}
    if not exp.get("speedups"):
        raise ConfigError("experiment.speedups: at least one speed-up")
    counts = exp.get("requests")
    if counts is not None and len(counts) != len(exp["speedups"]):
        raise ConfigError(f"experiment.requests: one count per entry of experiment.speedups ({len(exp['speedups'])}), "
                          f"got {len(counts)}")
    gaps = sorted(set(exp.get("idle_gaps_s") or []))
    if len(gaps) > 1:
        d = RedisValidationSettings()  # (the ranges are checked before this: positive counts and seconds)
        n = int(exp.get("idle_samples", d.idle_samples))
        secs, conns = float(exp.get("idle_seconds", d.idle_seconds)), int(exp.get("connections", d.connections))
        half_n, half_s = idle_halves(n, secs)  # (a half's sets are open at once; the other's later)
        # bursts on every connection, and lone GETs on sets of one (with more than one connection)
        total = sum(idle_sets(g, half_n, half_s) for g in gaps) * (conns + (conns > 1))
        if total > IDLE_CONNECTIONS_MAX:
            raise ConfigError(f"experiment.idle_gaps_s: {n} samples of a {gaps[-1]:g} s gap in {secs:g} s "
                              f"(experiment.idle_samples, experiment.idle_seconds) need {idle_sets(gaps[-1], half_n, half_s)} sets "
                              f"of {conns} connections (and one for the lone GETs), {total} in all over the gaps; "
                              f"at most {IDLE_CONNECTIONS_MAX}: "
                              "fewer samples, more seconds or shorter gaps")
