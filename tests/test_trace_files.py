"""kvsim/trace/files.py: what every trace reader shares beyond its format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kvsim.trace.files import files_stamp, first_seen_dense, reorder_rows, session_files


def test_rows_in_a_new_order_by_hand() -> None:
    """Rows [1, 2], [3], [4, 5, 6] taken as 2, 0, 1: [4, 5, 6, 1, 2, 3], offsets 0, 3, 5, 6;
    a prefix of the rows in their own order is a slice of the values (no copy)."""
    values, offsets = np.array([1, 2, 3, 4, 5, 6]), np.array([0, 2, 3, 6])
    got, off = reorder_rows(values, offsets, np.array([2, 0, 1]))
    assert got.tolist() == [4, 5, 6, 1, 2, 3] and off.tolist() == [0, 3, 5, 6]
    got, off = reorder_rows(values, offsets, np.array([0, 1]))
    assert got.tolist() == [1, 2, 3] and off.tolist() == [0, 2, 3] and np.shares_memory(got, values)
    got, off = reorder_rows(values, offsets, np.array([1]))  # a subset, out of place
    assert got.tolist() == [3] and off.tolist() == [0, 1]


def test_first_seen_dense_by_hand() -> None:
    assert first_seen_dense(np.array([7, 3, 7, 9, 3])).tolist() == [0, 1, 0, 2, 1]


def test_files_and_their_stamp(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "a.json.gz").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a session")
    assert [f.name for f in session_files(tmp_path)] == ["a.json.gz", "b.json"]
    stamp = files_stamp(tmp_path)
    assert [s[:2] for s in stamp] == [("a.json.gz", 1), ("b.json", 2)]
    (tmp_path / "b.json").write_text("{ }")  # rewritten: another stamp
    assert files_stamp(tmp_path) != stamp
    assert files_stamp(tmp_path / "b.json")[0][:2] == ("b.json", 3)
    with pytest.raises(FileNotFoundError, match="^trace not found"):  # no format named where none asked
        files_stamp(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="^agentic trace not found"):
        session_files(tmp_path / "missing", "agentic trace")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no \\*.json"):
        session_files(tmp_path / "empty")
