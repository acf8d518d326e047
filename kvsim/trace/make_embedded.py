"""Regenerate the embedded trace: ``python -m kvsim.trace.make_embedded [PATH]``."""

from __future__ import annotations

import sys
from pathlib import Path

from kvsim.trace.generate import GeneratorConfig, generate_trace
from kvsim.trace.mooncake import write_mooncake_jsonl

DEFAULT = Path(__file__).resolve().parents[2] / "traces" / "synthetic_conversation.jsonl"


def main(path: str | Path = DEFAULT) -> Path:
    trace = generate_trace(GeneratorConfig(seed=0), name="embedded")
    return write_mooncake_jsonl(trace, path)


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
