"""The Mooncake JSONL reader: good input round-trips, bad input names file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kvsim.trace.mooncake import read_mooncake_jsonl, write_mooncake_jsonl
from kvsim.trace.schema import Trace, TraceFormatError

GOOD = [
    {"timestamp": 0, "input_length": 600, "output_length": 10, "hash_ids": [0, 1]},
    {"timestamp": 0, "input_length": 512, "output_length": 5, "hash_ids": [0]},
    {"timestamp": 3000, "input_length": 1100, "output_length": 7, "hash_ids": [0, 1, 2]},
]


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "t.jsonl"
    p.write_text("".join(line + "\n" for line in lines))
    return p


def _lines(records: list[dict]) -> list[str]:
    return [json.dumps(r) for r in records]


def test_reads_columns(tmp_path: Path) -> None:
    tr = read_mooncake_jsonl(_write(tmp_path, _lines(GOOD)))
    assert len(tr) == 3
    assert tr.num_block_accesses == 6
    np.testing.assert_array_equal(tr.offsets, [0, 2, 3, 6])
    np.testing.assert_array_equal(tr.blocks(2), [0, 1, 2])
    np.testing.assert_allclose(tr.arrival_s, [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(tr.input_tokens, [600, 512, 1100])
    assert tr.span_s == 3.0


def test_round_trip(tmp_path: Path) -> None:
    tr = read_mooncake_jsonl(_write(tmp_path, _lines(GOOD)))
    out = write_mooncake_jsonl(tr, tmp_path / "sub" / "copy.jsonl")
    tr2 = read_mooncake_jsonl(out)
    for col in ("arrival_s", "input_tokens", "output_tokens", "offsets", "hash_ids"):
        np.testing.assert_array_equal(getattr(tr, col), getattr(tr2, col))
    assert not list(out.parent.glob("*.tmp"))


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    lines = _lines(GOOD)
    lines.insert(1, "")
    lines.append('{"timestamp": 1, "input_length": 10, "output_length": 1, "hash_ids": [9]}')
    with pytest.raises(TraceFormatError) as e:
        read_mooncake_jsonl(_write(tmp_path, lines))
    assert ":5:" in str(e.value)  # line numbers count the blank line


BAD_CASES = [
    ("not json", "{timestamp: 1", "<json>", "not valid JSON"),
    ("array", "[1, 2]", "<json>", "JSON object"),
    ("missing timestamp", '{"input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "missing"),
    ("missing hash_ids", '{"timestamp": 9, "input_length": 5, "output_length": 1}', "hash_ids", "missing"),
    ("negative timestamp", '{"timestamp": -1, "input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "negative"),
    ("decreasing timestamp", '{"timestamp": 2999, "input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "decreases"),
    ("string timestamp", '{"timestamp": "9", "input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "number"),
    ("empty hash_ids", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": []}', "hash_ids", "non-empty"),
    ("non-integer id", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": [1.5]}', "hash_ids", "element 0"),
    ("string id", '{"timestamp": 9000, "input_length": 600, "output_length": 1, "hash_ids": [0, "x"]}', "hash_ids", "element 1"),
    ("block count", '{"timestamp": 9000, "input_length": 1025, "output_length": 1, "hash_ids": [0, 1]}', "hash_ids", "ceil(1025/512) = 3"),
    ("zero input", '{"timestamp": 9000, "input_length": 0, "output_length": 1, "hash_ids": [0]}', "input_length", ">= 1"),
    ("fractional output", '{"timestamp": 9000, "input_length": 5, "output_length": 1.5, "hash_ids": [0]}', "output_length", "integer"),
    ("id 2^63", '{"timestamp": 9000, "input_length": 600, "output_length": 1, "hash_ids": [0, 9223372036854775808]}', "hash_ids", "element 1 (9223372036854775808) does not fit in int64"),
    ("id 2^64", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": [18446744073709551616]}', "hash_ids", "does not fit in int64"),
    ("repeated id", '{"timestamp": 9000, "input_length": 1100, "output_length": 1, "hash_ids": [0, 4, 4]}', "hash_ids", "element 2 (4) repeats an earlier id: Mooncake hash_ids are chained prefix hashes"),
    ("decreasing id", '{"timestamp": 9000, "input_length": 1100, "output_length": 1, "hash_ids": [0, 7, 5]}', "hash_ids", "element 2 (5) is less than element 1 (7)"),
    ("negative id", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": [-3]}', "hash_ids", "element 0 is not a non-negative integer: -3"),
    ("bool id", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": [true]}', "hash_ids", "element 0 is not a non-negative integer: True"),
    ("nan timestamp", '{"timestamp": NaN, "input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "expected a number"),
    ("deep nesting", "[" * 100000 + "]" * 100000, "<json>", "nested too deeply"),
]


@pytest.mark.parametrize(("case", "line", "field", "problem"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_line_names_file_line_field(tmp_path: Path, case: str, line: str, field: str, problem: str) -> None:
    p = _write(tmp_path, [*_lines(GOOD), line])
    with pytest.raises(TraceFormatError) as e:
        read_mooncake_jsonl(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:4: field '{field}'"), msg
    assert problem in msg
    assert e.value.line == 4 and e.value.field == field


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_mooncake_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(TraceFormatError, match="no requests"):
        read_mooncake_jsonl(_write(tmp_path, []))


def test_block_count_check_can_be_disabled(tmp_path: Path) -> None:
    line = '{"timestamp": 9000, "input_length": 1025, "output_length": 1, "hash_ids": [0, 1]}'
    tr = read_mooncake_jsonl(_write(tmp_path, [line]), check_block_count=False)
    assert tr.num_block_accesses == 2


def test_max_requests_and_head(tmp_path: Path) -> None:
    p = _write(tmp_path, _lines(GOOD))
    assert len(read_mooncake_jsonl(p, max_requests=2)) == 2
    tr = read_mooncake_jsonl(p).head(2)
    assert isinstance(tr, Trace) and tr.num_block_accesses == 3


def test_real_trace_facts(real_trace: Trace) -> None:
    """The public conversation trace: the counts and id facts kvsim relies on."""
    assert len(real_trace) == 12_031
    assert real_trace.num_block_accesses == 288_500
    assert len(np.unique(real_trace.hash_ids)) == 182_790
    assert all(real_trace.blocks(i)[0] == 0 for i in range(len(real_trace)))
    diffs = np.diff(real_trace.hash_ids)
    starts = real_trace.offsets[1:-1]
    within = np.ones(len(diffs), dtype=bool)
    within[starts - 1] = False  # differences across request boundaries do not count
    assert (diffs[within] > 0).all(), "ids strictly increase within every request"


def test_largest_int64_id_is_read(tmp_path: Path) -> None:
    top = 2**63 - 1
    tr = read_mooncake_jsonl(_write(tmp_path, [json.dumps({"timestamp": 0, "input_length": 600, "output_length": 1, "hash_ids": [5, top]})]))
    assert tr.hash_ids.tolist() == [5, top]


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes("".join(line + "\n" for line in _lines(GOOD)).encode() + b'{"timestamp": 9000, "x": "\xff\xfe"}\n')
    with pytest.raises(TraceFormatError) as e:
        read_mooncake_jsonl(p)
    assert str(e.value).startswith(f"{p}:4: field '<text>': invalid UTF-8 at byte 27")


def test_gzip_is_read_transparently_and_a_cut_one_names_its_line(tmp_path: Path) -> None:
    import gzip

    text = "".join(line + "\n" for line in _lines(GOOD * 400)).replace('"timestamp": 3000', '"timestamp": 0')
    plain = tmp_path / "t.jsonl"
    plain.write_text(text)
    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    a, b = read_mooncake_jsonl(plain), read_mooncake_jsonl(gz)
    np.testing.assert_array_equal(a.hash_ids, b.hash_ids)
    assert b.name == "t" and len(b) == 1200
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gz.read_bytes()[: len(gz.read_bytes()) // 2])
    with pytest.raises(TraceFormatError, match=r"cut.jsonl.gz:\d+: field '<gzip>': compressed data truncated"):
        read_mooncake_jsonl(cut)
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    with pytest.raises(TraceFormatError, match=r"bad.jsonl.gz:1: field '<gzip>': compressed data corrupt"):
        read_mooncake_jsonl(bad)


def test_byte_order_mark_is_not_data(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + "".join(line + "\n" for line in _lines(GOOD)).encode())
    assert len(read_mooncake_jsonl(p)) == 3
