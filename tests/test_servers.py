"""FCFSServer (virtual-clock queue) against simpy.Resource and queueing theory."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from kvsim.system.servers import FCFSServer


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
