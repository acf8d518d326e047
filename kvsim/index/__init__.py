"""Metadata index models: each operation on a real structure yields a cost recipe."""

from kvsim.index.base import IndexModel, Op, OpRecorder
from kvsim.index.redis import RedisIndex
from kvsim.index.runs import split_runs

__all__ = ["IndexModel", "Op", "OpRecorder", "RedisIndex", "split_runs"]
