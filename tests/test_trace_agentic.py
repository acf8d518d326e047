"""The agentic-session reader: the merged workload's exact order, ids and block counts on
hand-made session folders, one-line errors naming the file and the request, and LRU hit
counts on the shared sessions equal to the independent reference LRU's."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from kvsim.policy import LRU
from kvsim.trace.agentic import SessionFormatError, read_agentic, session_starts
from tests.conftest import reference_lru_hits

NAN = math.nan

# Session 0 (a.json): a top-level request, a sub-agent of another model with two requests,
# then a request at t=10. Session 1 (b.json.gz) starts at 10 s: its requests tie in time
# with session 0's (10 s and 11 s), and its second request has no complete block.
SESSION_A = {
    "block_size": 64,
    "hash_id_scope": "local",
    "requests": [
        {"t": 0, "model": "m1", "in": 200, "out": 5, "hash_ids": [1, 2, 3]},
        {
            "t": 5, "type": "subagent", "models": ["m2"],
            "requests": [
                {"t": 0, "model": "m2", "in": 128, "out": 1, "hash_ids": [1, 2]},
                {"t": 6, "model": "m2", "in": 192, "out": 1, "hash_ids": [1, 2, 4]},
            ],
        },
        {"t": 10, "model": "m1", "in": 300, "out": 7, "hash_ids": [1, 2, 3, 5], "ttft": 0.5, "api_time": 2.0},
    ],
}
SESSION_B = {
    "requests": [
        {"t": 0, "model": "m1", "in": 130, "out": 3, "hash_ids": [1, 2]},
        {"t": 1, "model": "m1", "in": 63, "out": 3, "hash_ids": []},
    ]
}


def write_session(path: Path, doc: object) -> Path:
    text = json.dumps(doc)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_session(tmp_path / "b.json.gz", SESSION_B)  # written first: the order is by name
    write_session(tmp_path / "a.json", SESSION_A)
    (tmp_path / "notes.txt").write_text("not a session")
    return tmp_path


def test_merged_order_ids_and_columns(folder: Path) -> None:
    tr = read_agentic(folder, 64, session_interval_s=10)
    # order (time, session, position): A0 @0, A1 (sub-agent) @5, A3 @10, B0 @10, A2 @11, B1 @11
    assert tr.arrival_s.tolist() == [0, 5, 10, 10, 11, 11]
    assert tr.session.tolist() == [0, 0, 0, 1, 0, 1]
    assert tr.input_tokens.tolist() == [200, 128, 300, 130, 192, 63]
    assert tr.output_tokens.tolist() == [5, 1, 7, 3, 1, 3]
    # identity (session, model, id), dense in first-seen order: m2's ids 1, 2 are new blocks,
    # and session b's ids 1, 2 are not session a's
    assert [tr.blocks(i).tolist() for i in range(len(tr))] == [[0, 1, 2], [3, 4], [0, 1, 2, 5], [6, 7], [3, 4, 8], []]
    np.testing.assert_array_equal(tr.real_ttft_s, [NAN, NAN, 0.5, NAN, NAN, NAN])
    np.testing.assert_array_equal(tr.real_api_time_s, [NAN, NAN, 2.0, NAN, NAN, NAN])
    assert tr.meta["sessions"] == 2 and tr.meta["subagents"] == 1
    assert tr.meta["models"] == ["m1", "m2"]
    assert tr.meta["session_files"] == ["a.json", "b.json.gz"]


def test_coarsening_keeps_every_gth_chained_id(folder: Path) -> None:
    tr = read_agentic(folder, 128, session_interval_s=10)
    # g = 2: ids[1::2] of each request, floor(len / 2) blocks
    assert tr.blocks_per_request.tolist() == [1, 1, 2, 1, 1, 0]
    assert tr.hash_ids.tolist() == [0, 1, 0, 2, 3, 1]
    assert tr.block_tokens == 128
    assert read_agentic(folder, 192, session_interval_s=10).blocks_per_request.tolist() == [1, 0, 1, 0, 1, 0]


def test_one_file_and_max_requests(folder: Path) -> None:
    tr = read_agentic(folder / "a.json", 64)
    assert tr.arrival_s.tolist() == [0, 5, 10, 11]
    assert tr.hash_ids.tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 5, 3, 4, 6]
    assert len(read_agentic(folder, 64, session_interval_s=10, max_requests=3)) == 3


def test_session_starts_interval_and_poisson(folder: Path) -> None:
    assert session_starts(3, "interval", 60.0).tolist() == [0, 60, 120]
    got = session_starts(4, "poisson", sessions_per_hour=120, rng=np.random.default_rng(7))
    gaps = np.random.default_rng(7).exponential(30.0, size=3)
    np.testing.assert_allclose(got, np.concatenate([[0.0], np.cumsum(gaps)]))
    tr = read_agentic(folder, 64, session_starts_mode="poisson", sessions_per_hour=3600,
                      rng=np.random.default_rng(7))
    start_b = float(np.random.default_rng(7).exponential(1.0))
    assert sorted(tr.arrival_s.tolist()) == sorted([0, 5, 10, 11, start_b, start_b + 1])
    with pytest.raises(ValueError, match="session_starts"):
        session_starts(2, "weekly")


def _bad(tmp_path: Path, doc: object, name: str = "s.json") -> str:
    write_session(tmp_path / name, doc)
    with pytest.raises(SessionFormatError) as ei:
        read_agentic(tmp_path, 64)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / name) + ":")
    return msg


def _with(req: dict, where: str = "top") -> dict:
    ok = {"t": 0, "model": "m", "in": 128, "out": 1, "hash_ids": [1, 2]}
    if where == "top":
        return {"requests": [ok, req]}
    return {"requests": [ok, {"t": 1, "type": "subagent", "requests": [ok, req]}]}


@pytest.mark.parametrize(
    ("req", "where", "expect"),
    [
        ({"t": 0, "model": "m", "in": 200, "out": 1, "hash_ids": [1, 2]}, "top",
         "requests[1]: field 'hash_ids': has 2 ids but in=200 needs floor(200/64) = 3"),
        ({"t": 0, "model": "m", "in": 128, "out": 1, "hash_ids": [1, 2]}, "sub", None),
        ({"t": 0, "model": "m", "in": 128, "out": 1}, "sub", "requests[1].requests[1]: field 'hash_ids': expected a list"),
        ({"t": 0, "model": "m", "in": 128, "out": 1, "hash_ids": [1, True]}, "top",
         "requests[1]: field 'hash_ids': element 1 is not an integer: True"),
        ({"t": 0, "model": "m", "in": 128, "out": 1, "hash_ids": [1, -2]}, "top", "element 1 is negative"),
        ({"t": 0, "model": "m", "in": 192, "out": 1, "hash_ids": [1, 3, 3]}, "sub",
         "requests[1].requests[1]: field 'hash_ids': ids must increase along the chain: element 2 (3) after 3"),
        ({"t": 0, "model": "m", "in": 128, "out": 1, "hash_ids": [1, 1 << 64]}, "top", "element 1 is outside int64"),
        ({"t": -1, "model": "m", "in": 128, "out": 1, "hash_ids": [1, 2]}, "sub", "requests[1].requests[1]: field 't': must be >= 0"),
        ({"t": float("nan"), "model": "m", "in": 128, "out": 1, "hash_ids": [1, 2]}, "top", "field 't': expected a finite number"),
        ({"t": 0, "in": 128, "out": 1, "hash_ids": [1, 2]}, "top", "field 'model'"),
        ({"t": 0, "model": "m", "in": 12.5, "out": 1, "hash_ids": []}, "top", "field 'in': expected an integer"),
        ({"t": 0, "model": "m", "in": 128, "out": 1, "hash_ids": [1, 2], "ttft": "fast"}, "top", "field 'ttft'"),
        ("not a request", "top", "requests[1]: field '<json>'"),
    ],
)
def test_bad_requests_name_the_file_and_the_request(tmp_path: Path, req: object, where: str, expect: str | None) -> None:
    doc = _with(req, where)  # type: ignore[arg-type]
    if expect is None:  # the control: a good request reads
        write_session(tmp_path / "s.json", doc)
        assert len(read_agentic(tmp_path, 64)) == 3
        return
    assert expect in _bad(tmp_path, doc)


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"requests": [')
    with pytest.raises(SessionFormatError, match=r"x\.json:1: field '<json>': not valid JSON"):
        read_agentic(tmp_path)
    assert "x.json:session: field 'requests': no requests" in _bad(tmp_path, {"requests": []}, "x.json")
    assert "x.json:session: field 'hash_id_scope'" in _bad(tmp_path, {"hash_id_scope": "global", "requests": []}, "x.json")
    assert "x.json:session: field 'requests': missing" in _bad(tmp_path, {"request": []}, "x.json")
    (tmp_path / "x.json").unlink()
    (tmp_path / "y.json.gz").write_bytes(b"not gzip")
    with pytest.raises(SessionFormatError, match=r"y\.json\.gz:0: field '<file>': cannot be read"):
        read_agentic(tmp_path)
    with pytest.raises(FileNotFoundError, match="agentic trace not found"):
        read_agentic(tmp_path / "missing")


def test_block_tokens_must_be_a_multiple(folder: Path) -> None:
    with pytest.raises(ValueError, match="multiple of the sessions' block_size 64"):
        read_agentic(folder, 100)


# --- the shared sessions -----------------------------------------------------------------
# LRU hits on the merged workload (interval starts, 60 s), at three capacities per block size.
GOLDEN_LRU = {
    512: {1000: 531174, 5000: 1547305, 20000: 1731572},
    64: {5000: 2676862, 40000: 12385188, 150000: 13872789},
}


@pytest.mark.slow
@pytest.mark.real_trace
@pytest.mark.parametrize("block_tokens", [512, 64])
def test_lru_on_the_shared_sessions_equals_the_reference(agentic_trace_path: Path, block_tokens: int) -> None:
    tr = read_agentic(agentic_trace_path, block_tokens)
    assert tr.meta["sessions"] == 115
    keys = tr.hash_ids.tolist()
    for cap, golden in GOLDEN_LRU[block_tokens].items():
        hits = LRU(cap).replay(keys)
        assert hits == reference_lru_hits(keys, cap)
        assert hits == golden


# --- the reader through the command line ---------------------------------------------------
def test_simulation_plots_ttft_against_the_real_one(folder: Path, tmp_path: Path, compose_cfg) -> None:
    import pandas as pd

    from kvsim.app import run

    out = tmp_path / "run"
    cfg = compose_cfg(["trace=agentic", f"trace.path={folder}", "trace.session_interval_s=10",
                       "policy=lookahead", "system.capacity_scale=0.01"])
    summary = run(cfg, out)
    df = pd.read_parquet(out / "requests.parquet")
    assert np.isnan(df["real_ttft_s"]).sum() == 5 and df["real_ttft_s"].iloc[2] == 0.5
    assert summary["real_ttft_requests"] == 1 and summary["real_ttft_p50_s"] == 0.5
    assert (out / "ttft_vs_real.png").is_file()


def test_bad_session_file_is_one_line_on_the_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_session(tmp_path / "s.json", _with({"t": 0, "model": "m", "in": 200, "out": 1, "hash_ids": [1]}))
    r = subprocess.run(
        [sys.executable, "-m", "kvsim", "trace=agentic", f"trace.path={tmp_path}", "system=single_tier",
         "system.capacity_blocks=10", f"hydra.run.dir={tmp_path / 'out'}"],
        capture_output=True, text=True, check=False,
    )
    assert r.returncode != 0
    err = [ln for ln in r.stderr.splitlines() if "s.json" in ln]
    assert len(err) == 1 and "requests[1]: field 'hash_ids': has 1 ids but in=200" in err[0]
