"""Trace analysis of agentic traces: the reuse-structure statistics on a hand-made trace with
sessions (values worked out here), the report's comparison with the conversation trace, and
the conversation trace's reference numbers checked against a fresh analysis of it."""

from __future__ import annotations

import numpy as np
import pytest

from kvsim.analysis.stats import analyze
from kvsim.report.trace_report import CONVERSATION, comparable, render
from kvsim.trace.schema import Trace


def session_trace() -> Trace:
    """Two sessions. Session 0: [0 1 2] at 0 s, [0 1 2 3] at 10 s, [0 1 2 3 4] at 30 s.
    Session 1: [5 6] at 5 s, [5 6 7] at 40 s."""
    reqs = [[0, 1, 2], [5, 6], [0, 1, 2, 3], [0, 1, 2, 3, 4], [5, 6, 7]]
    sess = [0, 1, 0, 0, 1]
    lens = [len(r) for r in reqs]
    return Trace(
        arrival_s=np.array([0.0, 5.0, 10.0, 30.0, 40.0]),
        input_tokens=np.array(lens) * 64,
        output_tokens=np.ones(5, dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        hash_ids=np.array([k for r in reqs for k in r], dtype=np.int64),
        block_tokens=64,
        session=np.array(sess, dtype=np.int64),
    )


def test_reuse_structure_hand_worked() -> None:
    rs = analyze(session_trace(), lru_points=5).stats["reuse_structure"]
    # re-sent prefix shares: 0, 0, 3/4, 4/5, 2/3
    assert rs["resent_prefix_share"]["mean"] == pytest.approx((0 + 0 + 0.75 + 0.8 + 2 / 3) / 5)
    assert rs["share_requests_resent_ge_90"] == 0.0
    assert rs["reused_blocks_per_request"]["mean"] == pytest.approx((0 + 0 + 3 + 4 + 2) / 5)
    assert rs["new_blocks_per_request"]["mean"] == pytest.approx((3 + 2 + 1 + 1 + 1) / 5)
    assert rs["accesses_per_unique_block"] == pytest.approx(17 / 8)
    assert rs["sessions"] == 2 and rs["requests_per_session"]["max"] == 3
    assert rs["session_duration_s"]["p50"] == pytest.approx(np.percentile([30.0, 35.0], 50))
    assert sorted(np.percentile([10.0, 20.0, 35.0], [50])) == [rs["session_gap_s"]["p50"]]
    assert rs["max_concurrent_sessions"] == 2
    assert rs["hits_from_same_session"] == 1.0
    # every hit's latest earlier holder is the session's previous request
    assert rs["share_from_previous_session_request"] == pytest.approx((0 + 0 + 0.75 + 0.8 + 2 / 3) / 5)


def test_a_trace_without_sessions_has_no_session_statistics() -> None:
    tr = session_trace()
    plain = Trace(tr.arrival_s, tr.input_tokens, tr.output_tokens, tr.offsets, tr.hash_ids)
    rs = analyze(plain, lru_points=5).stats["reuse_structure"]
    assert "sessions" not in rs and rs["resent_prefix_share"]["mean"] > 0


def test_report_says_what_differs_from_the_conversation_trace() -> None:
    s = analyze(session_trace(), lru_points=5).stats
    s.update(trace_file="t", study_trace=None, settings={"runs_alpha": 0.05}, timing_s={})
    text = render(s)
    assert "## How this trace differs from the conversation trace" in text
    assert "| re-sent prefix share of a request: mean | 44.3% | 38.4% |" in text
    assert "| sessions; requests per session p50 / max | 2; 2 / 3 | no session ids |" in text
    assert "64-token blocks" in text
    s["study_trace"] = "conversation"
    assert "differs from the conversation" not in render(s)


@pytest.mark.real_trace
def test_conversation_reference_numbers(real_trace) -> None:
    mine = comparable(analyze(real_trace, lru_points=5).stats)
    for key, ref in CONVERSATION.items():
        assert mine[key] == pytest.approx(ref, rel=2e-3), key


@pytest.mark.real_trace
def test_agentic_sessions_differ_as_the_report_says(agentic_trace_path) -> None:
    from kvsim.trace.agentic import read_agentic

    s = analyze(read_agentic(agentic_trace_path, 512), lru_points=5).stats
    rs = s["reuse_structure"]
    assert rs["sessions"] == 115 and rs["hits_from_same_session"] == 1.0
    assert rs["resent_prefix_share"]["mean"] > 0.9 > CONVERSATION["resent_prefix_share_mean"]
    assert s["reuse_distance_requests"]["p50"] < CONVERSATION["reuse_distance_requests_p50"] / 10


def test_report_of_one_id_space_and_single_request_sessions() -> None:
    """Sessions sharing one id space (Qwen-Bailian traces): the report says how many hits
    come from other sessions; sessions of one request each have no gaps (n/a, not a crash)."""
    tr = session_trace()
    shared = Trace(tr.arrival_s, tr.input_tokens, tr.output_tokens, tr.offsets, tr.hash_ids, block_tokens=64,
                   session=np.array([0, 1, 2, 0, 1], dtype=np.int64))  # request 2 opens its own session
    s = analyze(shared, lru_points=5).stats
    s.update(trace_file="t", study_trace=None, settings={"runs_alpha": 0.05}, timing_s={})
    text = render(s)
    assert "(a system prompt or document shared across sessions)" in text
    assert "separate id spaces" not in text
    alone = Trace(tr.arrival_s, tr.input_tokens, tr.output_tokens, tr.offsets, tr.hash_ids, block_tokens=64,
                  session=np.arange(5, dtype=np.int64))
    s = analyze(alone, lru_points=5).stats
    s.update(trace_file="t", study_trace=None, settings={"runs_alpha": 0.05}, timing_s={})
    assert "| time between a session's requests p50 / p90 (s) | n/a / n/a | - |" in render(s)
