"""Time the trace analysis (statistics, tables, figures) on the real conversation trace.

    python benchmarks/bench_analysis.py [--trace FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from kvsim.analysis.run import AnalysisSettings, analyze_to_dir
from kvsim.report.trace_report import report_trace_analysis
from kvsim.trace.mooncake import read_mooncake_jsonl

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = os.environ.get(
    "KVSIM_REAL_TRACE", str(ROOT.parent / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl")
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=DEFAULT_TRACE)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not Path(args.trace).is_file():
        print(f"trace not found: {args.trace} (set KVSIM_REAL_TRACE or --trace)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="kvsim-analysis-"))
    t0 = time.perf_counter()
    trace = read_mooncake_jsonl(args.trace)
    read_s = time.perf_counter() - t0
    analyze_to_dir(trace, out, AnalysisSettings(), read_s=read_s)
    s = report_trace_analysis(out)
    wall = time.perf_counter() - t0
    print(f"{len(trace):,} requests, {trace.num_block_accesses:,} block accesses -> {out}")
    print(f"analysis wall time {wall:.2f} s (read {read_s:.2f} s); steps: {s.get('timing_s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
