"""Routers: which prefill instance serves a request (``router=``), decided at its arrival.

    round_robin    instance i mod N for the i-th request
    least_loaded   the instance with the fewest tokens assigned and not yet computed
                   (ties: the lowest index)
    cache_aware    among the instances whose load is within ``balance_tokens`` of the least
                   loaded one, the one holding the longest prefix of the request in its own
                   GPU tier, then (for equal GPU prefixes) in its GPU tier and its host's
                   DRAM together, ties to the least loaded: the idea of Mooncake's Conductor
                   and llm-d's precise prefix-cache routing (the router sees the tiers'
                   contents). The load guard is SGLang's router's: without it every request
                   goes to the first instance that cached the shared system-prompt block and
                   the others idle (``balance_tokens: null`` turns it off).

A router is built from its config (``_target_``), then bound to the instances' load counters
and the hierarchy's views by the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Protocol

from kvsim.ranges import NonNegInt


class Loaded(Protocol):
    @property
    def load_tokens(self) -> int: ...


class Router:
    name = "base"

    def __init__(self) -> None:
        self.instances: Sequence[Loaded] = ()
        self.local: list[list[Container[int]]] = []
        self.runs: Callable[[Sequence[int]], list[tuple[int, int]]] | None = None

    def bind(self, instances: Sequence[Loaded], local_tiers: list[list[Container[int]]],
             runs: Callable[[Sequence[int]], list[tuple[int, int]]] | None = None) -> None:
        """``local_tiers[i]``: the block containers of instance i's GPU tier and host DRAM
        tier; ``runs`` (optional): for a request's blocks, every instance's ``(g, d)`` as
        :class:`CacheAware` counts them from those containers, in one call (the hierarchy's
        compiled table gives it: written for speed)."""
        self.instances = instances
        self.local = local_tiers
        self.runs = runs

    def pick(self, blocks: Sequence[int]) -> int:
        raise NotImplementedError


class RoundRobin(Router):
    name = "round_robin"

    def __init__(self) -> None:
        super().__init__()
        self._next = 0

    def pick(self, blocks: Sequence[int]) -> int:
        i = self._next
        self._next = (i + 1) % len(self.instances)
        return i


class LeastLoaded(Router):
    name = "least_loaded"

    def pick(self, blocks: Sequence[int]) -> int:
        best, load = 0, None
        for i, inst in enumerate(self.instances):
            x = inst.load_tokens
            if load is None or x < load:
                best, load = i, x
        return best


class CacheAware(Router):
    name = "cache_aware"

    def __init__(self, balance_tokens: NonNegInt | None = 16384) -> None:
        super().__init__()
        if balance_tokens is not None and balance_tokens < 0:
            raise ValueError(f"router.balance_tokens: must be >= 0 or null, got {balance_tokens}")
        self.balance_tokens = balance_tokens

    def pick(self, blocks: Sequence[int]) -> int:
        best = 0
        key: tuple[int, int, int] | None = None
        loads = [inst.load_tokens for inst in self.instances]
        bound = min(loads) + self.balance_tokens if self.balance_tokens is not None else None
        runs = self.runs(blocks) if self.runs is not None else None
        for i, load in enumerate(loads):
            if bound is not None and load > bound:
                continue
            g, d = runs[i] if runs is not None else self.local_runs(i, blocks)
            k = (g, d, -load)
            if key is None or k > key:
                best, key = i, k
        return best

    def local_runs(self, i: int, blocks: Sequence[int]) -> tuple[int, int]:
        """Instance i's ``(g, d)``: the leading blocks its GPU tier holds, and the run
        continued through its GPU and DRAM tiers together."""
        tiers = self.local[i]
        gpu = tiers[0]
        g = 0
        for b in blocks:
            if b not in gpu:
                break
            g += 1
        d = g
        if len(tiers) > 1:
            dram = tiers[1]
            for b in blocks[g:]:
                if b not in dram and b not in gpu:
                    break
                d += 1
        return g, d
