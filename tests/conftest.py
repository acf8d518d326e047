"""Shared fixtures.

The real Mooncake conversation trace is read from KVSIM_REAL_TRACE, or from the
``shared/`` folder beside the repository. Tests that need it skip when it is absent,
unless KVSIM_REQUIRE_REAL_TRACE=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import kvsim.config  # noqa: F401  (schemas and resolvers)
from kvsim.trace.mooncake import read_mooncake_jsonl
from kvsim.trace.schema import Trace

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
EMBEDDED = ROOT / "traces" / "synthetic_conversation.jsonl"
REAL_TRACE = Path(
    os.environ.get(
        "KVSIM_REAL_TRACE", str(ROOT.parent / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl")
    )
)


AGENTIC_TRACES = Path(
    os.environ.get("KVSIM_AGENTIC_TRACE", str(ROOT.parent / "shared" / "traces" / "agentic"))
)


def reference_lru_hits(keys, capacity: int) -> int:
    """An independent LRU for golden counts: look up, insert on a miss, evict the LRU."""
    from collections import OrderedDict

    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for k in keys:
        if k in cache:
            hits += 1
            cache.move_to_end(k)
        else:
            cache[k] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits


def require(condition: bool, reason: str) -> None:
    """Skip when a resource is missing, or fail if KVSIM_REQUIRE_REAL_TRACE=1 says it must be there."""
    if condition:
        return
    if os.environ.get("KVSIM_REQUIRE_REAL_TRACE") == "1":
        pytest.fail(f"required resource missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_trace_path() -> Path:
    require(REAL_TRACE.is_file(), f"real Mooncake trace not found at {REAL_TRACE} (set KVSIM_REAL_TRACE)")
    return REAL_TRACE


@pytest.fixture(scope="session")
def agentic_trace_path() -> Path:
    require(AGENTIC_TRACES.is_dir(), f"agentic sessions not found at {AGENTIC_TRACES} (set KVSIM_AGENTIC_TRACE)")
    return AGENTIC_TRACES


@pytest.fixture(scope="session")
def real_trace(real_trace_path: Path) -> Trace:
    return read_mooncake_jsonl(real_trace_path)


@pytest.fixture(scope="session")
def embedded_trace() -> Trace:
    return read_mooncake_jsonl(EMBEDDED)


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """compose_cfg(overrides) -> the composed config, as `python -m kvsim` would see it."""

    def _compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name, overrides=overrides or [], return_hydra_config=False)

    return _compose


def run_sweep_in_process(sweep_dir: Path, jobs: list[list[str]]) -> None:
    """A sweep folder as ``python -m kvsim -m`` leaves one, made in this process: per job
    (a list of overrides) a complete run folder, and the sweep's job list."""
    from omegaconf import OmegaConf

    from kvsim.app import run
    from kvsim.runfolder import RunFolder
    from kvsim.sweepjobs import describe_job, write_jobs

    described = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for num, overrides in enumerate(jobs):
            cfg = compose("config", overrides=overrides)
            container = OmegaConf.to_container(cfg, resolve=True)
            name = "_".join([str(num)] + [o.split("=", 1)[1] for o in overrides if "=" in o][:2])
            job = describe_job(num, name, overrides, container)  # type: ignore[arg-type]
            with RunFolder(sweep_dir / name, job.config_hash) as rf:
                run(cfg, rf.staging)
                rf.commit()
            described.append(job)
    write_jobs(sweep_dir, described)


def run_notebook(name: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Check ``notebooks/<name>.ipynb`` equals what ``make_<name>_notebook.py`` builds, run it
    with ``env`` set, and return the outputs of its code cells (failing on any error)."""
    import subprocess
    import sys

    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebooks = ROOT / "notebooks"
    sys.path.insert(0, str(notebooks))
    try:
        build = __import__(f"make_{name}_notebook").build
    finally:
        sys.path.pop(0)
    nb = nbformat.read(str(notebooks / f"{name}.ipynb"), as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in build().cells], (
        f"notebooks/{name}.ipynb is out of date: run notebooks/make_{name}_notebook.py"
    )
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(notebooks)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    return outputs
