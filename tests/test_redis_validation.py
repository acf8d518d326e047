"""+experiment=redis_validation: the command stream, the open-loop client, the Redis model's
client side worked out by hand, and the validation itself against a real redis-server.

Tests that need redis-server skip when it is not installed, unless KVSIM_REQUIRE_REDIS=1
(set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import simpy

from kvsim.app import build_trace, run
from kvsim.bench.redis_validation import (
    CSV_COLUMNS,
    IdleCosts,
    RedisValidationSettings,
    SpeedupResult,
    burst_factors,
    burst_turn_extra,
    busy_until,
    cold_per_command,
    command,
    compare,
    connect,
    cpu_per_turn,
    fit_client,
    idle_burst_plan,
    idle_knots,
    io_slopes,
    key_spaces,
    loop_per_command,
    mean_knots,
    median_gap,
    net_probes,
    paired_lateness,
    pinned_server,
    plan_stream,
    pool,
    probe_factors,
    probe_lateness,
    probe_turn_cpu,
    probe_work,
    redis_server,
    replay_name,
    scaled_server,
    server_pid,
    shift_estimate,
    time_burst,
    turn_profile,
    turns_per_command,
    work_knots,
)
from kvsim.bench.validation_settings import idle_halves, idle_sets
from kvsim.calibrate.redis_bench import commandstats
from kvsim.calibrate.replay_client import (
    Probe,
    ReplayResult,
    TimedConnection,
    Unit,
    cpu_line_s,
    cpu_mark,
    machine_share,
    process_cpu,
    replay_open_loop,
    reply_end,
    server_counts,
    server_thread_cpu,
    server_thread_switches,
)
from kvsim.calibrate.resp import RespClient, encode
from kvsim.index.base import Op, OpRecorder
from kvsim.index.costs import CostDist
from kvsim.index.redis import RedisIndex
from kvsim.index.redis_loop import LoopCharges
from kvsim.trace.mooncake import read_mooncake_jsonl

from .conftest import require_resource

TOL_P50, TOL_P99 = 0.10, 0.20  # the issue's: simulated p50 within 10%, p99 within 20% of measured


def need_redis() -> None:
    require_resource("KVSIM_REQUIRE_REDIS")


def model(**kw: object) -> RedisIndex:
    base = dict(tcp_rtt_s=20e-6, get_s=1e-6, mget_base_s=1e-6, mget_per_key_s=0.1e-6, mset_base_s=1e-6,
                mset_per_key_s=0.1e-6, del_base_s=1e-6, del_per_key_s=0.1e-6, tails=False)
    return RedisIndex(**{**base, **kw})  # type: ignore[arg-type]


def test_reply_parser_finds_complete_replies_only() -> None:
    assert reply_end(b"+OK\r\n") == 5
    assert reply_end(b"$-1\r\n") == 5
    assert reply_end(b"$3\r\nabc\r\n") == 9 and reply_end(b"$3\r\nab") == -1
    arr = b"*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n"
    assert reply_end(arr) == len(arr)
    assert all(reply_end(arr[:i]) == -1 for i in range(1, len(arr)))
    assert reply_end(arr + b"+OK\r\n") == len(arr)


def test_the_stream_is_the_models_commands(embedded_trace) -> None:  # type: ignore[no-untyped-def]
    ix = model(lookup="prefix")
    s = plan_stream(embedded_trace, ix, 50)
    ref = model(lookup="prefix")  # the same model, planned again: same commands, same keys
    hid, off = embedded_trace.hash_ids, embedded_trace.offsets
    u = 0
    for r in range(50):
        blocks = hid[off[r] : off[r + 1]].tolist()
        look = ref.plan_lookup(blocks)
        assert s.units[u].request == r and s.units[u].after == -1
        assert [(o.kind, o.keys) for o in s.ops[u]] == [(o.kind, o.keys) for o in look]
        assert s.units[u].payloads[0] == command(look[0], blocks[: look[0].keys])
        u += 1
        new = [b for b in blocks if not ref.contains(b)]
        if ref.plan_insert(new):
            assert s.units[u].after == u - 1 and s.units[u].kinds == ["insert"] and s.units[u].keys == [len(new)]
            u += 1
    assert u == len(s.units)
    assert s.arrival_s[0] == 0.0 and np.all(np.diff(s.arrival_s) >= 0)
    # timed from the arrival: each lookup's first command, and nothing else
    first = s.from_arrival()
    starts = np.cumsum([0] + [len(x.kinds) for x in s.units])[:-1]  # each unit's first command
    lookups = np.array([x.after == -1 for x in s.units])
    assert len(first) == starts[-1] + len(s.units[-1].kinds) and first.sum() == 50  # one per request
    assert first[starts[lookups]].all() and not first[starts[~lookups]].any()
    with pytest.raises(ValueError):
        plan_stream(embedded_trace, model(pipeline=True, lookup="all"), 5)


def calls(ix: RedisIndex, starts: list[float], insert_after: bool = False) -> OpRecorder:
    """One lookup call (a GET) per start time through ``ix`` (and, with ``insert_after``,
    an MSET of its block when it is done): the recorder."""
    ix.recorder = rec = OpRecorder()
    env = simpy.Environment()

    def call(at: float):  # type: ignore[no-untyped-def]
        if at:
            yield env.timeout(at)
        yield from ix.execute(env, [ix.plan_get(1)])
        if insert_after:
            yield from ix.execute(env, ix.plan_insert([1]))

    for at in starts:
        env.process(call(at))
    env.run()
    return rec


def test_the_models_client_by_hand() -> None:
    """Two connections, a client thread (send 5 us, receive 5 us per command), a server
    thread: three single-GET lookups at once (units 0, 1 on connections 0, 1; unit 2 waits
    for connection 0)."""
    rec = calls(model(connections=2, client_send_s=5e-6, client_recv_s=5e-6, lookup="all"), [0.0] * 3)
    # A: send 0-5, half rtt -> 15, GET 1 us -> 16, half rtt -> 26, receive 26-31
    # B: send 5-10 (after A's), 20, GET -> 21, 31, receive 31-36 (after A's receive)
    # C: connection 0 free at 31; send 36-41 (after B's receive), 51, 52, 62, receive 62-67
    assert rec.latency_s == pytest.approx([31e-6, 36e-6, 67e-6])


def test_the_server_event_loop_and_key_growth_cost_time() -> None:
    base = model(lookup="all").unloaded_s(model().plan_get(1))
    assert model(io_s=13e-6, lookup="all").unloaded_s(model().plan_get(1)) == pytest.approx(base + 13e-6)
    with pytest.raises(ValueError, match="connections >= 1"):
        model(shared_cpu=True)


def test_the_event_loops_on_one_cpu_by_hand() -> None:
    """Client and server loops on one CPU (kvsim.index.redis_loop), worked out by hand: two
    connections, send 5 us, receive 5 us, a server turn 20 us + 1 us per GET.
    Three GETs at 0 (A, B on connections 0, 1; C queued on 0): the client sends A, B (0-10);
    the server's turn runs both (10-32); the client takes A's reply (32-37) and sends C
    (37-42), takes B's (42-47); the server runs C (47-68); C's reply 68-73."""

    def loops(connections: int) -> RedisIndex:
        return model(connections=connections, shared_cpu=True, client_send_s=5e-6, client_recv_s=5e-6, lookup="all")

    assert calls(loops(2), [0.0] * 3).latency_s == pytest.approx([37e-6, 47e-6, 73e-6])

    # A unit that follows a reply (the insert after its lookup) is admitted in that reply's
    # turn: GET 0-5, server 5-26, reply 26-31; the MSET queued on the one connection is sent
    # 31-36, server 36-57.1 (20 + 1 + 0.1 per key), reply 57.1-62.1: 31.1 us after it was ready
    rec = calls(loops(1), [0.0], insert_after=True)
    assert rec.kind == ["get", "insert"]
    assert rec.latency_s == pytest.approx([31e-6, 31.1e-6])

    # The first server turn after the CPU idled draws the cold round trip (40 us here), the
    # others the warm one: two GETs at 0 on two connections (one cold turn: 10 + 40 + 2,
    # replies 52-57, 57-62), then one at 1 ms, after an idle CPU: cold again (5 + 41 + 5)
    ix = loops(2)
    ix.rtt_cold_draw = lambda: 40e-6
    assert calls(ix, [0.0, 0.0, 1e-3]).latency_s == pytest.approx([57e-6, 62e-6, 51e-6])


def test_a_cold_turn_is_drawn_at_the_level_the_wake_up_gives() -> None:
    """The case above with the cold round trip drawn at a level the client's wake-up chose
    (``RedisIndex.cold_level``; here a stub: level 0.1 of a distribution whose level q costs
    q x 100 us, so 10 us in place of the plain draw's 40): the two GETs' turn costs 10 + 10 + 2,
    replies 22-27 and 27-32. The level is used by that one cold turn only: the GET after the
    idle CPU asks again (level 0.2: 20 us, 5 + 20 + 1 + 5 = 31 us)."""

    class Cold:
        def __call__(self) -> float:
            return 40e-6

        def at(self, q: float) -> float:
            return q * 100e-6

    ix = model(connections=2, shared_cpu=True, client_send_s=5e-6, client_recv_s=5e-6, lookup="all")
    ix.rtt_cold_draw = Cold()  # type: ignore[assignment]
    levels = iter([0.1, 0.2])
    ix.cold_level = lambda late: next(levels)  # type: ignore[method-assign]
    assert calls(ix, [0.0, 0.0, 1e-3]).latency_s == pytest.approx([27e-6, 32e-6, 31e-6])


def test_the_cold_level_follows_the_wake_ups_as_a_gaussian_copula() -> None:
    """``cold_wake_corr`` rho: the cold round trip's quantile level is Phi(rho z + sqrt(1 -
    rho^2) e), z the wake-up lateness's own level as a normal score: rho 1 gives the
    lateness's level, -1 the mirror one, 0 no level (the plain draw, no random number
    used). Over 20,000 wake-ups drawn from their distribution the levels' Spearman
    correlation with the lateness is the copula's, (6 / pi) asin(rho / 2) (0.582 at 0.6)."""
    def ix(rho: float, admit: float = 50e-6) -> RedisIndex:
        m = model(tails=True, client_admit_s=admit, client_admit_p99_s=3 * admit, client_admit_p999_s=6 * admit,
                  cold_wake_corr=rho, rng=np.random.default_rng(3))
        m.use_measured(rtt_cold=CostDist(100e-6, 200e-6, 300e-6))
        return m

    one, mirror = ix(1.0), ix(-1.0)
    table = one.admit_draw.table
    assert table is not None
    for k in (10, 1000, 4096, 8000):
        assert abs(one.cold_level(table[k]) * 8192 - k) <= 1  # type: ignore[operator]
        assert abs(mirror.cold_level(table[k]) * 8192 - (8191 - k)) <= 1  # type: ignore[operator]
    none = ix(0.0)
    state = none.sampler.rng.bit_generator.state
    assert none.cold_level(table[100]) is None and none.sampler.rng.bit_generator.state == state
    assert ix(0.6, admit=0.0).cold_level(1e-6) is None  # a constant wake-up: nothing to follow
    m = ix(0.6)
    lates = np.array([m.admit_draw() for _ in range(20_000)])
    levels = np.array([m.cold_level(x) for x in lates])
    rho_s = pd.Series(lates).corr(pd.Series(levels), method="spearman")
    assert rho_s == pytest.approx(6 / np.pi * np.arcsin(0.3), abs=0.02)
    with pytest.raises(ValueError, match="cold_wake_corr"):
        ix(1.5)


def test_the_cold_wake_correlation_from_the_probes_by_hand() -> None:
    """``cold_wake_corr`` from the cold probes that followed a timed sleep: their lateness
    and network part ranked together. Twenty cold probes whose network part rises with the
    lateness: Spearman 1, copula 2 sin(pi / 6) = 1; falling: -1; the lateness's order
    shuffled with two pairs swapped (Spearman 1 - 6 x 4 / (20 x 399) = 0.99699):
    2 sin(pi 0.99699 / 6). A probe without a timed sleep before it (NaN) is left out;
    fewer than 20 left, or no lateness recorded: no correlation."""
    base = {"get_s": 1e-6, "mget_base_s": 1e-6, "mget_per_key_s": 0.2e-6, "mset_base_s": 1e-6, "mset_per_key_s": 0.6e-6}

    def replay(nets: list[float], lates: list[float] | None) -> ReplayResult:
        res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
        for net in nets:
            for cold in (True, False):
                res.probe_kind.append("get")
                res.probe_keys.append(1)
                res.probe_send_s.append(5e-6)
                res.probe_recv_s.append(5e-6)
                res.probe_rtt_s.append(11e-6 + (net if cold else 10e-6))
                res.probe_cold.append(cold)
        res.probe_late_s = list(lates) if lates is not None else []
        res.admit_late_s = [50e-6]
        return res

    nets = [(100 + 3 * k) * 1e-6 for k in range(20)]
    lates = [(20 + k) * 1e-6 for k in range(20)]
    assert fit_client(replay(nets, lates), base)[0]["cold_wake_corr"] == pytest.approx(1.0)
    assert fit_client(replay(nets, lates[::-1]), base)[0]["cold_wake_corr"] == pytest.approx(-1.0)
    swapped = lates[:]
    swapped[0], swapped[1], swapped[5], swapped[6] = swapped[1], swapped[0], swapped[6], swapped[5]
    rs = 1 - 6 * 4 / (20 * 399)
    assert fit_client(replay(nets, swapped), base)[0]["cold_wake_corr"] == pytest.approx(2 * np.sin(np.pi * rs / 6))
    assert "cold_wake_corr" not in fit_client(replay(nets, [float("nan")] + lates[1:]), base)[0]  # 19 left
    assert "cold_wake_corr" not in fit_client(replay(nets, None), base)[0]


def test_the_round_trips_come_from_the_probes_timed_without_reads() -> None:
    """Probe pairs alternately counted (the server's CPU read from /proc around each probe)
    and not: 40 pairs, GET, send and receive 5 us, the command 1 us; counted ones leave a
    network part of 60 us warm and 100 us cold, the others 50 and 110 us. The round trips
    are the others' (50 / 110 us), and so is the wake-up correlation (their lateness follows
    their network part; the counted ones' runs against it). With fewer than MIN_NET_PROBES
    of the others (or no record of which were counted), every probe is used."""
    base = {"get_s": 1e-6, "mget_base_s": 1e-6, "mget_per_key_s": 0.2e-6, "mset_base_s": 1e-6, "mset_per_key_s": 0.6e-6}

    def replay(pairs: int, counted_every: int | None) -> ReplayResult:
        res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
        for k in range(pairs):
            counted = counted_every is not None and k % counted_every == 0
            for cold in (True, False):
                net = (100e-6 if cold else 60e-6) if counted else (110e-6 if cold else 50e-6)
                res.probe_kind.append("get")
                res.probe_keys.append(1)
                res.probe_send_s.append(5e-6)
                res.probe_recv_s.append(5e-6)
                res.probe_rtt_s.append(11e-6 + net + k * 1e-9)  # (a spread, to rank)
                res.probe_cold.append(cold)
                res.probe_counted.append(counted)
            res.probe_late_s.append((-k if counted else k) * 1e-6)
        res.admit_late_s = [50e-6]
        return res

    fit, dists = fit_client(replay(80, 2), base)
    assert dists["rtt"].p50 == pytest.approx(50e-6, abs=0.1e-6) and dists["rtt_cold"].p50 == pytest.approx(110e-6, abs=0.1e-6)
    assert fit["cold_wake_corr"] == pytest.approx(1.0)
    assert net_probes(replay(80, 2)).tolist() == [False, False, True, True] * 40
    # 19 pairs not counted: too few, all used (the counted half's median, 60 us, is the p50's side)
    fit, dists = fit_client(replay(38, 2), base)
    assert dists["rtt"].p50 > 50.5e-6 and net_probes(replay(38, 2)).all()
    # a replay that does not say which were counted (a capture from before): all used
    old = replay(80, 2)
    del old.__dict__["probe_counted"]
    assert net_probes(old).all()
    # each cold probe's lateness in its place; the warm ones' NaN
    late = probe_lateness(old)
    assert late[::2].tolist() == old.probe_late_s and np.isnan(late[1::2]).all()


def test_a_server_turn_pays_its_own_part_once() -> None:
    """``turn_s``: the part of the event loop's ``io_s`` (measured one command per turn) that a
    turn pays once. Two connections, send 5 us, receive 5 us, round trip 20 us, GET 1 us,
    io_s 6 us of which turn_s 4 us. Three GETs at 0 (A, B on connections 0, 1; C queued on 0):
    A, B sent 0-10; their turn costs 20 + 4 + 2 x (6 - 4 + 1) = 30 (10-40), A's reply 40-45
    and C sent 45-50, B's reply 50-55; C's turn alone 20 + 4 + 2 + 1 = 27 (55-82), its reply
    82-87. Without turn_s the two-command turn costs 4 us more (34) and C's the same."""

    def loops(turn_s: float) -> RedisIndex:
        return model(connections=2, shared_cpu=True, client_send_s=5e-6, client_recv_s=5e-6, io_s=6e-6,
                     turn_s=turn_s, lookup="all")

    ix = loops(4e-6)
    assert ix.loop_charges() is None  # no loop before the first call
    assert calls(ix, [0.0] * 3).latency_s == pytest.approx([45e-6, 55e-6, 87e-6])
    # the event loop charged: 4 + 2 x 2 for the first turn, 4 + 2 for C's (no per-key terms)
    # two turns: A and B's (cold: the first after the CPU idled), then C's
    assert ix.loop_charges() == pytest.approx((14e-6, 3, 2, 1))
    assert calls(loops(0.0), [0.0] * 3).latency_s == pytest.approx([49e-6, 59e-6, 91e-6])
    with pytest.raises(ValueError, match="turn_s"):
        loops(7e-6)


def test_a_warm_turn_pays_the_burst_extra_and_a_cold_one_does_not() -> None:
    """``turn_extra_s`` 10 us on the case above: A and B's turn is the first after the CPU
    idled (cold: unchanged, 45 and 55 us), C's is warm: 27 + 10 = 37 us (55-92), its reply
    92-97. A negative extra lowers it (-5 us: C at 82); a turn never costs less than 0."""
    def loops(extra: float) -> RedisIndex:
        return model(connections=2, shared_cpu=True, client_send_s=5e-6, client_recv_s=5e-6, io_s=6e-6,
                     turn_s=4e-6, turn_extra_s=extra, lookup="all")

    assert calls(loops(10e-6), [0.0] * 3).latency_s == pytest.approx([45e-6, 55e-6, 97e-6])
    assert calls(loops(-5e-6), [0.0] * 3).latency_s == pytest.approx([45e-6, 55e-6, 82e-6])
    # at -1 s C's turn costs nothing: its reply 55-60
    assert calls(loops(-1.0), [0.0] * 3).latency_s[2] == pytest.approx(60e-6)


def test_a_command_on_an_idle_connection_pays_its_extra() -> None:
    """``idle_knots`` (10 ms: 0, 1 s: 8 us) on the turn_s case above. A and B are their
    connections' first commands (idle since ever: the last point, 8 us each), so their turn
    costs 30 + 16 = 46 us (10-56): A's reply 56-61, C sent 61-66 on connection 0, used 61 us
    before (under 10 ms: nothing), B's reply 66-71, C's turn 27 us (71-98), its reply 98-103.
    The extra is the event loop's (14 + 16 us charged). On one connection, a GET at 0 (first
    use: 37 + 8 = 45 us) and one 0.1 s later (idle 0.1 s less its 5 us send: a decade from
    each point, half of 8 us: 41 us)."""
    def loops(connections: int, knots: list[tuple[float, float]]) -> RedisIndex:
        return model(connections=connections, shared_cpu=True, client_send_s=5e-6, client_recv_s=5e-6, io_s=6e-6,
                     turn_s=4e-6, idle_knots=knots, lookup="all")

    knots = [(0.01, 0.0), (1.0, 8e-6)]
    ix = loops(2, knots)
    assert calls(ix, [0.0] * 3).latency_s == pytest.approx([61e-6, 71e-6, 103e-6])
    assert ix.loop_charges() == pytest.approx((30e-6, 3, 2, 1))
    assert calls(loops(1, knots), [0.0, 0.1]).latency_s == pytest.approx([45e-6, 41e-6], abs=1e-10)
    assert calls(loops(1, []), [0.0, 0.1]).latency_s == pytest.approx([37e-6, 37e-6])
    assert loops(1, knots).idle_extra(10.0) == pytest.approx(8e-6) and loops(1, knots).idle_extra(0.001) == 0.0
    with pytest.raises(ValueError, match="idle_knots"):
        loops(1, [(1.0, 1e-6), (0.1, 2e-6)])


def test_a_command_alone_in_its_turn_pays_the_lone_idle_extra() -> None:
    """``lone_idle_knots`` (10 ms: 0, 1 s: 2 us) beside ``idle_knots`` (8 us at 1 s) on the
    case above: on one connection each GET is alone in its turn and pays the lone term (first
    use 37 + 2 us, 0.1 s later 37 + 1); on two, A and B share a turn and pay ``idle_knots`` as
    before (61, 71, 103 us); a bad lone curve is refused."""
    def loops(connections: int, lone: list[tuple[float, float]] | None) -> RedisIndex:
        return model(connections=connections, shared_cpu=True, client_send_s=5e-6, client_recv_s=5e-6, io_s=6e-6,
                     turn_s=4e-6, idle_knots=[(0.01, 0.0), (1.0, 8e-6)], lone_idle_knots=lone, lookup="all")

    lone = [(0.01, 0.0), (1.0, 2e-6)]
    assert calls(loops(1, lone), [0.0, 0.1]).latency_s == pytest.approx([39e-6, 38e-6], abs=1e-10)
    assert calls(loops(2, lone), [0.0] * 3).latency_s == pytest.approx([61e-6, 71e-6, 103e-6])
    assert calls(loops(1, []), [0.0, 0.1]).latency_s == pytest.approx([37e-6, 37e-6])  # measured as nothing
    with pytest.raises(ValueError, match="lone_idle_knots"):
        loops(1, [(1.0, -1e-6)])


def test_a_cold_turns_further_commands_pay_their_extra() -> None:
    """``cold_per_command_s`` 3 us on the turn_s case above: A and B's turn is the first after
    the CPU idled, its second command pays 3 us (33 us, 10-43): A's reply 43-48, C sent 48-53,
    B's reply 53-58; C's turn is warm (27 us, 58-85), its reply 85-90. The extra is the
    event loop's (14 + 3 us charged). A lone cold GET pays nothing of it (37 us)."""
    def loops(connections: int) -> RedisIndex:
        return model(connections=connections, shared_cpu=True, client_send_s=5e-6, client_recv_s=5e-6, io_s=6e-6,
                     turn_s=4e-6, cold_per_command_s=3e-6, lookup="all")

    ix = loops(2)
    assert calls(ix, [0.0] * 3).latency_s == pytest.approx([48e-6, 58e-6, 90e-6])
    assert ix.loop_charges() == pytest.approx((17e-6, 3, 2, 1))
    assert calls(loops(1), [0.0]).latency_s == pytest.approx([37e-6])


def test_a_warm_turn_pays_for_the_clients_work_before_it() -> None:
    """``work_knots`` on the turn_s case above: C's turn is warm and comes 15 us of client
    work after the server's last turn ended (A's reply, C's send, B's reply: 40-55). At a
    point of 15 us and -3 us, it costs 24 us (55-79), its reply 79-84; a decade between two
    points (1.5 us: -3 us, 150 us: +5 us) gives +1 us (28: 55-83, reply 83-88); beyond the
    last point (1 us: 0, 10 us: +4 us) its value (31: 55-86, reply 86-91). The cold turn
    of A and B pays nothing (45, 55 us). The shift is the event loop's (14 - 3 us charged)."""
    def loops(knots: list[tuple[float, float]]) -> RedisIndex:
        return model(connections=2, shared_cpu=True, client_send_s=5e-6, client_recv_s=5e-6, io_s=6e-6,
                     turn_s=4e-6, work_knots=knots, lookup="all")

    ix = loops([(15e-6, -3e-6), (1.5e-3, 5e-6)])
    assert calls(ix, [0.0] * 3).latency_s == pytest.approx([45e-6, 55e-6, 84e-6])
    assert ix.loop_charges() == pytest.approx((11e-6, 3, 2, 1))
    assert calls(loops([(1.5e-6, -3e-6), (150e-6, 5e-6)]), [0.0] * 3).latency_s[2] == pytest.approx(88e-6)
    assert calls(loops([(1e-6, 0.0), (10e-6, 4e-6)]), [0.0] * 3).latency_s[2] == pytest.approx(91e-6)
    assert calls(loops([]), [0.0] * 3).latency_s[2] == pytest.approx(87e-6)  # none: as before
    # before the first point its value, and no work at all (the server's turn right after
    # its last) is before every point
    ix = loops([(10e-6, -2e-6), (1e-3, 6e-6)])
    assert ix.work_shift(1e-6) == ix.work_shift(0.0) == pytest.approx(-2e-6)
    assert ix.work_shift(100e-6) == pytest.approx(2e-6) and ix.work_shift(1.0) == pytest.approx(6e-6)
    with pytest.raises(ValueError, match="work_knots"):
        loops([(1e-3, 0.0), (1e-4, 1e-6)])
    with pytest.raises(ValueError, match="work_knots"):
        loops([(0.0, 0.0), (1e-4, 1e-6)])


def test_a_warm_probes_work_is_its_cold_probes_receive_and_its_own_send() -> None:
    """Pairs of a GET, an MGET and an MSET (cold then warm, receive 4 / 6 us, send 3 / 2 us):
    the warm GET's and MGET's work is 4 + 2 us; the MSET's unknown (its pair reads and deletes
    keys between them, untimed), and so is every cold probe's and a warm probe whose pair was
    cut (its cold probe of another kind)."""
    res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
    for kind, cold in (("get", True), ("get", False), ("range", True), ("range", False), ("insert", True),
                       ("insert", False), ("get", True), ("range", False)):
        res.probe_kind.append(kind)
        res.probe_keys.append(1)
        res.probe_send_s.append(3e-6 if cold else 2e-6)
        res.probe_recv_s.append(4e-6 if cold else 6e-6)
        res.probe_rtt_s.append(50e-6)
        res.probe_cold.append(cold)
    w = probe_work(res)
    assert w[[1, 3]] == pytest.approx([6e-6, 6e-6]) and np.isnan(w[[0, 2, 4, 5, 6, 7]]).all()


def test_the_work_knots_are_the_warm_probes_medians_by_work() -> None:
    """120 warm probes with work 10..1200 us (10 us apart) whose round trip is 40 us plus 5 us
    per decade of work: six bins of 20 by work, each knot at its median work and its median
    round trip less the median of all (the 60th and 61st probes: 605 us of work); cold probes
    and probes of unknown work left out. Fewer than two bins of MIN_NET_PROBES: no knots."""
    work = np.arange(1, 121) * 10e-6
    net = 40e-6 + 5e-6 * np.log10(work / 10e-6)
    n = len(work)
    cold = np.zeros(n, dtype=bool)
    knots = work_knots(np.r_[work, np.nan, 1e-3], np.r_[net, 1.0, 1.0], np.r_[~cold, True, False])
    mid = float(np.median(net))
    want = [(float(np.median(work[i:i + 20])), float(np.median(net[i:i + 20])) - mid) for i in range(0, n, 20)]
    assert np.array(knots) == pytest.approx(np.array(want))
    assert knots[0][1] < 0 < knots[-1][1]
    assert work_knots(work[:39], net[:39], ~cold[:39]) == []
    assert len(work_knots(work[:40], net[:40], ~cold[:40])) == 2


def test_the_idle_measurement_plan_spreads_every_gaps_samples() -> None:
    """Gaps 0.1 s and 1 s, 4 samples each over 2 s (one every 0.5 s): the 0.1 s samples at
    0.1, 0.6, 1.1, 1.6 s on one set (each preceded by its set's burst 0.1 s before); the 1 s
    samples at 1.25, 1.75, 2.25, 2.75 s (a half step later: the gaps do not coincide) need
    three sets in turn: two would put the sample at 2.25 s on the set that bursts at 1.25 s,
    its gap starting at that very burst; with three, the one at 2.75 s is set 1's again (its
    gap from 1.75 s, after its sample at 1.25 s). A gap a whole number of steps long in
    floating point (0.3 s in 0.1 s steps) takes one set more than it divides to."""
    plan, sets = idle_burst_plan([1.0, 0.1], samples=4, seconds=2.0)
    assert sets == 4 == idle_sets(1.0, 4, 2.0) + idle_sets(0.1, 4, 2.0)  # the config check's count
    assert idle_sets(0.3, 30, 3.0) == 4  # 0.3 / 0.1 is 2.9999999999999996 in floating point
    # the measurement runs in two halves (before and after the replays), one step apart as the whole
    assert idle_halves(32, 12.0) == (16, 6.0) and idle_halves(33, 12.0) == (16, 6.0) and idle_halves(1, 2.0) == (1, 1.0)
    _, sets = idle_burst_plan([0.03, 0.3, 3.0], samples=32, seconds=12.0)
    assert sets == 11 == sum(idle_sets(g, 32, 12.0) for g in (0.03, 0.3, 3.0))  # the defaults: 9 + 1 + 1
    measured = [(round(b.at_s, 6), b.conns, b.gap_s) for b in plan if b.gap_s is not None]
    assert measured == [(0.1, 0, 0.1), (0.6, 0, 0.1), (1.1, 0, 0.1), (1.25, 1, 1.0), (1.6, 0, 0.1),
                        (1.75, 2, 1.0), (2.25, 3, 1.0), (2.75, 1, 1.0)]
    assert [b.at_s for b in plan] == sorted(b.at_s for b in plan)
    # every measured burst: its set's previous burst exactly one gap before, and none between;
    # a set's next gap starts after its last sample (also where a gap is a whole number of steps)
    for p in (plan, idle_burst_plan([0.03, 0.3], samples=30, seconds=3.0)[0]):
        last: dict[int, float] = {}
        for b in p:
            if b.gap_s is not None:
                assert b.at_s - last[b.conns] == pytest.approx(b.gap_s)
            elif b.conns in last:
                assert b.at_s - last[b.conns] > 1e-6
            last[b.conns] = b.at_s


def test_a_gap_keeps_the_probe_busy_and_ends_awake_on_time() -> None:
    """``busy_until`` on a fake clock (each reading 1 us later, a ping 50 us, a sleep as long as
    asked): a ping every 10 ms while more than 5 ms is left, none after, and the return at the
    end, not before it and not a sleep's length after it."""
    now = [100.0]

    def clock() -> float:
        now[0] += 1e-6
        return now[0]

    def sleep(s: float) -> None:
        now[0] += s

    pings: list[float] = []

    def ping() -> None:
        pings.append(now[0])
        now[0] += 50e-6

    end = 100.0 + 0.1
    busy_until(end, ping, clock=clock, sleep=sleep)
    assert 100.1 <= now[0] < 100.1 + 1e-4
    assert 9 <= len(pings) <= 10
    assert all(0.0099 < b - a < 0.0102 for a, b in itertools.pairwise(pings))
    assert end - pings[-1] > 0.005
    pings.clear()
    busy_until(now[0] + 0.004, ping, clock=clock, sleep=sleep)  # shorter than the gap: no ping, awake to the end
    assert pings == []


def test_the_idle_term_is_the_mean_of_the_measurements_around_the_replays() -> None:
    """Before 0 / 2 / 6 us and after 0 / 4 / 3 us at 30 ms / 0.3 s / 3 s: 0 / 3 / 4.5 us; one
    side not measured (a server whose thread cannot be read): the other as it is."""
    before, after = [(0.03, 0.0), (0.3, 2e-6), (3.0, 6e-6)], [(0.03, 0.0), (0.3, 4e-6), (3.0, 3e-6)]
    got = mean_knots(before, after)
    assert [g for g, _ in got] == [0.03, 0.3, 3.0] and [x for _, x in got] == pytest.approx([0.0, 3e-6, 4.5e-6])
    assert mean_knots(before, []) == before and mean_knots([], after) == after and mean_knots([], []) == []


def test_the_idle_costs_before_and_after_are_averaged() -> None:
    """Both ways of measuring averaged point by point, lone knots too; a cold burst's further
    command the mean of the halves that measured it (one alone where the other did not)."""
    a = IdleCosts({"cpu": [(0.03, 0.0), (0.3, 2e-6)]}, {"cpu": [(0.03, 0.0), (0.3, 4e-6)]}, {"cpu": 10e-6, "latency": 12e-6})
    b = IdleCosts({"cpu": [(0.03, 0.0), (0.3, 4e-6)]}, {"cpu": [(0.03, 0.0), (0.3, 6e-6)]}, {"cpu": 14e-6})
    got = a.mean(b)
    assert [g for g, _ in got.knots["cpu"]] == [g for g, _ in got.lone["cpu"]] == [0.03, 0.3]
    assert [x for _, x in got.knots["cpu"]] == pytest.approx([0.0, 3e-6]) and [x for _, x in got.lone["cpu"]] == pytest.approx([0.0, 5e-6])
    assert got.further == pytest.approx({"cpu": 12e-6, "latency": 12e-6})


def test_a_cold_turns_further_command_less_the_warm_charges() -> None:
    """A cold burst's further GET measured at 10 us; the model charges a warm turn's further
    GET its event loop less the turn's part, 6 + 0.5 (a key) + 0.25 (a value) - 4 us, and the
    command, 1 us: 3.75 us, so the term is 6.25 us. Not measured: None."""
    params = dict(tcp_rtt_s=20e-6, get_s=1e-6, mget_base_s=1e-6, mget_per_key_s=0.1e-6, mset_base_s=1e-6,
                  mset_per_key_s=0.1e-6, del_base_s=1e-6, del_per_key_s=0.1e-6, io_s=6e-6, turn_s=4e-6,
                  io_per_key_s=0.5e-6, io_per_value_s=0.25e-6, keys_held=1e5, scale_1k_keys=0.8, shared_cpu=True,
                  client_send_p99_x=2.0)
    assert cold_per_command(10e-6, params) == pytest.approx(6.25e-6)
    assert cold_per_command(None, params) is None


def test_the_idle_shift_is_the_median_of_pairwise_differences() -> None:
    """Hodges-Lehmann: base 40, 42, 44 and x 50, 52, 90 differ by 6, 8, 10, 8, 10, 12, 46,
    48, 50: median 10. Base 40, 41, 42, 90, 95 and x 50..54: 10 differences of -45..-36 and
    15 of 8..14 (8, 9, 9, 10, ...): the 13th of 25 is 9 -- not the difference of the
    medians (52 - 42 = 10). A sample against itself: 0."""
    assert shift_estimate([50, 52, 90], [40, 42, 44]) == 10.0
    assert shift_estimate([50, 51, 52, 53, 54], [40, 41, 42, 90, 95]) == 9.0
    assert shift_estimate([3.0, 1.0, 7.0, 2.0], [3.0, 1.0, 7.0, 2.0]) == 0.0


def test_the_idle_knots_by_hand() -> None:
    """Bursts of 4 commands: 40, 42, 44 us after 30 ms, 50, 52, 90 after 0.3 s (a shift of
    10 us: 2.5 a command), 38, 40 after 3 s (below the baseline: 0, never negative); the gaps
    in order, the shortest the baseline at 0. The same function turns either measurement
    (the server thread's CPU or the first reply's time) into the model's term."""
    got = idle_knots({3.0: [38e-6, 40e-6], 0.03: [40e-6, 42e-6, 44e-6], 0.3: [50e-6, 52e-6, 90e-6]}, 4)
    assert [g for g, _ in got] == [0.03, 0.3, 3.0]
    assert [x for _, x in got] == pytest.approx([0.0, 2.5e-6, 0.0])


def test_a_burst_is_timed_to_its_first_reply_with_the_servers_cpu() -> None:
    """Two connections, one command each: a script of about 3 ms and a GET sent after it. The
    server thread's CPU over the burst holds the script's (over 1 ms); the time to the first
    reply is positive and inside the call (how much of the script it holds depends on where
    the unpinned server ran while the GET was sent: 1.4 ms once on two CPUs); a server pid
    that cannot be read gives no CPU, the time still."""
    need_redis()
    spin = encode("EVAL", "local i = 0 while i < 300000 do i = i + 1 end return 0", "0")
    settings = RedisValidationSettings(nice=None, cpu=None, rt_priority=None)
    with redis_server(settings) as (h, p, db), connect(h, p, db) as a, connect(h, p, db) as b:
        pid = server_pid(a)
        t0 = time.perf_counter()
        first, cpu = time_burst([a, b], [spin, encode("GET", "x")], pid)
        wall = time.perf_counter() - t0
        assert pid is not None and cpu is not None and cpu > 1e-3 and 0 < first < wall and wall > 1e-3
        first, cpu = time_burst([a, b], [encode("GET", "x"), encode("GET", "y")], None)
        assert cpu is None and 0 < first < 0.5


def test_the_burst_turn_extra_by_hand() -> None:
    """Probes' own turns on the server: 20 GETs at 80 us cold, 20 at 22 us warm (a 32-key
    MGET, beyond NET_MAX_KEYS, left out); the GET 2 us, io_s 11 us + 0.5 us per key and per
    value: the round trip's server share 8 us warm, 66 us cold. The stream: 10 ms of CPU over
    1 s, 2 ms in commands, idle 1 ms/s, 10 readings at 11 + 8 us: 6.81 ms. The model charged
    3 ms of event loop over 110 turns, 10 of them cold: 3 + 100 x 8 us + 10 x 66 us = 4.46 ms;
    the extra per warm turn (6.81 - 4.46) / 100 = 23.5 us. Two runs: their mean. Too few
    small probes of either kind, or no stream CPU: None."""
    res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
    base = {"io_s": 11e-6, "get_s": 2e-6, "mget_base_s": 1e-6, "mget_per_key_s": 1e-6, "mset_base_s": 1e-6,
            "mset_per_key_s": 1e-6}
    slopes = (0.5e-6, 0.5e-6)
    ch = LoopCharges(3e-3, 400, 110, 10)
    assert burst_turn_extra(res, [ch], base, slopes, 1e-3) is None  # no probes, no stream CPU
    res.probe_kind = ["get"] * 40 + ["range"]
    res.probe_keys = [1] * 40 + [32]
    res.probe_cold = [True] * 20 + [False] * 21
    res.probe_server_cpu_s = [80e-6] * 20 + [22e-6] * 20 + [1e-3]
    res.stream_cpu_s, res.stream_usec_s, res.stream_window_s, res.stream_windows = 10e-3, 2e-3, 1.0, 10
    assert burst_turn_extra(res, [ch], base, slopes, 1e-3) == pytest.approx(23.5e-6)
    ch2 = LoopCharges(3.2e-3, 400, 120, 10)  # (6.81 - 3.2 - 0.88 - 0.66) / 110
    assert burst_turn_extra(res, [ch, ch2], base, slopes, 1e-3) == pytest.approx((23.5e-6 + 2.07e-3 / 110) / 2)
    assert burst_turn_extra(res, [], base, slopes, 1e-3) is None
    res.probe_cold = [True] * 19 + [False] * 22  # 19 cold probes: too few
    assert burst_turn_extra(res, [ch], base, slopes, 1e-3) is None


def test_the_server_cpu_per_turn_by_hand() -> None:
    """Stream: 5 ms of CPU over 100 ms, 1 ms in commands, idle 2 ms/s (0.2 ms), 2 readings at
    10 us: 3.78 ms over 90 turns, 42 us each. Probe pairs: 3 ms over 500 ms, 0.1 ms in
    commands, 1 ms idle, 10 pairs' readings 0.1 ms: 1.8 ms over 40 turns, 45 us each. Not
    measured (no context switches): None."""
    res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
    assert cpu_per_turn(res, 2e-3, 10e-6) == (None, None)
    res.stream_cpu_s, res.stream_usec_s, res.stream_window_s, res.stream_windows, res.stream_switches = (
        5e-3, 1e-3, 0.1, 2, 90)
    res.pair_cpu_s, res.pair_window_s, res.probe_pairs, res.pair_switches = 3e-3, 0.5, 10, 40
    res.probe_server_s = {"get": 0.06e-3, "info": 0.04e-3}
    assert cpu_per_turn(res, 2e-3, 10e-6) == pytest.approx((42e-6, 45e-6))


def test_the_server_thread_counters_from_proc() -> None:
    """This process's own main thread: its context switches grow when it sleeps; no such
    process: None."""
    import os
    import time

    before, cpu0 = server_thread_switches(os.getpid()), server_thread_cpu(os.getpid())
    time.sleep(0.01)
    sum(range(200_000))  # some CPU
    after, cpu1 = server_thread_switches(os.getpid()), server_thread_cpu(os.getpid())
    assert before is not None and after is not None and after > before
    assert cpu0 is not None and cpu1 is not None and cpu1 > cpu0
    assert server_thread_switches(2**22 + 12345) is None and server_thread_cpu(2**22 + 12345) is None


def test_a_lone_probes_turn_by_hand() -> None:
    """The median server CPU of GET probes' turns, the pairs' first (cold) and second (warm);
    other kinds and unmeasured turns (NaN) left out; none measured: None."""
    res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
    assert probe_turn_cpu(res) == {"cold_get_s": None, "warm_get_s": None}
    res.probe_kind = ["get", "get", "get", "get", "range", "range", "get", "get"]
    res.probe_cold = [True, False] * 4
    res.probe_server_cpu_s = [90e-6, 20e-6, 70e-6, 30e-6, 1.0, 1.0, math.nan, 25e-6]
    assert probe_turn_cpu(res) == pytest.approx({"cold_get_s": 80e-6, "warm_get_s": 25e-6})


def test_the_event_loop_per_command_by_hand() -> None:
    """A replay's stream stretches: 9.91 ms of CPU over 50 ms, 2 ms of it in commands, an idle
    rate of 2 ms/s (0.1 ms), 101 calls in 1 stretch (its INFO reading at io_s = 10 us): 7.8
    ms left for 100 commands, 78 us each; nothing measured (no INFO cpu): None."""

    def replay() -> ReplayResult:
        return ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))

    res = replay()
    res.stream_cpu_s, res.stream_usec_s, res.stream_window_s, res.stream_calls, res.stream_windows = (
        9.91e-3, 2e-3, 50e-3, 101, 1)
    assert loop_per_command(res, 2e-3, 10e-6) == pytest.approx(78e-6)
    assert loop_per_command(replay(), 2e-3, 10e-6) is None


def test_each_replay_writes_keys_new_to_the_server(embedded_trace) -> None:  # type: ignore[no-untyped-def]
    s = plan_stream(embedded_trace, model(lookup="prefix"), 30)
    assert s.units_in(0) is s.units
    moved = s.units_in(2)
    shift = 2 << 64
    for u, v, ops, ids in zip(s.units, moved, s.ops, s.ids, strict=True):
        assert (v.request, v.kinds, v.keys, v.after) == (u.request, u.kinds, u.keys, u.after)
        assert v.payloads == [command(op, [i + shift for i in x]) for op, x in zip(ops, ids, strict=True)]
        assert all(a != b for a, b in zip(u.payloads, v.payloads, strict=True))
    assert s.keys_in(2) == [i + shift for i in s.window_keys]


def test_the_event_loop_per_key_and_per_value_from_probes() -> None:
    """Probes whose round trip less send, receive and command is 20 us + 0.3 us per key +
    0.5 us per value returned (MSET returns none): the fit gives 0.3 and 0.5 back."""
    base = {"get_s": 1e-6, "mget_base_s": 1e-6, "mget_per_key_s": 0.2e-6, "mset_base_s": 1e-6, "mset_per_key_s": 0.6e-6}
    res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
    rng = np.random.default_rng(0)
    for kind, cmd in (("get", lambda n: 1e-6), ("range", lambda n: 1e-6 + 0.2e-6 * n), ("insert", lambda n: 1e-6 + 0.6e-6 * n)):
        for n in ([1] if kind == "get" else [1, 4, 16, 64]):
            for _ in range(21):
                values = n if kind != "insert" else 0
                path = 20e-6 + 0.3e-6 * n + 0.5e-6 * values + cmd(n)
                send, recv = rng.uniform(5e-6, 9e-6, 2)
                res.probe_kind.append(kind)
                res.probe_keys.append(n)
                res.probe_send_s.append(float(send))
                res.probe_recv_s.append(float(recv))
                res.probe_rtt_s.append(float(send + recv + path))
                res.probe_cold.append(False)
    per_key, per_value = io_slopes([res], base)
    assert (per_key, per_value) == pytest.approx((0.3e-6, 0.5e-6), rel=1e-6)


PROBE_BASE = {"get_s": 1e-6, "mget_base_s": 1e-6, "mget_per_key_s": 0.2e-6, "mset_base_s": 1e-6, "mset_per_key_s": 0.6e-6,
              "io_s": 10e-6}


def probe_replay(sizes: dict[str, list[int]], extra_per_key: dict[str, float]) -> ReplayResult:
    """A cold and a warm probe of each size of each kind, whose round trip is send and receive
    (5 us each), the event loop (``io_s``), the command at ``PROBE_BASE``'s lines, 10 us (warm)
    or 90 us (cold), and ``extra_per_key[kind]`` a key past 16 keys (what the lines miss)."""
    res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
    per_key = {"range": PROBE_BASE["mget_per_key_s"], "insert": PROBE_BASE["mset_per_key_s"]}
    for kind, ns in sizes.items():
        for n in ns:
            for cold in (True, False):
                net = (90e-6 if cold else 10e-6) + extra_per_key.get(kind, 0.0) * max(n - 16, 0)
                res.probe_kind.append(kind)
                res.probe_keys.append(n)
                res.probe_send_s.append(5e-6)
                res.probe_recv_s.append(5e-6)
                res.probe_rtt_s.append(10e-6 + 1e-6 + per_key[kind] * n + 10e-6 + net)
                res.probe_cold.append(cold)
    return res


def test_the_round_trip_comes_from_the_small_probes() -> None:
    """Probes whose round trip less send, receive, command and event loop is 10 us (warm) or
    90 us (cold) up to 16 keys, and more per key beyond what the lines take past that (a
    trace of large commands): the round trip's own part is the small probes' (their
    median), not the median of all, which the large ones would raise; with fewer than 20
    small probes, every probe counts."""
    mixed = [1, 4, 16] * 10 + [256, 1024, 4096] * 25  # 30 small, 75 large: the large are the median
    fit, dists = fit_client(probe_replay({"range": mixed}, {"range": 0.5e-6}), PROBE_BASE)
    assert fit["tcp_rtt_s"] == pytest.approx(10e-6) and fit["tcp_rtt_cold_s"] == pytest.approx(90e-6)
    assert dists["rtt"].p99 == pytest.approx(10e-6)
    # what the large probes leave beyond it, by bins of 4x more keys: (16, 0), then each
    # bin's median keys and median excess (0.5 us per key past 16), empty bins left out
    assert fit["io_extra_knots"] == [(16.0, 0.0), pytest.approx((256.0, 120e-6)), pytest.approx((1024.0, 504e-6)),
                                     pytest.approx((4096.0, 2040e-6))]
    few = [1, 4] * 5 + [256, 1024, 4096] * 15  # 10 small probes: all of them count
    assert fit_client(probe_replay({"range": few}, {"range": 0.5e-6}), PROBE_BASE)[0]["tcp_rtt_s"] > 100e-6


def test_msets_get_their_own_size_points() -> None:
    """MGET probes that leave 0.5 us a key past 16 beyond the lines and MSET probes that
    leave nothing: the MGETs' points are not charged to the MSETs (the agentic sessions' MSETs
    were 20-27% dear with them), and MSETs too few for a bin get no points."""
    mgets = [1, 4, 16] * 10 + [256, 1024] * 25
    fit, _ = fit_client(probe_replay({"range": mgets, "insert": [2, 8] * 10 + [256, 1024] * 25}, {"range": 0.5e-6}),
                        PROBE_BASE)
    assert fit["io_extra_knots"] == [(16.0, 0.0), pytest.approx((256.0, 120e-6)), pytest.approx((1024.0, 504e-6))]
    assert fit["mset_io_extra_knots"] == [(16.0, 0.0), pytest.approx((256.0, 0.0), abs=1e-12),
                                          pytest.approx((1024.0, 0.0), abs=1e-12)]
    # 10 large MSETs: no bin of 20
    fit, _ = fit_client(probe_replay({"range": mgets, "insert": [2, 8] * 10 + [256, 1024] * 5}, {"range": 0.5e-6}),
                        PROBE_BASE)
    assert fit["mset_io_extra_knots"] == [] and len(fit["io_extra_knots"]) == 3
    # in the model: an MSET of 1,024 keys pays its own points, an MGET the MGETs'
    ix = RedisIndex(get_s=1e-6, mget_base_s=1e-6, mget_per_key_s=0.0, mset_base_s=1e-6, mset_per_key_s=0.0,
                    del_base_s=1e-6, del_per_key_s=0.0, tcp_rtt_s=1e-6, io_extra_knots=fit["io_extra_knots"],
                    mset_io_extra_knots=[(16.0, 0.0), (1024.0, 7e-6)])
    assert ix.io(Op("insert", 1024, 1, 0, 0, 0.0)) == pytest.approx(7e-6)
    assert ix.io(Op("range", 1024, 1, 0, 0, 0.0)) == pytest.approx(504e-6)


def test_command_time_factors_by_hand() -> None:
    """The stream's commands' server time in a replay over the calibration's lines, per
    command, and the probes' (a warm MSET probe's untimed MGET of its keys counted)."""
    us = 1e-6
    ops = [[Op("get", 1, 1, 0, 0, 2 * us), Op("range", 4, 1, 0, 0, 3 * us)], [Op("insert", 4, 1, 0, 0, 5 * us)],
           [Op("get", 1, 1, 0, 0, 2 * us)]]
    f = burst_factors(ops, {"get": 8 * us, "mget": 6 * us, "mset": 5 * us, "del": 1.0})
    assert f == pytest.approx({"get": 2.0, "mget": 2.0, "mset": 1.0})
    assert burst_factors(ops, {"get": 8 * us}) == pytest.approx({"get": 2.0, "mget": 1.0, "mset": 1.0})  # none counted: 1
    base = {"get_s": 1 * us, "mget_base_s": 1 * us, "mget_per_key_s": 0.5 * us, "mset_base_s": 2 * us,
            "mset_per_key_s": 1 * us, "mset_warm_base_s": 1 * us, "mset_warm_per_key_s": 0.25 * us,
            "mget_knots": [(16, 9 * us)], "io_s": 10 * us}
    res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
    for kind, n, cold in (("get", 1, True), ("get", 1, False), ("range", 4, True), ("insert", 4, True), ("insert", 4, False)):
        res.probe_kind.append(kind)
        res.probe_keys.append(n)
        res.probe_cold.append(cold)
    # expected: GET 2 x 1; MGET 3 (the range) + 3 (the warm MSET's read of its 4 keys); MSET 6 cold + 2 warm
    res.probe_server_s = {"get": 6 * us, "mget": 9 * us, "mset": 4 * us}
    assert probe_factors(res, base) == pytest.approx({"get": 3.0, "mget": 1.5, "mset": 0.5})
    sc = scaled_server(base, {"get": 3.0, "mget": 1.5, "mset": 0.5})
    assert sc["get_s"] == pytest.approx(3 * us) and sc["mget_per_key_s"] == pytest.approx(0.75 * us)
    assert sc["mset_warm_base_s"] == pytest.approx(0.5 * us) and sc["mget_knots"] == [(16, pytest.approx(13.5 * us))]
    assert sc["io_s"] == base["io_s"] and base["get_s"] == 1 * us  # the event loop kept; the input untouched


def test_what_the_rest_of_the_machine_took_beside_a_replay() -> None:
    """/proc/stat's first line by hand: 100 user + 5 nice + 50 system + 3 irq + 2 softirq
    ticks busy, 7 stolen (idle and iowait not busy); a CPU's own line is not it. On this
    machine, beside a 'server' that sleeps: a child process spinning for 0.5 s of CPU is the
    others' (at least 0.45 s), this process spinning as long is not (under 0.25 s: what else
    ran meanwhile)."""
    hz = os.sysconf("SC_CLK_TCK")
    assert cpu_line_s("cpu  100 5 50 1000 20 3 2 7 0 0") == pytest.approx((160 / hz, 7 / hz))
    assert cpu_line_s("cpu0 100 5 50 1000 20 3 2 7 0 0") is None
    assert process_cpu(os.getpid()) == pytest.approx(sum(os.times()[:2]), abs=0.05)
    assert cpu_mark(None) is None and machine_share(None, None) is None

    def spin(seconds: float) -> None:
        t = time.process_time()
        while time.process_time() - t < seconds:
            pass

    server = subprocess.Popen(["sleep", "60"])
    try:
        a = cpu_mark(server.pid)
        subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                        "while time.process_time() - t < 0.5: pass"], check=True)
        b = cpu_mark(server.pid)
        spin(0.5)
        c = cpu_mark(server.pid)
    finally:
        server.kill()
        server.wait()
    assert a is not None and b is not None and c is not None
    child, own = machine_share(a, b, cpus=1), machine_share(b, c, cpus=1)
    assert child is not None and own is not None
    assert child.others * (b.t - a.t) >= 0.45
    assert own.others * (c.t - b.t) < 0.25 and 0 <= own.steal <= 1


def test_the_benchmarks_server_holds_the_filler_keys_and_a_missing_program_exits_2() -> None:
    """``pinned_server`` (benchmarks/redis_*.py): a started server holding exactly the filler
    keys asked for, this process's scheduling restored after; no program: through
    ``kvsim.errors.cli``, as the benchmarks run, one line naming the setting and exit code 2."""
    need_redis()
    cpus = os.sched_getaffinity(0)
    with pinned_server(RedisValidationSettings(nice=None, cpu=None, rt_priority=None), 37) as (h, p, db, sched):
        with connect(h, p, db) as c:
            assert c.call("DBSIZE") == 37
        assert sched == "normal"
    assert os.sched_getaffinity(0) == cpus
    code = ("from kvsim.bench.redis_validation import pinned_server\n"
            "from kvsim.bench.validation_settings import RedisValidationSettings\n"
            "from kvsim.errors import cli\n"
            "def main():\n"
            "    with pinned_server(RedisValidationSettings(redis_server='no-such-redis-server'), 1):\n"
            "        return 0\n"
            "cli(main, prog='bench')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("bench: error: experiment.redis_server: 'no-such-redis-server'")


def test_a_timed_connection_times_the_wait_for_the_reply() -> None:
    """``TimedConnection`` (the benchmarks' chains): a command's round trip less its send and
    receive holds the time the server took to answer (a server here that answers the second
    command 20 ms late, asleep, so no busy server can take the client's CPU during its
    send); the context closes the socket."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        c, _ = srv.accept()
        with c:
            for delay in (0.0, 0.02):
                c.recv(1024)
                time.sleep(delay)
                c.sendall(b"+OK\r\n")

    th = threading.Thread(target=serve)
    th.start()
    try:
        with TimedConnection("127.0.0.1", srv.getsockname()[1]) as conn:
            quick = conn.round_trip_s(b"PING\r\n")
            slow = conn.round_trip_s(b"PING\r\n")
    finally:
        th.join(5)
        srv.close()
    assert conn.sock.fileno() == -1
    assert quick > 0 and slow > 0.019 and slow - quick > 0.015


def test_replay_client_against_a_real_server() -> None:
    need_redis()
    units = [Unit(r, ["get", "range"], [1, 3], [encode("GET", "a"), encode("MGET", "a", "b", "c")]) for r in range(30)]
    # the first lookup ends with a script that keeps the server busy for milliseconds: the
    # client then waits for a reply at least once (on two CPUs every reply of this small
    # stream can otherwise be in before the client looks, and there is no wait to measure)
    spin = encode("EVAL", "local i = 0 while i < 300000 do i = i + 1 end return 0", "0")
    units[0] = Unit(0, ["get", "range", "get"], [1, 3, 0], [*units[0].payloads, spin])
    units += [Unit(r, ["insert"], [2], [encode("MSET", "a", "1", "b", "2")], after=2 * r) for r in range(30)]
    order = [u for r in range(30) for u in (r, 30 + r)]
    units = [units[i] for i in order]
    for i, u in enumerate(units):  # re-point "after" to the reordered lookup units
        if u.after >= 0:
            units[i] = Unit(u.request, u.kinds, u.keys, u.payloads, after=i - 1)
    arrivals = [0.01 * (r // 5) for r in range(30)]  # ticks of 5 requests
    # an MSET probe writes keys new to the server, reads them first (untimed) when it is the
    # second of a pair, and deletes them after (untimed): the server's keys stay put
    mset = Probe("insert", 2, encode("MSET", "p1", "1", "p2", "2"), after=encode("DEL", "p1", "p2"),
                 before=encode("MGET", "p1", "p2"))
    with redis_server(RedisValidationSettings(nice=None, cpu=None, rt_priority=None)) as (h, p, _):
        with RespClient(h, p) as c:
            calls0 = {k: v[0] for k, v in commandstats(c).items()}
        res = replay_open_loop(h, p, units, arrivals, 1.0, 2, [Probe("get", 1, encode("GET", "z")), mset],
                               probe_gap_s=0.003, probe_every_s=0.002, count_probes=True, turn_cpu=True)
        with RespClient(h, p) as c:
            assert c.call("EXISTS", "p1", "p2") == 0
            calls = {k: v[0] - calls0.get(k, 0) for k, v in commandstats(c).items()}
        # one INFO for the counters and the main thread's CPU; the counters alone when asked
        sock = socket.create_connection((h, p))
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        try:
            (with_cpu, cpu), (alone, none) = server_counts(sock, sel), server_counts(sock, sel, cpu=False)
        finally:
            sel.close()
            sock.close()
        assert cpu is not None and cpu > 0 and none is None
        assert with_cpu["mget"] == alone["mget"] and alone["info"][0] == with_cpu["info"][0] + 1
    # the probes' share of the server's counters, read between the stream's bursts: what is
    # left is exactly the stream's commands (30 GETs, 30 MGETs, 30 MSETs)
    pc = res.probe_server_calls
    n_get, n_mset = res.probe_kind.count("get"), res.probe_kind.count("insert")
    warm_mset = sum(1 for k, c in zip(res.probe_kind, res.probe_cold, strict=True) if k == "insert" and not c)
    assert pc.get("get", 0) == n_get and pc.get("mset", 0) == n_mset and pc.get("mget", 0) == warm_mset
    assert pc.get("del", 0) == n_mset
    assert {k: calls.get(k, 0) - pc.get(k, 0) for k in ("get", "mget", "mset", "del")} == {"get": 30, "mget": 30, "mset": 30, "del": 0}
    assert all(v >= 0 for v in res.probe_server_s.values())
    # the stream's stretches: the server's CPU, its calls (one INFO reading each) and time
    assert res.stream_windows > 0 and res.stream_calls > res.stream_windows
    assert res.stream_cpu_s > res.stream_usec_s > 0 and res.stream_window_s > 0
    # the server's thread runs here: its turns over those stretches, at least one and at
    # most one per command (a turn serves one command or more; the server is not pinned
    # here, so allow the readings' own miscount of one each)
    cmds = res.stream_calls - res.stream_windows
    assert res.stream_switches is not None and 1 <= res.stream_switches <= cmds + res.stream_windows
    assert turns_per_command(res) == pytest.approx(res.stream_switches / cmds)
    # and over the probe pairs' stretches: two probes' turns at least, each pair
    assert res.pair_switches is not None and res.pair_switches >= 2 * res.probe_pairs > 0
    assert res.pair_cpu_s > 0 and res.pair_window_s > 0
    # each probe's turn, from the server thread's CPU counter: measured, and positive, for
    # every other pair; the others timed without those reads (NaN)
    assert len(res.probe_server_cpu_s) == len(res.probe_kind) == len(res.probe_counted)
    assert res.probe_counted == [k % 4 < 2 for k in range(len(res.probe_kind))]
    cpu = np.array(res.probe_server_cpu_s)
    assert np.all(cpu[np.array(res.probe_counted)] > 0) and np.isnan(cpu[~np.array(res.probe_counted)]).all()
    assert "insert" in res.probe_kind
    # the server's CPU over each wait for replies, by its place in the busy period: every
    # busy period's first wait is place 0, places count up by one within it, and the waits
    # brought no more replies than there are commands
    places = [t[0] for t in res.turn_server_cpu]
    assert places and places[0] == 0 and all(b in (0, a + 1) for a, b in zip(places, places[1:], strict=False))
    assert all(cpu >= 0 and n >= 0 for _, cpu, n in res.turn_server_cpu)
    assert sum(n for *_, n in res.turn_server_cpu) <= 91 and turn_profile(res)[0]["from"] == 0
    assert len(res.kind) == 91 and np.all(res.done_s > res.ready_s) and np.all(res.latency_s < 1.0)
    assert np.all(res.recv_s > 0) and np.all(res.send_s >= 0)
    first = np.r_[True, res.unit[1:] != res.unit[:-1]]
    assert np.all(res.send_s[~first] > 0)  # sent in a reply's turn: charged to that piece
    assert len(res.admit_of_request) == 30 and all(v >= 0 for v in res.admit_of_request.values())
    assert res.probe_rtt_s and all(t > 0 for t in res.probe_rtt_s)
    # probes come in pairs: one after a sleep (cold), one right after it
    assert res.probe_cold[::2] == [True] * (len(res.probe_cold) // 2) and not any(res.probe_cold[1::2])
    # each cold probe's sleep: how late it woke (the sleeps that timed out: the loop's
    # lateness, under a millisecond here), NaN where no timed sleep came right before it
    late = np.array(res.probe_late_s)
    assert len(late) == sum(res.probe_cold) and np.isfinite(late).any()
    assert np.all(late[np.isfinite(late)] > -1e-4) and np.all(late[np.isfinite(late)] < 0.05)
    # insert units start when their lookup's last reply is in
    for i, u in enumerate(units):
        if u.after >= 0:
            j = int(np.nonzero(res.unit == i)[0][0])
            k = int(np.nonzero(res.unit == u.after)[0][-1])
            assert res.ready_s[j] == pytest.approx(res.done_s[k])


def validation_misses(compose_cfg, trace: Path, out: Path) -> str:  # type: ignore[no-untyped-def]
    """One complete run of the CI's validation into ``out``: its outputs checked, then the
    cells outside the tolerance, as a message ("" when every cell is inside)."""
    cfg = compose_cfg(["+experiment=redis_validation", "trace=mooncake_conversation", f"trace.path={trace}",
                       "experiment.requests=[180,600,600]"])
    summary = run(cfg, out)
    table = pd.read_csv(out / "redis_validation.csv")
    assert list(table.columns) == CSV_COLUMNS
    assert set(table["speedup"]) == {1.0, 10.0, 100.0} and set(table["op"]) == {"get", "range", "insert"}
    assert (out / "redis_validation_cdf.png").is_file() and summary["commands"] > 500
    lat = pd.read_parquet(out / "redis_validation_latency.parquet")
    assert set(lat["source"]) == {"real", "sim"}
    fit = json.loads((out / "redis_validation_fit.json").read_text())["client_by_speedup"]
    assert all(f["turn_extra_s"] is not None for f in fit.values())  # a burst's turns measured at every speed-up
    bad = table[(table["err_p50"].abs() > TOL_P50) | (table["err_p99"].abs() > TOL_P99)]
    if bad.empty:
        return ""
    busy = ", ".join(f"x{sp}: {100 * f['machine_others_share']:.1f}% (+{100 * f['machine_steal_share']:.1f}% stolen)"
                     for sp, f in fit.items() if f["machine_others_share"] is not None)
    # a p50 between two modes of a kind's latencies compares the lower mode's upper tail: say so
    gaps = "; ".join(f"x{sp} {op}: {100 * g['real_below']:.1f}% measured, {100 * g['sim_below']:.1f}% simulated "
                     f"below {1e6 * g['split_s']:.0f} us" for sp, f in fit.items()
                     for op, g in (f.get("median_gap") or {}).items())
    return (f"outside the tolerance; a timing measurement, so the machine's CPU that other processes took during "
            f"each replay: {busy or 'not read'}; p50s in a gap between two modes: {gaps or 'none'}\n{bad.to_string()}")


def test_the_validation_against_a_real_redis_server(compose_cfg, real_trace_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The issue's acceptance, in CI: the model within 10% at p50 and 20% at p99 of a real
    redis-server for every op kind at every speed-up (180 requests at x1, 600 at x10 and
    x100: under two minutes), in one complete run of the validation. A measurement of the
    machine it runs on: on a busy one (a build, another test run beside it) the replays'
    latencies carry that load and the model, calibrated a minute before, does not. Not a
    certainty on a quiet one either: about one single run in twelve has a cell outside by
    chance, a different cell each time (a p50 of 166-198 commands at x1; a p99 that rests on
    two to six of them); README's "The gate" keeps the record, and docs/redis_validation.md
    (fifteenth to twenty-first passes) gives every run and what is known of it. So a run
    with a cell outside is measured once more, from the start, and the test fails when that
    second run misses too (a model off in a cell misses both; a chance miss rarely twice); the
    first run's misses are reported as a warning either way."""
    need_redis()
    first = validation_misses(compose_cfg, real_trace_path, tmp_path / "first")
    if not first:
        return
    warnings.warn(f"redis validation, first run: {first}", stacklevel=1)
    second = validation_misses(compose_cfg, real_trace_path, tmp_path / "second")
    assert not second, f"both runs missed; the first: {first}\nthe second: {second}"


def test_the_turn_profile_by_hand() -> None:
    """Waits at places 0, 1, 0, 1, 2, 7 with 50, 20, 70, 30, 10, 5 us of server CPU and 1, 2,
    1, 4, 3, 1 replies: place 0 median 60 us (1 reply), 1: 25 us (3), 2: 10 us (3), 6-10:
    5 us (1); no bin for 3-5 or 11+. Not measured: empty."""
    res = ReplayResult(np.zeros(0, dtype=int), [], np.zeros(0, dtype=int), *(np.zeros(0) for _ in range(4)))
    assert turn_profile(res) == []
    res.turn_server_cpu = [(0, 50e-6, 1), (1, 20e-6, 2), (0, 70e-6, 1), (1, 30e-6, 4), (2, 10e-6, 3), (7, 5e-6, 1)]
    got = turn_profile(res)
    assert [(b["from"], b["to"], b["waits"], b["replies_p50"]) for b in got] == [
        (0, 0, 2, 1.0), (1, 1, 2, 3.0), (2, 2, 1, 3.0), (6, 10, 1, 1.0)]
    assert [b["cpu_p50_s"] for b in got] == pytest.approx([60e-6, 25e-6, 10e-6, 5e-6])


def test_paired_lateness_by_hand() -> None:
    """Two gets (cmd 0, 1) measured at 100 and 200 us, an insert (2) at 50; two simulated
    runs: get 0 at 110 and 130 (mean 120: +20), get 1 at 190 and 190 (-10), the insert at 80
    and 60 (+20). Median per kind: get (+20 - 10) / 2 = +5 us, insert +20 us; no range."""
    real = pd.DataFrame({"op": ["get", "get", "insert"], "latency_s": [100e-6, 200e-6, 50e-6], "cmd": [0, 1, 2]})
    sim = pd.DataFrame({"op": ["get", "insert", "get"] * 2, "latency_s": [110e-6, 80e-6, 190e-6, 130e-6, 60e-6, 190e-6],
                        "cmd": [0, 2, 1] * 2})
    assert paired_lateness(real, sim) == pytest.approx({"get": 5e-6, "insert": 20e-6})
    # by a label per command instead (the first get alone; the other get with the insert)
    assert paired_lateness(real, sim, ["arrival", "reply", "reply"]) == pytest.approx({"arrival": 20e-6, "reply": 5e-6})


def test_median_gap_by_hand() -> None:
    """52 measured latencies at 100-151 us and 48 at 300-347: the values at the 40th and
    60th percentiles' places (139 and 307 us) are 168 us apart, more than half the median
    (225.5 us), and the step 151 -> 300 us is the widest between them: the gap is at
    225.5 us, with 52% of the measured commands below it. The simulated ones: 60 of 100
    below, so the measured p50 is the lower mode's p96.2 (0.5 / 0.52) and the simulated one
    its p83.3 (0.5 / 0.6). One mode (100-199 us) has no gap; nor has a gap away from the
    median."""
    real = np.r_[np.arange(100, 152), np.arange(300, 348)] * 1e-6
    sim = np.r_[np.full(60, 120.0), np.full(40, 320.0)] * 1e-6
    gap = median_gap(real, sim)
    assert gap is not None
    assert gap.split_s == pytest.approx(225.5e-6) and (gap.real_below, gap.sim_below) == (0.52, 0.6)
    assert gap.p50_quantiles() == pytest.approx((0.5 / 0.52, 0.5 / 0.6))
    # the simulated p50 in the upper mode: no lower-mode quantile to give
    assert median_gap(real, np.r_[np.full(40, 120.0), np.full(60, 320.0)] * 1e-6).p50_quantiles() is None  # type: ignore[union-attr]
    assert median_gap(np.arange(100, 200) * 1e-6, sim) is None
    assert median_gap(np.r_[np.arange(100, 190), np.arange(300, 310)] * 1e-6, sim) is None


def test_a_stream_head_is_the_stream_planned_for_fewer_requests(embedded_trace) -> None:  # type: ignore[no-untyped-def]
    full = plan_stream(embedded_trace, model(lookup="prefix"), 60)
    for n in (0, 1, 17, 60, 100):  # past the stream's own 60: all of it
        got, want = full.head(n), plan_stream(embedded_trace, model(lookup="prefix"), min(n, 60))
        assert [(u.request, u.kinds, u.keys, u.payloads, u.after) for u in got.units] == [
            (u.request, u.kinds, u.keys, u.payloads, u.after) for u in want.units]
        assert [[(o.kind, o.keys) for o in ops] for ops in got.ops] == [[(o.kind, o.keys) for o in ops] for ops in want.ops]
        assert got.ids == want.ids and got.window_keys == want.window_keys
        assert np.array_equal(got.arrival_s, want.arrival_s)


def test_requests_per_speed_up_end_to_end(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A small run against a real redis-server with a request count per speed-up: each
    speed-up's cells count the commands of its own prefix of the trace, real and simulated."""
    need_redis()
    cfg = compose_cfg(["+experiment=redis_validation", "experiment.speedups=[100,1000]", "experiment.requests=[12,30]",
                       "experiment.preload_keys=2000", "experiment.calibrate_requests=200", "experiment.large_sizes=[]",
                       "experiment.sim_runs=1", "experiment.idle_gaps_s=[0.01,0.05]", "experiment.idle_samples=6",
                       "experiment.idle_seconds=0.3", "figures=false"])
    summary = run(cfg, tmp_path)
    assert summary["requests"] == 30 and summary["requests_by_speedup"] == {"100": 12, "1000": 30}
    planned = plan_stream(build_trace(cfg), model(lookup="prefix"), 30)
    lat = pd.read_parquet(tmp_path / "redis_validation_latency.parquet")
    for sp, n in ((100.0, 12), (1000.0, 30)):
        want = sum(len(u.kinds) for u in planned.head(n).units)
        for source in ("real", "sim"):
            assert ((lat["speedup"] == sp) & (lat["source"] == source)).sum() == want
    # a command's simulated rows pair up with its real one: the same place, kind and keys
    for sp, g in lat.groupby("speedup"):
        real = g[g["source"] == "real"].set_index("cmd")
        assert list(real.index) == list(range(len(real)))
        sim = g[g["source"] == "sim"]
        assert sorted(sim["cmd"]) == list(real.index)  # one run (sim_runs=1): each command once
        assert (sim["op"].to_numpy() == real.loc[sim["cmd"], "op"].to_numpy()).all(), sp
        assert (sim["keys"].to_numpy() == real.loc[sim["cmd"], "keys"].to_numpy()).all(), sp
    fit = json.loads((tmp_path / "redis_validation_fit.json").read_text())["client_by_speedup"]
    assert set(fit) == {"100", "1000"} and all("turn_extra_s" in f for f in fit.values())
    assert all(set(f["paired_late_s"]) <= {"get", "range", "insert"} and f["paired_late_s"] for f in fit.values())
    assert all(set(f["paired_late_by_start_s"]) == {"arrival", "reply"} for f in fit.values())
    # the idle connections' cost, measured before the replays: the shortest gap is the baseline
    fit = json.loads((tmp_path / "redis_validation_fit.json").read_text())
    idle = fit["idle_connection_s"]
    assert [g for g, _ in idle] == [0.01, 0.05] and idle[0][1] == 0.0 and 0.0 <= idle[1][1] < 1e-3
    # measured before and after the replays, the term their mean; by the server thread's CPU
    # unless asked, the bursts' first replies recorded beside it
    before, after = fit["idle_connection_before_s"], fit["idle_connection_after_s"]
    assert idle[1][1] == pytest.approx((before[1][1] + after[1][1]) / 2)
    assert fit["idle_connection_by"] == "cpu" and fit["idle_connection_cpu_s"] == idle
    other = fit["idle_connection_latency_s"]
    assert [g for g, _ in other] == [0.01, 0.05] and other[0][1] == 0.0 and 0.0 <= other[1][1] < 1e-3
    # lone GETs measured beside the bursts, both ways; a cold burst's further command (the
    # bursts of two GETs against the lone ones at the shortest gap), and from it the model's term
    for by in ("cpu", "latency"):
        lone = fit[f"lone_idle_connection_{by}_s"]
        assert [g for g, _ in lone] == [0.01, 0.05] and lone[0][1] == 0.0 and 0.0 <= lone[1][1] < 1e-3
        assert -50e-6 < fit[f"cold_turn_further_command_{by}_s"] < 1e-3
    for f in fit["client_by_speedup"].values():
        assert f["cold_per_command_s"] < fit["cold_turn_further_command_cpu_s"]  # less the warm charges
        assert f["lone_idle_knots"] is None  # (experiment.lone_idle: off by default)
        # the warm round trip by the client's work before it: points of increasing work, or
        # none where too few warm GET or MGET probes came in this short a replay
        w = [x for x, _ in f["work_knots"]]
        assert w == sorted(set(w)) and all(x > 0 for x in w)
    table = pd.read_csv(tmp_path / "redis_validation.csv")
    assert table.groupby("speedup")["count"].sum().to_dict() == {
        sp: sum(len(u.kinds) for u in planned.head(n).units) for sp, n in ((100.0, 12), (1000.0, 30))}


def test_replays_pool_by_hand() -> None:
    """Two replays of one get stream: 100, 100, 300 us measured in the first (p50 100), 100,
    300, 300 in the second (p50 300); pooled, the p50 is numpy's midpoint of 100 and 300, 200
    us, not either replay's. The simulated runs: 150 and 250 us in one, 210 and 230 in the
    other: pooled p50 220 us (+10%); the p99s 300 and 249.4 us, numpy's over the six and the
    four values. Rows keep their replay; the fit is the first's, with each replay's cells."""
    def part(real: list[float], sim: list[float], fit: dict[str, float]) -> SpeedupResult:
        r = pd.DataFrame({"op": "get", "keys": 1, "latency_s": np.array(real) * 1e-6, "cmd": range(len(real)), "run": 0})
        m = pd.DataFrame({"op": "get", "keys": 1, "latency_s": np.array(sim) * 1e-6, "cmd": 0, "run": range(len(sim))})
        return SpeedupResult(compare(r, m, 10.0), r, m, fit)

    a, b = part([100, 100, 300], [150, 250], {"t": 1.0}), part([100, 300, 300], [210, 230], {"t": 2.0})
    got = pool(10.0, [a, b])
    (g,) = got.cells
    assert (g["count"], g["real_p50_s"], g["sim_p50_s"]) == (6, pytest.approx(200e-6), pytest.approx(220e-6))
    assert g["err_p50"] == pytest.approx(0.1)
    assert g["real_p99_s"] == pytest.approx(np.quantile([100, 100, 300, 100, 300, 300], 0.99) * 1e-6)
    assert g["sim_p99_s"] == pytest.approx(np.quantile([150, 250, 210, 230], 0.99) * 1e-6)
    assert [c["real_p50_s"] for c in (*a.cells, *b.cells)] == pytest.approx([100e-6, 300e-6])
    assert list(got.real["replay"]) == [0, 0, 0, 1, 1, 1] and list(got.sim["replay"]) == [0, 0, 1, 1]
    assert got.fit["t"] == 1.0 and [r["t"] for r in got.fit["replays"]] == [1.0, 2.0]
    assert [r["cells"] for r in got.fit["replays"]] == [a.cells, b.cells]
    # one replay: its own cells
    assert pool(10.0, [a]).cells == a.cells
    # the log's name of a replay: its number only where a speed-up has several
    assert (replay_name(10.0, 1, 4), replay_name(0.5, 0, 1)) == ("x10 #2", "x0.5")
    # a key space per replay, none shared
    assert list(key_spaces(RedisValidationSettings(speedups=[1.0, 10.0, 100.0], replays=4))) == list(range(1, 13))


def test_replays_end_to_end(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A small run against a real redis-server with two replays per speed-up: each replay
    has its rows (every command of its prefix, real and simulated), the table pools them,
    and the fit keeps each replay's cells."""
    need_redis()
    cfg = compose_cfg(["+experiment=redis_validation", "experiment.speedups=[100,1000]", "experiment.requests=[12,30]",
                       "experiment.replays=2", "experiment.preload_keys=2000", "experiment.calibrate_requests=200",
                       "experiment.large_sizes=[]", "experiment.sim_runs=2", "experiment.idle_gaps_s=[0.01,0.05]",
                       "experiment.idle_samples=6", "experiment.idle_seconds=0.3", "experiment.idle_by=latency",
                       "experiment.lone_idle=true", "experiment.client_work=false", "figures=false"])
    summary = run(cfg, tmp_path)
    assert summary["replays"] == 2
    # the idle term from the bursts' first replies, the server thread's CPU recorded beside it
    whole = json.loads((tmp_path / "redis_validation_fit.json").read_text())
    assert whole["idle_connection_by"] == "latency" and whole["idle_connection_latency_s"] == whole["idle_connection_s"]
    # experiment.lone_idle: the lone GETs' own measurement (the same way) for a command alone in its turn
    assert all(f["lone_idle_knots"] == whole["lone_idle_connection_latency_s"] for f in whole["client_by_speedup"].values())
    assert all(f["work_knots"] == [] for f in whole["client_by_speedup"].values())  # experiment.client_work=false
    assert [g for g, _ in whole["idle_connection_s"]] == [g for g, _ in whole["idle_connection_cpu_s"]] == [0.01, 0.05]
    planned = plan_stream(build_trace(cfg), model(lookup="prefix"), 30)
    lat = pd.read_parquet(tmp_path / "redis_validation_latency.parquet")
    table = pd.read_csv(tmp_path / "redis_validation.csv")
    fit = json.loads((tmp_path / "redis_validation_fit.json").read_text())["client_by_speedup"]
    for sp, n in ((100.0, 12), (1000.0, 30)):
        want = sum(len(u.kinds) for u in planned.head(n).units)
        g = lat[lat["speedup"] == sp]
        for k in (0, 1):
            assert ((g["source"] == "real") & (g["replay"] == k)).sum() == want
            assert ((g["source"] == "sim") & (g["replay"] == k)).sum() == 2 * want
        cells = compare(g[g["source"] == "real"], g[g["source"] == "sim"], sp)
        mine = table[table["speedup"] == sp].to_dict("records")
        assert [(c["op"], c["count"]) for c in mine] == [(c["op"], c["count"]) for c in cells]
        assert sum(c["count"] for c in mine) == 2 * want
        for c, m in zip(cells, mine, strict=True):
            assert (m["real_p50_s"], m["sim_p50_s"], m["err_p99"]) == pytest.approx((c["real_p50_s"], c["sim_p50_s"], c["err_p99"]))
        per = fit[f"{sp:g}"]["replays"]
        assert len(per) == 2 and all(sum(c["count"] for c in r["cells"]) == want for r in per)


def test_settings_are_checked(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"experiment.requests: one count per entry of experiment.speedups \(3\), got 2"):
        run(compose_cfg(["+experiment=redis_validation", "experiment.requests=[10,20]"]), tmp_path)
    for bad in ("experiment.speedups=[]", "experiment.connections=0", "experiment.replays=0", "+experiment.nope=1", "experiment.client=guess",
                "experiment.idle_by=wallclock",
                "experiment.requests=[0,1,1]"):
        cfg = compose_cfg(["+experiment=redis_validation", bad])
        with pytest.raises(ValueError):
            run(cfg, tmp_path)
    cfg = compose_cfg(["+experiment=redis_validation", "index=sherman"])
    with pytest.raises(ValueError, match="index=redis, got index=sherman"):
        run(cfg, tmp_path)
    # the idle measurement's connections: a 60 s gap's 32 samples in 12 s take 161 sets of 4
    # and as many of one for the lone GETs (810 connections with the 30 ms gap's sets):
    # refused before anything starts
    cfg = compose_cfg(["+experiment=redis_validation", "experiment.idle_gaps_s=[0.03,60]", "experiment.idle_seconds=12"])
    with pytest.raises(ValueError, match=r"experiment.idle_gaps_s: 32 samples of a 60 s gap in 12 s .* need 161 sets "
                                         r"of 4 connections \(and one for the lone GETs\), 810 in all over the gaps; "
                                         r"at most 512"):
        run(cfg, tmp_path)


def test_real_trace_prefix_has_every_op_kind(real_trace_path: Path) -> None:
    tr = read_mooncake_jsonl(real_trace_path, max_requests=200)
    s = plan_stream(tr, model(lookup="prefix"), 200)
    kinds = {k for u in s.units for k in u.kinds}
    assert kinds == {"get", "range", "insert"} and sum(len(u.payloads) for u in s.units) > 500
