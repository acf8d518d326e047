"""Model shapes (KV bytes per token) and the prefill compute model (time per request).

    KV bytes/token = 2 (K and V) x layers x kv_heads x head_dim x dtype_bytes
    prefill FLOPs  = 2 x params x n_new                              (dense layers)
                   + 4 x layers x q_heads x head_dim x n_new x (n_cached + (n_new + 1) / 2)
                                                                     (causal attention)
    prefill time   = FLOPs / (peak_flops x mfu x tensor_parallel)

Llama-3-8B on an H100 (989 TFLOP/s BF16, 50% MFU) gives about 30k tokens/s for short
contexts, the figure in ../shared/reference/calibration-defaults.md; the attention term
makes each new token cost more as the reused context grows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: float  # parameters
    layers: int
    q_heads: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int = 2

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    def block_bytes(self, block_tokens: int) -> int:
        return self.kv_bytes_per_token * block_tokens


@dataclass(frozen=True)
class GPUSpec:
    name: str
    peak_flops: float  # dense BF16 FLOP/s
    hbm_bytes: float
    mfu: float = 0.5  # model FLOPs utilisation reached by prefill
    tensor_parallel: int = 1  # GPUs per prefill instance
    instances: int = 1  # prefill instances sharing the cache (FCFS queue)


class PrefillModel:
    def __init__(self, model: ModelSpec, gpu: GPUSpec) -> None:
        if not 0 < gpu.mfu <= 1:
            raise ValueError(f"gpu.mfu must be in (0, 1], got {gpu.mfu}")
        self.model = model
        self.gpu = gpu
        self._flops_s = gpu.peak_flops * gpu.mfu * gpu.tensor_parallel
        self._dense = 2.0 * model.params
        self._attn = 4.0 * model.layers * model.q_heads * model.head_dim

    def flops(self, n_new: int, n_cached: int) -> float:
        return self._dense * n_new + self._attn * n_new * (n_cached + (n_new + 1) / 2.0)

    def time_s(self, n_new: int, n_cached: int) -> float:
        if n_new <= 0:
            return 0.0
        return self.flops(n_new, n_cached) / self._flops_s
