"""Settings of the policy evaluation protocol (``mode: policy_eval``): the experiment's schema
and its defaults, written only here (a light module: checking a config imports no pandas)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from kvsim.errors import ConfigError
from kvsim.ranges import MultipleOf, OneOf, PosInt, Range, Seed
from kvsim.trace.bailian import SOURCE_BLOCK_TOKENS as BAILIAN_BLOCK

FAMILIES = ("conversation", "agentic", "tool_use", "long_sessions", "zipf_docs", "bailian")
# the families run by default: those whose data is here (a Qwen-Bailian file is not shipped:
# experiment.families=[...,bailian] with experiment.bailian_path or KVSIM_BAILIAN_TRACE)
DEFAULT_FAMILIES = FAMILIES[:5]
CLASSIC = ("lru", "fifo", "lfu", "arc", "s3fifo")
# (not kvsim.config.PROJECT_ROOT: kvsim.config imports this module while it loads)
_SHARED = Path(__file__).resolve().parents[3] / "shared" / "traces"
# every conf/policy/<name>.yaml: a policy without one fails at compose time
POLICIES = tuple(sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "policy").glob("*.yaml")))


@dataclass
class PolicyEvalSettings:
    """``experiment.*`` of ``+experiment=policy_eval`` (docs/policy_eval.md)."""

    # trace families; each policy's tunable choices were fixed on `tuned_on` only
    families: list[Annotated[str, OneOf(*FAMILIES)]] = field(default_factory=lambda: list(DEFAULT_FAMILIES))
    tuned_on: Annotated[str, OneOf(*FAMILIES)] = "conversation"
    # cache sizes as fractions of each trace's unique blocks
    capacities: list[Annotated[float, Range(gt=0, le=1)]] = field(
        default_factory=lambda: [0.01, 0.05, 0.1, 0.25, 0.5])
    # conf/policy/<name>.yaml each, with its defaults; opt is the yardstick and must be there
    policies: list[Annotated[str, OneOf(*POLICIES)]] = field(default_factory=lambda: [
        "lru", "fifo", "lfu", "arc", "s3fifo", "prefix_lru", "hotness", "lookahead", "opt"])
    classic: list[Annotated[str, OneOf(*CLASSIC)]] = field(default_factory=lambda: list(CLASSIC))
    conversation_path: str = os.environ.get(
        "KVSIM_REAL_TRACE", str(_SHARED / "mooncake" / "conversation_trace.jsonl"))
    agentic_path: str = os.environ.get("KVSIM_AGENTIC_TRACE", str(_SHARED / "agentic"))
    # a Qwen-Bailian usage trace (kvsim/trace/bailian.py), read at bailian_block_tokens
    bailian_path: str = os.environ.get("KVSIM_BAILIAN_TRACE", str(_SHARED / "bailian" / "qwen_traceA_blksz_16.jsonl"))
    # the agentic sessions coarsened to the other families' 512-token blocks (64: 8x the work)
    agentic_block_tokens: Annotated[int, OneOf(64, 128, 256, 512)] = 512
    # the Bailian trace's 16-token blocks coarsened likewise (any whole multiple of them, as
    # its reader allows: kvsim.trace.bailian.check_block_tokens)
    bailian_block_tokens: Annotated[int, Range(ge=BAILIAN_BLOCK), MultipleOf(BAILIAN_BLOCK)] = 512
    generated_seed: Seed = 0  # the generated families' seed
    generated_scale: Annotated[float, Range(gt=0)] = 1.0  # multiplies their durations
    jobs: PosInt = 1  # replays run in this many processes


def check_policies(policies: Sequence[str], classic: Sequence[str]) -> None:
    """LRU and OPT are the yardsticks (every cell is measured between them), and the classic
    policies are among those replayed; :class:`ConfigError` naming the key otherwise."""
    policies = list(policies)
    for need in ("lru", "opt"):
        if need not in policies:
            raise ConfigError(f"experiment.policies: {need} is a yardstick and must be listed, got {policies}")
    missing = [p for p in classic if p not in policies]
    if missing:
        raise ConfigError(f"experiment.classic: {missing} are not among experiment.policies {policies}")


def check_config(cfg: Any) -> None:
    """Before the run: :func:`check_policies` on the composed settings."""
    exp = cfg.get("experiment") or {}
    check_policies(exp.get("policies") or [], exp.get("classic") or [])
