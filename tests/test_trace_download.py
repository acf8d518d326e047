"""Verified downloads (kvsim.trace.download), from a local mirror (file:// URLs): a whole
file is kept, a short or corrupt one is removed and reported, a file already present is
verified before it is trusted; and the trace configs find a downloaded copy."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvsim.trace.download import PUBLIC, Pin, download

from .conftest import EMBEDDED


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[str, Pin]:
    """A mirror holding one trace (the embedded one, as 'conversation_trace.jsonl') and its pin."""
    m = tmp_path / "mirror"
    m.mkdir()
    data = EMBEDDED.read_bytes()
    (m / "conversation_trace.jsonl").write_bytes(data)
    return m.as_uri() + "/", Pin(len(data), hashlib.sha256(data).hexdigest())


def _get(dest: Path, url: str, pin: Pin) -> tuple[list[Path], dict[str, str], str]:
    out = io.StringIO()
    done, failed = download(dest, url, ["conversation_trace.jsonl"], {"conversation_trace.jsonl": pin}, out=out)
    return done, failed, out.getvalue()


def test_a_whole_file_is_verified_and_kept(tmp_path: Path, mirror: tuple[str, Pin]) -> None:
    url, pin = mirror
    done, failed, log = _get(tmp_path / "d", url, pin)
    assert not failed and done == [tmp_path / "d" / "conversation_trace.jsonl"]
    assert "verified: 2,084 requests" in log and "NOT PINNED" not in log
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["conversation_trace.jsonl"]


@pytest.mark.parametrize("damage", ["cut_at_a_line", "same_size_other_bytes"])
def test_a_short_or_corrupt_download_is_removed_and_reported(tmp_path: Path, mirror: tuple[str, Pin], damage: str) -> None:
    url, pin = mirror
    f = Path(url.removeprefix("file://")) / "conversation_trace.jsonl"
    data = f.read_bytes()
    if damage == "cut_at_a_line":  # reads as a valid trace: only the pinned size tells
        f.write_bytes(data[: data.rindex(b"\n", 0, len(data) // 2) + 1])
    else:
        f.write_bytes(data.replace(b'"output_length": 1', b'"output_length": 2', 1))
    done, failed, _ = _get(tmp_path / "d", url, pin)
    assert not done and set(failed) == {"conversation_trace.jsonl"}
    why = failed["conversation_trace.jsonl"]
    assert ("cut short?" in why) if damage == "cut_at_a_line" else ("SHA-256" in why and "corrupt" in why)
    assert not (tmp_path / "d").exists()  # nothing kept, no temporary file, not even the folder


def test_a_file_already_present_is_verified_before_it_is_trusted(tmp_path: Path, mirror: tuple[str, Pin]) -> None:
    url, pin = mirror
    dest = tmp_path / "d"
    _get(dest, url, pin)
    done, failed, log = _get(dest, url, pin)
    assert done and not failed and "already present, verified" in log and "downloading" not in log
    target = dest / "conversation_trace.jsonl"
    target.write_bytes(target.read_bytes()[:1000])  # damaged since: verified, found short, fetched again
    done, failed, log = _get(dest, url, pin)
    assert done and not failed and "already present but size 1,000 bytes" in log and "downloading" in log
    assert hashlib.sha256(target.read_bytes()).hexdigest() == pin.sha256


def test_an_unpinned_file_says_what_it_got(tmp_path: Path, mirror: tuple[str, Pin]) -> None:
    url, pin = mirror
    done, failed, log = _get(tmp_path / "d", url, Pin())
    assert done and not failed
    assert f"NOT PINNED: size and SHA-256 (size {pin.size:,}, sha256 {pin.sha256})" in log


def test_a_file_that_is_not_a_trace_is_removed(tmp_path: Path, mirror: tuple[str, Pin]) -> None:
    url, _ = mirror
    (Path(url.removeprefix("file://")) / "conversation_trace.jsonl").write_text("<html>404: Not Found</html>\n")
    done, failed, _ = _get(tmp_path / "d", url, Pin())
    assert not done and "not a valid trace" in failed["conversation_trace.jsonl"] and ":1: field '<json>'" in failed["conversation_trace.jsonl"]
    assert not (tmp_path / "d").exists()


def test_the_real_conversation_trace_matches_its_pin(real_trace_path: Path) -> None:
    pin = PUBLIC["conversation_trace.jsonl"]
    assert real_trace_path.stat().st_size == pin.size
    assert hashlib.sha256(real_trace_path.read_bytes()).hexdigest() == pin.sha256


def test_cli_reports_each_failed_file_and_exits_nonzero(tmp_path: Path, mirror: tuple[str, Pin]) -> None:
    url, _ = mirror  # the embedded trace is not the conversation trace: its size differs from the pin
    p = subprocess.run(
        [sys.executable, "-m", "kvsim.trace.download", str(tmp_path / "d"), "conversation_trace.jsonl"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "KVSIM_TRACE_URL": url},
    )
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        f"kvsim.trace.download: error: conversation_trace.jsonl: size {EMBEDDED.stat().st_size:,} bytes, "
        "expected 3,029,533 (cut short? removed)"
    ]
    assert not (tmp_path / "d" / "conversation_trace.jsonl").exists()


def test_trace_configs_find_a_downloaded_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compose_cfg) -> None:
    import kvsim.config

    monkeypatch.setattr(kvsim.config, "PROJECT_ROOT", tmp_path / "kvsim")
    monkeypatch.delenv("KVSIM_REAL_TRACE", raising=False)
    public = tmp_path / "kvsim" / "traces" / "public"
    shared = tmp_path / "shared" / "traces" / "mooncake"
    public.mkdir(parents=True)
    shared.mkdir(parents=True)
    (shared / "toolagent_trace.jsonl").write_text("x")
    (public / "synthetic_trace.jsonl.gz").write_text("x")
    (public / "conversation_trace.jsonl").write_text("x")
    (shared / "conversation_trace.jsonl").write_text("x")
    path = {name: compose_cfg([f"trace=mooncake_{name}"]).trace.path for name in ("conversation", "toolagent", "synthetic")}
    assert path == {
        "conversation": str(public / "conversation_trace.jsonl"),  # traces/public/ first
        "toolagent": str(shared / "toolagent_trace.jsonl"),
        "synthetic": str(public / "synthetic_trace.jsonl.gz"),
    }
    monkeypatch.setenv("KVSIM_REAL_TRACE", "/elsewhere/c.jsonl")
    assert compose_cfg(["trace=mooncake_conversation"]).trace.path == "/elsewhere/c.jsonl"
