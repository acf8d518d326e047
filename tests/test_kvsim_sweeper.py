"""hydra_plugins/kvsim_sweeper: the composed configs handed to the launcher
(:class:`ComposedJobs`) carry the sweeper's check, so a worker process does not check a job
again. The sweeper end to end is tested through the command line (tests/test_sweep.py,
tests/test_launchers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hydra_plugins.kvsim_sweeper.kvsim_sweeper import ComposedJobs
from kvsim import config
from kvsim.config import ConfigError, check_config

OVERRIDES = ["policy=fifo", "system.capacity_scale=0.5"]


class NoLoader:
    """Hydra's loader stand-in: composing a job again would be a failure here."""

    def load_sweep_config(self, master: Any, overrides: list[str]) -> Any:
        raise AssertionError(f"composed again: {overrides}")


@pytest.fixture
def another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a worker that checked nothing: an empty memo, and a full check fails."""
    monkeypatch.setattr(config, "_CHECKED", type(config._CHECKED)())

    def refuse(*_: Any) -> None:
        raise ConfigError("checked again")

    monkeypatch.setattr(config, "_check_plain", refuse)


def _kept(compose_cfg: Any, tmp_path: Path, checked: str | None) -> tuple[ComposedJobs, Any]:
    cfg = compose_cfg(OVERRIDES)
    jobs = ComposedJobs(NoLoader(), tmp_path / "composed")
    jobs.put(OVERRIDES, ComposedJobs.pack(OVERRIDES, cfg, checked))
    jobs.save()
    return jobs, cfg


def test_a_job_the_sweeper_checked_is_not_checked_again_in_a_worker(compose_cfg: Any, tmp_path: Path,
                                                                    request: pytest.FixtureRequest) -> None:
    key = check_config(compose_cfg(OVERRIDES))  # the sweeper's check, in its process
    _kept(compose_cfg, tmp_path, key)
    request.getfixturevalue("another_process")
    # a worker's copy: the loader pickled without the configs in memory (__getstate__),
    # so it reads the store the sweeper saved
    worker = ComposedJobs(NoLoader(), tmp_path / "composed")
    cfg = compose_cfg(OVERRIDES)
    loaded = worker.load_sweep_config(cfg, list(OVERRIDES))
    assert loaded == cfg
    assert check_config(loaded) == key  # the memo's hit: no second check


def test_a_job_kept_without_a_check_is_checked(compose_cfg: Any, tmp_path: Path, another_process: None) -> None:
    jobs, cfg = _kept(compose_cfg, tmp_path, None)
    loaded = jobs.load_sweep_config(cfg, list(OVERRIDES))
    with pytest.raises(ConfigError, match="checked again"):
        check_config(loaded)


def test_the_check_key_is_the_config_and_its_overrides(compose_cfg: Any) -> None:
    a = compose_cfg(OVERRIDES)
    assert check_config(a) == check_config(compose_cfg(OVERRIDES))
    assert check_config(a) != check_config(compose_cfg(["policy=lru", "system.capacity_scale=0.5"]))
    assert check_config(a) != check_config(a, ["policy=fifo"])
