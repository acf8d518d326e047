"""Trace analysis: KV-cache block access patterns of a trace (issue 3).

* :mod:`kvsim.analysis.stats`          every statistic, pure numpy on a Trace
* :mod:`kvsim.analysis.stack_distance` exact one-pass LRU stack distances
* :mod:`kvsim.analysis.runs_test`      the Wald–Wolfowitz runs test (exact and normal)
* figures and report.md: :mod:`kvsim.report.trace_figures`, :mod:`kvsim.report.trace_report`
* :mod:`kvsim.analysis.run`            the ``trace_analysis`` mode and :func:`analyze_to_dir`
"""
