"""Trace analysis: KV-cache block access patterns of a trace (issue 3).

* :mod:`kvsim.analysis.stats`          every statistic, pure numpy on a Trace
* :mod:`kvsim.analysis.stack_distance` exact one-pass LRU stack distances
* :mod:`kvsim.analysis.runs_test`      the Wald–Wolfowitz runs test (exact and normal)
* :mod:`kvsim.analysis.figures`        figures drawn from a run directory's saved files
* :mod:`kvsim.analysis.report`         report.md beside the study's numbers
* :mod:`kvsim.analysis.run`            the ``trace_analysis`` mode and :func:`analyze_to_dir`
"""
