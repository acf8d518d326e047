"""Metadata index models: each operation on a real structure yields a cost recipe.

One file per model: ``redis`` (the study's baseline), ``mooncake`` (Mooncake Store's
master), ``sherman`` and ``chime`` (RDMA B+trees over :mod:`kvsim.index.btree`),
``radix`` (a node-local radix tree) and ``extent`` (our workload-aware index).
"""

from kvsim.index.base import IndexModel, Op, OpRecorder
from kvsim.index.chime import ChimeIndex
from kvsim.index.extent import ExtentIndex
from kvsim.index.mooncake import MooncakeMasterIndex
from kvsim.index.radix import RadixTreeIndex
from kvsim.index.redis import RedisIndex
from kvsim.index.runs import split_runs
from kvsim.index.sherman import ShermanIndex

__all__ = [
    "ChimeIndex",
    "ExtentIndex",
    "IndexModel",
    "MooncakeMasterIndex",
    "Op",
    "OpRecorder",
    "RadixTreeIndex",
    "RedisIndex",
    "ShermanIndex",
    "split_runs",
]
