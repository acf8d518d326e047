"""The compiled build (kvsim.accel): used only for unchanged sources, and the same results.

The finder's rules are tested on a small package compiled here (a few seconds); the project's
own build (``python -m kvsim.accel build``, which ``make test`` runs) is checked against the
sources on the embedded trace's full model, record for record, in two fresh processes. That
test needs the build: it skips without one, unless ``KVSIM_REQUIRE_ACCEL=1`` (set by .ci/run).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvsim import accel
from tests.conftest import require_resource

ROOT = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent(
    """
    def total(xs: list[int], scale: float) -> float:
        # an int passed for a float stays an int: Python's semantics, annotations not read
        return sum(xs) * scale

    def kind() -> str:
        return "compiled" if not __file__.endswith(".py") else "source"
    """
)


@pytest.fixture
def probe_pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package ``accelprobe`` with one module, importable from ``tmp_path``."""
    pkg = tmp_path / "src" / "accelprobe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    yield pkg
    for name in ("accelprobe.mod", "accelprobe"):
        sys.modules.pop(name, None)


def _import_with(f: accel.CompiledFinder | None, name: str):  # noqa: ANN202
    sys.modules.pop(name, None)
    if f is not None:
        sys.meta_path.insert(0, f)
    try:
        return importlib.import_module(name)
    finally:
        if f is not None:
            sys.meta_path.remove(f)


def test_a_compiled_module_is_used_only_while_its_source_is_unchanged(probe_pkg: Path, tmp_path: Path) -> None:
    build_dir = tmp_path / "build"
    manifest = accel.build(["accelprobe.mod"], build_dir=build_dir, root=tmp_path, jobs=1)
    rec = manifest["modules"]["accelprobe.mod"]
    assert rec["sha256"] == accel.digest(probe_pkg / "mod.py")
    assert json.loads((build_dir / accel.MANIFEST).read_text()) == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "src"]  # no work folder left

    f = accel.finder(build_dir)
    assert f is not None
    mod = _import_with(f, "accelprobe.mod")
    assert mod.kind() == "compiled" and mod.__file__ == str(build_dir / rec["file"])
    assert f.used == ["accelprobe.mod"] and f.stale == []
    assert mod.total([1, 2], 3) == 9 and isinstance(mod.total([1, 2], 3), int)
    assert accel.status(build_dir, ["accelprobe.mod"]) == [("accelprobe.mod", "compiled")]

    # an edit: the source is imported again, and the build reported stale
    (probe_pkg / "mod.py").write_text(PROBE + "\nEDITED = True\n")
    f = accel.finder(build_dir)
    assert f is not None
    mod = _import_with(f, "accelprobe.mod")
    assert mod.kind() == "source" and mod.EDITED is True
    assert f.used == [] and f.stale == ["accelprobe.mod"]
    assert accel.status(build_dir, ["accelprobe.mod"]) == [("accelprobe.mod", "stale")]


def test_a_declaration_file_types_the_build_and_its_edit_makes_the_build_stale(probe_pkg: Path, tmp_path: Path) -> None:
    (probe_pkg / "mod.py").write_text(PROBE + "\nclass Box:\n    def __init__(self, x):\n        self.x = x\n")
    (probe_pkg / "mod.pxd").write_text("cdef class Box:\n    cdef public double x\n")
    build_dir = tmp_path / "build"
    accel.build(["accelprobe.mod"], build_dir=build_dir, root=tmp_path, jobs=1)
    mod = _import_with(accel.finder(build_dir), "accelprobe.mod")
    assert mod.kind() == "compiled"
    box = mod.Box(2)
    assert box.x == 2.0 and isinstance(box.x, float)  # a C double field, as declared
    with pytest.raises(AttributeError):
        box.other = 1  # an extension type: no instance dictionary

    # the declarations edited, the source unchanged: the build is stale, the source used
    (probe_pkg / "mod.pxd").write_text("cdef class Box:\n    cdef public object x\n")
    f = accel.finder(build_dir)
    assert f is not None
    mod = _import_with(f, "accelprobe.mod")
    assert mod.kind() == "source" and f.stale == ["accelprobe.mod"]
    assert mod.Box(2).x == 2 and isinstance(mod.Box(2).x, int)


def test_a_failed_build_leaves_the_previous_one_and_no_work_folder(probe_pkg: Path, tmp_path: Path) -> None:
    build_dir = tmp_path / "build"
    accel.build(["accelprobe.mod"], build_dir=build_dir, root=tmp_path, jobs=1)
    before = (build_dir / accel.MANIFEST).read_text()
    (probe_pkg / "mod.py").write_text("def broken(:\n")  # Cython refuses it
    with pytest.raises((Exception, SystemExit)):
        accel.build(["accelprobe.mod"], build_dir=build_dir, root=tmp_path, jobs=1)
    assert (build_dir / accel.MANIFEST).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "src"]
    assert accel.status(build_dir, ["accelprobe.mod"]) == [("accelprobe.mod", "stale")]


def test_a_build_for_another_interpreter_or_a_broken_manifest_is_ignored(tmp_path: Path) -> None:
    d = tmp_path / "b"
    d.mkdir()
    assert accel.finder(d) is None  # no manifest
    (d / accel.MANIFEST).write_text("{not json")
    assert accel.finder(d) is None
    (d / accel.MANIFEST).write_text(json.dumps({"tag": "cpython-39 .so", "modules": {"x": {"file": "x.so", "sha256": "0", "source": "x.py"}}}))
    assert accel.finder(d) is None
    assert accel.status(d, ["x"]) == [("x", "not built")]


def test_kvsim_accel_0_imports_the_sources() -> None:
    code = "import kvsim.system.cluster as c, kvsim.accel as a; print(c.__file__, len(a.in_use()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "KVSIM_ACCEL": "0"}).stdout.split()
    assert out[0].endswith("cluster.py") and out[1] == "0"


RUN = textwrap.dedent(
    """
    import hashlib, json, sys
    from hydra import compose, initialize_config_dir
    import kvsim.config
    from kvsim import accel
    from kvsim.app import build_cluster, build_trace
    with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
        cfg = compose("config", overrides=["progress=false", *sys.argv[2:]])
    trace = build_trace(cfg)
    cluster, _ = build_cluster(cfg, trace)
    res = cluster.run()
    h = hashlib.sha256()
    for k in sorted(res.records):
        h.update(k.encode()); h.update(memoryview(res.records[k]).tobytes())
    print(json.dumps({"digest": h.hexdigest(), "compiled": sorted(accel.in_use()),
                      "link_bytes": sorted((str(k), v) for k, v in res.link_bytes.items())}))
    """
)


@pytest.mark.parametrize("overrides", [[], ["policy=s3fifo", "index=sherman", "scheduler=fcfs"]], ids=["defaults", "s3fifo-sherman-fcfs"])
def test_the_compiled_build_gives_the_sources_results(overrides: list[str]) -> None:
    require_resource("KVSIM_REQUIRE_ACCEL")

    def run(flag: str) -> dict:
        p = subprocess.run([sys.executable, "-c", RUN, str(ROOT / "conf"), *overrides], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, "KVSIM_ACCEL": flag})
        assert p.returncode == 0, p.stderr[-2000:]
        return json.loads(p.stdout.strip().splitlines()[-1])

    compiled, source = run("1"), run("0")
    assert source["compiled"] == []
    used = set(compiled["compiled"])
    assert {"kvsim.system.cluster", "kvsim.system.hierarchy", "kvsim.policy.base", "simpy.core"} <= used
    if not overrides:  # every tier LRU: the hierarchy keeps them in its compiled table
        assert "kvsim.system.lrutable" in used
    assert compiled["digest"] == source["digest"] and compiled["link_bytes"] == source["link_bytes"]


def test_a_build_is_not_used_for_another_copy_of_its_sources(probe_pkg: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    build_dir = tmp_path / "build"
    accel.build(["accelprobe.mod"], build_dir=build_dir, root=tmp_path, jobs=1)
    copy = tmp_path / "copy" / "accelprobe"  # the same bytes elsewhere, first on the path
    copy.mkdir(parents=True)
    for f in ("__init__.py", "mod.py"):
        (copy / f).write_bytes((probe_pkg / f).read_bytes())
    monkeypatch.syspath_prepend(str(tmp_path / "copy"))
    sys.modules.pop("accelprobe", None)
    f = accel.finder(build_dir)
    assert f is not None
    mod = _import_with(f, "accelprobe.mod")
    assert mod.kind() == "source" and mod.__file__ == str(copy / "mod.py") and f.used == []


def test_the_status_command_lists_every_module_and_says_when_it_is_off() -> None:
    p = subprocess.run([sys.executable, "-m", "kvsim.accel", "status"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "KVSIM_ACCEL": "0"})
    assert p.returncode == 0, p.stderr
    listed = [line.split()[0] for line in p.stdout.splitlines() if line.startswith("  kvsim.") or line.startswith("  simpy.")]
    assert listed == [*accel.MODULES, *accel.THIRD_PARTY]
    assert "KVSIM_ACCEL=0: the sources are imported" in p.stdout
