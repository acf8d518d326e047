"""kvsim.report.callback: the Hydra callback that gathers a multirun, and what it imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kvsim.report.callback import SweepCallback
from tests.conftest import ROOT
from tests.test_sweep import make_sweep, tiered


def test_the_callback_gathers_a_kvsim_sweep_only(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from omegaconf import OmegaConf

    from kvsim.report import sweep

    gathered: list[tuple[Path, Any]] = []
    monkeypatch.setattr(sweep, "report", lambda d, parallel=None: gathered.append((d, parallel)))
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "sweeper": {"_target_": "other.Sweeper"},
                                      "launcher": {"_target_": "other.Launcher"}}})
    with caplog.at_level("INFO", logger="kvsim"):
        SweepCallback().on_multirun_end(cfg)
    assert [r.getMessage() for r in caplog.records] == [f"{tmp_path}: no sweep_jobs.json (sweeper other.Sweeper): not gathered"]
    assert caplog.records[0].levelname == "WARNING"
    assert gathered == []
    make_sweep(tmp_path, [tiered("lru", 1.0, 0.3)])
    SweepCallback().on_multirun_end(cfg)
    assert gathered == [(tmp_path, None)]  # not a joblib launcher: drawn in this process


def test_the_callback_is_the_configured_one_and_keeps_its_old_name() -> None:
    from kvsim.report import sweep

    assert "_target_: kvsim.report.callback.SweepCallback" in (ROOT / "conf" / "config.yaml").read_text()
    assert sweep.SweepCallback is SweepCallback


def test_building_the_callback_imports_no_pandas() -> None:
    """Hydra builds the callbacks before a sweep's workers start: the report's pandas and
    pyarrow are imported when the jobs are done, not on the sweep's start."""
    code = ("import sys; from kvsim.report.callback import SweepCallback; SweepCallback(); "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'kvsim.report.sweep') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
