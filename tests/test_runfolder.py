"""Run folders: complete or absent, never shared (issue 8).

Unit tests of kvsim.runfolder, then the command line: a failed run, a refused run, a locked
folder and SIGTERM leave a folder that holds a complete run byte for byte as it was
(Hydra's .hydra/ and config.yaml included), and leave no staging or temporary files."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvsim.runfolder import MARKER, FolderLock, RunFolder, RunFolderError, is_complete, staging_path

from .conftest import ROOT


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder`` (hidden ones too): content hash and mtime."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".staging-" in p.name or ".old-" in p.name
                  or p.name.endswith((".lock", ".tmp")))


def commit_run(folder: Path, h: str, text: str = "x", **kw: bool) -> None:
    with RunFolder(folder, h, **kw) as rf:
        assert not rf.skip
        (rf.staging / "summary.json").write_text(text)
        rf.commit()


# --- kvsim.runfolder ---------------------------------------------------------------------
def test_commit_makes_the_run_visible_at_once(tmp_path: Path) -> None:
    final = tmp_path / "run"
    with RunFolder(final, "h1") as rf:
        (rf.staging / "summary.json").write_text("{}")
        assert not final.exists() and not is_complete(final)
        rf.commit()
    assert is_complete(final, "h1") and not is_complete(final, "h2")
    assert sorted(p.name for p in final.iterdir()) == [MARKER, "summary.json"]
    assert leftovers(tmp_path) == []


def test_a_failed_run_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "run"
    final.mkdir()  # as Hydra makes it before the run starts
    with pytest.raises(ValueError), RunFolder(final, "h1") as rf:
        (rf.staging / "half.parquet").write_text("...")
        raise ValueError("boom")
    assert not final.exists() and leftovers(tmp_path) == []


def test_same_config_skips_other_config_is_refused_overwrite_replaces(tmp_path: Path) -> None:
    final = tmp_path / "run"
    commit_run(final, "h1", "first")
    before = snapshot(final)
    with RunFolder(final, "h1") as rf:
        assert rf.skip
    with pytest.raises(RunFolderError, match=r"holds a complete run of another config.*overwrite=true"):
        RunFolder(final, "h2").__enter__()
    assert snapshot(final) == before and leftovers(tmp_path) == []
    commit_run(final, "h2", "second", overwrite=True)
    assert (final / "summary.json").read_text() == "second" and is_complete(final, "h2")
    assert leftovers(tmp_path) == []


def test_a_failed_overwrite_keeps_the_old_run(tmp_path: Path) -> None:
    final = tmp_path / "run"
    commit_run(final, "h1", "first")
    before = snapshot(final)
    with pytest.raises(KeyboardInterrupt), RunFolder(final, "h2", overwrite=True) as rf:
        (rf.staging / "summary.json").write_text("second, half written")
        raise KeyboardInterrupt
    assert snapshot(final) == before and leftovers(tmp_path) == []


def test_a_folder_that_is_not_a_run_is_never_replaced(tmp_path: Path) -> None:
    final = tmp_path / "mine"
    final.mkdir()
    (final / "notes.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match="holds no complete kvsim run"):
            RunFolder(final, "h1", overwrite=overwrite).__enter__()
    assert (final / "notes.txt").read_text() == "precious"


def test_two_runs_cannot_share_a_folder(tmp_path: Path) -> None:
    final = tmp_path / "run"
    with RunFolder(final, "h1") as rf:
        with pytest.raises(RunFolderError, match="another run is writing into this folder"):
            RunFolder(final, "h1").__enter__()
        (rf.staging / "summary.json").write_text("{}")
        rf.commit()
    assert is_complete(final, "h1") and leftovers(tmp_path) == []


def test_staging_of_a_killed_run_is_removed_by_the_next(tmp_path: Path) -> None:
    final = tmp_path / "run"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = staging_path(final, pid=int(dead.stdout))
    (stale / ".hydra").mkdir(parents=True)
    commit_run(final, "h1")
    assert not stale.exists() and leftovers(tmp_path) == []


# --- the command line --------------------------------------------------------------------
def kvsim(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kvsim", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    p = kvsim(f"hydra.run.dir={out}", "trace.max_requests=200", "progress=false", "figures=false")
    assert p.returncode == 0, p.stderr
    assert is_complete(out) and (out / ".hydra" / "config.yaml").is_file() and (out / "config.yaml").is_file()
    return out


def test_cli_rerun_of_the_same_config_is_skipped_untouched(complete_run: Path) -> None:
    before = snapshot(complete_run)
    p = kvsim(f"hydra.run.dir={complete_run}", "trace.max_requests=200", "progress=true", "figures=false")
    assert p.returncode == 0, p.stderr
    assert "skip: complete" in p.stdout + p.stderr
    assert snapshot(complete_run) == before and leftovers(complete_run.parent) == []


@pytest.mark.parametrize("args", [
    ["trace.max_requests=100"],  # another config: refused
    ["trace.max_requests=100", "trace.path=/nonexistent/trace.jsonl", "overwrite=true"],  # fails while running
])
def test_cli_refused_or_failed_run_changes_nothing(complete_run: Path, args: list[str]) -> None:
    before = snapshot(complete_run)
    p = kvsim(f"hydra.run.dir={complete_run}", "progress=false", "figures=false", *args)
    assert p.returncode != 0
    if "overwrite=true" not in args:
        assert "holds a complete run of another config" in p.stderr and "overwrite=true" in p.stderr
    assert snapshot(complete_run) == before  # .hydra/, config.yaml, the log: all as they were
    assert leftovers(complete_run.parent) == []


def test_cli_two_runs_into_one_folder_cannot_both_proceed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    lock = FolderLock(out)
    lock.acquire()  # another run holds the folder
    try:
        p = kvsim(f"hydra.run.dir={out}", "trace.max_requests=100", "progress=false")
    finally:
        lock.release()
    assert p.returncode != 0 and "another run is writing into this folder" in p.stderr
    assert not out.exists() or not any(out.iterdir())
    assert [n for n in leftovers(tmp_path) if ".staging-" in n] == []


def test_cli_sigterm_leaves_no_run_and_no_temporary_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvsim", f"hydra.run.dir={out}", "policy=hotness", "progress=false"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 120
    staging = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in tmp_path.iterdir() if ".staging-" in p.name and (p / "config.yaml").exists()]
        if found:
            staging = found[0]
            break
        time.sleep(0.02)
    assert staging is not None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, output
    assert not out.exists() or not any(out.iterdir())
    assert leftovers(tmp_path) == [], leftovers(tmp_path)
    assert not [p for p in tmp_path.rglob("*.tmp")]
    assert os.environ.get("KVSIM_TRACEBACK") or "Traceback" not in output.split("KeyboardInterrupt")[-1]
