"""The sweep report: rows from the sweep's own job list, gap to OPT per configuration,
derived columns, status of failed and missing jobs, the figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kvsim.report.sweep import add_derived, gather, main, report
from kvsim.runfolder import MARKER
from kvsim.sweepjobs import SweepDirError, describe_job, record_failure, write_jobs


def make_sweep(d: Path, runs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[str]:
    """A sweep folder as the kvsim sweeper leaves one: the job list, and per job either a
    complete run (summary + marker) or, with summary None, nothing."""
    jobs = []
    for i, (config, summary) in enumerate(runs):
        job = describe_job(i, f"{i}_{config['policy']['name']}", [], config)
        if summary is not None:
            (d / job.subdir).mkdir(parents=True)
            (d / job.subdir / "summary.json").write_text(json.dumps(summary))
            (d / job.subdir / MARKER).write_text(json.dumps({"config_hash": job.config_hash}))
        jobs.append(job)
    write_jobs(d, jobs)
    return [j.subdir for j in jobs]


def tiered(policy: str, scale: float, hit: float, trace: str = "t") -> tuple[dict, dict]:
    config = {"trace": {"name": trace}, "policy": {"name": policy, "_target_": f"x.{policy}"},
              "system": {"kind": "tiered", "capacity_scale": scale}, "mode": "simulate"}
    summary = {
        "mode": "simulate", "trace": trace, "policy": policy, "capacity_scale": scale,
        "tier_capacity_blocks": {"gpu": int(10 * scale), "dram": int(100 * scale)},
        "hit_ratio": hit, "tier_hit_ratio": {"gpu": hit / 2, "dram": hit / 2},
        "ttft_p50_s": 0.1, "ttft_p99_s": 1.0 - hit, "metadata_p99_s": 2e-4, "index": "redis",
        "link_bytes": {"pcie": 2**40, "rdma": 2**39},
        "link:pcie:gpu->host": 2**39, "link:pcie:host->gpu": 2**39, "wall_time_s": 1.0,
    }
    return config, summary


def single(policy: str, cap: int, hits: int, trace: str = "t") -> tuple[dict, dict]:
    config = {"trace": {"name": trace}, "policy": {"name": policy},
              "system": {"kind": "single_tier", "capacity_blocks": cap}, "mode": "simulate"}
    summary = {"mode": "single_tier", "trace": trace, "policy": policy, "capacity_blocks": cap,
               "block_accesses": 2000, "block_hits": hits, "hit_ratio": hits / 2000}
    return config, summary


def test_gap_to_opt_per_configuration(tmp_path: Path) -> None:
    make_sweep(tmp_path, [tiered(pol, scale, hit, trace) for pol, scale, hit, trace in [
        ("lru", 1.0, 0.30, "a"), ("opt", 1.0, 0.40, "a"), ("hotness", 1.0, 0.35, "a"),
        ("lru", 2.0, 0.38, "a"), ("opt", 2.0, 0.42, "a"),
        ("lru", 1.0, 0.10, "b"), ("opt", 1.0, 0.20, "b"),
        ("lru", 4.0, 0.50, "a"),  # no OPT run at this capacity
    ]])
    df = report(tmp_path).set_index(["trace", "capacity_scale", "policy"])
    assert df.loc[("a", 1.0, "lru"), "gap_to_opt"] == pytest.approx(0.10)
    assert df.loc[("a", 1.0, "hotness"), "gap_to_opt"] == pytest.approx(0.05)
    assert df.loc[("a", 1.0, "hotness"), "gap_to_opt_rel"] == pytest.approx(0.125)
    assert df.loc[("a", 2.0, "lru"), "gap_to_opt"] == pytest.approx(0.04)
    assert df.loc[("b", 1.0, "lru"), "gap_to_opt"] == pytest.approx(0.10)  # its own trace's OPT
    assert df.loc[("a", 1.0, "opt"), "gap_to_opt"] == 0
    assert np.isnan(df.loc[("a", 4.0, "lru"), "gap_to_opt"])
    assert df.loc[("a", 1.0, "lru"), "bytes_moved"] == 1.5 * 2**40
    assert df.loc[("a", 2.0, "lru"), "capacity_total_blocks"] == 220
    csv = pd.read_csv(tmp_path / "sweep.csv")
    assert {"gap_to_opt", "tier_hit_ratio.gpu", "tier_hit_ratio.dram", "ttft_p50_s", "ttft_p99_s",
            "metadata_p99_s", "bytes_moved", "status", "error", "system.capacity_scale", "policy.name",
            "link:pcie:gpu->host"} <= set(csv.columns)
    parquet = pd.read_parquet(tmp_path / "sweep.parquet")
    assert list(parquet["job"]) == list(csv["job"]) and (parquet["status"] == "complete").all()
    for fig in ("sweep.png", "hit_ratio_ttft.png", "gap_to_opt.png", "metadata_p99.png", "link_bytes.png"):
        assert (tmp_path / fig).stat().st_size > 10_000, fig


def test_single_tier_sweeps_get_a_gap_too(tmp_path: Path) -> None:
    make_sweep(tmp_path, [single(pol, cap, hits * cap // 10) for pol, hits in (("lru", 60), ("opt", 100), ("hotness", 70))
                          for cap in (10, 20)])
    df = report(tmp_path).set_index(["capacity_blocks", "policy"])
    assert df.loc[(20, "lru"), "gap_to_opt"] == pytest.approx((200 - 120) / 2000)
    assert (tmp_path / "sweep.png").exists() and (tmp_path / "gap_to_opt.png").exists()


def test_mixed_single_tier_and_tiered_sweep_keeps_every_gap(tmp_path: Path) -> None:
    """Issue 9: a sweep mixing single-tier and tiered runs (and two traces) compares each run
    with the OPT of its own mode, capacity and trace, never NaN where that OPT exists."""
    runs = [single("lru", 10, 100, "a"), single("opt", 10, 300, "a"), single("lru", 10, 50, "b"),
            single("opt", 10, 500, "b"), tiered("lru", 1.0, 0.30, "a"), tiered("opt", 1.0, 0.45, "a")]
    make_sweep(tmp_path, runs)
    df = report(tmp_path)
    assert df["gap_to_opt"].notna().all()
    gaps = df.set_index(["config.mode" if "config.mode" in df else "mode", "trace", "policy"])["gap_to_opt"]
    assert gaps.loc[("simulate", "a", "lru")].tolist() == pytest.approx([0.10, 0.15])
    b = df[(df.trace == "b") & (df.policy == "lru")]
    assert b["gap_to_opt"].item() == pytest.approx(0.225)  # b's OPT (0.25), not a's (0.15)


def test_table_holds_exactly_the_job_list(tmp_path: Path) -> None:
    """A folder left by another sweep is not a row; a listed job whose folder holds another
    config's run is not complete; failed and missing jobs are rows with status and error."""
    names = make_sweep(tmp_path, [tiered("lru", 1.0, 0.3), tiered("opt", 1.0, 0.4), tiered("fifo", 1.0, 0.2),
                                  (tiered("arc", 1.0, 0.2)[0], None)])
    other_config, other_summary = tiered("lru", 8.0, 0.9)
    (tmp_path / "9_old_sweep_job").mkdir()
    (tmp_path / "9_old_sweep_job" / "summary.json").write_text(json.dumps(other_summary))
    (tmp_path / "9_old_sweep_job" / MARKER).write_text(json.dumps({"config_hash": "x"}))
    (tmp_path / names[2] / MARKER).write_text(json.dumps({"config_hash": "another config"}))
    jobs = json.loads((tmp_path / "sweep_jobs.json").read_text())["jobs"]
    record_failure(tmp_path, names[3], 3, jobs[3]["config_hash"], "ValueError: boom")
    df = report(tmp_path)
    assert list(df["job"]) == names
    assert list(df["status"]) == ["complete", "complete", "missing", "failed"]
    assert df.loc[3, "error"] == "ValueError: boom" and df.loc[3, "policy"] == "arc"
    assert "another config" in df.loc[2, "error"]
    assert df["hit_ratio"].max() < 0.9
    assert main([str(tmp_path)]) == 1  # a failed job: the command fails, after writing
    assert (tmp_path / "sweep.csv").is_file() and (tmp_path / "hit_ratio_ttft.png").is_file()


def test_partial_sweep_is_reported_and_is_not_an_error(tmp_path: Path) -> None:
    make_sweep(tmp_path, [tiered("lru", 1.0, 0.3), (tiered("opt", 1.0, 0.4)[0], None)])
    assert main([str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "sweep.csv")
    assert list(df["status"]) == ["complete", "missing"]


def test_without_opt_the_gap_is_missing_not_an_error(tmp_path: Path) -> None:
    make_sweep(tmp_path, [tiered("lru", 1.0, 0.3), tiered("fifo", 1.0, 0.2)])
    df = add_derived(report(tmp_path))
    assert df["gap_to_opt"].isna().all()
    assert (tmp_path / "sweep.png").exists()


def test_not_a_sweep_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "0_lru").mkdir()
    (tmp_path / "0_lru" / "summary.json").write_text("{}")
    with pytest.raises(SweepDirError, match="sweep_jobs.json"):
        report(tmp_path)
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such folder" in err
    assert not (tmp_path / "sweep.csv").exists()


def test_empty_sweep(tmp_path: Path) -> None:
    write_jobs(tmp_path, [])
    assert report(tmp_path).empty


def test_bytes_moved_counts_link_directions_not_devices_too() -> None:
    # A topology run reports each link direction and each device the same bytes pass through.
    df = pd.DataFrame({"link_bytes.pcie:gpu->dram": [100], "link_bytes.pcie:dram->gpu": [30],
                       "link_bytes.ssd": [100], "policy": ["lru"], "hit_ratio": [0.5]})
    assert add_derived(df)["bytes_moved"].iloc[0] == 130
    # Older runs name links without directions: every column is a link.
    old = pd.DataFrame({"link_bytes.pcie": [100], "link_bytes.rdma": [7],
                        "policy": ["lru"], "hit_ratio": [0.5]})
    assert add_derived(old)["bytes_moved"].iloc[0] == 107


def test_the_log_lists_the_table_sorted_and_every_job_not_complete(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Jobs written in the order (lru 2.0), (fifo 1.0), (lru 1.0), (opt 2.0, never ran): the
    table in the log is sorted by capacity then policy, with bytes_moved; the missing job is
    named; the last line counts the statuses."""
    make_sweep(tmp_path, [tiered("lru", 2.0, 0.5), tiered("fifo", 1.0, 0.2), tiered("lru", 1.0, 0.3),
                          (tiered("opt", 2.0, 0.6)[0], None)])
    with caplog.at_level("INFO", logger="kvsim"):
        report(tmp_path)
    table = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("sweep of 3 runs:"))
    header, *rows = table.splitlines()[1:]
    assert header.split()[:4] == ["trace", "policy", "capacity_scale", "hit_ratio"] and "bytes_moved" in header
    assert [r.split()[1:3] for r in rows] == [["fifo", "1.0"], ["lru", "1.0"], ["lru", "2.0"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["job 3_opt: missing"]
    last = caplog.records[-1].getMessage()
    assert last.startswith(f"sweep {tmp_path}: 3 complete, 1 missing; table {tmp_path / 'sweep.csv'} (.parquet); figures: sweep.png")


def test_summaries_without_config_columns_group_by_index(tmp_path: Path) -> None:
    """Jobs whose config names only the policy (the table has no config columns): the
    configurations come from the summaries' keys. Two indexes, same trace and capacity: two
    configurations, each with its own OPT (gaps 0.5 - 0.3 and 0.4 - 0.2)."""
    runs = []
    for ix, hits in (("redis", (0.3, 0.5)), ("sherman", (0.2, 0.4))):
        for pol, h in zip(("lru", "opt"), hits, strict=True):
            _, summary = tiered(pol, 1.0, h)
            runs.append(({"policy": {"name": pol}}, {**summary, "index": ix}))
    make_sweep(tmp_path, runs)
    df = add_derived(report(tmp_path))
    lru = df[df["policy"] == "lru"].set_index("index")
    assert lru.loc["redis", "gap_to_opt"] == pytest.approx(0.2) and lru.loc["sherman", "gap_to_opt"] == pytest.approx(0.2)


# --- which columns name a configuration (each configuration has its own OPT) ------------------

def _two_configurations(key: str) -> pd.DataFrame:
    """lru and opt in two configurations that differ in ``key`` only (values 1 and 2), with a
    policy parameter that differs between the policies (never a configuration key)."""
    return pd.DataFrame({"policy": ["lru", "opt", "lru", "opt"], key: [1, 1, 2, 2],
                         "policy.alpha": [0.5, None, 0.5, None], "hit_ratio": [0.1, 0.4, 0.2, 0.3]})


@pytest.mark.parametrize("key", ["trace.name", "system.capacity_scale", "model.name", "gpu.name", "index.name",
                                 "calibration.rtt_us", "experiment.name", "config.mode", "seed"])
def test_each_config_key_names_a_configuration(key: str) -> None:
    df = add_derived(_two_configurations(key))
    assert list(df["opt_hit_ratio"]) == [0.4, 0.4, 0.3, 0.3]
    assert list(df["gap_to_opt"]) == pytest.approx([0.3, 0.0, 0.1, 0.0])
    assert list(df["gap_to_opt_rel"]) == pytest.approx([0.75, 0.0, 1 / 3, 0.0])


@pytest.mark.parametrize("key", ["trace", "mode", "model", "gpu", "index", "capacity_scale", "capacity_blocks",
                                 "tier_capacity_blocks.gpu"])
def test_without_config_columns_each_summary_key_names_a_configuration(key: str) -> None:
    df = add_derived(_two_configurations(key).drop(columns="policy.alpha"))
    assert list(df["gap_to_opt"]) == pytest.approx([0.3, 0.0, 0.1, 0.0])


def test_with_config_columns_the_summary_keys_do_not_count() -> None:
    """The config names the configuration when the table has it: two indexes in the summaries
    but one in the config are one configuration (OPT's best: 0.4)."""
    df = _two_configurations("index").assign(**{"trace.name": "t"})
    assert list(add_derived(df)["opt_hit_ratio"]) == [0.4] * 4


def test_without_any_key_every_run_is_compared_with_the_best_opt() -> None:
    df = pd.DataFrame({"policy": ["lru", "opt", "opt"], "hit_ratio": [0.1, 0.3, 0.5], "other": [1, 2, 3]})
    assert list(add_derived(df)["gap_to_opt"]) == pytest.approx([0.4, 0.2, 0.0])


def test_derived_columns_by_hand() -> None:
    """Capacity: the tiers' sum (else capacity_blocks); bytes: a NaN link counts 0; the
    relative gap is NaN where OPT hits nothing; no policy column: no gap."""
    df = pd.DataFrame({"policy": ["lru", "opt", "lru", "opt"], "tier_capacity_blocks.gpu": [1, 1, 4, 4],
                       "tier_capacity_blocks.dram": [10, 10, 40, 40], "hit_ratio": [0.0, 0.0, 0.1, 0.2],
                       "link_bytes.a": [5, np.nan, 1, 2], "link_bytes.b": [1, 2, np.nan, 3]})
    out = add_derived(df)
    assert list(out["capacity_total_blocks"]) == [11, 11, 44, 44]
    assert list(out["bytes_moved"]) == [6, 2, 1, 5]
    assert list(out["gap_to_opt"]) == pytest.approx([0, 0, 0.1, 0])
    assert np.isnan(out["gap_to_opt_rel"].iloc[0]) and out["gap_to_opt_rel"].iloc[2] == pytest.approx(0.5)
    single = add_derived(pd.DataFrame({"capacity_blocks": [7], "hit_ratio": [0.5]}))
    assert single["capacity_total_blocks"].item() == 7 and np.isnan(single["gap_to_opt"].item())
    assert "bytes_moved" not in single and "capacity_total_blocks" not in add_derived(pd.DataFrame({"x": [1]}))
    assert np.isnan(add_derived(pd.DataFrame({"policy": ["opt"]}))["gap_to_opt"].item())  # no hit ratio


# --- gathering, the log, the command, the callback ------------------------------------------------

def test_an_unreadable_summary_is_a_failed_row_and_a_config_key_named_like_a_metric_is_kept(tmp_path: Path) -> None:
    names = make_sweep(tmp_path, [tiered("lru", 1.0, 0.3), tiered("opt", 1.0, 0.4), tiered("fifo", 1.0, 0.2)])
    (tmp_path / names[1] / "summary.json").write_text("{not json")
    (tmp_path / names[2] / "summary.json").unlink()
    (tmp_path / names[2] / "summary.json").mkdir()  # unreadable as a file (an OSError)
    df = gather(tmp_path)
    assert list(df["status"]) == ["complete", "failed", "failed"]
    for i in (1, 2):
        assert df.loc[i, "error"].startswith(f"{tmp_path / names[i] / 'summary.json'}: unreadable summary (")
    # the job's config says mode "simulate", its summary "simulate" too: the summary's stays,
    # the config's is config.mode; a failed job keeps its config's value under its own name
    assert df.loc[0, "mode"] == "simulate" and df.loc[0, "config.mode"] == "simulate"
    assert df.loc[1, "mode"] == "simulate" and df.loc[1, "trace"] == "t" and df.loc[1, "capacity_scale"] == 1.0
    assert df.loc[0, "tier_hit_ratio.gpu"] == 0.15  # nested summary keys flattened


def test_the_log_of_a_sweep_by_hand(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    names = make_sweep(tmp_path, [tiered("opt", 2.0, 0.6, "b"), tiered("lru", 2.0, 0.5, "a"),
                                  tiered("lru", 1.0, 0.3, "b"), tiered("fifo", 1.0, 0.2, "a")])
    jobs = json.loads((tmp_path / "sweep_jobs.json").read_text())["jobs"]
    record_failure(tmp_path, names[2], 2, jobs[2]["config_hash"], "ValueError: boom")
    (tmp_path / names[2] / "summary.json").unlink()
    (tmp_path / names[2] / MARKER).unlink()
    with caplog.at_level("INFO", logger="kvsim"):
        report(tmp_path)
    msgs = [(r.levelname, r.getMessage()) for r in caplog.records]
    table = msgs[0][1].splitlines()
    assert msgs[0][0] == "INFO" and table[0] == "sweep of 3 runs:"
    assert table[1].split() == ["trace", "policy", "capacity_scale", "hit_ratio", "gap_to_opt", "ttft_p50_s",
                                "ttft_p99_s", "metadata_p99_s", "bytes_moved"]
    assert [r.split()[:3] for r in table[2:]] == [["a", "fifo", "1.0"], ["a", "lru", "2.0"], ["b", "opt", "2.0"]]
    assert msgs[1] == ("WARNING", "job 2_lru: failed: ValueError: boom")
    assert msgs[2] == ("INFO", f"sweep {tmp_path}: 3 complete, 1 failed; table {tmp_path / 'sweep.csv'} (.parquet); "
                               "figures: sweep.png, hit_ratio_ttft.png, metadata_p99.png, link_bytes.png")  # no gap: no OPT beside another policy
    assert len(msgs) == 3


def test_the_log_of_a_sweep_with_nothing_complete(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_sweep(tmp_path, [(tiered("lru", 1.0, 0.3)[0], None)])
    with caplog.at_level("INFO", logger="kvsim"):
        df = report(tmp_path)
    assert list(df["status"]) == ["missing"]
    assert [r.getMessage() for r in caplog.records] == [
        "job 0_lru: missing", f"sweep {tmp_path}: 1 missing; table {tmp_path / 'sweep.csv'} (.parquet); figures: none"]
    write_jobs(tmp_path, [])
    caplog.clear()
    with caplog.at_level("INFO", logger="kvsim"):
        report(tmp_path)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("WARNING", f"sweep {tmp_path} lists no jobs")]


def test_mixed_types_are_written_as_text(tmp_path: Path) -> None:
    """A column that is null in one job, a number in another, and a string in a third (or
    holds lists) is written as text, nulls kept; text-only and numeric columns as they are."""
    from kvsim.report.sweep import _to_parquet

    df = pd.DataFrame({"mixed": ["x", 3, None, np.nan], "nested": [[1], None, None, None],
                       "text": ["a", None, "b", "c"], "num": [1.0, 2.0, None, 4.0]})
    _to_parquet(df, tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert [None if pd.isna(v) else v for v in back["mixed"]] == ["x", "3", None, None]
    assert [None if pd.isna(v) else v for v in back["nested"]] == ["[1]", None, None, None]
    assert [None if pd.isna(v) else v for v in back["text"]] == ["a", None, "b", "c"]
    assert back["num"].dtype == np.float64
    assert df["mixed"].tolist()[1] == 3  # the caller's table is not changed


def test_main_usage_and_logging(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    for argv in ([], ["-h"], ["a", "b"]):
        assert main(argv) == 2
        assert capsys.readouterr().err == "usage: python -m kvsim.report SWEEP_DIR\n"
    monkeypatch.setattr(logging.root, "handlers", [])  # as in a fresh process: main configures the log
    monkeypatch.setattr(logging.root, "level", logging.WARNING)
    make_sweep(tmp_path, [(tiered("lru", 1.0, 0.3)[0], None)])
    monkeypatch.setattr("sys.argv", ["kvsim.report", str(tmp_path)])
    assert main() == 0  # a missing job is not an error
    (handler,) = logging.root.handlers
    assert logging.root.level == logging.INFO and handler.formatter is not None
    assert handler.formatter._fmt == "%(message)s"
    write_jobs(tmp_path, [])
    assert main([str(tmp_path)]) == 0  # no jobs


def test_the_log_of_a_single_tier_sweep_sorts_by_capacity(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from kvsim.report import sweep, sweep_figures

    monkeypatch.setattr(sweep, "plot_sweep", lambda df, path: None)  # the table only
    monkeypatch.setattr(sweep_figures, "standard_figures", lambda df, out: [])
    make_sweep(tmp_path, [single("lru", 20, 300), single("opt", 10, 200), single("lru", 10, 100)])
    with caplog.at_level("INFO", logger="kvsim"):
        report(tmp_path)
    header, *rows = caplog.records[0].getMessage().splitlines()[1:]
    assert header.split() == ["trace", "policy", "capacity_blocks", "hit_ratio", "gap_to_opt"]
    assert [r.split()[1:3] for r in rows] == [["lru", "10"], ["opt", "10"], ["lru", "20"]]


KEEP_REGISTRY = """
import kvsim.config
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from omegaconf.basecontainer import BaseContainer
from kvsim.sweepjobs import keep_plugin_registry
first = Plugins.instance()
state = Singleton.get_state()
Singleton.set_state(state)
hydras = Plugins.instance() is not first  # Hydra's set_state scans again
keep_plugin_registry(); keep_plugin_registry()
kept = Plugins.instance()
state = Singleton.get_state()
Singleton.set_state(state)
same = Plugins.instance() is kept
# the rest is the state's, as Hydra sets it
cs = [v for k, v in Singleton._instances.items() if k.__name__ == "ConfigStore"][0]
theirs = [v for k, v in state["instances"].items() if k.__name__ == "ConfigStore"][0]
print(hydras, same, cs is theirs, BaseContainer._resolvers.keys() == state["omegaconf_resolvers"].keys())
"""


def test_a_worker_keeps_hydras_plugin_registry_between_jobs() -> None:
    """keep_plugin_registry: the joblib launcher sets Hydra's singletons before each job,
    and Hydra scans the plugins again each time (about 0.05 s a job); with it, a worker
    keeps its registry and takes everything else from the job's state."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", KEEP_REGISTRY], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["True", "True", "True", "True"]
