"""Per-tier eviction policies: one algorithm per file, each docstring states it as pseudo-code."""

from kvsim.policy.base import EvictionPolicy
from kvsim.policy.fifo import FIFO
from kvsim.policy.lfu import LFU
from kvsim.policy.lru import LRU

__all__ = ["FIFO", "LFU", "LRU", "EvictionPolicy"]
