"""Per-tier eviction and placement policies: one algorithm per file, each docstring states it
as pseudo-code. ``conf/policy/<name>.yaml`` makes each one a command-line choice."""

from kvsim.policy.arc import ARC
from kvsim.policy.base import EvictionPolicy
from kvsim.policy.fifo import FIFO
from kvsim.policy.hotness import Hotness
from kvsim.policy.lfu import LFU
from kvsim.policy.lookahead import LookAhead
from kvsim.policy.lru import LRU
from kvsim.policy.opt import OPT
from kvsim.policy.prefix_lru import PrefixLRU
from kvsim.policy.s3fifo import S3FIFO

__all__ = ["ARC", "FIFO", "LFU", "LRU", "OPT", "S3FIFO", "EvictionPolicy", "Hotness", "LookAhead", "PrefixLRU"]
