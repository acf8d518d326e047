"""Traces: one canonical columnar schema, readers per format, and a generator."""

from kvsim.trace.schema import Trace, TraceFormatError
from kvsim.trace.mooncake import read_mooncake_jsonl, write_mooncake_jsonl

__all__ = ["Trace", "TraceFormatError", "read_mooncake_jsonl", "write_mooncake_jsonl"]
