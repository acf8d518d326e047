"""The Qwen-Bailian reader: arrival order, sessions from parent links, prefix ids chained
from per-block content ids (checked against a plain reference and by a round trip through a
Mooncake trace, down to the simulation's summary), coarse blocks, and one-line errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from kvsim.app import run
from kvsim.config import check_config
from kvsim.errors import ConfigError
from kvsim.trace.bailian import chain_prefixes, read_bailian_jsonl
from kvsim.trace.schema import Trace, TraceFormatError

BIG = 2**64 - 1
# In file order; by time: chat 7 (t=100.0), 5, 9 (a reply to 5), 10 (a reply to 9), 11 (a
# reply to a chat not in the file). Chat 7's third block repeats chat 5's content "13" under
# another prefix; chat 11 sends chat 5's contents in reverse.
RECORDS = [
    {"chat_id": 5, "parent_chat_id": -1, "timestamp": 100.5, "input_length": 48, "output_length": 3,
     "type": "text", "turn": 1, "hash_ids": [11, 12, 13]},
    {"chat_id": 7, "parent_chat_id": -1, "timestamp": 100.0, "input_length": 64, "output_length": 4,
     "type": "search", "turn": 1, "hash_ids": [11, 12, 99, 13]},
    {"chat_id": 9, "parent_chat_id": 5, "timestamp": 101.0, "input_length": 80, "output_length": 5,
     "type": "text", "turn": 2, "hash_ids": [11, 12, 13, 14, BIG]},
    {"chat_id": 10, "parent_chat_id": 9, "timestamp": 102.0, "input_length": 5, "output_length": 6, "hash_ids": []},
    {"chat_id": 11, "parent_chat_id": 4242, "timestamp": 103.0, "input_length": 48, "output_length": 7,
     "hash_ids": [13, 12, 11]},
]


def _write(tmp_path: Path, records: list[dict], name: str = "b.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in records))
    return p


def _blocks(tr: Trace) -> list[list[int]]:
    return [tr.blocks(i).tolist() for i in range(len(tr))]


def test_order_time_sessions_and_meta(tmp_path: Path) -> None:
    tr = read_bailian_jsonl(_write(tmp_path, RECORDS))
    assert tr.arrival_s.tolist() == [0.0, 0.5, 1.0, 2.0, 3.0]  # sorted, from the first
    assert tr.output_tokens.tolist() == [4, 3, 5, 6, 7]
    assert tr.session is not None and tr.session.tolist() == [0, 1, 1, 1, 2]
    assert tr.meta["t0_s"] == 100.0 and tr.meta["sessions"] == 3
    assert tr.meta["types"] == {"search": 1, "text": 4}  # a missing type is text
    assert tr.block_tokens == 16 and tr.name == "b"


def test_ids_name_whole_prefixes(tmp_path: Path) -> None:
    tr = read_bailian_jsonl(_write(tmp_path, RECORDS))
    # chat 5's "13" follows 11, 12 (not 11, 12, 99): a block of its own; chat 9 shares
    # chat 5's three blocks; chat 11's reversed contents share nothing
    assert _blocks(tr) == [[0, 1, 2, 3], [0, 1, 4], [0, 1, 4, 5, 6], [], [7, 8, 9]]
    # accesses whose content id came before: 9; whose whole prefix did: 5
    assert tr.meta["source_block_repeats"] == {"by_file_id": 9, "by_prefix": 5}


def test_signed_ids_and_string_chat_ids(tmp_path: Path) -> None:
    """An id written as a signed 64-bit integer is the same 64 bits as its unsigned form
    (-1 is 2^64-1); chat ids may be strings ("-1" is the first turn's parent)."""
    recs = [dict(r) for r in RECORDS]
    recs[2]["hash_ids"] = [11, 12, 13, 14, -1]  # chat 9: BIG written signed
    for r in recs:
        r["chat_id"] = f"c{r['chat_id']}"
        r["parent_chat_id"] = "-1" if r.get("parent_chat_id", -1) == -1 else f"c{r['parent_chat_id']}"
    tr = read_bailian_jsonl(_write(tmp_path, recs))
    base = read_bailian_jsonl(_write(tmp_path, RECORDS, "base.jsonl"))
    for col in ("hash_ids", "offsets", "session"):
        assert np.array_equal(getattr(tr, col), getattr(base, col)), col


def test_coarse_blocks_keep_every_gth_prefix(tmp_path: Path) -> None:
    tr = read_bailian_jsonl(_write(tmp_path, RECORDS), block_tokens=32)
    # positions 1, 3 of each request, renumbered in first-seen order
    assert _blocks(tr) == [[0, 1], [0], [0, 2], [], [3]]
    assert tr.block_tokens == 32
    assert read_bailian_jsonl(_write(tmp_path, RECORDS), max_requests=2).arrival_s.tolist() == [0.0, 0.5]


def test_chain_prefixes_against_a_plain_reference() -> None:
    rng = np.random.default_rng(7)
    lens = rng.integers(0, 12, size=300)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    raw = rng.integers(0, 4, size=int(offsets[-1])).astype(np.uint64)  # few contents: many repeats
    got, distinct = chain_prefixes(raw, offsets)
    ref: dict[tuple[int, ...], int] = {}
    want = [ref.setdefault(tuple(raw[offsets[i] : offsets[i] + j + 1].tolist()), len(ref))
            for i in range(len(lens)) for j in range(int(lens[i]))]
    # the same partition of the accesses: equal ids exactly where the prefixes are equal
    pairs = {(a, b) for a, b in zip(got.tolist(), want, strict=True)}
    assert len(pairs) == len(set(got.tolist())) == len(set(want)) == distinct
    assert set(got.tolist()) == set(range(distinct))


def _content(block: int, k: int) -> int:
    # a 16-token piece's own content id; pieces 28..31 of every block repeat across blocks
    key = f"{k}" if k >= 28 else f"{block}:{k}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def _as_bailian(tr: Trace) -> list[dict]:
    return [
        {"chat_id": i, "parent_chat_id": -1, "timestamp": float(tr.arrival_s[i]), "input_length": int(tr.input_tokens[i]),
         "output_length": int(tr.output_tokens[i]), "type": "text", "turn": 1,
         "hash_ids": [_content(b, k) for b in tr.blocks(i).tolist() for k in range(32)]}
        for i in range(len(tr))
    ]


def test_a_mooncake_trace_written_as_bailian_reads_back(embedded_trace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each 512-token block of the embedded trace as 32 pieces with content ids (some
    repeated under every prefix): at 512-token blocks the reader gives back the trace's own
    ids, and at 16 tokens 32 blocks for each."""
    path = _write(tmp_path, _as_bailian(embedded_trace))
    tr = read_bailian_jsonl(path, block_tokens=512)
    for col in ("hash_ids", "offsets", "input_tokens", "output_tokens"):
        assert np.array_equal(getattr(tr, col), getattr(embedded_trace, col)), col
    assert np.allclose(tr.arrival_s, embedded_trace.arrival_s - embedded_trace.arrival_s[0])
    fine = read_bailian_jsonl(path)
    assert fine.num_block_accesses == 32 * embedded_trace.num_block_accesses
    rep = fine.meta["source_block_repeats"]
    assert rep["by_file_id"] > rep["by_prefix"]  # the repeated pieces are not reuse


def test_ids_do_not_depend_on_labels_or_line_order(embedded_trace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    head = embedded_trace.head(300)
    recs = _as_bailian(head)
    for i, r in enumerate(recs):
        r["timestamp"] = i * 0.25  # distinct times: the order is the time order
    base = read_bailian_jsonl(_write(tmp_path, recs, "a.jsonl"))
    relabel = {v: BIG - j for j, v in enumerate(sorted({v for r in recs for v in r["hash_ids"]}))}
    shuffled = [dict(r, hash_ids=[relabel[v] for v in r["hash_ids"]]) for r in recs]
    np.random.default_rng(3).shuffle(shuffled)
    other = read_bailian_jsonl(_write(tmp_path, shuffled, "b.jsonl"))
    for col in ("hash_ids", "offsets", "arrival_s", "input_tokens", "session"):
        assert np.array_equal(getattr(base, col), getattr(other, col)), col


def test_the_simulation_of_a_bailian_copy_equals_the_mooncake_run(compose_cfg, embedded_trace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, _as_bailian(embedded_trace.head(400)), "copy.jsonl")
    common = ["trace.max_requests=400", "progress=false", "figures=false", "save_requests=false"]
    a = run(compose_cfg(common), tmp_path / "mooncake")
    b = run(compose_cfg(["trace=bailian", f"trace.path={path}", *common]), tmp_path / "bailian")
    skip = {"trace", "wall_time_s", "accesses_per_s"}
    same = [json.dumps({k: v for k, v in d.items() if k not in skip}, sort_keys=True) for d in (a, b)]  # (NaN == NaN)
    assert same[0] == same[1]
    assert b["trace"] == "copy" and a["block_hits"] > 0


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"hash_ids": None}, "hash_ids", "expected a list of integers"),
        ({"hash_ids": [1, -(2**63) - 1]}, "hash_ids", f"element 1 is not a 64-bit integer: {-(2**63) - 1}"),
        ({"hash_ids": [1, 2**64]}, "hash_ids", "element 1 is not a 64-bit integer"),
        ({"hash_ids": [1, True]}, "hash_ids", "element 1 is not a 64-bit integer: True"),
        ({"hash_ids": [1.0]}, "hash_ids", "element 0 is not a 64-bit integer: 1.0"),
        ({"timestamp": "soon"}, "timestamp", "expected a number of seconds"),
        ({"timestamp": float("nan")}, "timestamp", "expected a number of seconds"),
        ({"chat_id": ""}, "chat_id", "expected an integer or a string"),
        ({"chat_id": None}, "chat_id", "expected an integer or a string"),
        ({"chat_id": "--5", "hash_ids": [1, 2**64]}, "hash_ids", "element 1"),  # "--5" is a string id
        ({"parent_chat_id": 1.5}, "parent_chat_id", "expected an integer or a string"),
        ({"input_length": 0}, "input_length", "must be >= 1"),
        ({"output_length": -1}, "output_length", "must be >= 0"),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path: Path, change: dict, field: str, problem: str) -> None:
    path = _write(tmp_path, [RECORDS[0], {**RECORDS[1], **change}])
    with pytest.raises(TraceFormatError) as e:
        read_bailian_jsonl(path)
    assert str(e.value).startswith(f"{path}:2: field '{field}': {problem}")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("text", "field"), [("[1, 2]", "<json>"), ("{", "<json>"), ('{"chat_id": 1}', "timestamp")])
def test_bad_lines_and_missing_fields(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(RECORDS[0]) + "\n" + text + "\n")
    with pytest.raises(TraceFormatError, match=rf"^{p}:2: field '{field}'"):
        read_bailian_jsonl(p)
    p.write_text("\n")
    with pytest.raises(TraceFormatError, match="no requests"):
        read_bailian_jsonl(p)


def test_block_tokens_must_be_a_multiple_of_16(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, RECORDS)
    with pytest.raises(ConfigError, match="Bailian traces have 16-token blocks"):
        read_bailian_jsonl(path, block_tokens=24)
    cfg = compose_cfg(["trace=bailian", f"trace.path={path}", "trace.block_tokens=24"])
    with pytest.raises(ConfigError, match=r"^trace\.block_tokens: Bailian traces have 16-token blocks.*got 24$"):
        check_config(cfg)  # at compose time, before any file is read
    check_config(compose_cfg(["trace=bailian", f"trace.path={path}", "trace.block_tokens=48"]))
