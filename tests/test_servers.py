"""FCFSServer (virtual-clock queue) against simpy.Resource and queueing theory."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from kvsim.servers import FCFSServer, PriorityServer


def _run_fcfs(arrivals: np.ndarray, services: np.ndarray, c: int) -> np.ndarray:
    env = simpy.Environment()
    server = FCFSServer("s", c)
    done = np.zeros(len(arrivals))

    def customer(i: int):
        yield env.timeout(arrivals[i])
        end = server.serve(env.now, services[i])
        yield env.timeout(end - env.now)
        done[i] = env.now

    for i in range(len(arrivals)):
        env.process(customer(i))
    env.run()
    return done


def _run_resource(arrivals: np.ndarray, services: np.ndarray, c: int) -> np.ndarray:
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=c)
    done = np.zeros(len(arrivals))

    def customer(i: int):
        yield env.timeout(arrivals[i])
        with res.request() as req:
            yield req
            yield env.timeout(services[i])
        done[i] = env.now

    for i in range(len(arrivals)):
        env.process(customer(i))
    env.run()
    return done


@pytest.mark.parametrize("c", [1, 3])
def test_same_as_simpy_resource(c: int) -> None:
    rng = np.random.default_rng(1)
    arrivals = np.cumsum(rng.exponential(1.0, 3000))
    services = rng.exponential(0.9 * c, 3000)
    np.testing.assert_allclose(_run_fcfs(arrivals, services, c), _run_resource(arrivals, services, c), rtol=0, atol=1e-9)


def _mean_wait(rho: float, deterministic: bool, n: int = 100_000, seed: int = 3) -> float:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rho, n))  # service mean 1, arrival rate rho
    services = np.ones(n) if deterministic else rng.exponential(1.0, n)
    done = _run_fcfs(arrivals, services, 1)
    waits = done - arrivals - services
    return float(waits[n // 10 :].mean())  # drop the warm-up


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_mean_wait(rho: float) -> None:
    """Pollaczek-Khinchine for M/D/1: Wq = rho * D / (2 (1 - rho))."""
    expected = rho / (2.0 * (1.0 - rho))
    assert _mean_wait(rho, True) == pytest.approx(expected, rel=0.05)


def test_mm1_mean_wait() -> None:
    """M/M/1: Wq = rho / (mu - lambda) = rho / (1 - rho) with mu = 1."""
    rho = 0.6
    assert _mean_wait(rho, False, n=150_000) == pytest.approx(rho / (1.0 - rho), rel=0.06)


def test_accounting_and_bad_input() -> None:
    s = FCFSServer("x", 2)
    assert s.serve(0.0, 1.0) == 1.0
    assert s.serve(0.0, 1.0) == 1.0  # second server
    assert s.serve(0.5, 1.0) == 2.0  # waits 0.5 for the first free one
    assert s.served == 3 and s.busy_s == 3.0 and s.wait_s == 0.5
    assert s.utilization(2.0) == 0.75
    with pytest.raises(ValueError, match="servers"):
        FCFSServer("bad", 0)


# --- PriorityServer: non-preemptive foreground-before-background --------------------------
def _priority_reference(arrivals, services, classes, c: int) -> tuple[np.ndarray, float]:
    """simpy.PriorityResource: the foreground finish times and the summed background wait."""
    env = simpy.Environment()
    res = simpy.PriorityResource(env, capacity=c)
    done = np.zeros(len(arrivals))
    bg_wait = [0.0]

    def customer(i: int):
        yield env.timeout(arrivals[i])
        with res.request(priority=int(classes[i])) as req:
            t = env.now
            yield req
            if classes[i]:
                bg_wait[0] += env.now - t
            yield env.timeout(services[i])
        done[i] = env.now

    for i in range(len(arrivals)):
        env.process(customer(i))
    env.run()
    return done[classes == 0], bg_wait[0]


def _priority_run(arrivals, services, classes, c: int, priorities: bool = True):
    s = PriorityServer("q", c, priorities=priorities)
    fg = []
    for a, x, k in zip(arrivals.tolist(), services.tolist(), classes.tolist(), strict=True):
        if k:
            s.defer(a, x)
        else:
            fg.append(s.serve(a, x))
    s.flush()
    return np.asarray(fg), s


@pytest.mark.parametrize("c", [1, 2, 3])
def test_priority_server_same_as_simpy_priority_resource(c: int) -> None:
    rng = np.random.default_rng(7)
    n = 4000
    arrivals = np.cumsum(rng.exponential(1.0, n))
    services = rng.exponential(0.8 * c, n)
    classes = (rng.random(n) < 0.5).astype(int)
    ref_fg, ref_bg_wait = _priority_reference(arrivals, services, classes, c)
    fg, s = _priority_run(arrivals, services, classes, c)
    np.testing.assert_allclose(fg, ref_fg, rtol=1e-9)
    assert s.bg_wait_s == pytest.approx(ref_bg_wait, rel=1e-9)
    assert s.bg_served == int(classes.sum()) and s.served == n - int(classes.sum())
    assert s.busy_s == pytest.approx(services.sum())


def test_a_background_only_queue_holds_only_what_waits() -> None:
    """A link that carries only background work (demotions written to an SSD) is never asked
    for a foreground booking; its queue still holds only the jobs that have not started
    by the latest arrival, and their waits are those of an FCFS queue (SimPy's resource)."""
    rng = np.random.default_rng(3)
    n = 20_000
    arrivals = np.cumsum(rng.exponential(1.0, n))
    services = rng.exponential(0.7, n)
    s = PriorityServer("ssd-writes", 1)
    longest = 0
    for a, x in zip(arrivals.tolist(), services.tolist(), strict=True):
        s.defer(a, x)
        longest = max(longest, s.waiting)
    assert longest < 100  # at load 0.7 the backlog is a few jobs, not the run's 20,000
    s.flush()
    _, ref_wait = _priority_reference(arrivals, services, np.ones(n, dtype=int), 1)
    assert s.bg_wait_s == pytest.approx(ref_wait, rel=1e-9) and s.bg_served == n


def test_cobham_two_class_nonpreemptive_mg1() -> None:
    """Mean waits of a non-preemptive two-class M/G/1 (Cobham, 1954):

        W0 = sum_i lambda_i E[S_i^2] / 2
        W_fg = W0 / (1 - rho_fg),   W_bg = W0 / ((1 - rho_fg) (1 - rho_fg - rho_bg))

    foreground: exponential services (mean 1); background: uniform on [0.5, 2.5]."""
    rng = np.random.default_rng(2024)
    n = 400_000
    lam_fg, lam_bg = 0.3, 0.25
    lam = lam_fg + lam_bg
    arrivals = np.cumsum(rng.exponential(1.0 / lam, n))
    classes = (rng.random(n) < lam_bg / lam).astype(int)
    services = np.where(classes == 0, rng.exponential(1.0, n), rng.uniform(0.5, 2.5, n))
    _, s = _priority_run(arrivals, services, classes, 1)
    es2_fg, es2_bg = 2.0, (2.5**3 - 0.5**3) / (3 * 2.0)  # E[S^2]: exponential 2 m^2; uniform
    rho_fg, rho_bg = lam_fg * 1.0, lam_bg * 1.5
    w0 = (lam_fg * es2_fg + lam_bg * es2_bg) / 2
    w_fg = w0 / (1 - rho_fg)
    w_bg = w0 / ((1 - rho_fg) * (1 - rho_fg - rho_bg))
    assert s.wait_s / s.served == pytest.approx(w_fg, rel=0.05)
    assert s.bg_wait_s / s.bg_served == pytest.approx(w_bg, rel=0.05)
    # Without priorities both classes wait like one FCFS M/G/1 (Pollaczek-Khinchine).
    _, f = _priority_run(arrivals, services, classes, 1, priorities=False)
    w_fcfs = w0 / (1 - rho_fg - rho_bg)
    assert (f.wait_s + f.bg_wait_s) / n == pytest.approx(w_fcfs, rel=0.05)
    assert f.wait_s / f.served == pytest.approx(w_fcfs, rel=0.05)


def test_priority_server_estimate_books_nothing() -> None:
    s = PriorityServer("q", 1)
    s.serve(0.0, 2.0)
    s.defer(0.5, 3.0)  # starts at 2.0 unless a foreground job comes first
    assert s.estimate(1.0, 1.0) == pytest.approx(3.0)  # ahead of the waiting background job
    assert s.estimate(2.5, 1.0) == pytest.approx(6.0)  # the background job is in service
    assert s.serve(2.5, 1.0) == pytest.approx(6.0)


def test_utilization_by_hand() -> None:
    """Two servers over 4 s: a 3 s foreground job and a 1 s background one (started by the
    flush at the end) keep them busy 4 of 8 server-seconds: 0.5. FCFS alike; no span, 0."""
    from kvsim.servers import FCFSServer, PriorityServer

    q = PriorityServer("p", 2)
    q.serve(0.0, 3.0)
    q.defer(0.0, 1.0)
    assert q.utilization(4.0) == pytest.approx(0.5)
    assert q.utilization(0.0) == 0.0
    f = FCFSServer("f", 2)
    f.serve(0.0, 3.0)
    f.serve(0.0, 1.0)
    assert f.utilization(4.0) == pytest.approx(0.5) and f.utilization(0.0) == 0.0


def test_an_overloaded_background_queue_starts_its_jobs_in_order_and_drops_the_started() -> None:
    """Background jobs every 0.5 s of 1 s service on one server: job k starts at k, after
    waiting 0.5 k; the waiting list never empties, so the started ones are dropped from its
    head now and then (every 1,024), which must not change any start."""
    s = PriorityServer("q", 1)
    n = 5000
    for k in range(n):
        s.defer(0.5 * k, 1.0)
        assert s.waiting == k + 1 - s.bg_served
        assert s._bg_head < 1024
    s.flush()
    assert s.bg_served == n and s.waiting == 0
    assert s.bg_wait_s == pytest.approx(0.5 * n * (n - 1) / 2, rel=1e-12)
    assert s.busy_s == pytest.approx(n * 1.0) and s._free == [pytest.approx(float(n))]
