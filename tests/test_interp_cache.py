"""kvsim.interp_cache: OmegaConf's interpolations parsed once per string, results unchanged."""

from __future__ import annotations

from pathlib import Path

import omegaconf._utils
import omegaconf.base
import omegaconf.grammar_parser as grammar
import omegaconf.resolvers.oc
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from omegaconf.errors import GrammarParseError, InterpolationResolutionError

import kvsim.config  # noqa: F401  (installs the cache)
from kvsim import interp_cache
from tests.conftest import ROOT

CALLERS = (omegaconf.base, omegaconf._utils, omegaconf.resolvers.oc)


def test_every_caller_of_the_parser_goes_through_one_bounded_cache() -> None:
    cached = grammar.parse
    assert hasattr(cached, "cache_info") and cached.cache_info().maxsize == interp_cache.MAX_STRINGS
    assert all(m.parse is cached for m in CALLERS)
    assert interp_cache.install() and grammar.parse is cached  # a second install changes nothing


def test_a_string_is_parsed_once() -> None:
    cfg = OmegaConf.create({"a": 1, "b": "${a}", "c": "x-${a}-unique-string-of-this-test"})
    before = interp_cache.cache_info()
    for _ in range(5):
        assert cfg.c == "x-1-unique-string-of-this-test"
    after = interp_cache.cache_info()
    assert after.misses - before.misses == 1 and after.hits - before.hits >= 4


def test_values_follow_the_config_not_the_cache() -> None:
    """What is kept is the parse of a string, never a value: a changed node, or another
    config with the same interpolation, resolves to its own value."""
    cfg = OmegaConf.create({"a": 1, "b": "${a}", "n": {"x": 2, "y": "${.x}"}})
    assert cfg.b == 1 and cfg.n.y == 2
    cfg.a = 7
    cfg.n.x = 8
    assert cfg.b == 7 and cfg.n.y == 8
    assert OmegaConf.create({"a": "other", "b": "${a}"}).b == "other"
    with pytest.raises(InterpolationResolutionError):
        _ = OmegaConf.create({"b": "${a}"}).b  # the same string, nothing to point at


def test_a_string_that_does_not_parse_fails_every_time_and_is_not_kept() -> None:
    size = interp_cache.cache_info().currsize
    for _ in range(3):
        with pytest.raises(GrammarParseError):
            grammar.parse("${a:")
    assert interp_cache.cache_info().currsize == size
    cfg = OmegaConf.create({"a": 1})
    for _ in range(2):
        with pytest.raises(GrammarParseError):
            cfg.b = "${a"  # OmegaConf checks an interpolation when it is set


def _configs() -> list[list[str]]:
    """The main config and every experiment, composed with Hydra's config (its paths are
    interpolations too)."""
    names = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
    return [[]] + [[f"+experiment={n}"] for n in names]


def test_composed_configs_resolve_the_same_with_and_without_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfgs = [compose("config", overrides=o, return_hydra_config=True) for o in _configs()]
    assert len(cfgs) > 3

    def resolved() -> list[object]:
        out = []
        for c in cfgs:
            c = c.copy()
            with omegaconf.open_dict(c):
                del c["hydra"]  # its run-time values are set only inside a run
            out.append(OmegaConf.to_container(c, resolve=True))
        return out

    with_cache = resolved()
    original = grammar.parse.__wrapped__
    for m in (grammar, *CALLERS):
        monkeypatch.setattr(m, "parse", original)
    assert resolved() == with_cache


def test_an_omegaconf_that_calls_the_parser_otherwise_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def other_parse(value: str, parser_rule: str = "configValue", lexer_mode: str = "DEFAULT_MODE") -> object:
        return grammar.parse.__wrapped__(value, parser_rule, lexer_mode)

    monkeypatch.setattr(grammar, "parse", other_parse)  # callers still hold the cached one
    assert interp_cache.install() is False
    assert grammar.parse is other_parse and omegaconf.base.parse is not other_parse


def test_importing_kvsim_config_installs_it(tmp_path: Path) -> None:
    """Installed by importing kvsim.config: every process that composes or runs a config."""
    import subprocess
    import sys

    code = "import kvsim.config, omegaconf.base as b; print(hasattr(b.parse, 'cache_info'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "True"
