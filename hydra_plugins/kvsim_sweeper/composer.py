"""A sweep's jobs composed by Hydra once per set of config-group choices.

Hydra composes each job of a sweep from nothing: it builds the defaults tree, reads and
parses every YAML file again and merges them (0.2-0.25 s a job on a 2-core machine; most
of a 40-job sweep's start). Jobs that make the same config-group choices (one policy at
five capacities) differ only in the plain values set on their command line, which Hydra
applies last, after the merge. So :class:`GroupComposer` composes the first job of each
choice with Hydra and keeps it (pickled); every later job of that choice is a copy with its
own values set by Hydra's own override code, and its override list and
``hydra.job.override_dirname`` set as Hydra sets them (about 0.01 s).

Only plain ``key=value`` overrides of primitive values, on keys the kept composition holds
as values, are set on a copy; a job with anything else (``+``/``~`` value overrides, a
dict or list value, a ``hydra.*`` override, other keys than the kept job's) is composed by
Hydra, as is the first of each choice. tests/test_kvsim_sweeper.py holds the copies equal
to Hydra's compositions, job by job.
"""

import pickle
from collections.abc import Sequence
from typing import Any, List, Optional, Tuple

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf

# (the group overrides' and other fixed overrides' lines, the plain values' keys), in order
Signature = Tuple[Tuple[str, ...], Tuple[str, ...]]


class GroupComposer:
    """``compose(overrides)`` is ``loader.load_sweep_config(master, overrides)``, made from a
    kept composition of the same group choices when it can be (``derived`` counts those)."""

    def __init__(self, loader: Any, master: DictConfig) -> None:
        self._loader = loader
        self._master = master
        self._parser = OverridesParser.create(config_loader=loader)
        self._kept: dict[Signature, bytes] = {}
        self.derived = 0
        self.composed = 0

    def _split(self, overrides: Sequence[str]) -> Optional[Tuple[Signature, List[Override], List[Override]]]:
        """The job's signature, its plain values and all its overrides, parsed; None: compose
        it with Hydra."""
        fixed: List[str] = []
        keys: List[str] = []
        values: List[Override] = []
        repo = getattr(self._loader, "repository", None)
        if repo is None:
            return None
        parsed = self._parser.parse_overrides(list(overrides))
        for o in parsed:
            if o.is_hydra_override() or o.is_sweep_override():
                return None
            if repo.group_exists(o.key_or_group):
                fixed.append(o.input_line or "")  # a group choice: the same in every copy
                continue
            if o.type != OverrideType.CHANGE or o.package is not None or isinstance(o.value(), (dict, list)):
                return None
            keys.append(o.key_or_group)
            values.append(o)
        return (tuple(fixed), tuple(keys)), values, parsed

    def signature(self, overrides: Sequence[str]) -> Optional[Signature]:
        """What jobs made from one kept composition share (None: composed by Hydra)."""
        split = self._split(overrides)
        return None if split is None else split[0]

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        split = self._split(overrides)
        if split is not None:
            sig, values, parsed = split
            blob = self._kept.get(sig)
            if blob is not None:
                cfg = pickle.loads(blob)
                if self._holds_values(cfg, sig[1]):
                    self._set(cfg, parsed, values)
                    self.derived += 1
                    return cfg
        cfg = self._loader.load_sweep_config(self._master, list(overrides))
        self.composed += 1
        if split is not None and split[0] not in self._kept:
            self._kept[split[0]] = pickle.dumps(cfg, protocol=pickle.HIGHEST_PROTOCOL)
        return cfg

    @staticmethod
    def _holds_values(cfg: DictConfig, keys: Sequence[str]) -> bool:
        """Every key a value of the composed config, not a node or a group's choice."""
        choices = cfg.hydra.runtime.choices
        for k in keys:
            if k in choices or OmegaConf.is_config(OmegaConf.select(cfg, k, throw_on_missing=False)):
                return False
        return True

    def _set(self, cfg: DictConfig, parsed: List[Override], values: List[Override]) -> None:
        # As Hydra's _load_configuration_impl does after the merge, for these overrides. (The
        # master's resolved values, which load_sweep_config copies in, are in the kept copy.)
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        cfg.hydra.overrides.task = [o.input_line for o in parsed]
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=parsed, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
        )
