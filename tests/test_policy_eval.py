"""The evaluation protocol: the cell table (best classic, gap shares) worked out by hand, the
mode run end to end on small generated families, and its settings checked at compose time."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kvsim.bench.policy_eval import cells, markdown, summarize, untuned
from kvsim.bench.policy_eval_settings import PolicyEvalSettings


def test_cells_hand_worked() -> None:
    rows = [
        {"family": "a", "capacity_frac": 0.1, "capacity_blocks": 10, "policy": p, "hits": h}
        for p, h in {"lru": 100, "fifo": 90, "arc": 120, "hotness": 130, "opt": 200}.items()
    ] + [
        {"family": "a", "capacity_frac": 0.5, "capacity_blocks": 50, "policy": p, "hits": h}
        for p, h in {"lru": 200, "fifo": 200, "arc": 199, "hotness": 199, "opt": 200}.items()
    ]
    table = cells(rows, ["lru", "fifo", "arc"], tuned_on="b")
    small, large = table
    assert small["best_classic"] == "arc" and small["best_classic_hits"] == 120
    assert small["hotness_vs_best"] == 10 and small["hotness_gap_closed"] == pytest.approx(0.3)
    assert large["best_classic"] == "lru"  # ties: the first classic listed
    assert large["hotness_vs_best"] == -1 and math.isnan(large["hotness_gap_closed"])
    s = summarize(table, ["hotness"])["a"]["hotness"]
    assert s["mean_gap_closed"] == pytest.approx(0.3)  # the undefined cell is left out
    assert s["pooled_gap_closed"] == pytest.approx((30 - 1) / 100)
    assert s["cells_at_or_above_best_classic"] == 1
    u = untuned(table, ["hotness"])["hotness"]  # family a was not tuned on ("b" was)
    assert u["cells"] == 2 and u["at_or_above_best_classic"] == 1 and u["below_best_classic"] == ["a@0.5"]
    assert u["mean_gap_closed"] == pytest.approx(0.3)
    assert untuned(cells(rows, ["lru", "fifo", "arc"], tuned_on="a"), ["hotness"]) == {}
    md = markdown(table, ["hotness"])
    assert "| a | 10% = 10 | 100 | arc 120 | **130** (+10; 30%) | 200 |" in md
    assert "| 199 (-1; n/a) |" in md


@pytest.mark.slow  # (minutes with hotness as plain Python: tools/mutate.py leaves it out)
def test_mode_end_to_end_on_generated_families(tmp_path: Path, compose_cfg) -> None:
    from kvsim.app import run

    cfg = compose_cfg([
        "+experiment=policy_eval", "experiment.families=[tool_use,zipf_docs]", "experiment.tuned_on=tool_use",
        "experiment.capacities=[0.02,0.3]", "experiment.policies=[lru,arc,hotness,lookahead,opt]",
        "experiment.classic=[lru,arc]", "experiment.generated_scale=0.1", "figures=true",
        "experiment.jobs=2",  # the policies reach the worker processes pickled
    ])
    out = tmp_path / "eval"
    summary = run(cfg, out)
    assert summary["tuned_on"] == "tool_use" and set(summary["by_family"]) == {"tool_use", "zipf_docs"}
    rows = [ln for ln in (out / "policy_eval.csv").read_text().splitlines()[1:]]
    assert len(rows) == 2 * 2 * 5
    assert (out / "policy_eval.png").is_file() and "tool use (generated) *(tuned here)*" in (out / "policy_eval.md").read_text()
    by = json.loads((out / "summary.json").read_text())["by_family"]["zipf_docs"]
    assert by["tuned_here"] is False and "hotness" in by and "lookahead" in by


def test_settings_are_checked_at_compose_time(compose_cfg) -> None:
    from kvsim.app import run
    from kvsim.errors import ConfigError

    with pytest.raises(ConfigError, match="experiment.capacities"):
        run(compose_cfg(["+experiment=policy_eval", "experiment.capacities=[0,0.5]"]), Path("/nonexistent"))
    with pytest.raises(ConfigError, match="experiment.families"):
        run(compose_cfg(["+experiment=policy_eval", "experiment.families=[nope]"]), Path("/nonexistent"))
    with pytest.raises(ConfigError, match=r"experiment.policies\[2\]: 'nope' is not one of arc, fifo"):
        run(compose_cfg(["+experiment=policy_eval", "experiment.policies=[lru,opt,nope]"]), Path("/nonexistent"))
    with pytest.raises(ConfigError, match="experiment.policies: opt is a yardstick and must be listed"):
        run(compose_cfg(["+experiment=policy_eval", "experiment.policies=[lru,fifo]", "experiment.classic=[lru]"]),
            Path("/nonexistent"))
    with pytest.raises(ConfigError, match=r"experiment.classic: \['arc'\] are not among"):
        run(compose_cfg(["+experiment=policy_eval", "experiment.policies=[lru,opt]", "experiment.classic=[lru,arc]"]),
            Path("/nonexistent"))
    assert PolicyEvalSettings().tuned_on == "conversation"


def test_the_bailian_family_from_its_file(tmp_path: Path, compose_cfg, embedded_trace) -> None:  # type: ignore[no-untyped-def]
    """The opt-in Qwen-Bailian family: the embedded trace's first 300 requests written as a
    Bailian file (each 512-token block as 32 pieces) is the family, read at 512-token blocks;
    a missing file is refused naming the key."""
    from kvsim.app import run
    from kvsim.errors import InputFileError

    head = embedded_trace.head(300)
    path = tmp_path / "b.jsonl"
    path.write_text("".join(
        json.dumps({"chat_id": i, "timestamp": float(head.arrival_s[i]), "input_length": int(head.input_tokens[i]),
                    "output_length": 1, "hash_ids": [b * 32 + k for b in head.blocks(i).tolist() for k in range(32)]}) + "\n"
        for i in range(len(head))))
    common = ["+experiment=policy_eval", "experiment.families=[bailian]", "experiment.tuned_on=bailian",
              "experiment.capacities=[0.1]", "experiment.policies=[lru,arc,opt]", "experiment.classic=[lru,arc]"]
    summary = run(compose_cfg([*common, f"experiment.bailian_path={path}"]), tmp_path / "eval")
    assert set(summary["by_family"]) == {"bailian"}
    assert "Qwen-Bailian (Alibaba)" in (tmp_path / "eval" / "policy_eval.md").read_text()
    with pytest.raises(InputFileError, match=r"^experiment\.bailian_path: not found: "):
        run(compose_cfg([*common, f"experiment.bailian_path={tmp_path / 'nope.jsonl'}"]), tmp_path / "eval2")
    # its block size is a setting: at 256 tokens each 512-token block is two, read as such
    # and kept apart from the 512-token reading; a size that cuts the file's blocks is refused
    from kvsim.bench.policy_eval import family_trace
    from kvsim.errors import ConfigError

    at512 = family_trace("bailian", PolicyEvalSettings(bailian_path=str(path)))
    at256 = family_trace("bailian", PolicyEvalSettings(bailian_path=str(path), bailian_block_tokens=256))
    assert (at512.block_tokens, at256.block_tokens) == (512, 256)
    assert len(at256.hash_ids) == 2 * len(at512.hash_ids)
    with pytest.raises(ConfigError, match=r"experiment.bailian_block_tokens: must be a multiple of 16, got 100"):
        run(compose_cfg([*common, "experiment.bailian_block_tokens=100"]), Path("/nonexistent"))
    # any whole multiple of the file's 16-token blocks, as the reader takes (not only powers of 2)
    assert family_trace("bailian", PolicyEvalSettings(bailian_path=str(path), bailian_block_tokens=48)).block_tokens == 48


def test_a_family_is_read_again_when_its_settings_change() -> None:
    """Traces are kept per process by what defines them, not by the family's name alone:
    another seed is another trace; the same settings, the same object."""
    from kvsim.bench.policy_eval import family_trace

    a = family_trace("zipf_docs", PolicyEvalSettings(generated_seed=1, generated_scale=0.05))
    assert family_trace("zipf_docs", PolicyEvalSettings(generated_seed=1, generated_scale=0.05)) is a
    b = family_trace("zipf_docs", PolicyEvalSettings(generated_seed=2, generated_scale=0.05))
    assert b is not a and not (len(a.hash_ids) == len(b.hash_ids) and (a.hash_ids == b.hash_ids).all())


def test_a_family_folder_is_read_again_when_a_session_changes(tmp_path: Path) -> None:
    """The agentic family's folder is known by its files: a session rewritten is read again."""
    import os

    from kvsim.bench.policy_eval import _family_key

    folder = tmp_path / "sessions"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    s = PolicyEvalSettings(agentic_path=str(folder))
    before = _family_key("agentic", s)
    assert _family_key("agentic", s) == before
    (folder / "a.json").write_text("{ }")
    os.utime(folder / "a.json", ns=(1, 1))
    assert _family_key("agentic", s) != before
