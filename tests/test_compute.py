"""Model shapes and the prefill compute model against hand-computed figures."""

from __future__ import annotations

import pytest

from kvsim.system.compute import GPUSpec, ModelSpec, PrefillModel

LLAMA8B = ModelSpec("llama3_8b", 8.03e9, 32, 32, 8, 128)
LLAMA70B = ModelSpec("llama3_70b", 70.6e9, 80, 64, 8, 128)
H100 = GPUSpec("h100", 989e12, 80 * 2**30, mfu=0.5)


def test_kv_bytes() -> None:
    assert LLAMA8B.kv_bytes_per_token == 131_072
    assert LLAMA8B.block_bytes(512) == 64 * 2**20
    assert LLAMA70B.kv_bytes_per_token == 327_680
    assert LLAMA70B.block_bytes(512) == 160 * 2**20


def test_prefill_throughput_short_context() -> None:
    """About 30k tokens/s for Llama-3-8B on an H100 at 50% MFU (16 GFLOP/token)."""
    m = PrefillModel(LLAMA8B, H100)
    t = m.time_s(512, 0)
    assert 512 / t == pytest.approx(30_000, rel=0.05)


def test_attention_term_grows_with_context() -> None:
    m = PrefillModel(LLAMA8B, H100)
    n = 512
    short, long = m.time_s(n, 0), m.time_s(n, 32_000)
    # Extra FLOPs = 4 * layers * q_heads * head_dim * n * cached.
    extra = 4 * 32 * 32 * 128 * n * 32_000 / (989e12 * 0.5)
    assert long - short == pytest.approx(extra, rel=1e-9)
    assert m.time_s(0, 100) == 0.0


def test_tensor_parallel_and_bad_mfu() -> None:
    tp2 = PrefillModel(LLAMA8B, GPUSpec("h100", 989e12, 0, mfu=0.5, tensor_parallel=2))
    assert tp2.time_s(1000, 0) == pytest.approx(PrefillModel(LLAMA8B, H100).time_s(1000, 0) / 2)
    with pytest.raises(ValueError, match="mfu"):
        PrefillModel(LLAMA8B, GPUSpec("x", 1e12, 0, mfu=0.0))
