"""Mooncake's master: one RPC per lookup op over a sharded map, two RPCs per insert."""

from __future__ import annotations

import pytest
import simpy

from kvsim.index.base import OpRecorder
from kvsim.index.mooncake import MooncakeMasterIndex


def make(**kw: object) -> MooncakeMasterIndex:
    args = dict(rpc_rtt_s=25e-6, rpc_base_s=3e-6, per_key_s=0.3e-6, rpc_threads=4, shards=1024)
    args.update(kw)
    return MooncakeMasterIndex(**args)  # type: ignore[arg-type]


def test_unloaded_latencies() -> None:
    ix = make()
    ix.recorder = OpRecorder()
    env = simpy.Environment()

    ix.plan_insert([1, 4, 5, 6])  # present: the lookup asks every run (lookup: prefix)

    def p():  # type: ignore[no-untyped-def]
        yield from ix.execute(env, ix.plan_lookup([1, 4, 5, 6]))
        yield from ix.execute(env, ix.plan_insert([1, 4, 5, 6]))

    env.process(p())
    env.run()
    get, rng, ins = ix.recorder.latency_s
    assert get == pytest.approx(25e-6 + 3e-6 + 0.3e-6)
    assert rng == pytest.approx(25e-6 + 3e-6 + 3 * 0.3e-6)
    assert ins == pytest.approx(2 * (25e-6 + 3e-6 + 4 * 0.3e-6))  # PutStart + PutEnd
    assert ix.recorder.round_trips == [1, 1, 2]


def test_sharded_map_is_real() -> None:
    ix = make()
    ix.plan_insert(list(range(100_000)))
    s = ix.stats()
    assert s["keys"] == 100_000 and s["shards"] == 1024
    assert s["max_shard_keys"] < 1.5 * s["mean_shard_keys"]  # Poisson(98): max of 1024 about 130
    assert 5 in ix
    ix.plan_delete([5])
    assert 5 not in ix
    ix.plan_range([4, 5, 6])
    assert ix.stats()["found_ratio"] == pytest.approx(2 / 3)


def test_worker_threads_serve_in_parallel() -> None:
    for threads, expect in ((1, 4), (4, 1)):
        ix = make(rpc_threads=threads, rpc_base_s=100e-6, per_key_s=0.0)
        ix.recorder = OpRecorder()
        env = simpy.Environment()

        def p(ix=ix, env=env):  # type: ignore[no-untyped-def]
            yield from ix.execute(env, [ix.plan_get(0)])

        for _ in range(4):
            env.process(p())
        env.run()
        assert max(ix.recorder.latency_s) == pytest.approx(25e-6 + expect * 100e-6)
