"""Every conf/index/*.yaml composes and instantiates, and every index honours the contract
the cluster relies on (lookup, insert, update, delete, execute, servers, recorder)."""

from __future__ import annotations

from pathlib import Path

import pytest
import simpy
from omegaconf import OmegaConf

from kvsim.app import build_index
from kvsim.index.base import OP_KINDS, IndexModel, OpRecorder

CONF = Path(__file__).resolve().parents[1] / "conf" / "index"
NAMES = sorted(p.stem for p in CONF.glob("*.yaml"))


def test_the_six_models_have_configs() -> None:
    assert {"redis", "mooncake", "sherman", "chime", "radix", "extent"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_an_index_is_one_file_one_yaml_one_test(name: str) -> None:
    """DESIGN: adding an index is kvsim/index/<name>.py + conf/index/<name>.yaml +
    tests/test_index_<name>.py, and the YAML's class lives in that file."""
    root = CONF.parents[1]
    assert (root / "kvsim" / "index" / f"{name}.py").is_file()
    assert (root / "tests" / f"test_index_{name}.py").is_file()
    target = str(OmegaConf.load(CONF / f"{name}.yaml")["_target_"])
    assert target.startswith(f"kvsim.index.{name}."), target


@pytest.mark.parametrize("name", NAMES)
def test_config_instantiates_and_runs_the_contract(name: str, compose_cfg) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_cfg([f"index={name}"])
    ix = build_index(cfg)
    assert isinstance(ix, IndexModel)
    ix.recorder = OpRecorder()
    env = simpy.Environment()
    reqs = [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [0, 9, 10, 12], [0, 1, 2, 3, 4, 5, 6]]

    def request(blocks: list[int], seen: set[int]):  # type: ignore[no-untyped-def]
        yield from ix.execute(env, ix.plan_lookup(blocks))
        new = [b for b in blocks if b not in seen]
        seen.update(new)
        yield from ix.execute(env, ix.plan_insert(new))
        yield from ix.execute(env, ix.plan_update(blocks[:2]))
        yield from ix.execute(env, ix.plan_delete(blocks[-1:]))

    seen: set[int] = set()
    for r in reqs:
        env.process(request(r, seen))
        env.run()
    df = ix.recorder.to_frame(name)
    assert set(df["op"].astype(str)) <= set(OP_KINDS)
    assert {"get", "range", "insert", "delete"} <= set(df["op"].astype(str))
    assert (df["latency_s"] > 0).all()
    for server in ix.servers().values():
        assert server.served > 0
