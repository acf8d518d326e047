"""The Mooncake JSONL reader: good input round-trips, bad input names file, line and field."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kvsim.trace.mooncake import _read_columnar, read_mooncake_jsonl, write_mooncake_jsonl
from kvsim.trace.schema import Trace, TraceFormatError

from .conftest import examples

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


def test_write_makes_folders_and_replaces_atomically_from_beside_the_target(tmp_path: Path, monkeypatch) -> None:
    """The writer creates missing parent folders (and accepts existing ones), writes a
    temporary file beside the target (a rename within one folder is atomic), readable by
    all (0644), then renames it into place."""
    import os

    tr = read_mooncake_jsonl(_write(tmp_path, _lines(GOOD)))
    renames: list[tuple[str, str]] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append((str(a), str(b))), real_replace(a, b))[1])
    target = tmp_path / "new" / "deeper" / "t.jsonl"
    assert write_mooncake_jsonl(tr, target) == target
    write_mooncake_jsonl(tr, target.parent / "second.jsonl")  # the folder exists now
    (src, dst), _ = renames
    assert Path(src).parent == target.parent and Path(src).name.startswith("t.jsonl")
    assert src.endswith(".tmp") and dst == str(target)
    assert target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["second.jsonl", "t.jsonl"]
    assert target.read_text().splitlines()[0] == (
        '{"timestamp": 0, "input_length": 600, "output_length": 10, "hash_ids": [0, 1]}'
    )


def test_a_failed_write_leaves_nothing_and_says_why(tmp_path: Path, monkeypatch) -> None:
    tr = read_mooncake_jsonl(_write(tmp_path, _lines(GOOD)))
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "t.jsonl"
    target.write_text("earlier\n")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("kvsim.trace.mooncake.json.dumps", boom)
    with pytest.raises(OSError, match="disk full"):
        write_mooncake_jsonl(tr, target)
    assert target.read_text() == "earlier\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.jsonl"]


def test_to_frame_columns(tmp_path: Path) -> None:
    df = read_mooncake_jsonl(_write(tmp_path, _lines(GOOD))).to_frame()
    assert list(df.columns) == ["arrival_s", "input_tokens", "output_tokens", "num_blocks"]
    assert df["arrival_s"].tolist() == [0.0, 0.0, 3.0] and df["input_tokens"].tolist() == [600, 512, 1100]
    assert df["output_tokens"].tolist() == [10, 5, 7] and df["num_blocks"].tolist() == [2, 1, 3]


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
    ("empty hash_ids", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": []}', "hash_ids", "non-empty list of integers"),
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
    assert msg == f"{p}:4: field '{field}': {e.value.problem}", msg
    assert re.search(rf"(^|\W){re.escape(problem)}($|\W)", e.value.problem), msg  # the phrase, whole
    assert e.value.line == 4 and e.value.field == field and e.value.path == str(p)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_mooncake_jsonl(tmp_path / "nope.jsonl")
    empty = _write(tmp_path, [])
    with pytest.raises(TraceFormatError) as e:
        read_mooncake_jsonl(empty)
    assert (e.value.path, e.value.line, e.value.field, e.value.problem) == (str(empty), 0, "<file>", "no requests")
    assert str(e.value) == f"{empty}:0: field '<file>': no requests"


def test_values_past_int64_are_refused(tmp_path: Path) -> None:
    """A token count or id of 2^63 does not fit the int64 columns: refused (not wrapped to a
    negative number)."""
    for field, value in (("input_length", 2**63), ("output_length", 2**63), ("hash_ids", [2**63])):
        rec = {"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [0], field: value}
        with pytest.raises((TraceFormatError, OverflowError)):
            read_mooncake_jsonl(_write(tmp_path, [json.dumps(rec)]), check_block_count=False)


def test_source_name_and_schema_checks(tmp_path: Path) -> None:
    p = _write(tmp_path, _lines(GOOD))
    tr = read_mooncake_jsonl(p)
    assert tr.source == str(p) and tr.name == "t"
    np.testing.assert_array_equal(tr.request_index(), [0, 0, 1, 2, 2, 2])
    head = Trace(tr.arrival_s, tr.input_tokens, tr.output_tokens, tr.offsets, tr.hash_ids,
                 block_tokens=64, name="n", source="s", meta={"k": 1}).head(2)
    assert (head.block_tokens, head.name, head.source, head.meta) == (64, "n", "s", {"k": 1})
    assert head.offsets.tolist() == [0, 2, 3] and head.hash_ids.tolist() == [0, 1, 0]
    ones = np.ones(2)
    with pytest.raises(ValueError, match="^trace columns have different lengths$"):
        Trace(ones, np.ones(3, dtype=np.int64), np.ones(2, dtype=np.int64), np.array([0, 1, 2]), np.array([5, 6]))
    bad_offsets = [
        np.array([0, 2]),  # one offset short (first and last right)
        np.array([1, 1, 2]),  # does not start at 0 (length and last right)
        np.array([0, 1, 3]),  # does not end at len(hash_ids)
    ]
    for offs in bad_offsets:
        with pytest.raises(ValueError, match="^trace offsets do not match hash_ids$"):
            Trace(ones, np.ones(2, dtype=np.int64), np.ones(2, dtype=np.int64), offs, np.array([5, 6]))


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


# --- hostile fields, generated: every check of the reader is reached --------------------------
NON_FINITE_CASES = [
    ("NaN timestamp", '{"timestamp": NaN, "input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "number"),
    ("inf timestamp", '{"timestamp": Infinity, "input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "number"),
    ("-inf timestamp", '{"timestamp": -Infinity, "input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "number"),
    ("bool timestamp", '{"timestamp": true, "input_length": 5, "output_length": 1, "hash_ids": [0]}', "timestamp", "number"),
    ("NaN input", '{"timestamp": 9000, "input_length": NaN, "output_length": 1, "hash_ids": [0]}', "input_length", "integer"),
    ("inf output", '{"timestamp": 9000, "input_length": 5, "output_length": Infinity, "hash_ids": [0]}', "output_length", "integer"),
    ("bool input", '{"timestamp": 9000, "input_length": true, "output_length": 1, "hash_ids": [0]}', "input_length", "number"),
    ("negative output", '{"timestamp": 9000, "input_length": 5, "output_length": -1, "hash_ids": [0]}', "output_length", ">= 0"),
    ("negative id", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": [-3]}', "hash_ids", "element 0"),
    ("bool id", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": [true]}', "hash_ids", "element 0"),
    ("ids not a list", '{"timestamp": 9000, "input_length": 5, "output_length": 1, "hash_ids": 7}', "hash_ids", "list"),
]


@pytest.mark.parametrize(("case", "line", "field", "problem"), NON_FINITE_CASES, ids=[c[0] for c in NON_FINITE_CASES])
def test_non_finite_and_mistyped_fields_are_refused(tmp_path: Path, case, line, field, problem) -> None:
    p = _write(tmp_path, [*_lines(GOOD), line])
    with pytest.raises(TraceFormatError) as e:
        read_mooncake_jsonl(p)
    assert str(e.value).startswith(f"{p}:4: field '{field}'") and problem in str(e.value), str(e.value)


def test_limits_are_inclusive(tmp_path: Path) -> None:
    """The smallest legal values pass: timestamp 0 (and equal to the previous one), one
    input token, zero output tokens, id 0; integral floats are integers."""
    lines = [
        '{"timestamp": 0, "input_length": 1, "output_length": 0, "hash_ids": [0]}',
        '{"timestamp": 0.0, "input_length": 512.0, "output_length": 2.0, "hash_ids": [0]}',
        '{"timestamp": 0.5, "input_length": 513, "output_length": 0, "hash_ids": [0, 1]}',
    ]
    tr = read_mooncake_jsonl(_write(tmp_path, lines), name="x")
    assert tr.input_tokens.tolist() == [1, 512, 513] and tr.output_tokens.tolist() == [0, 2, 0]
    assert tr.arrival_s.tolist() == [0.0, 0.0, 0.0005] and tr.name == "x"
    assert tr.input_tokens.dtype == np.int64 and tr.hash_ids.dtype == np.int64
    # block_tokens is the block size the count is checked against
    tr = read_mooncake_jsonl(_write(tmp_path, ['{"timestamp": 0, "input_length": 65, "output_length": 0, '
                                               '"hash_ids": [0, 1]}']), block_tokens=64)
    assert tr.block_tokens == 64 and tr.num_block_accesses == 2


HOSTILE = {
    "timestamp": [math.nan, math.inf, -math.inf, -1, -0.5, True, "0", None, [0]],
    "input_length": [math.nan, math.inf, 0, -1, 1.5, True, "5", None],
    "output_length": [math.nan, -math.inf, -1, 0.25, False, "1", None],
    "hash_ids": [[], [-1], [math.nan], [0.5], [True], ["0"], [None], 3, None, "0"],
}


HOSTILE_CASES = [(f, v) for f, vs in HOSTILE.items() for v in vs]


@settings(max_examples=examples(150), deadline=None)
@example(case=("timestamp", math.nan), at=0, n_good=1)  # a NaN first timestamp
@example(case=("timestamp", math.inf), at=2, n_good=3)
@given(case=st.sampled_from(HOSTILE_CASES), at=st.integers(0, 3), n_good=st.integers(1, 4))
def test_generated_hostile_field_is_named_by_line(tmp_path_factory, case, at, n_good) -> None:
    """Any one hostile value in any field of any line stops the read at that line, naming the field."""
    field, value = case
    at = min(at, n_good)
    recs = [{"timestamp": 1000 * i, "input_length": 600, "output_length": 1, "hash_ids": [0, 1]}
            for i in range(n_good + 1)]
    recs[at] = {**recs[at], field: value}
    p = tmp_path_factory.mktemp("hostile") / "t.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))  # json writes NaN / Infinity tokens
    with pytest.raises(TraceFormatError) as e:
        read_mooncake_jsonl(p)
    assert (e.value.line, e.value.field) == (at + 1, field), str(e.value)


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


# --- the columnar path (pyarrow): equal to the line reader, never the one that refuses ---------
def _line_reader(p: Path, **kw) -> Trace:
    from unittest import mock

    with mock.patch("kvsim.trace.mooncake._read_columnar", return_value=None):
        return read_mooncake_jsonl(p, **kw)


def _same(a: Trace, b: Trace) -> None:
    for k in ("arrival_s", "input_tokens", "output_tokens", "offsets", "hash_ids"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and np.array_equal(x, y), k
    assert (a.name, a.source, a.block_tokens, len(a)) == (b.name, b.source, b.block_tokens, len(b))


@settings(max_examples=examples(60), deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.integers(0, 10**7), st.floats(0, 1e7, allow_nan=False)),  # the gap to the previous timestamp
            st.integers(1, 3000), st.integers(0, 500), st.integers(0, 3), st.booleans(),
        ),
        min_size=1, max_size=40,
    ),
    max_requests=st.one_of(st.none(), st.integers(1, 45)),
    gz=st.booleans(),
)
def test_the_columnar_path_reads_what_the_line_reader_reads(tmp_path_factory, rows, max_requests, gz) -> None:
    """Random good files (integer and fractional timestamps, shared and new ids, gzip or not):
    the columnar path takes them and gives the line reader's arrays exactly."""
    import gzip

    t, nxt, recs = 0, 0, []
    for gap, n_in, n_out, shared, blank in rows:
        t = t + gap
        n = -(-n_in // 512)
        ids = list(range(min(shared, n))) + list(range(nxt + 100, nxt + 100 + n - min(shared, n)))
        nxt += 100 + n
        recs.append(json.dumps({"timestamp": t, "input_length": n_in, "output_length": n_out, "hash_ids": ids}))
        if blank:
            recs.append("")
    p = tmp_path_factory.mktemp("col") / ("t.jsonl.gz" if gz else "t.jsonl")
    data = ("\r\n" if not gz and len(recs) % 2 else "\n").join(recs).encode() + b"\n"
    p.write_bytes(gzip.compress(data) if gz else data)
    assert _read_columnar(p, 512, True, max_requests) is not None
    _same(read_mooncake_jsonl(p, max_requests=max_requests), _line_reader(p, max_requests=max_requests))


def test_the_columnar_path_reads_the_real_trace_as_the_line_reader_does(real_trace_path: Path) -> None:
    assert _read_columnar(real_trace_path, 512, True, None) is not None
    _same(read_mooncake_jsonl(real_trace_path), _line_reader(real_trace_path))


BAD_INPUTS = Path(__file__).parent / "bad_inputs"


@pytest.mark.parametrize("name", sorted(p.name for p in BAD_INPUTS.glob("*.jsonl")))
def test_the_columnar_path_declines_every_bad_input_file(name: str) -> None:
    assert _read_columnar(BAD_INPUTS / name, 512, True, None) is None


@pytest.mark.parametrize(
    ("case", "line"),
    [
        ("a whole float count", '{"timestamp": 9000, "input_length": 600.0, "output_length": 1, "hash_ids": [5, 6]}'),
        ("a null id", '{"timestamp": 9000, "input_length": 600, "output_length": 1, "hash_ids": [5, null]}'),
        ("a null count", '{"timestamp": 9000, "input_length": null, "output_length": 1, "hash_ids": [5, 6]}'),
        ("a repeated key", '{"timestamp": 9000, "input_length": 600, "input_length": 600, "output_length": 1, "hash_ids": [5, 6]}'),
        ("an id equal to the previous", '{"timestamp": 9000, "input_length": 600, "output_length": 1, "hash_ids": [5, 5]}'),
        ("a timestamp past 2**53 ms", '{"timestamp": 9007199254740993, "input_length": 600, "output_length": 1, "hash_ids": [5, 6]}'),
        ("another field", '{"timestamp": 9000, "input_length": 600, "output_length": 1, "hash_ids": [5, 6], "x": 1}'),
        ("a short block list", '{"timestamp": 9000, "input_length": 1100, "output_length": 1, "hash_ids": [5, 6]}'),
    ],
)
def test_the_columnar_path_declines_what_it_cannot_vouch_for(tmp_path: Path, case: str, line: str) -> None:
    """Anything in doubt goes to the line reader, which accepts (12.0 is 12; the last key of a
    repeated one counts) or names the line, exactly as without the columnar path."""
    p = _write(tmp_path, [*_lines(GOOD), line])
    assert _read_columnar(p, 512, True, None) is None
    try:
        expected: Trace | str = _line_reader(p)
    except TraceFormatError as e:
        expected = str(e)
    try:
        got: Trace | str = read_mooncake_jsonl(p)
    except TraceFormatError as e:
        got = str(e)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, Trace)
        _same(got, expected)


def test_a_bad_line_after_max_requests_does_not_stop_either_path(tmp_path: Path) -> None:
    p = _write(tmp_path, [*_lines(GOOD), '{"timestamp": 1, "input_length": 0}'])
    _same(read_mooncake_jsonl(p, max_requests=3), _line_reader(p, max_requests=3))
    with pytest.raises(TraceFormatError):
        read_mooncake_jsonl(p)


def test_a_prefix_is_read_without_parsing_the_rest_of_a_large_file(tmp_path: Path) -> None:
    """max_requests stops the columnar path after the blocks that hold the prefix: a bad line
    megabytes later is never parsed (the line reader would not reach it either)."""
    good = json.dumps({"timestamp": 0, "input_length": 600, "output_length": 1, "hash_ids": [0, 1]})
    p = _write(tmp_path, [good] * 60_000 + ['{"timestamp": "bad"}'])  # about 4 MB before the bad line
    assert p.stat().st_size > 3 * 2**20
    assert _read_columnar(p, 512, True, 3) is not None
    assert _read_columnar(p, 512, True, None) is None
    _same(read_mooncake_jsonl(p, max_requests=3), _line_reader(p, max_requests=3))
