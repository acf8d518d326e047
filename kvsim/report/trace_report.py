"""``report.md`` of a trace-analysis run: each figure, its number, the study's number, and
what the number really measures. Written from ``trace_stats.json`` only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kvsim.io import write_json, write_with

# The study's claims (kvc-metadata-study.txt, section II), by statistic and trace kind.
STUDY: dict[str, dict[str, str]] = {
    "share_requests_hit_gt_50": {"toolagent": "over 75%", "conversation": "about 40%"},
    "share_requests_hit_gt_80": {"synthetic": "45%"},
    "mean_sequential_fraction": {"toolagent": "86.8%", "conversation": "'similar'", "synthetic": "'similar'"},
    "runs_test_share_p_gt_005": {
        "toolagent": "89% of 'block IDs'", "conversation": "'similar'", "synthetic": "'similar'",
    },
}
KIND_NAME = {"toolagent": "tool&agent", "conversation": "conversation", "synthetic": "synthetic"}
STUDY_TEXT = {  # every kind in one line (the notebook's table)
    key: "; ".join(f"{v} ({KIND_NAME[k]})" for k, v in by_kind.items()) for key, by_kind in STUDY.items()
}


# The conversation trace's numbers for the statistics where other traces differ most, as
# analyze() gives them on conversation_trace.jsonl (512-token blocks; checked by
# tests/test_analysis_agentic.py against a fresh analysis of the real trace).
CONVERSATION: dict[str, float] = {
    "block_hit_ratio": 0.3664,
    "mean_request_hit_rate": 0.3843,
    "resent_prefix_share_mean": 0.3843,
    "resent_prefix_share_p50": 0.3333,
    "share_requests_resent_ge_90": 0.1328,
    "reused_blocks_per_request_mean": 8.786,
    "new_blocks_per_request_mean": 15.19,
    "blocks_per_request_mean": 23.98,
    "accesses_per_unique_block": 1.578,
    "reuse_distance_requests_p50": 384.0,
    "reuse_distance_requests_p90": 1748.0,
    "reuse_distance_s_p50": 114.0,
    "reuse_distance_s_p90": 519.0,
}


def comparable(s: dict[str, Any]) -> dict[str, float | None]:
    """This trace's values of the statistics in :data:`CONVERSATION`."""
    rs = s.get("reuse_structure") or {}
    rp = rs.get("resent_prefix_share") or {}

    def get(d: dict[str, Any], k: str) -> float | None:
        v = d.get(k)
        return None if v is None else float(v)

    return {
        "block_hit_ratio": get(s, "block_hit_ratio"),
        "mean_request_hit_rate": get(s, "mean_request_hit_rate"),
        "resent_prefix_share_mean": get(rp, "mean"),
        "resent_prefix_share_p50": get(rp, "p50"),
        "share_requests_resent_ge_90": get(rs, "share_requests_resent_ge_90"),
        "reused_blocks_per_request_mean": get(rs.get("reused_blocks_per_request") or {}, "mean"),
        "new_blocks_per_request_mean": get(rs.get("new_blocks_per_request") or {}, "mean"),
        "blocks_per_request_mean": get(s.get("blocks_per_request") or {}, "mean"),
        "accesses_per_unique_block": get(rs, "accesses_per_unique_block"),
        "reuse_distance_requests_p50": get(s["reuse_distance_requests"], "p50"),
        "reuse_distance_requests_p90": get(s["reuse_distance_requests"], "p90"),
        "reuse_distance_s_p50": get(s["reuse_distance_s"], "p50"),
        "reuse_distance_s_p90": get(s["reuse_distance_s"], "p90"),
    }


def _num(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    if pct:
        return _pct(x)
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def _differences(s: dict[str, Any]) -> list[str]:
    """What differs from the conversation trace: reuse per request, reuse distance, the
    share of each request that is a re-sent prefix (and, with sessions, where reuse comes from)."""
    if s.get("study_trace") == "conversation":
        return []
    mine = comparable(s)
    rows: list[tuple[str, str | tuple[str, str], bool]] = [
        ("block hit ratio, unlimited cache", "block_hit_ratio", True),
        ("mean request hit rate (reuse per request)", "mean_request_hit_rate", True),
        ("re-sent prefix share of a request: mean", "resent_prefix_share_mean", True),
        ("re-sent prefix share of a request: median", "resent_prefix_share_p50", True),
        ("requests that are >= 90% a re-sent prefix", "share_requests_resent_ge_90", True),
        ("blocks per request (mean)", "blocks_per_request_mean", False),
        ("re-used blocks per request (mean)", "reused_blocks_per_request_mean", False),
        ("new blocks per request (mean)", "new_blocks_per_request_mean", False),
        ("accesses per unique block", "accesses_per_unique_block", False),
        ("reuse distance p50 / p90, requests", ("reuse_distance_requests_p50", "reuse_distance_requests_p90"), False),
        ("reuse distance p50 / p90, seconds", ("reuse_distance_s_p50", "reuse_distance_s_p90"), False),
    ]
    lines = [
        "",
        "## How this trace differs from the conversation trace",
        "",
        f"Block counts are in this trace's {s.get('block_tokens', '?')}-token blocks; the "
        "conversation trace's are 512-token blocks (`trace.block_tokens=512` makes them comparable).",
        "",
        "| statistic | this trace | conversation trace |",
        "|---|---:|---:|",
    ]
    for label, key, pct in rows:
        if isinstance(key, tuple):
            a = " / ".join(_num(mine[k]) for k in key)
            b = " / ".join(_num(CONVERSATION[k]) for k in key)
        else:
            a, b = _num(mine[key], pct), _num(CONVERSATION[key], pct)
        lines.append(f"| {label} | {a} | {b} |")
    rs = s.get("reuse_structure") or {}
    if "sessions" in rs:
        rq, du, gp = rs["requests_per_session"], rs["session_duration_s"], rs["session_gap_s"]
        lines += [
            # (n/a where no session has two requests: no gaps)
            f"| sessions; requests per session p50 / max | {_int(rs['sessions'])}; {_whole(rq['p50'])} / "
            f"{_int(rq['max'])} | no session ids |",
            f"| session duration p50 / p90 (s) | {_whole(du['p50'])} / {_whole(du['p90'])} | - |",
            f"| time between a session's requests p50 / p90 (s) | {_whole(gp['p50'])} / {_whole(gp['p90'])} | - |",
            f"| sessions active at once (max) | {_int(rs['max_concurrent_sessions'])} | - |",
            f"| hits whose previous use is in the same session | {_pct(rs['hits_from_same_session'])} | - |",
            f"| share of a request re-sent from its session's previous request | "
            f"{_pct(rs['share_from_previous_session_request'])} | - |",
        ]
    m, c = mine, CONVERSATION
    lines += ["", "What it means:", ""]
    if m["resent_prefix_share_mean"] is not None:
        lines.append(
            f"- A request here is on average {_pct(m['resent_prefix_share_mean'])} a re-sent prefix "
            f"(conversation: {_pct(c['resent_prefix_share_mean'])}); "
            f"{_pct(m['share_requests_resent_ge_90'])} of requests are at least 90% re-sent "
            f"(conversation: {_pct(c['share_requests_resent_ge_90'])}). "
            + ("Reuse is the whole history re-sent turn after turn, not a shared system prompt."
               if (m["resent_prefix_share_mean"] or 0) > 0.8 else "")
        )
    if m["reuse_distance_requests_p50"] is not None:
        lines.append(
            f"- Reuse distance: median {_num(m['reuse_distance_requests_p50'])} requests / "
            f"{_num(m['reuse_distance_s_p50'])} s (conversation: {_num(c['reuse_distance_requests_p50'])} "
            f"requests / {_num(c['reuse_distance_s_p50'])} s)."
            + (" A block comes back when its session sends its next request, after the other active "
               "sessions' requests in between, so the LRU capacity that holds the hits grows with "
               "the number of sessions active at once, times their context length."
               if "sessions" in rs else "")
        )
    same = rs.get("hits_from_same_session")
    if "sessions" in rs and same is not None and same >= 0.9999:
        lines.append(
            f"- {_pct(same)} of hits reuse a block of the same session "
            "(session ids are separate id spaces, so nothing is shared across sessions; a system "
            "prompt common to all sessions is not visible as one block)."
        )
    elif "sessions" in rs and same is not None:  # one id space for all sessions (Bailian traces)
        lines.append(
            f"- {_pct(same)} of hits reuse a block of the same session; the other {_pct(1 - same)} "
            "reuse a block that another session used first (a system prompt or document shared "
            "across sessions)."
        )
    return lines


def _pct(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.2f}%" if 0.999 < x < 1 else f"{100 * x:.1f}%"  # 99.99% is not 100.0%


def _whole(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _int(x: int | None) -> str:
    return "n/a" if x is None else f"{x:,}"


def _study(key: str, kind: str | None) -> str:
    """The study's number for this trace's kind in bold, then the others."""
    by_kind = STUDY.get(key)
    if not by_kind:
        return "-"
    parts = [f"**{by_kind[kind]}** ({KIND_NAME[kind]})"] if kind in by_kind else []
    parts += [f"{v} ({KIND_NAME[k]})" for k, v in by_kind.items() if k != kind]
    return "; ".join(parts)


def render(s: dict[str, Any]) -> str:
    kind = s.get("study_trace")
    t = s.get("timing_s", {})
    rd, rs = s["reuse_distance_requests"], s["reuse_distance_s"]
    cap = s.get("lru_capacity_for_share_of_unlimited") or {}
    lines = [
        f"# Trace analysis: {s.get('trace_file') or s['trace']}",
        "",
        f"{s['requests']:,} requests, {s['block_accesses']:,} block accesses, "
        f"{s['unique_blocks']:,} unique blocks over {s['span_s']:.0f} s "
        f"(timestamp resolution {s.get('arrival_resolution_s') or 0:.3g} s). "
        f"Analysis {t.get('analysis', 0):.2f} s, figures {t.get('figures', 0):.2f} s, "
        f"total with reading {t.get('total', 0):.2f} s."
        + (f" Compared with the study's **{KIND_NAME[kind]}** numbers where it gives one."
           if kind else " The study gives no numbers for this trace; its numbers are listed for reference."),
        "",
        "Every statistic is defined in `trace_stats.json` (`definitions`, `runs_test_definition`).",
        "",
        "| Figure | What | This trace | Study |",
        "|---|---|---|---|",
        f"| `fig1a_hit_rate_cdf.png` | requests with hit rate > 0.5 | "
        f"{_pct(s['share_requests_hit_gt_50'])} (>= 0.5: {_pct(s.get('share_requests_hit_ge_50'))}) | "
        f"{_study('share_requests_hit_gt_50', kind)} |",
        f"| `fig1a_hit_rate_cdf.png` | requests with hit rate > 0.8 | "
        f"{_pct(s['share_requests_hit_gt_80'])} | {_study('share_requests_hit_gt_80', kind)} |",
        f"| `fig1a_hit_rate_cdf.png` | block hit ratio (unlimited cache) / prefix-only | "
        f"{_pct(s['block_hit_ratio'])} / {_pct(s['prefix_hit_ratio'])} | - |",
        f"| `fig1b_block_ids_over_time.png` | hit rate of the first block / first four / last four | "
        f"{_pct(s['hit_rate_first_block'])} / {_pct(s['hit_rate_first_four'])} / "
        f"{_pct(s['hit_rate_last_four'])} | 'initial and most recent blocks highly reused' |",
        f"| `fig2a_sequential_fraction.png` | mean sequential fraction (block-weighted) | "
        f"{_pct(s['mean_sequential_fraction'])} ({_pct(s['block_weighted_sequential_fraction'])}) | "
        f"{_study('mean_sequential_fraction', kind)} |",
        f"| `fig2b_runs_test_pvalues.png` | tested requests with runs-test p > "
        f"{s['settings']['runs_alpha']} (share of scattered ids) | "
        f"{_pct(s['runs_test_share_p_gt_005'])} of {s['runs_test_n']:,} "
        f"({_pct(s['runs_test_share_ids_p_gt_005'])}) | {_study('runs_test_share_p_gt_005', kind)} |",
        "| `fig3_reuse_distance.png` | reuse distance p10/p50/p90/p99 in requests | "
        + "/".join(f"{rd[k]:,.0f}" if rd[k] is not None else "n/a" for k in ("p10", "p50", "p90", "p99"))
        + " | - |",
        "| `fig3_reuse_distance.png` | reuse distance p10/p50/p90/p99 in seconds | "
        + "/".join(f"{rs[k]:,.0f}" if rs[k] is not None else "n/a" for k in ("p10", "p50", "p90", "p99"))
        + " | synthetic: 'rather short reuse distance in time' |",
        f"| `fig4_lru_miss_ratio.png` | LRU capacity (blocks) for 50% / 90% / 99% of the unlimited "
        f"cache's hits | {_int(cap.get('0.50'))} / {_int(cap.get('0.90'))} / {_int(cap.get('0.99'))} "
        f"(of {s['unique_blocks']:,} blocks) | - |",
        f"| `fig5_popularity_position.png` | top 1% of blocks' share of accesses; Zipf s (r^2) | "
        f"{_pct(s['top1pct_blocks_access_share'])}; "
        + (f"{s['zipf_exponent']:.2f} ({s['zipf_fit_r2']:.2f})" if s.get("zipf_exponent") is not None else "n/a")
        + " | - |",
        "",
        "`overview.png` puts figures 1a, 1b, 2a and 4 on one page.",
        "",
        "## What the numbers mean",
        "",
    ]
    lines += _meaning(s)
    lines += _differences(s)
    return "\n".join(lines) + "\n"


def _meaning(s: dict[str, Any]) -> list[str]:
    out: list[str] = []
    inc = s["ids_strictly_increasing_within_requests"]
    dense = s["ids_dense_first_seen_order"]
    chained = s["ids_prefix_chained"]
    out.append(
        "- **How ids were assigned (checked on this trace).** Ids strictly increase within every "
        f"request: **{'yes' if inc else 'no'}** ({_pct(s['share_multiblock_requests_strictly_increasing'])} "
        "of multi-block requests). Ids are 0, 1, 2, ... in first-seen order: "
        f"**{'yes' if dense else 'no'}**. Every id always follows the same id (or always starts "
        f"a request), as chained prefix hashes do: **{'yes' if chained else 'no'}**. The hit "
        "blocks of every request are exactly its longest already-seen prefix: "
        f"**{'yes' if s['set_equals_prefix'] else 'no'}**."
    )
    if dense and inc:
        out.append(
            "- **Sequential fraction (Fig. 2a) measures id assignment, not key locality.** A "
            "request's new blocks get the next free consecutive ids, and a reused prefix is "
            "consecutive because it was new together in one earlier request; a run breaks only "
            "where one request's prefix continues another's (e.g. after the shared first block). "
            "A real index keys blocks by SHA-256 of the chained prefix: in key order a request "
            f"needs {s['lookups_per_request_hashed']:.2f} lookups on average (≈ its "
            f"{s['blocks_per_request']['mean']:.2f} blocks), against "
            f"{s['lookups_per_request_remapped']:.2f} with the renumbered ids. Range queries are "
            "worth what Fig. 2a suggests only for an index that assigns ids in this way."
        )
    n_min = s.get("runs_test_min_n_that_can_reject")
    out.append(
        f"- **Runs test (Fig. 2b).** {s['runs_test_definition']} "
        f"{_pct(s['runs_test_share_scattered_strictly_increasing'])} of the tested sequences are "
        "strictly increasing, so they have exactly 2 runs, the fewest possible: the test does "
        "not look at randomness of ids here, it only asks whether the sequence is long enough "
        f"to reject. No sequence of fewer than {n_min} values can give p <= "
        f"{s['settings']['runs_alpha']}; among the {s['runs_test_n_can_reject']:,} requests "
        f"with at least {n_min} scattered ids, {_pct(s['runs_test_share_p_gt_005_when_n_can_reject'])} "
        f"pass; the same ids randomly reordered pass in "
        f"{_pct(s['runs_test_share_p_gt_005_shuffled_when_n_can_reject'])} of those requests "
        f"({_pct(s['runs_test_share_p_gt_005_shuffled'])} over all tested requests). The share that passes is therefore the share of "
        "requests with few scattered blocks, not evidence of random access. The scattered "
        f"blocks are mostly re-used blocks ({_pct(s['scattered_share_hits'])} are hits) and "
        f"{_pct(s['scattered_share_at_position_0'])} of them are the first block of a request "
        "(a shared system-prompt block followed by a request-specific continuation)."
    )
    if dense:
        out.append(
            "- **Block ids over time (Fig. 1b).** Because ids are numbered in first-seen order, "
            "the y axis is the block's creation order: the diagonal edge is where new blocks "
            "appear, density just below it is reuse of recently created blocks (multi-turn "
            "sessions: reuse distance p50 "
            f"{s['reuse_distance_s']['p50'] or 0:.0f} s), and the band at the bottom is reuse of "
            f"the earliest blocks (the first block hits in {_pct(s['hit_rate_first_block'])} of "
            "requests; the most accessed block alone is "
            f"{_pct(s['hits_share_most_accessed_block'])} of all hits, which is why the reuse "
            "distance's p10 is one request). This figure is about access, and it reads correctly only because ids "
            "follow creation order."
        )
    out.append(
        "- **Hit rates (Fig. 1a)** count blocks seen in any earlier request, i.e. an unlimited "
        "cache; Fig. 4 shows what a finite LRU cache keeps. "
        f"{_pct(s.get('share_requests_hit_eq_50'))} of requests have a hit rate of exactly 0.5 "
        "(often 2-block requests whose first block is shared), so '> 0.5' and '>= 0.5' differ "
        f"by that much ({_pct(s['share_requests_hit_gt_50'])} vs "
        f"{_pct(s.get('share_requests_hit_ge_50'))})."
    )
    res = s.get("arrival_resolution_s")
    if res and res >= 1:
        out.append(
            f"- **Timestamps** have a resolution of {res:g} s, so reuse distances in seconds "
            "below that are 0 and are not measurements."
        )
    return out


def write_report(run_dir: str | Path) -> Path:
    d = Path(run_dir)
    stats = json.loads((d / "trace_stats.json").read_text())
    text = render(stats)

    def write(p: Path) -> None:
        p.write_text(text)

    return write_with(d / "report.md", write)


def report_trace_analysis(run_dir: str | Path, figures: bool = True) -> dict[str, Any]:
    """What a trace analysis draws from its saved files (:func:`kvsim.analysis.run.analyze_to_dir`):
    the figures (unless ``figures`` is false; their time joins ``trace_stats.json``'s
    ``timing_s``) and ``report.md``. Returns the stats."""
    import time

    d = Path(run_dir)
    stats: dict[str, Any] = json.loads((d / "trace_stats.json").read_text())
    if figures:
        from kvsim.report.trace_figures import plot_all

        t = time.perf_counter()
        plot_all(d)
        took = time.perf_counter() - t
        stats["timing_s"]["figures"] = took
        stats["timing_s"]["total"] = stats["timing_s"].get("total", 0.0) + took
        write_json(d / "trace_stats.json", stats)
    write_report(d)
    return stats
