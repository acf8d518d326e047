"""``mode: policy_eval``: the evaluation protocol for placement policies (docs/policy_eval.md).

    python -m kvsim +experiment=policy_eval

A policy is judged on trace families it was not shaped on. For each family (the conversation
trace, the agentic sessions, and generated families whose structure differs from both and from
kvsim's own generator) and each capacity (a fraction of the family's unique blocks), every
policy replays the family's block accesses in one cache (single-tier mode, each policy with
its ``conf/policy/<name>.yaml`` defaults). The table gives each policy's hits, the best classic
policy (LRU, FIFO, LFU, ARC, S3-FIFO) and the share of LRU's gap to OPT a policy closes,
(hits - LRU) / (OPT - LRU) (undefined where LRU already equals OPT).

Writes ``policy_eval.csv`` (one row per family, capacity and policy), ``policy_eval_cells.csv``
(one row per family and capacity: best classic, hotness and lookahead against it and their
gap shares), ``policy_eval.md`` (the table for the README), ``policy_eval.png`` and
``summary.json`` (per family: mean gap share, cells at or above the best classic).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from kvsim.bench.policy_eval_settings import PolicyEvalSettings, check_policies
from kvsim.errors import InputFileError
from kvsim.io import write_json, write_with
from kvsim.policy.base import EvictionPolicy
from kvsim.report.policy_eval import NAMES, evaluated, shown_policies
from kvsim.trace.files import files_stamp
from kvsim.trace.schema import Trace

log = logging.getLogger("kvsim")


def load_family(family: str, s: PolicyEvalSettings) -> Trace:
    """The trace of one family, as the protocol defines it."""
    key = f"{family}_path"
    if hasattr(s, key) and not Path(getattr(s, key)).exists():
        raise InputFileError(f"experiment.{key}: not found: {getattr(s, key)} (the {family} family's trace)")
    if family == "conversation":
        from kvsim.trace.mooncake import read_mooncake_jsonl

        return read_mooncake_jsonl(s.conversation_path, name="conversation")
    if family == "agentic":
        from kvsim.trace.agentic import read_agentic

        return read_agentic(s.agentic_path, s.agentic_block_tokens, name="agentic")
    if family == "bailian":
        from kvsim.trace.bailian import read_bailian_jsonl

        return read_bailian_jsonl(s.bailian_path, s.bailian_block_tokens, name="bailian")
    from kvsim.trace.families import generate_family

    return generate_family(family, seed=s.generated_seed, scale=s.generated_scale)


# Families read in this process, by what defines each (its settings, its file's size and
# time), newest last and at most a few: a second evaluation with another seed, scale or file
# reads its own traces, never the first one's.
_TRACES: OrderedDict[tuple[Any, ...], Trace] = OrderedDict()
_TRACES_KEPT = 8


def _family_key(family: str, s: PolicyEvalSettings) -> tuple[Any, ...]:
    path = getattr(s, f"{family}_path", None)
    if path is None:  # a generated family
        return family, s.generated_seed, s.generated_scale
    p = Path(path)
    stamp = files_stamp(p) if p.exists() else None  # (a missing one is refused by load_family)
    blocks = {"agentic": s.agentic_block_tokens, "bailian": s.bailian_block_tokens}.get(family)
    return family, str(p.resolve()), stamp, blocks


def family_trace(family: str, s: PolicyEvalSettings) -> Trace:
    """:func:`load_family`, once per process for the same family and settings."""
    key = _family_key(family, s)
    trace = _TRACES.get(key)
    if trace is None:
        trace = _TRACES[key] = load_family(family, s)
        while len(_TRACES) > _TRACES_KEPT:
            _TRACES.popitem(last=False)
    _TRACES.move_to_end(key)
    return trace


PolicyFactory = Callable[[int], EvictionPolicy]


def _replay(args: tuple[str, float, int, str, PolicyFactory, PolicyEvalSettings]) -> dict[str, Any]:
    family, frac, cap, name, factory, s = args
    trace = family_trace(family, s)
    policy = factory(cap)
    policy.bind(trace)
    keys = trace.hash_ids if name == "opt" else trace.hash_ids.tolist()
    t0 = time.perf_counter()
    hits = policy.replay(keys)
    return {
        "family": family, "capacity_frac": frac, "capacity_blocks": cap, "policy": name,
        "hits": int(hits), "accesses": trace.num_block_accesses, "wall_s": time.perf_counter() - t0,
    }


def cells(rows: Iterable[dict[str, Any]], classic: list[str], tuned_on: str) -> list[dict[str, Any]]:
    """One row per (family, capacity): the best classic policy and each other policy's
    hits against it and its share of LRU's gap to OPT."""
    by: dict[tuple[str, float], dict[str, int]] = {}
    caps: dict[tuple[str, float], int] = {}
    for r in rows:
        by.setdefault((r["family"], r["capacity_frac"]), {})[r["policy"]] = r["hits"]
        caps[(r["family"], r["capacity_frac"])] = r["capacity_blocks"]
    out = []
    for (family, frac), hits in by.items():
        lru, opt = hits["lru"], hits["opt"]
        best = max(classic, key=lambda p: (hits[p], -classic.index(p)))
        row: dict[str, Any] = {
            "family": family, "tuned_here": family == tuned_on, "capacity_frac": frac,
            "capacity_blocks": caps[(family, frac)], "lru": lru, "opt": opt,
            "best_classic": best, "best_classic_hits": hits[best],
        }
        for p, h in hits.items():
            if p in classic or p == "opt":
                continue
            row[f"{p}_hits"] = h
            row[f"{p}_vs_best"] = h - hits[best]
            row[f"{p}_gap_closed"] = (h - lru) / (opt - lru) if opt > lru else float("nan")
        out.append(row)
    return out


def summarize(table: list[dict[str, Any]], policies: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for family in dict.fromkeys(r["family"] for r in table):
        rs = [r for r in table if r["family"] == family]
        fam: dict[str, Any] = {"tuned_here": rs[0]["tuned_here"], "cells": len(rs)}
        for p in policies:
            if f"{p}_hits" not in rs[0]:
                continue
            shares = [r[f"{p}_gap_closed"] for r in rs if np.isfinite(r[f"{p}_gap_closed"])]
            gap = sum(r["opt"] - r["lru"] for r in rs)
            fam[p] = {
                "mean_gap_closed": float(np.mean(shares)) if shares else None,
                "pooled_gap_closed": sum(r[f"{p}_hits"] - r["lru"] for r in rs) / gap if gap else None,
                "cells_at_or_above_best_classic": sum(r[f"{p}_vs_best"] >= 0 for r in rs),
            }
        out[family] = fam
    return out


def untuned(table: list[dict[str, Any]], policies: list[str]) -> dict[str, Any]:
    """The protocol's verdict over the cells of the families a policy was not tuned on:
    cells at or above the best classic policy, and the mean share of LRU's gap closed."""
    rs = [r for r in table if not r["tuned_here"]]
    out: dict[str, Any] = {}
    for p in policies:
        if not rs or f"{p}_hits" not in rs[0]:
            continue
        shares = [r[f"{p}_gap_closed"] for r in rs if np.isfinite(r[f"{p}_gap_closed"])]
        losses = [f"{r['family']}@{r['capacity_frac']:g}" for r in rs if r[f"{p}_vs_best"] < 0]
        out[p] = {"cells": len(rs), "at_or_above_best_classic": len(rs) - len(losses),
                  "below_best_classic": losses,
                  "mean_gap_closed": float(np.mean(shares)) if shares else None}
    return out


def markdown(table: list[dict[str, Any]], policies: list[str]) -> str:
    """The README table: per family and capacity, LRU, the best classic, each of ``policies``
    (hits, difference to the best classic, share of LRU's gap closed) and OPT."""
    head = ["family", "capacity (blocks)", "LRU", "best classic", *policies, "OPT"]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---|" + "---:|" * len(policies) + "---:|"]
    for r in table:
        fam = NAMES.get(r["family"], r["family"]) + (" *(tuned here)*" if r["tuned_here"] else "")
        cols = [fam, f"{r['capacity_frac']:.0%} = {r['capacity_blocks']:,}", f"{r['lru']:,}",
                f"{r['best_classic']} {r['best_classic_hits']:,}"]
        for p in policies:
            g = r[f"{p}_gap_closed"]
            d = r[f"{p}_vs_best"]
            mark = "**" if d >= 0 else ""
            share = f"{g:.0%}" if np.isfinite(g) else "n/a"
            cols.append(f"{mark}{r[f'{p}_hits']:,}{mark} ({d:+,}; {share})")
        cols.append(f"{r['opt']:,}")
        lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines) + "\n"


def evaluate(s: PolicyEvalSettings, out: Path, policies: Mapping[str, PolicyFactory]) -> dict[str, Any]:
    """The mode: every family x capacity x policy of ``s`` (``policies``: each name's factory,
    capacity -> policy, built at the edge: :func:`kvsim.modes.policy_eval`), then the tables."""
    import pandas as pd

    check_policies(s.policies, s.classic)  # as the config check does, for callers without one
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for family in s.families:
        trace = family_trace(family, s)
        unique = int(len(np.unique(trace.hash_ids)))
        log.info("family %s: %d requests, %d block accesses, %d unique blocks",
                 family, len(trace), trace.num_block_accesses, unique)
        for frac in s.capacities:
            cap = max(1, int(unique * frac))
            jobs += [(family, frac, cap, p, policies[p], s) for p in s.policies]
    t0 = time.perf_counter()
    if s.jobs > 1:
        with ProcessPoolExecutor(s.jobs) as ex:
            rows = list(ex.map(_replay, jobs))
    else:
        rows = [_replay(j) for j in jobs]
    wall = time.perf_counter() - t0
    df = pd.DataFrame(rows)
    write_with(out / "policy_eval.csv", lambda p: df.to_csv(p, index=False))
    others = evaluated(s.policies, s.classic)
    table = cells(rows, list(s.classic), s.tuned_on)
    write_with(out / "policy_eval_cells.csv", lambda p: pd.DataFrame(table).to_csv(p, index=False))
    text = markdown(table, shown_policies(s.policies, s.classic))

    def write_md(p: Path) -> None:
        p.write_text(text)

    write_with(out / "policy_eval.md", write_md)
    summary = {
        "mode": "policy_eval", "tuned_on": s.tuned_on, "families": s.families,
        "capacities": s.capacities, "policies": s.policies, "classic": s.classic,
        "wall_time_s": wall, "by_family": summarize(table, others), "untuned": untuned(table, others),
    }
    write_json(out / "summary.json", summary)
    log.info("policy_eval: %d replays in %.0f s -> %s", len(rows), wall, out)
    return summary
