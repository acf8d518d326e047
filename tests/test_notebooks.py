"""The notebooks read saved outputs: placement_sweep.ipynb a small sweep, redis_validation.ipynb a
small validation run, serving_run.ipynb a small run (each current with its make_*_notebook.py,
and run)."""

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


@pytest.fixture(scope="module")
def small_validation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A validation run's saved files, as ``+experiment=redis_validation`` writes them: every
    command's measured latency (run 0) and simulated ones (seeded runs 0-2) in the parquet,
    the cells from them by the experiment's own ``compare`` in the CSV (no Redis needed)."""
    import numpy as np
    import pandas as pd

    from kvsim.bench import redis_validation as rv

    d = tmp_path_factory.mktemp("validation")
    rng = np.random.default_rng(7)
    frames, cells = [], []
    for sp in (1.0, 10.0):
        ops = np.array(["get", "range", "insert"] * 40)
        keys = np.where(ops == "get", 1, rng.integers(1, 300, len(ops)))
        base = 80e-6 + 0.2e-6 * keys
        real = pd.DataFrame({"op": ops, "keys": keys, "latency_s": base * rng.lognormal(0, 0.3, len(ops)),
                             "cmd": np.arange(len(ops)), "run": 0, "replay": 0})
        sim = pd.concat([real.assign(latency_s=base * rng.lognormal(0.02, 0.3, len(ops)), run=k) for k in range(3)])
        cells += rv.compare(real, sim, sp)
        frames += [real.assign(source="real", speedup=sp), sim.assign(source="sim", speedup=sp)]
    pd.concat(frames, ignore_index=True).to_parquet(d / "redis_validation_latency.parquet", index=False)
    pd.DataFrame(cells, columns=rv.CSV_COLUMNS).to_csv(d / "redis_validation.csv", index=False)
    return d


def test_validation_notebook_is_current_and_runs(small_validation: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = run_notebook("redis_validation", {"KVSIM_VALIDATION_DIR": str(small_validation)}, monkeypatch)
    text = "".join(o.get("text", "") for o in outputs)
    assert "240 commands measured, 720 simulated (3 seeded runs), speed-ups x1, x10" in text
    assert " of 6 cells inside the bounds" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2


def test_validation_notebook_refuses_a_table_its_latencies_do_not_give(
        small_validation: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import nbclient.exceptions
    import pandas as pd

    bad = tmp_path / "bad"
    shutil.copytree(small_validation, bad)
    table = pd.read_csv(bad / "redis_validation.csv")
    table.loc[0, "err_p50"] += 0.05
    table.to_csv(bad / "redis_validation.csv", index=False)
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="disagree"):
        run_notebook("redis_validation", {"KVSIM_VALIDATION_DIR": str(bad)}, monkeypatch)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulation run's folder (the embedded trace's first 300 requests, four instances)."""
    d = tmp_path_factory.mktemp("run")
    run_sweep_in_process(d, [["trace.max_requests=300", "progress=false", "figures=false"]])
    (found,) = d.glob("*/requests.parquet")
    return found.parent


def test_serving_run_notebook_is_current_and_runs(small_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = run_notebook("serving_run", {"KVSIM_RUN_DIR": str(small_run)}, monkeypatch)
    tables = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    for shown in ("ttft_s", "queue_s", "top_tier_hit_ratio", "link:pcie0:host0->gpu0"):
        assert shown in tables, shown
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
