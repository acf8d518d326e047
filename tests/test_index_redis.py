"""Redis: one server thread, so Poisson load gives M/D/1 waiting; pipelining shares a round trip."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simpy

from kvsim.index.base import OpRecorder
from kvsim.index.redis import RedisIndex

COSTS = dict(
    tcp_rtt_s=25e-6,
    get_s=10e-6,
    mget_base_s=1e-6,
    mget_per_key_s=0.35e-6,
    mset_base_s=1e-6,
    mset_per_key_s=0.45e-6,
    del_base_s=1e-6,
    del_per_key_s=0.4e-6,
)


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_poisson_gets_match_md1_mean_wait(rho: float) -> None:
    """M/D/1: W = rho * S / (2 (1 - rho)) for deterministic service S."""
    ix = RedisIndex(**COSTS)  # type: ignore[arg-type]
    ix.recorder = OpRecorder()
    S = COSTS["get_s"]
    lam = rho / S
    rng = np.random.default_rng(11)
    n = 60_000
    gaps = rng.exponential(1 / lam, n)
    env = simpy.Environment()

    def client(k: int):  # type: ignore[no-untyped-def]
        yield from ix.execute(env, [ix.plan_get(k)])

    def source():  # type: ignore[no-untyped-def]
        for i in range(n):
            yield env.timeout(gaps[i])
            env.process(client(i))

    env.process(source())
    env.run()
    lat = np.asarray(ix.recorder.latency_s)
    wait = lat - COSTS["tcp_rtt_s"] - S
    expected = rho * S / (2 * (1 - rho))
    assert wait.mean() == pytest.approx(expected, rel=0.05)
    assert ix.server.wait_s / ix.server.served == pytest.approx(expected, rel=0.05)


def test_unloaded_latency_and_pipelining() -> None:
    env = simpy.Environment()
    seq = RedisIndex(**COSTS, lookup="all")  # type: ignore[arg-type]
    pipe = RedisIndex(**COSTS, pipeline=True, lookup="all")  # type: ignore[arg-type]
    keys = [1, 5, 6, 7, 9]  # get, range of 3, get
    done = {}

    def run(ix: RedisIndex, name: str):  # type: ignore[no-untyped-def]
        start = env.now
        yield from ix.execute(env, ix.plan_lookup(keys))
        done[name] = env.now - start

    env.process(run(seq, "seq"))
    env.process(run(pipe, "pipe"))
    env.run()
    service = 2 * COSTS["get_s"] + COSTS["mget_base_s"] + 3 * COSTS["mget_per_key_s"]
    assert done["seq"] == pytest.approx(3 * COSTS["tcp_rtt_s"] + service)
    assert done["pipe"] == pytest.approx(COSTS["tcp_rtt_s"] + service)


def test_range_command_zrange_costs_less_per_key() -> None:
    m = RedisIndex(**COSTS)  # type: ignore[arg-type]
    z = RedisIndex(**COSTS, range_command="zrange")  # type: ignore[arg-type]
    keys = list(range(100))
    assert z.plan_range(keys).server_s < m.plan_range(keys).server_s
    with pytest.raises(ValueError):
        RedisIndex(**COSTS, range_command="scan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lookup=all"):  # a pipeline cannot stop at a miss
        RedisIndex(**COSTS, pipeline=True)  # type: ignore[arg-type]


def run_clients(env: simpy.Environment, client: Any, n: int) -> None:
    """Start ``client(100 i)`` for i < n, a third of them together with the one before and
    the others at exponential gaps of 40 us on average (seeded): heavy contention."""
    rng = np.random.default_rng(5)

    def source():  # type: ignore[no-untyped-def]
        for i in range(n):
            yield env.timeout(float(rng.exponential(40e-6)) if i % 3 else 0.0)
            env.process(client(100 * i))

    env.process(source())
    env.run()


@pytest.mark.parametrize("pipeline", [False, True])
def test_booking_ahead_is_exact(pipeline: bool) -> None:
    """``execute`` books a command on the server without waking at its arrival when no event
    comes first (written for speed); the per-command version (every arrival an event, forced
    here by hiding the event queue from it) gives the same records, bit for bit, under heavy
    contention with tails on."""

    def replay(ahead: bool) -> tuple[list[float], list[float], list[float]]:
        ix = RedisIndex(**COSTS, pipeline=pipeline, lookup="all", tcp_rtt_p99_s=80e-6, service_p99_x=3.0,  # type: ignore[arg-type]
                        seed=3)
        ix.recorder = OpRecorder()
        env = simpy.Environment()
        if not ahead:
            env.peek = lambda: -1.0  # type: ignore[method-assign]
        ends: list[float] = []

        def client(k: int):  # type: ignore[no-untyped-def]
            ks = [k, k + 1, k + 2, k + 7, k + 9, k + 10]
            ops = ix.plan_lookup(ks) + ix.plan_insert(ks[:2])
            yield from ix.execute(env, ops)
            ends.append(env.now)

        run_clients(env, client, 3000)
        assert ix.recorder is not None
        return ends, ix.recorder.start_s, ix.recorder.latency_s

    assert replay(True) == replay(False)


def test_detached_work_ends_when_waited_work_would() -> None:
    """``execute_detached`` (a request's background updates and deletes: nothing waits on
    them) returns the time the last command ends without an event for it; every booking and
    draw is made as ``execute`` makes them, so under heavy contention the other clients'
    times, the detached calls' ends and the server's work are the same, bit for bit, with
    about one event less per detached call."""

    def replay(detached: bool) -> tuple[list[float], dict[int, float], float, float, int]:
        ix = RedisIndex(**COSTS, lookup="all", tcp_rtt_p99_s=80e-6, service_p99_x=3.0, seed=3)  # type: ignore[arg-type]
        env = simpy.Environment()
        events = [0]
        schedule = env.schedule

        def counted(*a, **k):  # type: ignore[no-untyped-def]
            events[0] += 1
            return schedule(*a, **k)

        env.schedule = counted  # type: ignore[method-assign]
        ends: list[float] = []
        bg_ends: dict[int, float] = {}  # by client

        def client(k: int):  # type: ignore[no-untyped-def]
            ks = [k, k + 1, k + 2, k + 7]
            yield from ix.execute(env, ix.plan_lookup(ks) + ix.plan_insert(ks[:2]))
            ends.append(env.now)
            bg = ix.plan_update(ks[:1]) + ix.plan_delete(ks[1:2])
            if detached:
                bg_ends[k] = yield from ix.execute_detached(env, bg)
            else:
                yield from ix.execute(env, bg)
                bg_ends[k] = env.now

        run_clients(env, client, 2000)
        busy = ix.server.utilization(max(env.now, max(bg_ends.values())))
        return ends, bg_ends, busy, ix.rtt_draw(), events[0]

    waited, detached = replay(False), replay(True)
    assert detached[:4] == waited[:4]
    assert detached[4] <= waited[4] - 1900  # (a call that waits anyway, for an earlier event, keeps its event)


def test_stats_and_measured_costs() -> None:
    from kvsim.index.costs import CostDist

    ix = RedisIndex(**COSTS)
    ix.plan_insert([1, 2, 3])
    assert ix.stats() == {"keys": 3, "key_scale": ix.key_scale()}
    before = ix.admit_draw
    ix.use_measured(admit=CostDist(2e-6))
    assert ix.admit_draw is not before and ix.wakes
    with pytest.raises(ValueError, match="use_measured: unknown cost 'nope'"):
        ix.use_measured(nope=CostDist(1e-6))


def test_command_time_through_knots_by_hand() -> None:
    """A command's time: the line up to the first knot, then piecewise linear through the
    knots, and past the last knot its last segment's slope (one knot: the line's slope)."""
    from kvsim.index.redis import command_time

    line = (1.0, 0.5)  # 1 + 0.5 n (any unit)
    knots = [(16.0, 9.0), (256.0, 105.0), (4096.0, 2601.0)]
    assert command_time(line, knots, 8) == pytest.approx(5.0)  # on the line
    assert command_time(line, knots, 16) == pytest.approx(9.0)
    assert command_time(line, knots, 100) == pytest.approx(9.0 + 96.0 * 84 / 240)  # 42.6
    assert command_time(line, knots, 4096) == pytest.approx(2601.0)
    assert command_time(line, knots, 8192) == pytest.approx(2601.0 + 0.65 * 4096)  # (2601 - 105) / 3840 per key
    assert command_time(line, [(16.0, 9.0)], 32) == pytest.approx(17.0)
    assert command_time(line, (), 1000) == pytest.approx(501.0)
    # the model plans MGETs and MSETs through them; an insert's keys its lookup just read at
    # the warm curve, the others at the MSET curve, each at its curve's time per key
    us = 1e-6
    ix = RedisIndex(**{**COSTS, "mget_base_s": 1 * us, "mget_per_key_s": 0.5 * us, "mset_base_s": 1 * us,
                       "mset_per_key_s": 0.5 * us, "mset_warm_base_s": 0.0, "mset_warm_per_key_s": 0.25 * us},
                    mget_knots=[(16, 9 * us), (256, 105 * us)], mset_knots=[(16, 9 * us), (256, 105 * us)],
                    mset_warm_knots=[(16, 4 * us), (256, 40 * us)], tails=False)
    assert ix.plan_range(list(range(100))).server_s == pytest.approx(42.6 * us)
    ix.plan_lookup(list(range(50)))  # reads keys 0..49 (all absent: one MGET of the run)
    op = ix.plan_insert(list(range(25, 125)))[0]  # 25 keys just read, 75 not
    cold, warm = 42.6 * us, (4 + 36 * 84 / 240) * us  # each curve at 100 keys
    assert op.server_s == pytest.approx(cold * 75 / 100 + warm * 25 / 100)
    with pytest.raises(ValueError, match="mget_knots"):
        RedisIndex(**COSTS, mget_knots=[(256, 1e-4), (16, 9e-6)])


def test_io_extra_knots_add_to_a_commands_event_loop() -> None:
    """0 up to the first point, linear between points, the last point's value beyond."""
    from kvsim.index.base import Op
    from kvsim.index.redis import extra_time

    kn = [(16.0, 0.0), (64.0, 24e-6), (256.0, 48e-6)]
    assert [extra_time(kn, n) for n in (1, 16, 40, 64, 160, 256, 5000)] == pytest.approx(
        [0.0, 0.0, 12e-6, 24e-6, 36e-6, 48e-6, 48e-6])
    ix = RedisIndex(**COSTS, io_s=10e-6, io_per_key_s=0.1e-6, io_extra_knots=kn)  # type: ignore[arg-type]
    assert ix.io(Op("insert", 40, 1, 0, 0, 0.0)) == pytest.approx(10e-6 + 4e-6 + 12e-6)
    assert RedisIndex(**COSTS, io_s=10e-6).io(Op("insert", 40, 1, 0, 0, 0.0)) == pytest.approx(10e-6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="io_extra_knots"):
        RedisIndex(**COSTS, io_extra_knots=[(64.0, 1e-6), (16.0, 0.0)])  # type: ignore[arg-type]
    # an MSET's own points where given (an MGET keeps the others); without them, the same
    own = RedisIndex(**COSTS, io_s=10e-6, io_per_key_s=0.1e-6, io_extra_knots=kn,  # type: ignore[arg-type]
                     mset_io_extra_knots=[(16.0, 0.0), (64.0, 6e-6)])
    assert own.io(Op("insert", 40, 1, 0, 0, 0.0)) == pytest.approx(10e-6 + 4e-6 + 3e-6)
    assert own.io(Op("range", 40, 1, 0, 0, 0.0)) == pytest.approx(10e-6 + 4e-6 + 12e-6)
    assert ix.io(Op("range", 40, 1, 0, 0, 0.0)) == ix.io(Op("insert", 40, 1, 0, 0, 0.0))
    with pytest.raises(ValueError, match="mset_io_extra_knots"):
        RedisIndex(**COSTS, mset_io_extra_knots=[(64.0, 1e-6), (16.0, 0.0)])  # type: ignore[arg-type]
