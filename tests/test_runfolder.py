"""Run folders: complete or absent, never shared (issue 8).

Unit tests of kvsim.runfolder, then the command line: a failed run, a refused run, a locked
folder and SIGTERM leave a folder that holds a complete run byte for byte as it was
(Hydra's .hydra/ and config.yaml included), and leave no staging or temporary files."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvsim.runfolder import (
    MARKER,
    FolderLock,
    RunFolder,
    RunFolderError,
    changed_inputs,
    config_hash,
    input_files,
    is_complete,
    read_marker,
    staging_path,
)

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


def test_the_hash_covers_the_trace_files_as_they_are(tmp_path: Path) -> None:
    """Same config, same files: same hash. A trace file rewritten under its name (other size,
    or same size and a new modification time), or a session file added to a trace folder,
    changes it; a path naming nothing to read adds nothing (a generated trace)."""
    f = tmp_path / "t.jsonl"
    f.write_text("a\n")
    cfg = {"trace": {"path": str(f), "name": "t"}, "policy": {"name": "lru"}}
    h = config_hash(cfg)
    assert config_hash(dict(cfg)) == h and input_files(cfg) == [["t.jsonl", 2, f.stat().st_mtime_ns]]
    f.write_text("ab\n")
    h2 = config_hash(cfg)
    assert h2 != h
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert config_hash(cfg) not in (h, h2)
    d = tmp_path / "sessions"
    d.mkdir()
    (d / "a.json").write_text("{}")
    folder = {"trace": {"path": str(d)}}
    h3 = config_hash(folder)
    (d / "b.json").write_text("{}")
    assert config_hash(folder) != h3 and [x[0] for x in input_files(folder)] == ["a.json", "b.json"]
    for path in ("-", str(tmp_path / "missing.jsonl"), None):
        assert input_files({"trace": {"path": path}}) == []
    assert input_files({"policy": {}}) == []


def test_changed_inputs_in_words() -> None:
    old = [["a.json", 10, 1_000_000_000], ["b.json", 5, 1]]
    assert changed_inputs(old, old) == ""
    assert changed_inputs(old, [["a.json", 12, 1_000_000_000], ["b.json", 5, 1]]) == "a.json size 10 -> 12 bytes"
    assert changed_inputs(old, [["a.json", 10, 2_000_000_000]]).startswith("a.json modified ")
    assert changed_inputs(old, [["a.json", 10, 2_000_000_000]]).endswith(", b.json gone")
    assert changed_inputs(old[:1], old) == "b.json added"
    assert changed_inputs(None, old) == "" and changed_inputs([["x"]], old) == ""  # no record: say nothing
    many = [[f"{i}.json", 1, 1] for i in range(6)]
    assert changed_inputs([], many).endswith(", 3 more")


def test_a_run_on_input_files_that_changed_is_refused_naming_the_file(tmp_path: Path) -> None:
    final = tmp_path / "run"
    was = [["t.jsonl", 100, 1]]
    with RunFolder(final, "h1", inputs=was) as rf:
        rf.commit()
    assert read_marker(final)["inputs"] == was
    before = snapshot(final)
    with pytest.raises(RunFolderError, match=r"made from input files that changed since \(t.jsonl size 100 -> 90 bytes\)"
                       r".*overwrite=true"):
        RunFolder(final, "h2", inputs=[["t.jsonl", 90, 2]]).__enter__()
    assert snapshot(final) == before and leftovers(tmp_path) == []
    # a marker from before runs kept their inputs: it may be this very config, so say so
    (final / MARKER).write_text(json.dumps({"config_hash": "h0"}))
    with pytest.raises(RunFolderError, match=r"another config \(or of this one, recorded before runs kept their "
                       r"input files\) \(hash h0, this run h2\)"):
        RunFolder(final, "h2", inputs=[["t.jsonl", 90, 2]]).__enter__()
    with pytest.raises(RunFolderError, match=r"another config \(hash h0, this run h2\)"):
        RunFolder(final, "h2").__enter__()  # no inputs known: nothing to add


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


def test_cli_a_trace_rewritten_under_its_name_is_not_taken_for_the_old_run(tmp_path: Path) -> None:
    """The run's folder holds a complete run on a trace file; the file is rewritten (fewer
    requests) under the same name: the same command is refused in one line naming the file,
    not skipped as complete; with overwrite=true it reruns on the file as it is."""
    trace = tmp_path / "t.jsonl"
    lines = (ROOT / "traces" / "synthetic_conversation.jsonl").read_text().splitlines(keepends=True)
    trace.write_text("".join(lines[:300]))
    out = tmp_path / "run"
    args = [f"hydra.run.dir={out}", f"trace.path={trace}", "progress=false", "figures=false"]
    assert kvsim(*args).returncode == 0
    p = kvsim(*args)
    assert p.returncode == 0 and "skip: complete" in p.stdout + p.stderr
    before = snapshot(out)
    trace.write_text("".join(lines[:150]))
    p = kvsim(*args)
    assert p.returncode != 0 and "skip: complete" not in p.stdout + p.stderr
    assert "made from input files that changed since (t.jsonl size " in p.stderr and "overwrite=true" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert snapshot(out) == before
    p = kvsim(*args, "overwrite=true")
    assert p.returncode == 0, p.stderr
    assert json.loads((out / "summary.json").read_text())["requests"] == 150
    assert read_marker(out)["inputs"] == [["t.jsonl", trace.stat().st_size, trace.stat().st_mtime_ns]]


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


def test_cli_sigterm_leaves_no_run_and_no_temporary_files(tmp_path: Path, real_trace_path: Path) -> None:
    out = tmp_path / "run"
    # The real trace with the hotness policy: about 6 s between config.yaml and the end of
    # the run (the embedded trace's 1.2 s was once too short for a loaded CI machine).
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvsim", f"hydra.run.dir={out}", "policy=hotness", "progress=false",
         "trace=mooncake_conversation", f"trace.path={real_trace_path}"],
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
