"""policy_eval.png (kvsim/report/policy_eval.py), drawn from a run folder made by hand: what
each panel shows is read from its lines."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kvsim.bench.policy_eval import cells
from kvsim.report.policy_eval import plot_policy_eval, shown_policies
from tests.figure_util import lines

HITS = {  # family -> capacity -> policy -> hits
    "tool_use": {0.1: {"lru": 100, "fifo": 90, "hotness": 130, "opt": 200},
                 0.5: {"lru": 200, "fifo": 200, "hotness": 199, "opt": 200}},
    "zipf_docs": {0.02: {"lru": 10, "fifo": 20, "hotness": 15, "opt": 30},
                  0.3: {"lru": 50, "fifo": 40, "hotness": 70, "opt": 90}},
}


def _run_folder(d: Path) -> Path:
    rows = [{"family": f, "capacity_frac": c, "capacity_blocks": 1, "policy": p, "hits": h}
            for f, by_cap in HITS.items() for c, by_p in by_cap.items() for p, h in by_p.items()]
    d.mkdir()
    pd.DataFrame(cells(rows, ["lru", "fifo"], tuned_on="tool_use")).to_csv(d / "policy_eval_cells.csv", index=False)
    (d / "summary.json").write_text(json.dumps({"policies": ["lru", "fifo", "hotness", "opt"], "classic": ["lru", "fifo"]}))
    return d


def test_shown_policies() -> None:
    assert shown_policies(["lru", "arc", "hotness", "lookahead", "opt"], ["lru", "arc"]) == ["hotness", "lookahead"]
    assert shown_policies(["lru", "s3fifo", "opt"], ["lru"]) == ["s3fifo"]  # none of kvsim's own: the others


def test_each_family_panel_shows_the_gap_shares_from_the_saved_table(tmp_path: Path, drawn: list[Any]) -> None:
    path = plot_policy_eval(_run_folder(tmp_path / "run"))
    assert path.name == "policy_eval.png" and path.stat().st_size > 5_000
    ((fig, name),) = drawn
    assert name == "policy_eval.png"
    conv, zipf = fig.axes
    assert conv.get_title() == "tool use (generated) (tuned)" and zipf.get_title() == "Zipf documents (generated)"
    # hotness, then the best classic (dashed), then the zero line
    (hx, hy), (bx, by), _ = lines(conv)
    assert hx == bx == [0.1, 0.5]
    assert hy[0] == pytest.approx(0.3) and math.isnan(hy[1])  # (130-100)/(200-100); LRU = OPT: undefined
    assert by[0] == pytest.approx(0.0) and math.isnan(by[1])  # the best classic at 0.1 is LRU itself
    (hx, hy), (bx, by), _ = lines(zipf)
    assert hx == [0.02, 0.3]
    assert hy == pytest.approx([0.25, 0.5]) and by == pytest.approx([0.5, 0.0])  # fifo best at 0.02, lru at 0.3
    assert [t.get_text() for t in conv.get_legend().get_texts()] == ["hotness", "best classic"]
