"""Settings of the trace analysis (``mode: trace_analysis``): the experiment's schema and
its defaults, written only here (a light module: checking a config does not import pandas)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from kvsim.ranges import NonNegInt, OneOf, PosInt, Range


@dataclass
class TraceAnalysisSettings:
    """``experiment.*`` of ``+experiment=trace_analysis`` (its defaults: here, once)."""

    runs_min_n: Annotated[int, Range(ge=2)] = 2  # requests with fewer scattered ids are not tested
    runs_alpha: Annotated[float, Range(gt=0, lt=1)] = 0.05
    runs_exact_below: NonNegInt = 50  # exact runs distribution below this many ids, normal above
    lru_points: PosInt = 200  # log-spaced capacities written to lru_curve.csv
    # conversation | toolagent | synthetic | none | auto (from the file name)
    study_trace: Annotated[str, OneOf("auto", "conversation", "toolagent", "synthetic", "none")] = "auto"
