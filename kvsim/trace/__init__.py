"""Traces: one canonical columnar schema, readers per format, and a generator."""

from kvsim.trace.mooncake import read_mooncake_jsonl, write_mooncake_jsonl
from kvsim.trace.schema import Trace, TraceFormatError

__all__ = ["Trace", "TraceFormatError", "read_mooncake_jsonl", "write_mooncake_jsonl"]
