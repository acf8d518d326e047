"""The bad-input corpus: every way a user can err, through the real command line.

Each :class:`Case` is one command (``python -m MODULE ARGS`` in a subprocess) that must
fail with exactly one line on stderr, ``MODULE: error: ...`` holding ``expect``, exit
code ``code``, no traceback, and leave every file it could touch as it was: the command
runs in a scratch folder holding a copy of a complete earlier run, and ``hydra.run.dir``
points at that copy (a rerun into a finished run folder), so the test compares every
file under the scratch folder, byte for byte, before and after.

To add a case, add a row to :data:`CASES`. In ``argv``, ``{bad}`` is ``tests/bad_inputs``,
``{tmp}`` the scratch folder and ``{run}`` the earlier run's folder; ``setup`` may write
generated inputs into the scratch folder first (they are part of the "before").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT

BAD = ROOT / "tests" / "bad_inputs"


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    expect: str  # a fragment of the one error line
    code: int = 2  # 2: a user error
    module: str = "kvsim"
    setup: Callable[[Path], None] | None = None


CASES: list[Case] = [
    # --- config: every mistake fails at compose time, naming the key ---------------------
    Case("plus_typo_in_typed_group", ("+system.capacity_scal=0.5",),
         "system.capacity_scal: unknown key; did you mean 'capacity_scale'?"),
    Case("plus_typo_in_experiment", ("+experiment=trace_analysis", "+experiment.runs_alpah=0.1"),
         "experiment.runs_alpah: unknown key; did you mean 'runs_alpha'?"),
    Case("typo_without_plus", ("system.capcity_scale=2",), "capcity_scale"),
    Case("nan", ("system.capacity_scale=nan",), "system.capacity_scale: is NaN"),
    Case("inf", ("gpu.peak_flops=inf",), "gpu.peak_flops: must be finite"),
    Case("zero_layers", ("model.layers=0",), "model.layers: must be >= 1, got 0"),
    Case("zero_block_tokens", ("trace.block_tokens=0",), "trace.block_tokens: must be >= 1, got 0"),
    Case("zero_tensor_parallel", ("gpu.tensor_parallel=0",), "gpu.tensor_parallel: must be >= 1, got 0"),
    Case("negative_round_trip", ("calibration.tcp.rtt_s=-25e-6",), "calibration.tcp.rtt_s: must be >= 0"),
    Case("zero_max_requests", ("trace.max_requests=0",), "trace.max_requests: must be >= 1, got 0"),
    Case("wrong_type", ("model.layers=many",), "model.layers: Value 'many' of type 'str' could not be converted to Integer"),
    Case("flag_not_bool", ("policy.inclusive=1",), "policy.inclusive: expected true or false, got 1"),
    Case("policy_param_range", ("policy=s3fifo", "policy.small_ratio=1.5"), "policy.small_ratio: must be < 1, got 1.5"),
    Case("index_param_choice", ("index=chime", "index.key_order=sorted"),
         "index.key_order: 'sorted' is not one of remapped, hashed"),
    Case("plus_key_in_policy", ("+policy.agee=3",), "policy.agee: unknown key for kvsim.policy.lru.LRU"),
    Case("key_ignored_by_tiered", ("system.capacity_blocks=5000",),
         "system.capacity_blocks: set to 5000, but ignored when system.kind=tiered"),
    Case("key_ignored_by_single_tier", ("system=single_tier", "system.capacity_scale=0.5"),
         "system.capacity_scale: set to 0.5, but ignored when system.kind=single_tier"),
    Case("group_ignored_by_mode", ("+experiment=trace_analysis", "policy=fifo"),
         "policy=fifo: mode trace_analysis does not use 'policy' (used by: simulate)"),
    Case("unknown_option", ("policy=lruu",), "Could not find 'policy/lruu'; Available options in 'policy': arc, fifo"),
    Case("override_grammar", ("system.capacity_scale=[",), "override 'system.capacity_scale=['"),
    Case("unknown_index_in_bench", ("+experiment=metadata_bench", "experiment.indexes=[redis,sherma]"),
         "experiment.indexes: no index config 'sherma'"),
    Case("multirun_checks_every_job_first", ("-m", "policy=lru,fifo", "system.capacity_scale=1,nan"),
         "system.capacity_scale: is NaN"),
    # --- run folders and sweeps (issue 8 item 1-2, issue 12) ------------------------------
    Case("run_folder_holds_another_config", ("trace.max_requests=20",),
         "holds a complete run of another config (hash "),  # {run} holds trace.max_requests=30
    Case("launcher_key_typo", ("-m", "hydra/launcher=joblib", "hydra.launcher.n_jbos=2"),
         "hydra.launcher.n_jbos: Key 'n_jbos' not in 'JobLibLauncherConf'"),
    Case("launcher_value_type", ("-m", "hydra/launcher=submitit_slurm", "hydra.launcher.mem_gb=lots"),
         "hydra.launcher.mem_gb: Value 'lots' of type 'str' could not be converted to Integer"),
    Case("report_missing_folder", ("{tmp}/nope",), "{tmp}/nope: no such folder", module="kvsim.report"),
    Case("report_not_a_sweep", ("{run}",), "no sweep_jobs.json, so not a kvsim sweep folder", module="kvsim.report"),
    # --- paths ------------------------------------------------------------------------------
    Case("trace_missing", ("trace.path={tmp}/nope.jsonl",), "trace.path: file not found: "),
    Case("trace_is_a_folder", ("trace.path={tmp}",), "trace.path: is a folder, not a file"),
]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: its path and, for a file, its content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KVSIM_TRACEBACK", "HYDRA_FULL_ERROR")}
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run folder, made once: what a failing rerun must leave untouched."""
    out = tmp_path_factory.mktemp("finished") / "run"
    p = subprocess.run(
        [sys.executable, "-m", "kvsim", "trace.max_requests=30", "progress=false", f"hydra.run.dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env(),
    )
    assert p.returncode == 0, p.stderr
    assert (out / "summary.json").is_file()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_fails_in_one_line_and_writes_nothing(case: Case, tmp_path: Path, finished_run: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if case.setup:
        case.setup(tmp_path)
    args = [a.format(bad=BAD, tmp=tmp_path, run=run) for a in case.argv]
    if case.module == "kvsim":
        args += [f"hydra.run.dir={run}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    before = _snapshot(tmp_path)
    p = subprocess.run(
        [sys.executable, "-m", case.module, *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env(),
    )
    lines = p.stderr.strip().splitlines()
    assert p.returncode == case.code, p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"{case.module}: error: "), lines[0]
    assert case.expect.format(tmp=tmp_path) in lines[0], lines[0]
    assert _snapshot(tmp_path) == before  # no result file appeared; the earlier run is unchanged


def test_traceback_on_request(tmp_path: Path) -> None:
    """KVSIM_TRACEBACK=1 (the README's switch) shows the whole traceback instead."""
    p = subprocess.run(
        [sys.executable, "-m", "kvsim", "model.layers=0", f"hydra.run.dir={tmp_path / 'r'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**_env(), "KVSIM_TRACEBACK": "1"},
    )
    assert p.returncode != 0
    assert "Traceback (most recent call last)" in p.stderr
    assert "model.layers: must be >= 1" in p.stderr
