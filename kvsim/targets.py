"""Checking a config's `_target_` nodes against their classes, before anything is built.

Used by the config checks (:mod:`kvsim.config`, the modes' own checks) and by the builders
of :mod:`kvsim.app`, so that a component's node is checked by one rule wherever it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from kvsim.errors import ConfigError
from kvsim.ranges import check_call

# Keys of a `_target_` node that describe it rather than configure the class.
META_KEYS = ("name", "_target_", "_partial_", "_convert_", "_recursive_", "_args_")


def check_target_node(node: Any, where: str, later: Sequence[str] = ()) -> None:
    """A `_target_` node against its class's constructor: every key a parameter, each of
    the parameter's annotated type and range (:func:`kvsim.ranges.check_call`), every
    required one given (``later``: the ones a `_partial_` node's caller passes). A key that
    is itself a `_target_` node (a component: an RDMA index's ``client``) is checked against
    its own class the same way."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(f"{where}: expected a node with a _target_ class, got {node!r}")
    try:
        cls: type = get_class(str(node["_target_"]))
    except Exception as e:
        raise ConfigError(f"{where}._target_: cannot load {node['_target_']!r} ({e})") from None
    kwargs = {str(k): v for k, v in node.items() if k not in META_KEYS}
    for k, v in kwargs.items():
        if isinstance(v, Mapping) and "_target_" in v:
            check_target_node(v, f"{where}.{k}")
    parts = {k: v for k, v in kwargs.items() if not (isinstance(v, Mapping) and "_target_" in v)}
    check_call(cls, parts, where, later=(*later, *(k for k in kwargs if k not in parts)) if node.get("_partial_")
               else tuple(k for k in kwargs if k not in parts))
