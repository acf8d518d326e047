"""hydra_plugins/kvsim_sweeper: the composed configs handed to the launcher
(:class:`ComposedJobs`) carry the sweeper's check, so a worker process does not check a job
again; a joblib worker that grew by a kvsim job's imports is kept. The sweeper end to end is tested through the command line (tests/test_sweep.py,
tests/test_launchers.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from hydra import initialize_config_dir
from omegaconf import OmegaConf, open_dict

from hydra_plugins.kvsim_sweeper.composer import GroupComposer
from hydra_plugins.kvsim_sweeper.kvsim_sweeper import ComposedJobs, _keep_worker
from kvsim import config
from kvsim.config import ConfigError, check_config

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
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


_BALLAST: list[bytes] = []


def _first_task(keep: bool) -> int:
    if keep:
        _keep_worker()
    return os.getpid()


def _grow(mib: int) -> None:
    _BALLAST.append(b"x" * (mib * 2**20))  # written, so resident


@pytest.mark.parametrize("keep", [False, True])
def test_a_worker_that_grew_as_a_job_does_is_kept(keep: bool) -> None:
    """loky restarts a worker that grew 300 MB over what it held after its first task (its
    check runs after a task, at most once a second); after the sweeper's first task it keeps
    one that grew 400 MB (numba's LLVM and pyarrow are about 240 MB of a kvsim job), so the
    report's figures find the sweep's workers warm. Without it, the worker is replaced."""
    from joblib.externals.loky import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1) as ex:
        pid = ex.submit(_first_task, keep).result()  # loky's reference size is taken after it
        ex.submit(_grow, 400).result()
        time.sleep(1.2)
        ex.submit(os.getpid).result()  # the check, after this task
        time.sleep(0.5)
        after = ex.submit(os.getpid).result()
    assert (after == pid) is keep


SWEEP = ["+experiment=placement_sweep"]


def _hydras_and_mine(jobs: list[list[str]]) -> tuple[list[Any], list[Any], GroupComposer]:
    """Each job composed by Hydra (load_sweep_config) and by one GroupComposer, in order."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=SWEEP, run_mode=RunMode.MULTIRUN)
        composer = GroupComposer(loader, master)
        mine = [composer.compose(o) for o in jobs]
        hydras = [loader.load_sweep_config(master, o) for o in jobs]
    return hydras, mine, composer


def _app(cfg: Any) -> Any:
    """The job's own config, resolved (Hydra's node needs a job number to resolve)."""
    cfg = cfg.copy()
    with open_dict(cfg):
        del cfg["hydra"]
    return OmegaConf.to_container(cfg, resolve=True)


def test_jobs_made_from_one_composition_per_group_choice_are_hydras() -> None:
    jobs = [[f"trace={t}", f"policy={p}", f"system.capacity_scale={c}", "seed=7", *SWEEP]
            for t in ("embedded", "mooncake_conversation") for p in ("lru", "s3fifo") for c in (0.0625, 0.5, 1)]
    jobs += [["policy=lru", "system.capacity_scale=2", "index.server_threads=2", *SWEEP],  # other keys
             ["policy=lru", "system.capacity_scale=0.25", "index.server_threads=3", *SWEEP],
             ["policy=lru", "+system.note=3", *SWEEP],  # an added key: Hydra's
             ["policy=lru", "+system.note=4", *SWEEP],
             ["policy=lru", "hydra.job.name=x", *SWEEP],  # a hydra override: Hydra's
             ["policy=lru", "hydra.job.name=y", *SWEEP],
             ["policy=lru", "seed=8", "system.capacity_scale=0.5", *SWEEP]]  # keys in another order
    hydras, mine, composer = _hydras_and_mine(jobs)
    for o, h, m in zip(jobs, hydras, mine, strict=True):
        assert OmegaConf.to_yaml(m) == OmegaConf.to_yaml(h), o
        assert _app(m) == _app(h), o
        assert m.hydra.job.override_dirname == h.hydra.job.override_dirname
        assert OmegaConf.is_struct(m) and OmegaConf.is_struct(m) == OmegaConf.is_struct(h)
        assert OmegaConf.is_readonly(m.hydra) == OmegaConf.is_readonly(h.hydra)
    # 4 choices x 3 values: 8 copies; one copy of the server_threads job; the rest composed
    assert (composer.derived, composer.composed) == (9, len(jobs) - 9)


def test_a_copy_refuses_a_bad_value_as_hydra_does() -> None:
    from hydra.errors import ConfigCompositionException

    jobs = [["policy=lru", "system.capacity_scale=0.5", *SWEEP], ["policy=lru", "system.capacity_scale=big", *SWEEP]]
    with pytest.raises(ConfigCompositionException):
        _hydras_and_mine(jobs)
