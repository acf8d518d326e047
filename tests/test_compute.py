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


def test_chunks_add_up_to_the_whole_prefill() -> None:
    """Chunked prefill does the same FLOPs as one pass: a chunk's attention covers the
    tokens before it (cached and earlier chunks) plus its own causal triangle."""
    m = PrefillModel(LLAMA8B, H100)
    whole = m.flops(3000, 1024)
    chunks = m.flops(1000, 1024) + m.flops(1000, 2024) + m.flops(1000, 3024)
    assert chunks == pytest.approx(whole, rel=1e-12)


def test_kv_budget_and_a_model_that_does_not_fit() -> None:
    from kvsim.system.compute import ModelDoesNotFit, kv_budget

    gib = 2**30
    h100 = GPUSpec("h100", 989e12, 80 * gib, activation_reserve_bytes=8 * gib)
    b = kv_budget(LLAMA8B, h100)
    assert b.weights_bytes == 8.03e9 * 2
    assert b.kv_bytes == pytest.approx(80 * gib - 16.06e9 - 8 * gib)
    with pytest.raises(ModelDoesNotFit) as e:
        kv_budget(LLAMA70B, h100)
    msg = str(e.value)
    # 80 GiB - 141.2 GB (131.5 GiB) of weights - 8 GiB = -59.5 GiB
    assert "HBM 80.0 GiB x 1 = 80.0 GiB - weights 131.5 GiB" in msg and "= -59.5 GiB" in msg
    assert "gpu.tensor_parallel (>= 2)" in msg
    tp2 = GPUSpec("h100", 989e12, 80 * gib, tensor_parallel=2, activation_reserve_bytes=8 * gib)
    assert kv_budget(LLAMA70B, tp2).kv_bytes == pytest.approx(160 * gib - 141.2e9 - 16 * gib)
