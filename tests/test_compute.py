"""Model shapes and the prefill compute model against hand-computed figures."""

from __future__ import annotations

import pytest

from kvsim.system.compute import GPUSpec, ModelSpec, PrefillModel

from .conftest import CONF_DIR, shared

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


# --- hand-worked prefill FLOPs and seconds ----------------------------------------------------
# From the docstring's formula and conf/model/llama3_8b.yaml + conf/gpu/h100.yaml, by hand:
#   dense per new token   2 x 8.03e9                    = 16,060,000,000 FLOPs
#   attention coefficient 4 x 32 layers x 32 heads x 128 = 524,288 FLOPs per (new token, context token)
#   causal: new token i (1-based) of a chunk sees n_cached + i tokens, so the chunk's attention
#   is coef x (n x n_cached + n(n+1)/2) = coef x n x (n_cached + (n+1)/2)
#   FLOP/s                989e12 x 0.5 MFU x 1 GPU      = 4.945e14
# n_new, n_cached: dense, attention, total FLOPs, seconds (total / 4.945e14)
HAND_PREFILL = [
    # 1 token, nothing cached: attends to itself only: coef x 1 x 1
    (1, 0, 16_060_000_000, 524_288, 16_060_524_288, 3.247830998584e-05),
    # 2 tokens: 1 + 2 = 3 attended pairs: coef x 3
    (2, 0, 32_120_000_000, 1_572_864, 32_121_572_864, 6.495768021031e-05),
    # 512: 512 x 513 / 2 = 131,328 pairs
    (512, 0, 8_222_720_000_000, 68_853_694_464, 8_291_573_694_464, 1.676759088870e-02),
    # 32k = 32,768: 32,768 x 32,769 / 2 = 536,887,296 pairs
    (32_768, 0, 526_254_080_000_000, 281_483_566_645_248, 807_737_646_645_248, 1.633443168140),
    # with 32,768 cached tokens: every new token also sees all of them
    (1, 32_768, 16_060_000_000, 17_180_393_472, 33_240_393_472, 6.722020924570e-05),  # 32,769 pairs
    (2, 32_768, 32_120_000_000, 34_361_311_232, 66_481_311_232, 1.344414787300e-04),  # 65,539
    (512, 32_768, 8_222_720_000_000, 8_864_946_716_672, 17_087_666_716_672, 3.455544330975e-02),
    (32_768, 32_768, 526_254_080_000_000, 844_433_520_066_560, 1_370_687_600_066_560, 2.771865723087),
]


@pytest.fixture(scope=shared("module"))
def shipped_prefill():
    """The prefill model as `python -m kvsim` builds it (default model and GPU)."""
    from hydra import compose, initialize_config_dir

    from kvsim.app import build_prefill


    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["model=llama3_8b", "gpu=h100"])
    return build_prefill(cfg)


def test_shipped_config_numbers_are_the_hand_worked_ones(shipped_prefill) -> None:
    m, g = shipped_prefill.model, shipped_prefill.gpu
    assert (m.params, m.layers, m.q_heads, m.head_dim) == (8.03e9, 32, 32, 128)
    assert (g.peak_flops, g.mfu, g.tensor_parallel) == (989e12, 0.5, 1)


@pytest.mark.parametrize(("n_new", "n_cached", "dense", "attn", "total", "seconds"), HAND_PREFILL)
def test_prefill_flops_and_seconds_by_hand(shipped_prefill, n_new, n_cached, dense, attn, total, seconds) -> None:
    assert dense + attn == total  # the table adds up
    assert shipped_prefill.flops(n_new, n_cached) == pytest.approx(total, rel=1e-12)
    assert shipped_prefill.time_s(n_new, n_cached) == pytest.approx(seconds, rel=1e-10)


def test_attention_is_causal(shipped_prefill) -> None:
    """Causal attention: computing a prompt in chunks costs what computing it at once does
    (chunk 2's tokens see chunk 1 as cached context), and the attention of n tokens is
    n(n+1)/2 pairs, not n^2 (non-causal would be 512 x 512 = 262,144 pairs here)."""
    m = shipped_prefill
    whole = m.flops(512, 0)
    assert m.flops(256, 0) + m.flops(256, 256) == pytest.approx(whole, rel=1e-12)
    assert sum(m.flops(1, i) for i in range(512)) == pytest.approx(whole, rel=1e-12)
    pairs = (whole - 512 * 16_060_000_000) / 524_288
    assert pairs == pytest.approx(131_328, rel=1e-12)
    # one token never costs less than its dense work, and seeing more context costs more
    assert m.flops(1, 0) > 16_060_000_000
    assert m.flops(1, 1) - m.flops(1, 0) == pytest.approx(524_288, rel=1e-12)


def test_70b_with_tensor_parallelism_by_hand() -> None:
    """Llama-3-70B, 512 new tokens after 1,024 cached, 2 x H100 at 50% MFU:
    dense 2 x 70.6e9 x 512 = 72,294,400,000,000; coef 4 x 80 x 64 x 128 = 2,621,440;
    pairs 512 x (1,024 + 513 / 2) = 655,616; attention 1,718,658,007,040;
    total 74,013,058,007,040 FLOPs / (989e12 x 0.5 x 2 = 9.89e14) = 0.07483625683 s."""
    gpu = GPUSpec("h100", 989e12, 0, mfu=0.5, tensor_parallel=2)
    m = PrefillModel(LLAMA70B, gpu)
    assert m.flops(512, 1024) == pytest.approx(74_013_058_007_040, rel=1e-12)
    assert m.time_s(512, 1024) == pytest.approx(0.07483625683, rel=1e-9)
    assert m.time_s(0, 1024) == 0.0
    assert m.time_s(-1, 0) == 0.0


def test_a_request_whose_whole_prefix_hits_still_computes_its_last_token(compose_cfg, tmp_path) -> None:
    """The first token's logits need one forward pass: a request whose every block is cached
    computes its last token with the rest as context. Through `kvsim.app.run`, as a user runs it:
        r0 [0, 1] 1,024 tokens: nothing cached, 1,024 new tokens
        r1 [0, 1] 1,024 tokens: both blocks hit; 1,023 cached, 1 new:
           16,060,000,000 + 524,288 x (1,023 + 1) = 16,596,870,912 FLOPs = 3.356293409909e-05 s
        r2 [0, 1] 1,000 tokens (partial last block): both hit; 999 cached, 1 new:
           16,060,000,000 + 524,288 x (999 + 1) = 16,584,288,000 FLOPs = 3.353748837209e-05 s"""
    import json

    import pandas as pd

    from kvsim.app import run

    trace = tmp_path / "t.jsonl"
    rows = [(0, 1024), (100_000, 1024), (200_000, 1000)]
    trace.write_text("".join(
        json.dumps({"timestamp": t, "input_length": n, "output_length": 1, "hash_ids": [0, 1]}) + "\n"
        for t, n in rows
    ))
    cfg = compose_cfg([f"trace.path={trace}", "model=llama3_8b", "gpu=h100", "progress=false", "figures=false"])
    run(cfg, tmp_path / "run")
    r = pd.read_parquet(tmp_path / "run" / "requests.parquet")
    assert r["prefix_hits"].tolist() == [0, 2, 2]
    assert r["new_tokens"].tolist() == [1024, 1, 1]
    assert r["compute_s"].iloc[1] == pytest.approx(3.356293409909e-05, rel=1e-10)
    assert r["compute_s"].iloc[2] == pytest.approx(3.353748837209e-05, rel=1e-10)


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


def test_kv_budget_summary_in_gib_by_hand() -> None:
    """Llama-3-8B on an 80 GiB H100 with 8 GiB reserved: weights 16.06e9 B / 2^30 =
    14.9570405483 GiB; 80 - 14.9570405483 - 8 = 57.0429594517 GiB for the KV cache."""
    from kvsim.system.compute import kv_budget

    gib = 2**30
    s = kv_budget(LLAMA8B, GPUSpec("h100", 989e12, 80 * gib, activation_reserve_bytes=8 * gib)).summary()
    assert s == pytest.approx({"hbm_gib": 80.0, "weights_gib": 14.9570405483, "activation_reserve_gib": 8.0,
                               "kv_gib": 57.0429594517}, rel=1e-10)


def test_the_tensor_parallelism_named_is_the_smallest_that_fits() -> None:
    """Llama-3-70B (141.2e9 B of weights) on GPUs of 80 GiB with 40 GiB reserved each:
    40 GiB = 42,949,672,960 B per GPU for weights; 3 GPUs give 128.8e9 B (too little), 4
    give 171.8e9 B: the message names 4, and with 4 the KV cache gets
    4 x 80 GiB - 141.2e9 - 4 x 40 GiB = 30,598,691,840 B."""
    from kvsim.system.compute import ModelDoesNotFit, kv_budget

    gib = 2**30
    for tp in (1, 2, 3):
        with pytest.raises(ModelDoesNotFit, match=r"raise gpu\.tensor_parallel \(>= 4\)"):
            kv_budget(LLAMA70B, GPUSpec("g", 989e12, 80 * gib, tensor_parallel=tp, activation_reserve_bytes=40 * gib))
    ok = kv_budget(LLAMA70B, GPUSpec("g", 989e12, 80 * gib, tensor_parallel=4, activation_reserve_bytes=40 * gib))
    assert ok.kv_bytes == pytest.approx(30_598_691_840, rel=1e-12)
