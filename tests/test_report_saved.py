"""kvsim.report.saved: the run a notebook reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kvsim.report.saved import saved_run


def test_the_variable_then_the_newest_match_then_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVSIM_X_DIR", raising=False)
    assert saved_run("KVSIM_X_DIR", "**/summary.json", root=tmp_path) is None
    old, new, lone = (tmp_path / "outputs" / d for d in ("a/old", "b/new", "c/lone"))
    for d, t in ((old, 1_000), (new, 2_000), (lone, 3_000)):
        d.mkdir(parents=True)
        (d / "summary.json").write_text("{}")
        os.utime(d / "summary.json", (t, t))
    for d in (old, new):
        (d / "requests.parquet").write_text("")
    assert saved_run("KVSIM_X_DIR", "**/summary.json", root=tmp_path) == lone  # the newest
    assert saved_run("KVSIM_X_DIR", "**/summary.json", beside="requests.parquet", root=tmp_path) == new
    monkeypatch.setenv("KVSIM_X_DIR", str(old))
    assert saved_run("KVSIM_X_DIR", "**/summary.json", root=tmp_path) == old  # the variable wins
