"""Run folders that hold one run, complete or absent, and are never shared.

A run (a single run or one job of a sweep) writes everything, Hydra's own ``.hydra/`` and
log included, into a staging folder beside its final folder, ``.NAME.staging-HOST-PID``,
and makes its results visible at once by renaming the staging folder onto the final one.
The last file written into the staging folder is the completion marker
(:data:`MARKER`: the hash of the run's composed config, the time, the files), so a folder
counts as complete only if it holds the marker, and an interrupted or failed run leaves
nothing that counts (its staging folder is removed; one left by a killed process is
removed by the next run into the same folder).

Before it starts, a run takes an exclusive lock (``flock`` on ``.NAME.lock`` beside the
folder), so two runs into one folder cannot both proceed, and looks at what the folder
holds:

* nothing (or an empty folder): run;
* a complete run of the same config (same hash): skip it (``skip: complete``), unchanged;
* a complete run of another config, or files that are not a kvsim run: refuse, in one
  line, unless ``overwrite`` is set (files that are not a kvsim run are never replaced).

The hash covers the input files the config names as well (:func:`input_files`: the trace's
name, size and modification time), so a run made from a trace file since rewritten under the
same name is not taken for this run's result: it is refused, in one line naming the file.

Why staging beside the final folder and not inside it: a rename is atomic only within one
file system, and the final folder may already hold a complete run that must stay intact
until the new one is complete.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from kvsim.errors import UserError
from kvsim.trace.files import files_stamp

MARKER = ".kvsim-complete.json"
# Keys that change how a run reports progress or treats an existing folder, not its results.
RUN_CONTROL_KEYS = ("progress", "overwrite")
_HOST = socket.gethostname().split(".")[0] or "host"
_STAGED: set[Path] = set()  # staging folders of this process not yet committed or removed
_HELD: set[Path] = set()  # final folders whose run is in progress in this process


class RunFolderError(UserError):
    """A run cannot use its folder: the message is one line naming the folder."""


def input_files(config: dict[str, Any]) -> list[list[Any]]:
    """What a run reads besides its config, as it is now: ``[name, size, modification time
    (ns)]`` of each file of ``trace.path`` (a folder's session files, or the one file); empty
    when the path names nothing to read (a generated trace; a missing file, which the run
    reports). A stat per file: no file is read."""
    trace = config.get("trace")
    path = trace.get("path") if isinstance(trace, dict) else None
    if not isinstance(path, str) or not path or path == "-":
        return []
    try:
        return [list(f) for f in files_stamp(path)]
    except OSError:
        return []


def config_hash(config: dict[str, Any], inputs: list[list[Any]] | None = None) -> str:
    """SHA-256 of the resolved task config, run-control keys left out, and of its input files
    (``inputs``, by default :func:`input_files` of the config) (canonical JSON)."""
    clean = {k: v for k, v in config.items() if k not in RUN_CONTROL_KEYS}
    clean = {"config": clean, "inputs": input_files(config) if inputs is None else inputs}
    blob = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def changed_inputs(old: Any, new: list[list[Any]]) -> str:
    """What differs between two :func:`input_files` lists, in a few words ("" if nothing
    does, or ``old`` is not such a list: a marker written before inputs were recorded)."""
    if not isinstance(old, list) or not all(isinstance(f, list) and len(f) == 3 for f in old):
        return ""
    was = {str(f[0]): (f[1], f[2]) for f in old}
    now = {str(f[0]): (f[1], f[2]) for f in new}
    out = []
    for name in sorted(was.keys() | now.keys()):
        a, b = was.get(name), now.get(name)
        if a == b:
            continue
        if a is None:
            out.append(f"{name} added")
        elif b is None:
            out.append(f"{name} gone")
        elif a[0] != b[0]:
            out.append(f"{name} size {a[0]} -> {b[0]} bytes")
        else:
            out.append(f"{name} modified {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(b[1] / 1e9))}")
    if len(out) > 3:
        out = [*out[:3], f"{len(out) - 3} more"]
    return ", ".join(out)


def staging_path(final: str | os.PathLike[str], pid: int | None = None) -> Path:
    f = Path(final).absolute()
    return f.parent / f".{f.name}.staging-{_HOST}-{os.getpid() if pid is None else pid}"


def stage(final: str | os.PathLike[str]) -> Path:
    """This process's staging folder for ``final`` (created; removed at exit unless committed).

    Called by the ``kvsim_staging`` resolver, so Hydra writes ``.hydra/`` and its log there
    before any kvsim code runs."""
    s = staging_path(final)
    s.mkdir(parents=True, exist_ok=True)
    if not _STAGED:
        atexit.register(discard_staged)
    _STAGED.add(s)
    return s


def discard_staged() -> None:
    """Remove every staging folder of this process that was not committed (exit, SIGTERM)."""
    for s in list(_STAGED):
        shutil.rmtree(s, ignore_errors=True)
        _STAGED.discard(s)


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    m = Path(folder) / MARKER
    try:
        data = json.loads(m.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(folder: str | os.PathLike[str], config_hash_: str | None = None) -> bool:
    """True if ``folder`` holds a complete run (of the config with this hash, if given)."""
    m = read_marker(folder)
    return m is not None and (config_hash_ is None or m.get("config_hash") == config_hash_)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(final: Path) -> None:
    """Staging folders of killed runs on this host (their process is gone)."""
    prefix = f".{final.name}.staging-{_HOST}-"
    for p in final.parent.glob(f".{final.name}.staging-*"):
        tail = p.name[len(prefix):] if p.name.startswith(prefix) else ""
        if tail.isdigit() and int(tail) != os.getpid() and not _pid_alive(int(tail)):
            shutil.rmtree(p, ignore_errors=True)
    for p in final.parent.glob(f".{final.name}.old-{_HOST}-*"):
        tail = p.name.rsplit("-", 1)[-1]
        if tail.isdigit() and not _pid_alive(int(tail)):
            shutil.rmtree(p, ignore_errors=True)


class FolderLock:
    """An exclusive, non-blocking ``flock`` on ``.NAME.lock`` beside a folder.

    The lock file is removed on release; a run that finds a lock file whose inode changed
    after locking (removed and re-created by another run in between) locks again."""

    def __init__(self, folder: Path) -> None:
        self.path = folder.parent / f".{folder.name}.lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = ""
                with contextlib.suppress(OSError):
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise RunFolderError(
                        f"{self.path.parent / self.path.name[1:-5]}: another run is writing into "
                        f"this folder ({holder or 'lock held'}); wait for it or choose another folder"
                    ) from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} on {_HOST}\n".encode(), 0)
                self.fd = fd
                return
            os.close(fd)
        raise RunFolderError(f"{self.path}: could not take the lock")

    def release(self) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


class RunFolder:
    """``with RunFolder(final, hash, overwrite=False) as rf``: lock, check, then either
    ``rf.skip`` (a complete run of the same config is there) or write into ``rf.staging``
    and call ``rf.commit()``. Leaving the block without a commit (an error, Ctrl-C,
    SIGTERM) removes the staging folder and leaves ``final`` as it was. ``inputs``: the
    run's :func:`input_files` (kept in the marker, and named when a run on other files is
    refused)."""

    def __init__(self, final: str | os.PathLike[str], config_hash_: str, *, overwrite: bool = False,
                 inputs: list[list[Any]] | None = None) -> None:
        self.final = Path(final).absolute()
        self.hash = config_hash_
        self.overwrite = overwrite
        self.inputs = inputs
        self.lock = FolderLock(self.final)
        self.staging = staging_path(self.final)
        self.skip = False
        self.committed = False
        self._made_final = False

    def __enter__(self) -> RunFolder:
        if self.final in _HELD:  # the staging folder (named by our pid) is that run's
            raise RunFolderError(f"{self.final}: another run is writing into this folder (this process)")
        try:
            self.lock.acquire()
        except BaseException:
            self._discard_staging()  # ours (named by our pid): Hydra's files of this attempt
            raise
        try:
            self._check()
        except BaseException:
            self._discard_staging()
            self.lock.release()
            raise
        _HELD.add(self.final)
        return self

    def _discard_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        _STAGED.discard(self.staging)

    def _check(self) -> None:
        f = self.final
        _remove_stale_staging(f)
        if f.exists() and not f.is_dir():
            raise RunFolderError(f"{f}: exists and is not a folder")
        marker = read_marker(f)
        contents = [p.name for p in f.iterdir()] if f.is_dir() else []
        if marker is not None:
            if marker.get("config_hash") == self.hash and not self.overwrite:
                self.skip = True
                return
            if not self.overwrite:
                changed = changed_inputs(marker.get("inputs"), self.inputs) if self.inputs is not None else ""
                if changed:
                    raise RunFolderError(
                        f"{f}: holds a complete run made from input files that changed since ({changed}); "
                        "pass overwrite=true to rerun it on the files as they are, or choose another folder"
                    )
                # a marker without inputs: written before the hash covered the trace's files
                older = " (or of this one, recorded before runs kept their input files)" if (
                    self.inputs is not None and "inputs" not in marker) else ""
                raise RunFolderError(
                    f"{f}: holds a complete run of another config{older} (hash "
                    f"{str(marker.get('config_hash'))[:12]}, this run {self.hash[:12]}); pass overwrite=true to "
                    "replace it, or choose another folder"
                )
        elif contents:
            looks_like_run = ".hydra" in contents or "summary.json" in contents
            if not (self.overwrite and looks_like_run):
                raise RunFolderError(
                    f"{f}: not empty and holds no complete kvsim run ({len(contents)} entries); "
                    + ("pass overwrite=true to replace it, or " if looks_like_run else "")
                    + "choose another folder"
                )
        self.staging.mkdir(parents=True, exist_ok=True)
        _STAGED.add(self.staging)

    def commit(self, **info: Any) -> Path:
        """Write the marker (last), then make the staging folder the final folder."""
        files = sorted(str(p.relative_to(self.staging)) for p in self.staging.rglob("*") if p.is_file())
        marker = {"config_hash": self.hash, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "host": _HOST, "pid": os.getpid(), "files": files, **info}
        if self.inputs is not None:
            marker["inputs"] = self.inputs
        tmp = self.staging / f".{MARKER}.tmp"
        tmp.write_text(json.dumps(marker, indent=2) + "\n")
        os.replace(tmp, self.staging / MARKER)
        f = self.final
        old: Path | None = None
        if f.exists():
            try:
                os.rmdir(f)  # empty (Hydra made it): the rename below then replaces nothing
            except FileNotFoundError:
                pass
            except OSError:
                old = f.parent / f".{f.name}.old-{_HOST}-{os.getpid()}"
                os.replace(f, old)  # overwrite: the old run moves aside until the new one is in
        os.replace(self.staging, f)
        _STAGED.discard(self.staging)
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return f

    def __exit__(self, *exc: object) -> None:
        try:
            if not self.committed:
                self._discard_staging()
                if self.final.is_dir() and not any(self.final.iterdir()):
                    self.final.rmdir()  # Hydra made it empty before the run: leave nothing
        finally:
            _HELD.discard(self.final)
            self.lock.release()
