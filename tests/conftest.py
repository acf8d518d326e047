"""Shared fixtures, hypothesis profiles, and the switches that turn a missing resource's skip
into a failure.

Hypothesis profiles (``KVSIM_HYPOTHESIS_PROFILE``): ``default`` draws new random examples
each run and remembers failures in ``.hypothesis/`` (finds new bugs over time); ``ci``
(set by .ci/run and tools/mutate.py) is derandomized with no example database, so every run
tries the same examples and a red run means a bug, not an unlucky draw; ``deep``
(``make test-deep``) draws ten times the examples of every test, at random. A test that sets
its own ``max_examples`` writes ``examples(n)``, which the deep profile multiplies.

Resources a test may need (the real Mooncake trace, redis-server, a C toolchain for the
shim, libcachesim, the notebook packages): a test that lacks one skips, with one reason per
resource (``pytest -ra`` prints each reason once with its count), unless the resource's
``KVSIM_REQUIRE_*`` switch is 1 (.ci/run sets them all): then the session stops before any
test with ONE message naming every missing required resource. The real trace is read from
KVSIM_REAL_TRACE, or from the ``shared/`` folder beside the repository.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import settings
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


# --- hypothesis profiles ------------------------------------------------------------------
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("deep", max_examples=1000, deadline=None)
PROFILE = os.environ.get("KVSIM_HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)
_DEEP = 10 if PROFILE == "deep" else 1


def examples(n: int) -> int:
    """``max_examples`` for a test: ``n``, or ten times it under the deep profile."""
    return n * _DEEP


# --- fixtures shared by many tests --------------------------------------------------------
MUTATION = os.environ.get("KVSIM_MUTATION") == "1"  # set by tools/mutate.py


def shared(scope: str) -> str:
    """The scope of a fixture that computes something once for many tests: ``scope``, or
    "function" under mutation testing. mutmut runs, for each mutant, the tests that called
    the mutated function; a fixture computed once is charged to the first test only, so the
    other tests that check its result would never be run against the mutant."""
    return "function" if MUTATION else scope


# --- resources: skip, or fail when the KVSIM_REQUIRE_* switch says they must be there ------
def _modules(*names: str) -> Callable[[], bool]:
    def present() -> bool:
        try:
            return all(importlib.util.find_spec(n) is not None for n in names)
        except ModuleNotFoundError:  # a parent package is missing
            return False

    return present


def slurm_ready() -> bool:
    """sbatch and sinfo on PATH, and an idle node."""
    import subprocess

    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return False
    p = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return p.returncode == 0 and "idle" in p.stdout.split()


def _accel_current() -> bool:
    from kvsim import accel  # (imported when asked)

    return accel.enabled() and accel.current()


#: switch -> (is the resource there?, what is missing and how to get it)
RESOURCES: dict[str, tuple[Callable[[], bool], str]] = {
    "KVSIM_REQUIRE_REAL_TRACE": (
        lambda: REAL_TRACE.is_file(),
        f"real Mooncake trace not found at {REAL_TRACE} (set KVSIM_REAL_TRACE)",
    ),
    "KVSIM_REQUIRE_AGENTIC_TRACE": (
        lambda: AGENTIC_TRACES.is_dir(),
        f"agentic sessions not found at {AGENTIC_TRACES} (set KVSIM_AGENTIC_TRACE)",
    ),
    "KVSIM_REQUIRE_REDIS": (
        lambda: shutil.which("redis-server") is not None,
        "redis-server is not installed (apt-get install redis-server)",
    ),
    "KVSIM_REQUIRE_SHIM": (
        lambda: shutil.which("make") is not None and (shutil.which("cc") or shutil.which("gcc")) is not None,
        "make or a C compiler (gcc) is not installed: cannot build shim/ (apt-get install make gcc)",
    ),
    "KVSIM_REQUIRE_LIBCACHESIM": (
        _modules("libcachesim"),
        "the libcachesim package is not installed (pip install -e '.[dev]')",
    ),
    "KVSIM_REQUIRE_NOTEBOOKS": (
        _modules("nbformat", "nbclient", "ipykernel"),
        "nbformat, nbclient or ipykernel is not installed (pip install -e '.[dev]')",
    ),
    "KVSIM_REQUIRE_CLUSTER": (
        _modules("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher", "submitit"),
        "the Hydra joblib/submitit launchers are not installed (the cluster extra: pip install -e '.[cluster]')",
    ),
    "KVSIM_REQUIRE_SLURM": (
        slurm_ready,
        "no Slurm here (sbatch/sinfo, an idle node); as root, .ci/slurm-setup.sh makes one",
    ),
    "KVSIM_REQUIRE_ACCEL": (
        _accel_current,
        "no current compiled build of the hot modules (make accel, or python -m kvsim.accel build: "
        "Cython from the accel extra and a C compiler)",
    ),
}


def site_probe_env(tmp_path: Path, source: str, variable: str) -> tuple[dict[str, str], Path]:
    """An environment whose Python processes (sweep workers included) run ``source`` as
    their ``sitecustomize`` at start, with ``variable`` naming a fresh folder for what the
    probe writes (returned with the environment)."""
    site, out = tmp_path / "probe_site", tmp_path / "probe_out"
    site.mkdir()
    out.mkdir()
    (site / "sitecustomize.py").write_text(source)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), variable: str(out)}, out


def require_resource(switch: str) -> None:
    """Skip the calling test when ``switch``'s resource is missing (fail if the switch is 1)."""
    present, reason = RESOURCES[switch]
    require(present(), reason, switch)


def require_module(name: str, switch: str) -> Any:
    """Import ``name`` for a test module, or skip the module when it is missing (when the
    switch is 1, the session has already stopped with one message: see below)."""
    present, reason = RESOURCES[switch]
    if not present():
        pytest.skip(reason, allow_module_level=True)
    return importlib.import_module(name)


def require(condition: bool, reason: str, switch: str = "KVSIM_REQUIRE_REAL_TRACE") -> None:
    """Skip when a resource is missing, or fail if its ``switch`` (an environment variable
    set to 1 by .ci/run) says it must be there."""
    if condition:
        return
    if os.environ.get(switch) == "1":
        pytest.fail(f"required resource missing ({switch}=1): {reason}", pytrace=False)
    pytest.skip(reason)


def missing_required() -> list[str]:
    """What the KVSIM_REQUIRE_* switches that are on ask for and this machine lacks."""
    return [
        f"{reason} [{switch}=1]"
        for switch, (present, reason) in RESOURCES.items()
        if os.environ.get(switch) == "1" and not present()
    ]


def pytest_collection_finish(session: pytest.Session) -> None:
    """A required resource that is missing is one failure of the session, before any test,
    not one failure per test that needs it."""
    missing = missing_required()
    if missing:
        pytest.exit("required resources missing:\n  " + "\n  ".join(missing), returncode=3)


@pytest.fixture(scope="session")
def real_trace_path() -> Path:
    require_resource("KVSIM_REQUIRE_REAL_TRACE")
    return REAL_TRACE


@pytest.fixture(scope="session")
def agentic_trace_path() -> Path:
    require_resource("KVSIM_REQUIRE_AGENTIC_TRACE")
    return AGENTIC_TRACES


@pytest.fixture(scope=shared("session"))
def real_trace(real_trace_path: Path) -> Trace:
    return read_mooncake_jsonl(real_trace_path)


@pytest.fixture(scope=shared("session"))
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

    require_resource("KVSIM_REQUIRE_NOTEBOOKS")
    import nbclient
    import nbformat

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


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the report code saves, in order, as ``(figure, file name)``: each is saved
    as usual (to its file) and kept, so that a test reads what it shows from its artists
    (closing a figure leaves them readable)."""
    from kvsim.report import metadata, plots, redis_validation

    figs: list[Any] = []
    real = plots.save_figure

    def keep(fig: Any, path: Path, **kw: Any) -> Path:
        figs.append((fig, Path(path).name))
        return real(fig, path, **kw)

    # the sweep's figures import it from plots when they draw
    for module in (plots, redis_validation, metadata):
        monkeypatch.setattr(module, "save_figure", keep)
    return figs
