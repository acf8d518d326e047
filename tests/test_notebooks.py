"""notebooks/placement_sweep.ipynb is current and runs on a small saved sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsim.report.sweep import report

from .conftest import run_notebook, run_sweep_in_process


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep saved the way Hydra's multirun saves one: a folder per job, then the report."""
    d = tmp_path_factory.mktemp("sweep")
    run_sweep_in_process(d, [
        [f"policy={policy}", f"system.capacity_scale={scale}", "trace.max_requests=300", "progress=false",
         "figures=false"]
        for policy in ("lru", "hotness", "opt") for scale in (0.05, 0.5)
    ])
    df = report(d)
    assert len(df) == 6 and "gap_to_opt" in df
    return d


def test_notebook_is_current_and_runs(small_sweep: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = run_notebook("placement_sweep", {"KVSIM_SWEEP_DIR": str(small_sweep)}, monkeypatch)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
