"""kvsim/targets.py: a `_target_` node checked against its class's constructor, components
(a nested `_target_` node) against their own, before anything is built."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from kvsim.errors import ConfigError
from kvsim.targets import META_KEYS, check_target_node

LRU = "kvsim.policy.lru.LRU"


def test_a_good_node_passes_and_meta_keys_are_not_parameters() -> None:
    check_target_node({"_target_": LRU, "name": "lru", "capacity": 4, "inclusive": True}, "policy")
    assert {"name", "_target_", "_partial_"} <= set(META_KEYS)


def test_partial_nodes_leave_the_callers_parameters_out() -> None:
    node = {"_target_": LRU, "_partial_": True, "inclusive": False}
    check_target_node(node, "policy", later=("capacity",))
    with pytest.raises(ConfigError, match=r"policy\.capacity: missing \(required by kvsim\.policy\.lru\.LRU\)"):
        check_target_node({"_target_": LRU, "inclusive": False}, "policy")


@pytest.mark.parametrize(("node", "message"), [
    ({"_target_": LRU, "capacity": 4, "inclusiv": True}, "policy.inclusiv: unknown key"),
    ({"_target_": "kvsim.policy.s3fifo.S3FIFO", "capacity": 4, "small_ratio": 1.5}, "policy.small_ratio: must be < 1"),
    ({"_target_": "kvsim.policy.lru.NoSuchPolicy", "capacity": 4}, "policy._target_: cannot load 'kvsim.policy.lru.NoSuchPolicy'"),
    ({"capacity": 4}, "policy: expected a node with a _target_ class"),
])
def test_a_wrong_node_is_one_error_naming_its_key(node, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        check_target_node(node, "policy")


def test_a_component_is_checked_against_its_own_class(compose_cfg) -> None:  # type: ignore[no-untyped-def]
    """An RDMA index's ``client`` node: its keys against RdmaClient, named by their path."""
    cfg = compose_cfg(["index=sherman"])
    check_target_node(cfg.index, "index")  # as composed: fine
    bad = OmegaConf.to_container(cfg.index, resolve=True)
    assert isinstance(bad, dict)
    bad["client"]["key_ordr"] = "hashed"
    with pytest.raises(ConfigError, match=r"index\.client\.key_ordr: unknown key"):
        check_target_node(bad, "index")
