"""Generated config mistakes: NaN, an infinity or a negative number in any numeric key of any
option of any config group, or of any experiment, fails when the config is composed and
checked (before any run), with a message naming the key."""

from __future__ import annotations

import functools

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf

from kvsim.config import check_config
from kvsim.errors import ConfigError

from .conftest import CONF_DIR, examples

GROUPS = ("trace", "system", "model", "gpu", "policy", "index", "calibration")
HOSTILE = ("nan", "inf", "-inf", "-1", "-0.5", "-1e-300")
# Keys whose declared range takes negative integers (a nice value; -1: the last CPU): -1 is
# a valid value there (checked below), every other hostile value still fails.
NEGATIVE_INTS_OK = {"experiment.nice", "experiment.cpu"}


def _leaves(node: DictConfig, prefix: str = ""):
    for k in node:
        if not prefix and k == "hydra":
            continue
        v = node[k]
        if isinstance(v, DictConfig):
            yield from _leaves(v, f"{prefix}{k}.")
        elif isinstance(v, int | float) and not isinstance(v, bool):
            yield f"{prefix}{k}"


@functools.lru_cache(maxsize=1)
def numeric_keys() -> tuple[tuple[tuple[str, ...], str], ...]:
    """(the group option or experiment that has it, key) for every numeric key, each once."""
    bases: list[tuple[str, ...]] = [()]
    bases += [(f"{g}={f.stem}",) for g in GROUPS for f in sorted((CONF_DIR / g).glob("*.yaml"))]
    bases += [(f"+experiment={f.stem}",) for f in sorted((CONF_DIR / "experiment").glob("*.yaml"))]
    found: dict[str, tuple[str, ...]] = {}
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for base in bases:
            cfg = compose("config", overrides=list(base))
            OmegaConf.resolve(cfg)
            for key in _leaves(cfg):
                found.setdefault(key, base)
    return tuple(sorted((base, key) for key, base in found.items()))


def test_the_generator_sees_every_group() -> None:
    roots = {key.split(".")[0] for _, key in numeric_keys()}
    assert {"trace", "system", "model", "gpu", "policy", "index", "calibration", "experiment"} <= roots
    assert len(numeric_keys()) > 100


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(case=((), "system.capacity_scale"), value="nan")  # once ran with exit 0 (issue 8)
@example(case=(("policy=lfu",), "policy.age_every"), value="inf")
@example(case=((), "calibration.tcp.rtt_s"), value="-1")
@given(case=st.deferred(lambda: st.sampled_from(numeric_keys())), value=st.sampled_from(HOSTILE))
def test_non_finite_or_negative_numbers_fail_at_compose_naming_the_key(case, value) -> None:
    base, key = case
    assume(not (key in NEGATIVE_INTS_OK and value == "-1"))
    overrides = [*base, f"{key}={value}"]
    with (
        initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
        pytest.raises((ConfigError, ConfigCompositionException)) as e,
    ):
        check_config(compose("config", overrides=overrides), overrides)
    assert key in str(e.value).splitlines()[0], str(e.value)


@pytest.mark.parametrize(("key", "good", "bad"), [("experiment.nice", "-1", "-21"), ("experiment.cpu", "-1", "-0.5")])
def test_keys_that_take_negative_integers_take_them_and_still_check_their_range(key: str, good: str, bad: str) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        ok = ["+experiment=redis_validation", f"{key}={good}"]
        check_config(compose("config", overrides=ok), ok)
        wrong = ["+experiment=redis_validation", f"{key}={bad}"]
        with pytest.raises((ConfigError, ConfigCompositionException)) as e:
            check_config(compose("config", overrides=wrong), wrong)
    assert key in str(e.value).splitlines()[0], str(e.value)
