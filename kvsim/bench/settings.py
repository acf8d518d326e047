"""Settings of the metadata benchmark (``mode: metadata_bench``): the experiment's schema,
its defaults (written only here), and the checks run before it starts.

Kept apart from :mod:`kvsim.bench.metadata` so that checking a config does not import
pandas: the command line checks every config before it runs anything.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
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
    # >0: spread arrivals uniformly over [t, t + spread_s) (timestamps are 3 s ticks)
    spread_s: NonNegFloat = 0.0
    index_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # <name>: {<key>: <value>}
    key_orders: list[KeyOrder] = field(default_factory=lambda: ["remapped", "hashed"])
    key_order_indexes: list[str] = field(default_factory=lambda: ["sherman", "chime", "extent"])
    cache_sweep: CacheSweepSettings = field(default_factory=CacheSweepSettings)
    random_gets: NonNegInt = 10000  # point gets of random resident blocks, no chain context
    random_get_indexes: list[str] = field(
        default_factory=lambda: ["redis", "mooncake", "sherman", "chime", "extent", "extent_nocache"])


DEFAULTS: dict[str, Any] = asdict(MetadataBenchSettings())


# --- config plumbing ---------------------------------------------------------------------
def settings_of(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.experiment`` as a plain dict over the defaults (a null variant dropped)."""
    exp = cfg.get("experiment")
    user = OmegaConf.to_container(exp, resolve=True) if isinstance(exp, DictConfig) else {}
    s = copy.deepcopy(DEFAULTS)
    if isinstance(user, dict):
        s.update({str(k): v for k, v in user.items()})
    s["variants"] = {k: v for k, v in (s["variants"] or {}).items() if v}  # null drops a variant
    return s


def index_config(cfg: DictConfig, name: str, overrides: Mapping[str, Any] | None = None) -> DictConfig:
    """``cfg`` with its ``index`` node replaced by ``conf/index/<name>.yaml`` (the command
    line's own ``index`` node when it is that index) and ``overrides`` applied."""
    from kvsim.config import PROJECT_ROOT

    c = copy.deepcopy(cfg)
    OmegaConf.set_struct(c, False)
    if name != c.index.get("name"):
        path = PROJECT_ROOT / "conf" / "index" / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
            raise ConfigError(f"experiment: no index config '{name}' ({path}; known: {known})")
        c.index = OmegaConf.load(path)
    for k, v in (overrides or {}).items():
        c.index[k] = v
    return c


def resolve_label(s: dict[str, Any], label: str, extra: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """A label -> (index config name, overrides): a variant's base and settings, or the
    config of that name with its ``index_overrides``."""
    spec = dict((s["variants"] or {}).get(label) or {})
    base = spec.pop("index", label)
    return base, {**s["index_overrides"].get(base, {}), **spec, **(extra or {})}


def _labels(cfg: DictConfig, s: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every index label the settings name -> (where it is named, extra overrides)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for label in s["indexes"] or [cfg.index.name]:
        out.setdefault(label, ("experiment.indexes", {}))
    for label in s["variants"] or {}:
        out.setdefault(label, (f"experiment.variants.{label}", {}))
    parts = set(s["parts"])
    if "key_order" in parts:
        for label in s["key_order_indexes"]:
            for order in s["key_orders"]:
                out.setdefault(f"{label}/{order}", ("experiment.key_order_indexes", {"key_order": order}))
    if "cache_sweep" in parts:
        for label in s["cache_sweep"]["indexes"]:
            for cb in s["cache_sweep"]["cache_bytes"]:
                out.setdefault(f"{label}/{cb}", ("experiment.cache_sweep.indexes", {"cache_bytes": cb}))
    if "random_gets" in parts:
        for label in s["random_get_indexes"]:
            out.setdefault(label, ("experiment.random_get_indexes", {}))
    return out


def check_config(cfg: DictConfig) -> None:
    """Before the run: every index the settings name has a config, every override and
    variant key is a parameter of that index's class, in its range."""
    from hydra.utils import get_class

    from kvsim.app import check_target_node

    s = settings_of(cfg)
    for base, ov in (s["index_overrides"] or {}).items():
        c = index_config(cfg, base)
        check_call(get_class(c.index._target_), ov, f"experiment.index_overrides.{base}", partial=True)
    for label, spec in (s["variants"] or {}).items():
        base = spec.get("index", label) if isinstance(spec, Mapping) else label
        if not isinstance(spec, Mapping):
            raise ConfigError(f"experiment.variants.{label}: expected {{index: NAME, KEY: VALUE, ...}}, got {spec!r}")
        c = index_config(cfg, base)
        rest = {k: v for k, v in spec.items() if k != "index"}
        check_call(get_class(c.index._target_), rest, f"experiment.variants.{label}", partial=True)
    for label, (where, extra) in _labels(cfg, s).items():
        name = label.split("/")[0]
        try:
            c = index_config(cfg, *resolve_label(s, name, extra))
        except ConfigError as e:
            raise ConfigError(f"{where}: {str(e).removeprefix('experiment: ')}") from None
        check_target_node(c.index, f"index '{name}'")
