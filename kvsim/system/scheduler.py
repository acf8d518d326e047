"""Which chunks of which waiting requests an instance computes in its next iteration.

Each prefill instance runs one SimPy process, an iteration loop (kvsim.system.cluster):
take a batch from its queue (requests in arrival order), compute it, repeat. The scheduler
picks the batch:

    fcfs      the first request, its whole prefill in one iteration (one request at a time)
    chunked   continuous batching with chunked prefill (vLLM, SGLang, Sarathi-Serve):
              budget = max_batch_tokens
              for r in queue (arrival order; a request already started is ahead of the rest):
                  take = min(r's tokens still to compute, chunk_tokens, budget)
                  if take == 0: stop;  add (r, take) to the batch;  budget -= take

A request's prefill ends with the iteration that computes its last chunk; the iteration
time is the compute model applied to the batch (kvsim.system.compute: every chunk's FLOPs
with the tokens before it as attention context), plus what its loads expose.

``QueueHooks`` is where a policy may learn which blocks waiting requests will need
(``enqueued``: a request entered an instance's waiting queue; ``started``: its first chunk
was scheduled) -- a lookahead policy keeps those blocks and may prefetch them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from kvsim.ranges import OneOf, PosInt

KINDS = ("fcfs", "chunked")


class Queued(Protocol):
    remaining: int  # tokens still to compute


class Scheduler:
    """Batch selection of one kind (``fcfs`` or ``chunked``); shared by all instances."""

    def __init__(
        self, name: Annotated[str, OneOf(*KINDS)] = "chunked", max_batch_tokens: PosInt = 8192, chunk_tokens: PosInt = 8192
    ) -> None:
        if name not in KINDS:
            raise ValueError(f"scheduler.name: {name!r} is not one of {list(KINDS)}")
        if max_batch_tokens < 1:
            raise ValueError(f"scheduler.max_batch_tokens: must be >= 1, got {max_batch_tokens}")
        if chunk_tokens < 1:
            raise ValueError(f"scheduler.chunk_tokens: must be >= 1, got {chunk_tokens}")
        self.name = name
        self.max_batch_tokens = int(max_batch_tokens)
        self.chunk_tokens = int(chunk_tokens)
        self.chunked = name == "chunked"

    def batch(self, queue: Sequence[Queued]) -> list[tuple[Any, int]]:
        """``(request, tokens)`` to compute in the next iteration (``queue`` not empty)."""
        if not self.chunked:
            r = queue[0]
            return [(r, r.remaining)]
        budget = self.max_batch_tokens
        chunk = self.chunk_tokens
        out = []
        for r in queue:
            take = r.remaining
            if take > chunk:
                take = chunk
            if take > budget:
                take = budget
            out.append((r, take))
            budget -= take
            if budget <= 0:
                break
        return out


class QueueHooks:
    """No-op hooks; a policy that looks ahead overrides them."""

    def enqueued(self, instance: int, blocks: Sequence[int], now: float) -> None:
        return None

    def started(self, instance: int, blocks: Sequence[int], now: float) -> None:
        return None
