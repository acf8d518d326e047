"""Benchmarks that replay a trace against parts of the system (``+experiment=metadata_bench``)."""
