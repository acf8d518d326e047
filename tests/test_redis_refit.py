"""kvsim.bench.redis_refit: a captured Redis validation simulated again."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kvsim.app import run
from kvsim.bench.redis_refit import main, parse_sets
from kvsim.errors import InputFileError, UserError

from .conftest import require_resource


def test_parse_sets() -> None:
    """Python literals (numbers PyYAML would read as strings, nested lists), YAML where
    Python has none (null, true); a key that is not the model's, or no '=', is one error."""
    got = parse_sets(["turn_extra_s=1e-3", "idle_knots=[[0.03, 0], [0.3, 4e-6]]", "pipeline=true", "connections=null"])
    assert got == {"turn_extra_s": 1e-3, "idle_knots": [[0.03, 0], [0.3, 4e-6]], "pipeline": True, "connections": None}
    with pytest.raises(UserError, match="--set bogus: not a parameter of the Redis model"):
        parse_sets(["bogus=1"])
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_sets(["turn_extra_s"])


def test_a_captured_run_simulated_again(compose_cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A small run against a real redis-server with experiment.capture: simulated again
    without changes, the run's own table (seeded); a millisecond more per warm server turn
    set over the fitted model moves the simulated p99s and leaves the measured ones; a
    folder without a capture is a one-line error."""
    require_resource("KVSIM_REQUIRE_REDIS")
    cfg = compose_cfg(["+experiment=redis_validation", "experiment.speedups=[100,1000]", "experiment.requests=[12,30]",
                       "experiment.preload_keys=2000", "experiment.calibrate_requests=200", "experiment.large_sizes=[]",
                       "experiment.sim_runs=1", "experiment.idle_gaps_s=[0.01,0.05]", "experiment.idle_samples=6",
                       "experiment.idle_seconds=0.3", "figures=false", "experiment.capture=true"])
    run(cfg, tmp_path)
    table = pd.read_csv(tmp_path / "redis_validation.csv")
    assert main([str(tmp_path), "--out", str(tmp_path / "same.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "same.csv"), table, rtol=1e-12)
    assert main([str(tmp_path), "--set", "turn_extra_s=1e-3", "--out", str(tmp_path / "dear.csv")]) == 0
    dear = pd.read_csv(tmp_path / "dear.csv")
    assert (dear["real_p50_s"] == table["real_p50_s"]).all() and (dear["sim_p99_s"] > table["sim_p99_s"] + 5e-4).any()
    with pytest.raises(InputFileError, match="redis_validation_replays.pkl: not found"):
        main([str(tmp_path / "nowhere")])
