"""The canonical in-memory trace: numpy columns with CSR offsets for the block ids.

Every reader produces a :class:`Trace`; everything downstream (workload, simulator,
analysis) reads only this. Columnar so that a one-hour trace of 288k block accesses
takes a few MB and per-request slices are O(1) views.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kvsim.errors import UserError


class TraceFormatError(UserError, ValueError):
    """A trace file is malformed; the message names the file, the line and the field."""

    def __init__(self, path: str | Path, line: int, field_name: str, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field_name
        self.problem = problem
        super().__init__(f"{self.path}:{line}: field '{field_name}': {problem}")


@dataclass(frozen=True)
class Trace:
    """A request trace in columnar form.

    ``hash_ids[offsets[i]:offsets[i+1]]`` are the prefix-block ids of request ``i``.
    Timestamps are seconds from the start of the trace, non-decreasing.
    """

    arrival_s: np.ndarray  # float64, shape (n,)
    input_tokens: np.ndarray  # int64, shape (n,)
    output_tokens: np.ndarray  # int64, shape (n,)
    offsets: np.ndarray  # int64, shape (n+1,)
    hash_ids: np.ndarray  # int64, shape (offsets[-1],)
    block_tokens: int = 512
    name: str = "trace"
    source: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    # Optional per-request columns (None: the format has none). Agentic sessions give the
    # session index and the TTFT / API time measured on the real service (NaN where absent).
    session: np.ndarray | None = None  # int64
    real_ttft_s: np.ndarray | None = None  # float64
    real_api_time_s: np.ndarray | None = None  # float64

    OPTIONAL_COLUMNS = ("session", "real_ttft_s", "real_api_time_s")

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if not (len(self.input_tokens) == len(self.output_tokens) == n):
            raise ValueError("trace columns have different lengths")
        for c in self.OPTIONAL_COLUMNS:
            col = getattr(self, c)
            if col is not None and len(col) != n:
                raise ValueError(f"trace column {c} has {len(col)} rows, not {n}")
        if len(self.offsets) != n + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.hash_ids):
            raise ValueError("trace offsets do not match hash_ids")

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def num_requests(self) -> int:
        return len(self.arrival_s)

    @property
    def num_block_accesses(self) -> int:
        return int(self.offsets[-1])

    @property
    def blocks_per_request(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def span_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) else 0.0

    def blocks(self, i: int) -> np.ndarray:
        """Block ids of request ``i`` (a view, no copy)."""
        return self.hash_ids[self.offsets[i] : self.offsets[i + 1]]

    def iter_blocks(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.hash_ids[self.offsets[i] : self.offsets[i + 1]]

    def request_index(self) -> np.ndarray:
        """Request number of every block access (length ``num_block_accesses``)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.blocks_per_request)

    def head(self, n: int) -> Trace:
        """The first ``n`` requests as a new trace."""
        n = min(n, len(self))
        end = int(self.offsets[n])
        return Trace(
            arrival_s=self.arrival_s[:n].copy(),
            input_tokens=self.input_tokens[:n].copy(),
            output_tokens=self.output_tokens[:n].copy(),
            offsets=self.offsets[: n + 1].copy(),
            hash_ids=self.hash_ids[:end].copy(),
            block_tokens=self.block_tokens,
            name=self.name,
            source=self.source,
            meta=dict(self.meta),
            **{c: None if getattr(self, c) is None else getattr(self, c)[:n].copy() for c in self.OPTIONAL_COLUMNS},
        )

    def to_frame(self):  # -> pandas.DataFrame, imported lazily to keep this module light
        import pandas as pd

        cols = {
            "arrival_s": self.arrival_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "num_blocks": self.blocks_per_request,
        }
        cols.update({c: getattr(self, c) for c in self.OPTIONAL_COLUMNS if getattr(self, c) is not None})
        return pd.DataFrame(cols)
