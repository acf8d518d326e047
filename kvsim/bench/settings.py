"""Settings of the metadata benchmark (``mode: metadata_bench``): the experiment's schema,
its defaults (written only here), and the checks run before it starts.

Kept apart from :mod:`kvsim.bench.metadata` so that checking a config does not import
pandas: the command line checks every config before it runs anything.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from omegaconf import DictConfig, OmegaConf

from kvsim.errors import ConfigError
from kvsim.ranges import (
    Bytes,
    KeyOrder,
    NonNegFloat,
    NonNegInt,
    OneOf,
    PosFloat,
    PosInt,
    check_call,
)

PARTS = ("bench", "key_order", "cache_sweep", "random_gets")


@dataclass
class CacheSweepSettings:
    indexes: list[str] = field(default_factory=lambda: ["sherman", "chime", "extent"])
    # 0 B .. 64 MiB: Sherman's leaf-parents take 1.4 MB on the conversation trace, CHIME's
    # 0.5 MB; the extent index caches whole records (about 5 MB in all)
    cache_bytes: list[Bytes] = field(default_factory=lambda: [
        0, 16384, 65536, 262144, 524288, 1048576, 2097152, 4194304, 16777216, 67108864])


@dataclass
class MetadataBenchSettings:
    """``experiment.*`` of ``mode: metadata_bench`` (``+experiment=metadata_bench`` and
    ``index_cache_sweep``): every setting and its default, written only here."""

    parts: list[Annotated[str, OneOf(*PARTS)]] = field(
        default_factory=lambda: ["bench", "key_order", "random_gets"])
    # conf/index/<name>.yaml each; null: the command line's own index (a multirun over index=)
    indexes: list[str] | None = field(
        default_factory=lambda: ["redis", "mooncake", "sherman", "chime", "radix", "extent"])
    # extra labels: <label>: {index: <config>, <key>: <value>, ...}; null drops one
    variants: dict[str, Any] = field(
        default_factory=lambda: {"extent_nocache": {"index": "extent", "cache_bytes": 0}})
    baseline: str | None = "redis"  # normalized to this index's p99 (the study: Redis = 1)
    interval_s: PosFloat = 60.0  # p99 per interval of this many seconds
    warmup_s: NonNegFloat = 600.0  # excluded from the averages (the study: first 10 minutes)
    capacity_blocks: PosInt | None = None  # bound the index to this many blocks (LRU deletes); null: no deletes
    preload: bool = False  # true: an untimed pass first, so the replay sees a full index
    index_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # <name>: {<key>: <value>}
    key_orders: list[KeyOrder] = field(default_factory=lambda: ["remapped", "hashed"])
    key_order_indexes: list[str] = field(default_factory=lambda: ["sherman", "chime", "extent"])
    cache_sweep: CacheSweepSettings = field(default_factory=CacheSweepSettings)
    random_gets: NonNegInt = 10000  # point gets of random resident blocks, no chain context
    random_get_indexes: list[str] = field(
        default_factory=lambda: ["redis", "mooncake", "sherman", "chime", "extent", "extent_nocache"])


# --- config plumbing ---------------------------------------------------------------------
def settings_from(exp: DictConfig | None) -> MetadataBenchSettings:
    """An ``experiment`` node (typed by the schema, or as a saved config.yaml holds it)
    over the defaults, as the typed settings; a null variant dropped."""
    from kvsim.config import experiment_settings

    s = experiment_settings(exp, MetadataBenchSettings)
    s.variants = {k: v for k, v in (s.variants or {}).items() if v}  # null drops a variant
    return s


def settings_of(cfg: DictConfig) -> MetadataBenchSettings:
    """``cfg.experiment`` as the typed settings (:func:`settings_from`)."""
    exp = cfg.get("experiment")
    return settings_from(exp if isinstance(exp, DictConfig) else None)


def load_index_node(name: str) -> DictConfig:
    """``conf/index/<name>.yaml`` as Hydra composes it: its defaults list (``group@key:
    option`` entries of ``conf/index/<group>/``, e.g. the shared RDMA client) first, then
    the file's own keys on top."""
    from kvsim.config import PROJECT_ROOT

    root = PROJECT_ROOT / "conf" / "index"
    path = root / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in root.glob("*.yaml")))
        raise ConfigError(f"experiment: no index config '{name}' ({path}; known: {known})")
    raw = OmegaConf.load(path)
    assert isinstance(raw, DictConfig)
    defaults = raw.pop("defaults", [])
    out = OmegaConf.create({})
    for entry in defaults:
        if isinstance(entry, str):  # _self_
            continue
        for spec, option in entry.items():
            group, _, key = str(spec).partition("@")
            OmegaConf.update(out, key or group, OmegaConf.load(root / group / f"{option}.yaml"), merge=True)
    merged = OmegaConf.merge(out, raw)
    assert isinstance(merged, DictConfig)
    return merged


def index_config(cfg: DictConfig, name: str, overrides: Mapping[str, Any] | None = None) -> DictConfig:
    """``cfg`` with its ``index`` node replaced by ``conf/index/<name>.yaml`` (the command
    line's own ``index`` node when it is that index) and ``overrides`` applied (a dotted
    key reaches a nested node: ``client.key_order``)."""
    c = copy.deepcopy(cfg)
    OmegaConf.set_struct(c, False)
    if name != c.index.get("name"):
        c.index = load_index_node(name)
    for k, v in (overrides or {}).items():
        OmegaConf.update(c.index, str(k), v, merge=False)
    return c


def key_order_override(cfg: DictConfig, name: str, order: str) -> dict[str, Any]:
    """The override that sets index ``name``'s key order (on its RDMA client)."""
    return {"client.key_order": order} if "client" in index_config(cfg, name).index else {"key_order": order}


def check_overrides(cfg: DictConfig, name: str, overrides: Mapping[str, Any], where: str) -> None:
    """Overrides of index ``name``'s keys: each a parameter of its class (or, dotted, of a
    component node's class), of its type and in range."""
    from hydra.utils import get_class

    node = index_config(cfg, name).index
    flat = {k: v for k, v in overrides.items() if "." not in str(k)}
    check_call(get_class(node._target_), flat, where, partial=True)
    for k, v in overrides.items():
        if "." in str(k):
            head, rest = str(k).split(".", 1)
            sub = node.get(head)
            if not isinstance(sub, DictConfig) or "_target_" not in sub:
                raise ConfigError(f"{where}.{k}: '{head}' is not a component of index '{name}'")
            check_call(get_class(sub._target_), {rest: v}, f"{where}.{head}", partial=True)


def resolve_label(s: MetadataBenchSettings, label: str, extra: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """A label -> (index config name, overrides): a variant's base and settings, or the
    config of that name with its ``index_overrides``."""
    spec = dict((s.variants or {}).get(label) or {})
    base = spec.pop("index", label)
    return base, {**s.index_overrides.get(base, {}), **spec, **(extra or {})}


def _labels(cfg: DictConfig, s: MetadataBenchSettings) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every index label the settings name -> (where it is named, extra overrides)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for label in s.indexes or [cfg.index.name]:
        out.setdefault(label, ("experiment.indexes", {}))
    for label in s.variants or {}:
        out.setdefault(label, (f"experiment.variants.{label}", {}))
    parts = set(s.parts)
    if "key_order" in parts:
        for label in s.key_order_indexes:
            for order in s.key_orders:
                out.setdefault(f"{label}/{order}", ("experiment.key_order_indexes", key_order_override(cfg, label, order)))
    if "cache_sweep" in parts:
        for label in s.cache_sweep.indexes:
            for cb in s.cache_sweep.cache_bytes:
                out.setdefault(f"{label}/{cb}", ("experiment.cache_sweep.indexes", {"cache_bytes": cb}))
    if "random_gets" in parts:
        for label in s.random_get_indexes:
            out.setdefault(label, ("experiment.random_get_indexes", {}))
    return out


def check_config(cfg: DictConfig) -> None:
    """Before the run: every index the settings name has a config, every override and
    variant key is a parameter of that index's class, in its range."""

    from kvsim.targets import check_target_node

    s = settings_of(cfg)
    for base, ov in (s.index_overrides or {}).items():
        check_overrides(cfg, base, ov, f"experiment.index_overrides.{base}")
    for label, spec in (s.variants or {}).items():
        base = spec.get("index", label) if isinstance(spec, Mapping) else label
        if not isinstance(spec, Mapping):
            raise ConfigError(f"experiment.variants.{label}: expected {{index: NAME, KEY: VALUE, ...}}, got {spec!r}")
        rest = {k: v for k, v in spec.items() if k != "index"}
        check_overrides(cfg, base, rest, f"experiment.variants.{label}")
    for label, (where, extra) in _labels(cfg, s).items():
        name = label.split("/")[0]
        try:
            c = index_config(cfg, *resolve_label(s, name, extra))
        except ConfigError as e:
            raise ConfigError(f"{where}: {str(e).removeprefix('experiment: ')}") from None
        check_target_node(c.index, f"index '{name}'")
