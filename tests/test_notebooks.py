"""notebooks/placement_sweep.ipynb is current and runs on a small saved sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsim.app import run
from kvsim.report.sweep import report

from .conftest import run_notebook


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep saved the way Hydra's multirun saves one: a folder per job, then the report."""
    from hydra import compose, initialize_config_dir

    from .conftest import CONF_DIR

    d = tmp_path_factory.mktemp("sweep")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for j, (policy, scale) in enumerate([(p, s) for p in ("lru", "hotness", "opt") for s in (0.05, 0.5)]):
            cfg = compose("config", overrides=[
                f"policy={policy}", f"system.capacity_scale={scale}", "trace.max_requests=300",
                "progress=false", "figures=false",
            ])
            run(cfg, d / f"{j}_{policy}_x{scale}")
    df = report(d)
    assert len(df) == 6 and "gap_to_opt" in df
    return d


def test_notebook_is_current_and_runs(small_sweep: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = run_notebook("placement_sweep", {"KVSIM_SWEEP_DIR": str(small_sweep)}, monkeypatch)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
