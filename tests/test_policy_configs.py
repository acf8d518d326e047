"""Every ``conf/policy/<name>.yaml``: composes, instantiates with its keys checked, and runs
as ``policy=<name>`` in single-tier mode and in the full simulation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from kvsim.app import build_policy_factory, run
from kvsim.policy.base import EvictionPolicy
from tests.conftest import CONF_DIR
from tests.test_cluster import simulate

NAMES = sorted(p.stem for p in (CONF_DIR / "policy").glob("*.yaml"))  # discovered: a new one is tested
ROOT = CONF_DIR.parent


def test_every_policy_named_in_the_issues_has_a_config() -> None:
    assert {"arc", "fifo", "hotness", "lfu", "lookahead", "lru", "opt", "prefix_lru", "s3fifo"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_policy_is_one_file_one_yaml_one_test(name: str) -> None:
    """DESIGN: adding a policy is kvsim/policy/<name>.py + conf/policy/<name>.yaml +
    tests/test_policy_<name>.py, and the YAML's class lives in that file."""
    assert (ROOT / "kvsim" / "policy" / f"{name}.py").is_file()
    assert (ROOT / "tests" / f"test_policy_{name}.py").is_file()
    target = str(OmegaConf.load(CONF_DIR / "policy" / f"{name}.yaml")["_target_"])
    assert target.startswith(f"kvsim.policy.{name}."), target


@pytest.mark.parametrize("name", NAMES)
def test_config_instantiates_the_policy(name, compose_cfg) -> None:
    cfg = compose_cfg([f"policy={name}"])
    assert cfg.policy.name == name
    p = build_policy_factory(cfg)(7)
    assert isinstance(p, EvictionPolicy) and p.capacity == 7 and not p.inclusive
    assert build_policy_factory(compose_cfg([f"policy={name}", "policy.inclusive=true"]))(3).inclusive


# (the embedded trace through hotness: seconds compiled, minutes as plain Python, where
# tools/mutate.py runs its kernels: marked slow, which mutation runs of the policies leave out)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "hotness" else n for n in NAMES])
def test_single_tier_mode(name, compose_cfg, embedded_trace, tmp_path: Path) -> None:
    cfg = compose_cfg([f"policy={name}", "system=single_tier", "system.capacity_blocks=400"])
    summary = run(cfg, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["block_hits"] == summary["block_hits"]
    p = build_policy_factory(cfg)(400)
    p.bind(embedded_trace)
    assert summary["block_hits"] == p.replay(embedded_trace.hash_ids.tolist())
    assert summary["policy"] == name and 0 < summary["hit_ratio"] < 1


@pytest.mark.parametrize("name", NAMES)
def test_full_simulation_with_invariants_checked(name, compose_cfg, embedded_trace) -> None:
    cfg = compose_cfg([f"policy={name}", "system.capacity_scale=0.05"])
    res, c = simulate(cfg, embedded_trace.head(300), check=True)
    hits = sum(int(res.records[f"hits_{t}"].sum()) for t in res.tier_names)
    assert hits == int(res.records["prefix_hits"].sum()) > 0
    assert sum(map(sum, c.hier.total_moves)) > 0
