"""The metadata benchmark: its outputs on the embedded trace, and the study's headline on
the real conversation trace (Redis p99 above both RDMA indexes for gets and ranges)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kvsim.bench.metadata import SUMMARY_COLUMNS
from kvsim.modes import metadata_bench as run_metadata_bench

ALL = {"redis", "mooncake", "sherman", "chime", "radix", "extent"}


def test_bench_writes_its_tables_and_figure(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_cfg(
        [
            "+experiment=metadata_bench",
            "trace.max_requests=600",
            "experiment.key_order_indexes=[sherman]",
            "experiment.interval_s=30",
            "experiment.warmup_s=0",
        ]
    )
    summary = run_metadata_bench(cfg, tmp_path)
    s = pd.read_csv(tmp_path / "metadata_summary.csv")
    assert list(s.columns[: len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert ALL <= set(s["index"])
    assert set(s["op"]) <= {"get", "range", "insert", "delete"}
    assert {"get", "range", "insert"} <= set(s[s["index"] == "sherman"]["op"])
    ops = pd.read_parquet(tmp_path / "metadata_ops.parquet")
    assert {"index", "op", "time_s", "latency_s", "round_trips", "bytes"} <= set(ops.columns)
    assert (ops["latency_s"] > 0).all()
    assert (tmp_path / "fig3_p99_normalized.png").stat().st_size > 10_000
    # drawn by the edge from the saved tables, and recorded in the summary it rewrote
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["figure"] == summary["figure"] == str(tmp_path / "fig3_p99_normalized.png")
    ko = pd.read_csv(tmp_path / "metadata_key_order.csv")
    assert set(ko["key_order"]) == {"remapped", "hashed"}
    norm = pd.read_csv(tmp_path / "metadata_normalized.csv")
    assert (norm[norm["index"] == "redis"]["mean_normalized_p99"] == 1.0).all()
    assert "sherman_vs_chime_range_pct" in summary
    assert (tmp_path / "summary.json").is_file()


def test_capacity_bound_issues_deletes_and_cache_sweep(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_cfg(
        [
            "+experiment=index_cache_sweep",
            "trace.max_requests=300",
            "experiment.capacity_blocks=500",
            "experiment.warmup_s=0",
            "experiment.cache_sweep.indexes=[sherman,extent]",
            "experiment.cache_sweep.cache_bytes=[0,1048576]",
            "+experiment.parts=[bench,cache_sweep]",
            "+experiment.indexes=[sherman,chime]",
        ]
    )
    run_metadata_bench(cfg, tmp_path)
    s = pd.read_csv(tmp_path / "metadata_summary.csv")
    assert "delete" in set(s["op"])
    sweep = pd.read_csv(tmp_path / "metadata_cache_sweep.csv")
    assert len(sweep) == 4
    for name in ("sherman", "extent"):
        g = sweep[sweep["index"] == name].sort_values("cache_bytes")
        assert g["cache_hit_ratio"].iloc[0] == 0.0 < g["cache_hit_ratio"].iloc[1]
    assert (tmp_path / "metadata_cache_sweep.png").is_file()


def test_unknown_setting_fails(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kvsim.app import run
    from kvsim.errors import ConfigError

    cfg = compose_cfg(["+experiment=metadata_bench", "+experiment.intervals=5"])
    with pytest.raises(ConfigError, match="experiment.intervals: unknown key; did you mean 'interval_s'"):
        run(cfg, tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.real_trace
def test_real_trace_redis_p99_above_both_rdma_indexes(compose_cfg, real_trace_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_cfg(
        [
            "+experiment=metadata_bench",
            "trace=mooncake_conversation",
            f"trace.path={real_trace_path}",
            "experiment.parts=[bench]",
            "experiment.indexes=[redis,sherman,chime]",
            "experiment.variants.extent_nocache=null",
            "figures=false",
        ]
    )
    summary = run_metadata_bench(cfg, tmp_path)
    s = pd.read_csv(tmp_path / "metadata_summary.csv").set_index(["index", "op"])
    for kind in ("get", "range"):
        for rdma in ("sherman", "chime"):
            assert s.loc[("redis", kind), "p99_s"] > s.loc[(rdma, kind), "p99_s"]
            assert s.loc[("redis", kind), "p99_after_warmup_s"] > s.loc[(rdma, kind), "p99_after_warmup_s"]
    # the model's explanation of Sherman vs CHIME: a CHIME range reads whole hopscotch
    # leaves (more bytes), a CHIME get one neighborhood (fewer bytes); one round trip each
    assert s.loc[("chime", "range"), "bytes_per_op"] > s.loc[("sherman", "range"), "bytes_per_op"]
    assert s.loc[("chime", "get"), "bytes_per_op"] < s.loc[("sherman", "get"), "bytes_per_op"]
    for name in ("sherman", "chime"):  # one round trip, and a traversal when a copy was stale
        assert 1.0 <= s.loc[(name, "get"), "round_trips_per_op"] <= 1.1
        assert summary["index_stats"][name]["stale_cache_hits"] > 0  # client.sharers = 1
    # write concurrency: inserts meet at the rightmost leaves (remapped keys); Sherman waits
    # locally (no CAS retries), CHIME spins on the remote lock word
    assert s.loc[("sherman", "insert"), "lock_wait_p99_s"] > 0 and s.loc[("sherman", "insert"), "cas_retries_per_op"] == 0
    assert s.loc[("chime", "insert"), "cas_retries_per_op"] > 1 and s.loc[("chime", "insert"), "lock_wait_p99_s"] > 0
    assert (s.loc[("redis", "insert"), "lock_wait_p99_s"], s.loc[("redis", "get"), "cas_retries_per_op"]) == (0, 0)
    assert summary["requests"] == 12031


def test_gather_a_multirun_over_index_models(tmp_path: Path) -> None:
    from kvsim.bench.metadata import gather

    from .conftest import run_sweep_in_process

    run_sweep_in_process(tmp_path, [
        ["+experiment=metadata_bench", f"index={name}", "trace.max_requests=300", "experiment.parts=[bench]",
         "experiment.indexes=null", "experiment.variants.extent_nocache=null", "experiment.warmup_s=0",
         "figures=false"]
        for name in ("redis", "sherman")
    ])
    (tmp_path / "9_not_this_sweeps").mkdir()  # a folder the job list does not name is not gathered
    (tmp_path / "9_not_this_sweeps" / "metadata_ops.parquet").write_text("not a parquet file")
    head = gather(tmp_path)
    s = pd.read_csv(tmp_path / "metadata_summary.csv")
    assert set(s["index"]) == {"redis", "sherman"}
    assert head["mean_normalized_p99"]["redis.get"] == 1.0
    assert 0 < head["mean_normalized_p99"]["sherman.get"] < 1
    assert (tmp_path / "fig3_p99_normalized.png").is_file()


def test_trace_shorter_than_one_interval_still_draws(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every op in one interval: the figure's title has no step between intervals to show."""
    cfg = compose_cfg(["+experiment=metadata_bench", "trace.max_requests=20", "experiment.parts=[bench]",
                       "experiment.indexes=[redis,sherman]", "experiment.interval_s=100000"])
    run_metadata_bench(cfg, tmp_path)
    assert pd.read_csv(tmp_path / "metadata_intervals.csv")["bin_s"].nunique() == 1
    assert (tmp_path / "fig3_p99_normalized.png").stat().st_size > 10_000


@pytest.mark.parametrize("name", ["redis", "sherman", "extent"])
def test_the_untimed_preload_leaves_every_block_indexed(compose_cfg, embedded_trace, name) -> None:  # type: ignore[no-untyped-def]
    """The one untimed pass (the bench's ``preload`` and the random-gets part): every block
    of the trace is in the index afterwards, listed once in first-use order, nothing recorded."""
    import numpy as np

    from kvsim.bench.metadata import preload_trace
    from kvsim.index.base import OpRecorder
    from kvsim.modes import ConfigIndexes

    trace = embedded_trace.head(200)
    index = ConfigIndexes(compose_cfg(["+experiment=metadata_bench"])).build(name, {})
    index.recorder = rec = OpRecorder()
    got = preload_trace(trace, index)
    _, first = np.unique(trace.hash_ids, return_index=True)
    assert got == trace.hash_ids[np.sort(first)].tolist()
    assert all(index.contains(b) for b in got)
    assert len(rec.to_frame(name)) == 0
