"""An optional compiled build of the simulator's hot modules: Cython, from the unchanged sources.

    python -m kvsim.accel build     # compile MODULES into build/accel/ (Cython and a C compiler)
    python -m kvsim.accel status    # each module: compiled and current, stale, or not built
    python -m kvsim.accel clean     # remove build/accel/

Why: the per-request path is plain Python on purpose (readable models; one SimPy process per
request, bookkeeping between events in dict and list operations), and its profile is flat, so
no single loop is worth rewriting in another language. Cython compiles the same files to C
with Python's semantics (annotations are not read as C types: ``annotation_typing`` off),
which removes the interpreter's dispatch between those operations: about 1.4x on the
conversation trace's full model, with every per-request record identical
(``tests/test_accel.py``; numbers in docs/speed.md). A declaration file beside a module
(``kvsim/servers.pxd`` and six more: the README's "compiled build") makes its classes
extension types with C fields in the build, so their methods read fields instead of looking
names up; the ``.py`` is unchanged and runs as it is without the build. Two modules are written for the
compiler instead, with C types, and only ever run compiled: ``kvsim/system/lrutable.pyx``
(the tier hierarchy's LRU tiers as one table of C arrays: no Python object per move) and
``kvsim/idtable.pyx`` (block ids in a C table: its id lookups, the Redis index's key set).
Without the build the hierarchy keeps each tier in its policy's own ``OrderedDict`` and the
index uses a ``set``, with the same results (``tests/test_lrutable.py``,
``tests/test_idtable.py``).

Safety first: a compiled module is imported only when the SHA-256 of its source file equals
the one it was compiled from (``build/accel/manifest.json``) and the interpreter is the one
it was compiled for; otherwise the source is imported as usual. An edited file is therefore
never shadowed by an old build (it is reported as stale by ``status``), and nothing changes
for a checkout that never built it. ``KVSIM_ACCEL=0`` turns the compiled modules off.
:func:`in_use` lists the ones this process imported (a run's summary records it).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / "build" / "accel"
MANIFEST = "manifest.json"
ENV = "KVSIM_ACCEL"

# The modules on the per-request path (docs/speed.md's profile), each compiled whole, and
# the Mooncake reader (a JSON line's checks, per line). Not the policies' own files: LRU's
# replay is the benchmarks' bare yardstick, and the others' speeds are quoted beside it.
MODULES = (
    "kvsim.system.cluster",
    "kvsim.system.hierarchy",
    "kvsim.idtable",  # typed (.pyx), as the next: only ever compiled; their users do without them
    "kvsim.system.lrutable",
    "kvsim.system.topology",
    "kvsim.system.router",
    "kvsim.system.scheduler",
    "kvsim.system.compute",
    "kvsim.policy.base",
    "kvsim.index.base",
    "kvsim.index.redis",
    "kvsim.index.costs",
    "kvsim.index.runs",
    "kvsim.servers",
    "kvsim.trace.jsonl",
    "kvsim.trace.mooncake",
)
# SimPy's event loop, compiled from the installed package's own files (not copied: built
# from wherever pip put them, checked by hash like ours).
THIRD_PARTY = ("simpy.core", "simpy.events")

# Python's semantics kept: annotations are not read as C types (a float annotation would
# otherwise turn an int argument into a C double, and list[int] refuse a subclass).
DIRECTIVES = {"language_level": 3, "annotation_typing": False, "binding": True}


def source_path(module: str, root: Path = ROOT) -> Path:
    """The source file of ``module``: kvsim's under ``root``, another package's where it is
    installed (found without this module's finder, which may hold its compiled build)."""
    if module.split(".")[0] == "kvsim":
        py = root.joinpath(*module.split(".")).with_suffix(".py")
        pyx = py.with_suffix(".pyx")
        return pyx if not py.exists() and pyx.exists() else py
    parent, _, _ = module.rpartition(".")
    search = importlib.import_module(parent).__path__ if parent else None
    spec = importlib.machinery.PathFinder.find_spec(module, search)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise FileNotFoundError(f"no Python source for {module}")
    return Path(spec.origin)


def digest(path: Path) -> str:
    """SHA-256 of a module's source and of its package's declaration files (``.pxd``: a
    compiled module's C types and the ones it cimports), so that an edited declaration
    makes the build stale too."""
    # not kvsim.trace.download.sha256_of: importing it here, before the finder is installed,
    # would import the trace reader from its source (kvsim.trace imports it)
    h = hashlib.sha256(path.read_bytes())
    top = path.parent
    while (top.parent / "__init__.py").is_file():
        top = top.parent
    if (top / "__init__.py").is_file():
        for pxd in sorted(top.rglob("*.pxd")):
            h.update(b"\0" + pxd.relative_to(top).as_posix().encode() + b"\0" + pxd.read_bytes())
    return h.hexdigest()


def _tag() -> str:
    """What a compiled module must match: the interpreter and its extension suffix."""
    return f"{sys.implementation.cache_tag} {importlib.machinery.EXTENSION_SUFFIXES[0]}"


def read_manifest(build_dir: Path = BUILD_DIR) -> dict[str, Any] | None:
    try:
        data = json.loads((build_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("modules"), dict) else None


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled build of a module of ``entries`` whose source is unchanged."""

    def __init__(self, entries: dict[str, tuple[Path, str, Path]]) -> None:
        self.entries = entries  # module -> (extension file, source SHA-256, source file)
        self.used: list[str] = []
        self.stale: list[str] = []

    def state(self, name: str, origin: str | Path | None) -> str:
        """``compiled`` if the build of ``name`` may be imported in place of the source file
        ``origin`` (the one an import would load otherwise), ``stale`` if that file changed
        since the build, ``not built`` if there is no build of it (or one of another copy
        of the sources: a copy of the project, build folder included, runs its own)."""
        entry = self.entries.get(name)
        if entry is None or origin is None:
            return "not built"
        so, sha, src = entry
        if Path(origin).resolve() != src.resolve() or not so.is_file():
            return "not built"
        try:
            return "compiled" if digest(src) == sha else "stale"
        except OSError:
            return "not built"

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.entries:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname, path)
        origin = found.origin if found is not None else None
        src = self.entries[fullname][2]
        if origin is None and src.suffix == ".pyx" and path is not None and str(src.parent) in map(str, path):
            origin = str(src)  # a typed module has no Python source: its .pyx in the package stands for it
        state = self.state(fullname, origin)
        if state != "compiled":
            if state == "stale":
                self.stale.append(fullname)
            return None  # the source, as usual
        so = self.entries[fullname][0]
        spec = importlib.util.spec_from_file_location(fullname, so, loader=importlib.machinery.ExtensionFileLoader(fullname, str(so)))
        if spec is not None:
            self.used.append(fullname)
        return spec


def finder(build_dir: Path = BUILD_DIR) -> CompiledFinder | None:
    """The finder for a build in ``build_dir`` made by this interpreter, or None."""
    manifest = read_manifest(build_dir)
    if manifest is None or manifest.get("tag") != _tag():
        return None
    entries: dict[str, tuple[Path, str, Path]] = {}
    for name, rec in manifest["modules"].items():
        if isinstance(rec, dict) and all(isinstance(rec.get(k), str) for k in ("file", "sha256", "source")):
            entries[str(name)] = (build_dir / rec["file"], rec["sha256"], Path(rec["source"]))
    return CompiledFinder(entries) if entries else None


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def install() -> CompiledFinder | None:
    """Put the compiled build (if any, and unless ``KVSIM_ACCEL=0``) first on the import
    path. Called by ``kvsim/__init__.py``, before any of MODULES is imported."""
    if not enabled():
        return None
    for present in sys.meta_path:
        if isinstance(present, CompiledFinder):
            return present
    made = finder()
    if made is not None:
        sys.meta_path.insert(0, made)
    return made


def in_use() -> list[str]:
    """The modules this process imported compiled."""
    for f in sys.meta_path:
        if isinstance(f, CompiledFinder):
            return [m for m in f.used if m in sys.modules]
    return []


def build(modules: Sequence[str] = MODULES + THIRD_PARTY, build_dir: Path = BUILD_DIR, root: Path = ROOT,
          jobs: int | None = None) -> dict[str, Any]:
    """Compile ``modules`` (their sources under ``root``) into ``build_dir``; returns the manifest."""
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
    except ImportError as e:
        raise SystemExit(f"kvsim.accel: {e.name} is not installed (pip install -e '.[accel]')") from None
    import Cython

    jobs = jobs or os.cpu_count() or 1
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    # a folder of its own: two builds at once (make run and make test) do not mix their files
    work = Path(tempfile.mkdtemp(prefix=build_dir.name + ".tmp.", dir=build_dir.parent))
    try:
        out = work / "lib"
        manifest = _compile(modules, root, work, out, jobs, cythonize, Distribution, Extension)
        manifest["cython"] = Cython.__version__
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        # in place by renames: the build folder holds a complete build, the old or the new
        # one (between the two renames none, and the sources are imported)
        if build_dir.exists():
            build_dir.rename(work / "old")
        out.rename(build_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _compile(modules: Sequence[str], root: Path, work: Path, out: Path, jobs: int,
             cythonize: Any, distribution: Any, extension: Any) -> dict[str, Any]:
    """Cython and the C compiler, ``modules`` into ``out``; the manifest without Cython's version."""
    hashes, sources, exts = {}, {}, []
    for m in modules:
        src = sources[m] = source_path(m, root)
        hashes[m] = digest(src)
        # compiled from its place (kvsim's relative, so a traceback names the project's file);
        # a file edited meanwhile no longer matches its recorded hash, and its source is used
        exts.append(extension(m, [str(src.relative_to(root)) if src.is_relative_to(root) else str(src)]))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        compiled = cythonize(exts, compiler_directives=DIRECTIVES, build_dir=str(work / "c"), nthreads=jobs, quiet=True)
    finally:
        os.chdir(cwd)
    dist = distribution({"ext_modules": compiled, "script_name": "kvsim.accel"})
    dist.script_args = ["-q", "build_ext", "--build-lib", str(out), "--build-temp", str(work / "obj"), "-j", str(jobs)]
    os.chdir(work)  # (setuptools would read the project's pyproject.toml from the working directory)
    try:
        dist.parse_command_line()
        dist.run_commands()
    finally:
        os.chdir(cwd)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    manifest: dict[str, Any] = {"tag": _tag(), "directives": DIRECTIVES, "modules": {}}
    for m in modules:
        rel = Path(*m.split(".")).with_suffix(suffix)
        if not (out / rel).is_file():
            raise SystemExit(f"kvsim.accel: {m} was not built (expected {out / rel})")
        manifest["modules"][m] = {"file": str(rel), "sha256": hashes[m], "source": str(sources[m])}
    return manifest


def status(build_dir: Path = BUILD_DIR, modules: Sequence[str] = MODULES + THIRD_PARTY) -> list[tuple[str, str]]:
    """(module, state) for ``modules``, by the rule imports follow (:meth:`CompiledFinder.state`):
    ``compiled``, ``stale`` (its source changed since), ``not built`` (no build, one for
    another interpreter, or one of other sources)."""
    f = finder(build_dir)
    out = []
    for m in modules:
        try:
            origin: Path | None = source_path(m)
        except (FileNotFoundError, ImportError):
            origin = None
        out.append((m, f.state(m, origin) if f is not None else "not built"))
    return out


def current(build_dir: Path = BUILD_DIR) -> bool:
    """Every module compiled from its current source (whether or not ``KVSIM_ACCEL`` lets
    imports use the build: :func:`enabled`)."""
    return all(s == "compiled" for _, s in status(build_dir))
