"""Model shapes (KV bytes per token) and the prefill compute model (time per request).

    KV bytes/token = 2 (K and V) x layers x kv_heads x head_dim x dtype_bytes
    prefill FLOPs  = 2 x params x n_new                              (dense layers)
                   + 4 x layers x q_heads x head_dim x n_new x (n_cached + (n_new + 1) / 2)
                                                                     (causal attention)
    prefill time   = FLOPs / (peak_flops x mfu x tensor_parallel)
    KV capacity    = hbm x tensor_parallel - weights - activation reserve x tensor_parallel
                     (weights = params x dtype_bytes; per instance; must be > 0)

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
    instances: int = 1  # prefill instances, each with its own GPU tier and queue
    activation_reserve_bytes: float = 0.0  # per GPU: activations, CUDA context, buffers


class ModelDoesNotFit(ValueError):
    pass


@dataclass(frozen=True)
class KVBudget:
    """HBM of one instance and what is left for the KV cache, each term in bytes."""

    hbm_bytes: float  # all GPUs of the instance
    weights_bytes: float
    reserve_bytes: float  # all GPUs of the instance
    kv_bytes: float

    def summary(self) -> dict[str, float]:
        g = float(2**30)
        return {
            "hbm_gib": self.hbm_bytes / g,
            "weights_gib": self.weights_bytes / g,
            "activation_reserve_gib": self.reserve_bytes / g,
            "kv_gib": self.kv_bytes / g,
        }


def kv_budget(model: ModelSpec, gpu: GPUSpec) -> KVBudget:
    """The KV-cache bytes of one instance; a model that does not fit is refused with the
    arithmetic (raises :class:`ModelDoesNotFit`)."""
    g = float(2**30)
    tp = gpu.tensor_parallel
    hbm = gpu.hbm_bytes * tp
    weights = model.params * model.dtype_bytes
    reserve = gpu.activation_reserve_bytes * tp
    kv = hbm - weights - reserve
    if kv <= 0:
        raise ModelDoesNotFit(
            f"model {model.name} does not fit on gpu {gpu.name} with gpu.tensor_parallel={tp}: "
            f"HBM {gpu.hbm_bytes / g:.1f} GiB x {tp} = {hbm / g:.1f} GiB - weights {weights / g:.1f} GiB "
            f"({model.params:.3g} params x {model.dtype_bytes} B) - activation reserve "
            f"{gpu.activation_reserve_bytes / g:.1f} GiB x {tp} = {kv / g:.1f} GiB left for the KV cache; "
            f"raise gpu.tensor_parallel (>= {_min_tp(model, gpu)}) or choose a GPU with more HBM"
        )
    return KVBudget(hbm, weights, reserve, kv)


def _min_tp(model: ModelSpec, gpu: GPUSpec) -> int:
    per_gpu = gpu.hbm_bytes - gpu.activation_reserve_bytes
    if per_gpu <= 0:
        return 0
    return int(model.params * model.dtype_bytes // per_gpu) + 1


class PrefillModel:
    def __init__(self, model: ModelSpec, gpu: GPUSpec) -> None:
        if not 0 < gpu.mfu <= 1:
            raise ValueError(f"gpu.mfu must be in (0, 1], got {gpu.mfu}")
        self.model = model
        self.gpu = gpu
        self._flops_s = gpu.peak_flops * gpu.mfu * gpu.tensor_parallel
        self._dense = 2.0 * model.params
        self._attn = 4.0 * model.layers * model.q_heads * model.head_dim

    @property
    def flops_per_s(self) -> float:
        """Sustained FLOP/s of one instance (peak x MFU x tensor parallelism)."""
        return self._flops_s

    def flops(self, n_new: int, n_cached: int) -> float:
        """FLOPs of computing tokens ``n_cached .. n_cached + n_new - 1`` of a sequence
        (a whole prefill, or one chunk of it with the tokens before it as context)."""
        return self._dense * n_new + self._attn * n_new * (n_cached + (n_new + 1) / 2.0)

    def time_s(self, n_new: int, n_cached: int) -> float:
        if n_new <= 0:
            return 0.0
        return self.flops(n_new, n_cached) / self._flops_s
