"""notebooks/placement_sweep.ipynb is current and runs on a small saved sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvsim.app import run
from kvsim.report.sweep import report

from .conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "placement_sweep.ipynb"


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
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        from make_placement_sweep_notebook import build
    finally:
        sys.path.pop(0)
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in build().cells], (
        "notebooks/placement_sweep.ipynb is out of date: run notebooks/make_placement_sweep_notebook.py"
    )
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)
    monkeypatch.setenv("KVSIM_SWEEP_DIR", str(small_sweep))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
