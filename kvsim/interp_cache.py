"""OmegaConf's interpolations parsed once per string, not once per resolution.

OmegaConf parses an interpolation (``${calibration.redis.get_s}``) with its ANTLR grammar
every time the value is read, and kvsim's configs hold about ninety of them (the
calibration's values, the tiers' sizes, Hydra's paths). A sweep job is composed, checked,
resolved for its folder's ``config.yaml`` and built from its nodes, each a full resolution:
the grammar's pure-Python parser was about a fifth of the time a placement-sweep job spends
on its config (0.23 -> 0.18 s of CPU for composing and checking one job, measured with
and without this cache in one process). The parse of a string depends on the string and
the grammar rule alone, and the tree it returns is only read afterwards (the resolver
visits it; its tokens keep their own input), so the trees are kept by string, as any
parser of an immutable language may (kedro and omegaconf's own issues report the same
cost: omry/omegaconf#622, kedro-org/kedro#5763).

What is cached is the parse, never a resolved value: every resolution still reads the
current config, so results are the same whatever was resolved before. A string that does
not parse is not cached (``functools.lru_cache`` keeps no exceptions): it fails with
OmegaConf's own error each time. The cache holds at most :data:`MAX_STRINGS` strings.

Installed by :func:`install` (from :mod:`kvsim.config`, so in every process that composes
or runs a kvsim config, a sweep's workers included) only where OmegaConf's modules still
call the parser by the name they imported it under; anywhere else (another OmegaConf) it
leaves OmegaConf as it is, which is slower and equally right.
"""

from __future__ import annotations

import functools
from typing import Any

MAX_STRINGS = 4096  # distinct interpolation strings kept (kvsim's configs hold about 90)

# the modules of OmegaConf that call ``grammar_parser.parse`` by an imported name (the
# first two resolve and check every interpolation; the last is ``oc.decode``'s)
_CALLERS = ("omegaconf.base", "omegaconf._utils", "omegaconf.resolvers.oc")


def install() -> bool:
    """Route OmegaConf's interpolation parsing through one bounded cache; True if it is (or
    already was) installed, False where this OmegaConf does not call the parser as expected."""
    import importlib

    try:
        grammar = importlib.import_module("omegaconf.grammar_parser")
        callers = [importlib.import_module(m) for m in _CALLERS]
    except ImportError:
        return False
    original: Any = getattr(grammar, "parse", None)
    if original is None:
        return False
    if getattr(original, "__wrapped__", None) is not None and hasattr(original, "cache_info"):
        return all(getattr(c, "parse", None) is original for c in callers)  # installed before
    if not all(getattr(c, "parse", None) is original for c in callers):
        return False
    cached = functools.lru_cache(maxsize=MAX_STRINGS)(original)
    for m in (grammar, *callers):
        setattr(m, "parse", cached)  # noqa: B010  (modules typed as ModuleType)
    return True


def cache_info() -> Any:
    """The cache's hits, misses and size (``functools`` ``CacheInfo``), or None if not installed."""
    import omegaconf.grammar_parser as grammar

    info = getattr(grammar.parse, "cache_info", None)
    return info() if info is not None else None
