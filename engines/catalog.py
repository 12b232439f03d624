"""Model and GPU catalog: real architecture facts and recommended engine settings.

Model facts are those of each model's Hugging Face ``config.json`` (hidden_size,
num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, intermediate_size,
vocab_size, num_local_experts, max_position_embeddings); parameter counts are the published
ones and are cross-checked against the architecture in the tests.

Standard library only (dataclasses), so the facts can be read anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

GpuArch = Literal["ampere", "ada", "hopper", "blackwell"]


@dataclass(frozen=True)
class ModelInfo:
    """One model as TensorRT-LLM sees it."""

    key: str
    hf_repo: str
    """Hugging Face repository id the weights are downloaded from."""
    architecture: str
    """``architectures[0]`` of the HF config; selects the TensorRT-LLM converter."""
    params_b: float
    """Published parameter count, in billions."""
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    num_experts: int = 0
    """Experts per MoE layer (0: dense model)."""
    experts_per_token: int = 0
    tie_word_embeddings: bool = False
    gated: bool = True
    """Needs an accepted licence and an HF token to download."""

    @property
    def param_count(self) -> int:
        """Parameters computed from the architecture (attention, MLP/experts, norms, embeddings)."""
        h, kv = self.hidden_size, self.num_kv_heads * self.head_dim
        q = self.num_attention_heads * self.head_dim
        attention = h * q + 2 * h * kv + q * h
        mlp = 3 * h * self.intermediate_size
        if self.num_experts:
            mlp = self.num_experts * mlp + h * self.num_experts  # experts + router
        per_layer = attention + mlp + 2 * h
        return self.num_layers * per_layer + h + self.embedding_params

    @property
    def embedding_params(self) -> int:
        """Input embedding plus LM head (once if tied); these stay unquantized."""
        table = self.vocab_size * self.hidden_size
        return table if self.tie_word_embeddings else 2 * table

    def kv_bytes_per_token(self, kv_element_bytes: float) -> float:
        """KV-cache bytes one token takes across the whole model (K and V, all layers)."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * kv_element_bytes


@dataclass(frozen=True)
class GpuInfo:
    """One GPU type as engine builds see it."""

    key: str
    name: str
    arch: GpuArch
    sm: int
    """Compute capability × 10 (80 = sm_80)."""
    memory_gib: int
    instance_types: tuple[str, ...] = field(default=())
    """AWS instance types carrying 8 of these GPUs."""


MODELS: dict[str, ModelInfo] = {
    m.key: m
    for m in (
        ModelInfo(
            key="llama-3.1-8b-instruct",
            hf_repo="meta-llama/Llama-3.1-8B-Instruct",
            architecture="LlamaForCausalLM",
            params_b=8.03,
            num_layers=32,
            hidden_size=4096,
            num_attention_heads=32,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=14336,
            vocab_size=128256,
            max_position_embeddings=131072,
        ),
        ModelInfo(
            key="llama-3.1-70b-instruct",
            hf_repo="meta-llama/Llama-3.1-70B-Instruct",
            architecture="LlamaForCausalLM",
            params_b=70.6,
            num_layers=80,
            hidden_size=8192,
            num_attention_heads=64,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=28672,
            vocab_size=128256,
            max_position_embeddings=131072,
        ),
        ModelInfo(
            key="llama-3.3-70b-instruct",
            hf_repo="meta-llama/Llama-3.3-70B-Instruct",
            architecture="LlamaForCausalLM",
            params_b=70.6,
            num_layers=80,
            hidden_size=8192,
            num_attention_heads=64,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=28672,
            vocab_size=128256,
            max_position_embeddings=131072,
        ),
        ModelInfo(
            key="mixtral-8x7b-instruct",
            hf_repo="mistralai/Mixtral-8x7B-Instruct-v0.1",
            architecture="MixtralForCausalLM",
            params_b=46.7,
            num_layers=32,
            hidden_size=4096,
            num_attention_heads=32,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=14336,
            vocab_size=32000,
            max_position_embeddings=32768,
            num_experts=8,
            experts_per_token=2,
            gated=False,
        ),
    )
}

GPUS: dict[str, GpuInfo] = {
    g.key: g
    for g in (
        GpuInfo("a100-40gb", "NVIDIA A100-SXM4-40GB", "ampere", 80, 40, ("p4d.24xlarge",)),
        GpuInfo("a100-80gb", "NVIDIA A100-SXM4-80GB", "ampere", 80, 80, ("p4de.24xlarge",)),
        GpuInfo("l40s-48gb", "NVIDIA L40S", "ada", 89, 48, ("g6e.48xlarge",)),
        GpuInfo("h100-80gb", "NVIDIA H100 80GB HBM3", "hopper", 90, 80, ("p5.48xlarge",)),
        GpuInfo("h200-141gb", "NVIDIA H200", "hopper", 90, 141, ("p5e.48xlarge", "p5en.48xlarge")),
        GpuInfo("b200-179gb", "NVIDIA B200", "blackwell", 100, 179, ("p6-b200.48xlarge",)),
    )
}

ARCH_SM: dict[str, int] = {"ampere": 80, "ada": 89, "hopper": 90, "blackwell": 100}
"""Lowest compute capability (× 10) of each architecture."""


QUANTIZED_CHECKPOINTS: dict[tuple[str, str], str] = {
    ("llama-3.1-8b-instruct", "fp8"): "nvidia/Llama-3.1-8B-Instruct-FP8",
    ("llama-3.1-8b-instruct", "nvfp4"): "nvidia/Llama-3.1-8B-Instruct-FP4",
    ("llama-3.1-70b-instruct", "fp8"): "nvidia/Llama-3.1-70B-Instruct-FP8",
    ("llama-3.3-70b-instruct", "fp8"): "nvidia/Llama-3.3-70B-Instruct-FP8",
    ("llama-3.3-70b-instruct", "nvfp4"): "nvidia/Llama-3.3-70B-Instruct-FP4",
}
"""(catalog key, quantization) -> the pre-quantized NVIDIA Model Optimizer checkpoint on Hugging
Face that the LLM API loads directly (weights, scales and ``hf_quant_config.json``; NVIDIA's FP8
and FP4 checkpoints also quantize the KV cache to FP8). Source: TensorRT-LLM
docs/source/features/quantization.md ("TensorRT-LLM provides the following checkpoints via
HuggingFace") and NVIDIA's Hugging Face organisation; a pair missing here has no published
checkpoint, and the configuration refuses it rather than quantizing at serving time."""


def checkpoint_repository(model_key: str, quantization: str) -> str | None:
    """HF repository serving ``model_key`` at ``quantization`` ('none': the original weights);
    None when NVIDIA publishes no such checkpoint (or the model is unknown)."""
    model = MODELS.get(model_key)
    if model is None:
        return None
    if quantization == "none":
        return model.hf_repo
    return QUANTIZED_CHECKPOINTS.get((model_key, quantization))


def get_model(key: str) -> ModelInfo:
    """The catalog entry for ``key``; KeyError naming the known keys otherwise."""
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(
            f"model '{key}' is not in the engine catalog (known: {', '.join(sorted(MODELS))})"
        ) from None


def get_gpu(key: str) -> GpuInfo:
    """The GPU type ``key`` (e.g. 'h100-80gb') or the one an AWS instance type carries."""
    if key in GPUS:
        return GPUS[key]
    for gpu in GPUS.values():
        if key in gpu.instance_types:
            return gpu
    raise KeyError(
        f"GPU '{key}' is not in the catalog (known: {', '.join(sorted(GPUS))}, or one of their "
        "instance types)"
    )


@dataclass(frozen=True)
class Recommendation:
    """Recommended build settings for one (model, GPU) pair, as EngineSpec field values."""

    tp_size: int
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    max_batch_size: int = 64
    max_input_len: int = 4096
    max_seq_len: int = 8192
    max_num_tokens: int = 8192
    extra: dict[str, object] = field(default_factory=dict)

    def fields(self) -> dict[str, object]:
        """EngineSpec keyword arguments."""
        out = {
            "tp_size": self.tp_size,
            "quantization": self.quantization,
            "kv_cache_dtype": self.kv_cache_dtype,
            "max_batch_size": self.max_batch_size,
            "max_input_len": self.max_input_len,
            "max_seq_len": self.max_seq_len,
            "max_num_tokens": self.max_num_tokens,
        }
        out.update(self.extra)
        return out


# A100s lack FP8, so they run bf16 with more tensor parallelism; Hopper runs FP8 weights and
# FP8 KV cache (≈2× the KV capacity) on fewer GPUs; H200's 141 GB holds 70B FP8 on 2 GPUs.
RECOMMENDATIONS: dict[tuple[str, str], Recommendation] = {
    ("llama-3.1-8b-instruct", "a100-40gb"): Recommendation(tp_size=1, max_batch_size=64),
    ("llama-3.1-8b-instruct", "a100-80gb"): Recommendation(tp_size=1, max_batch_size=128),
    ("llama-3.1-8b-instruct", "h100-80gb"): Recommendation(
        tp_size=1, quantization="fp8", kv_cache_dtype="fp8", max_batch_size=256
    ),
    ("llama-3.1-8b-instruct", "h200-141gb"): Recommendation(
        tp_size=1, quantization="fp8", kv_cache_dtype="fp8", max_batch_size=256,
        max_input_len=16384, max_seq_len=32768, max_num_tokens=16384,
    ),
    ("llama-3.1-70b-instruct", "a100-40gb"): Recommendation(tp_size=8, max_batch_size=32),
    ("llama-3.1-70b-instruct", "a100-80gb"): Recommendation(tp_size=4, max_batch_size=64),
    ("llama-3.1-70b-instruct", "h100-80gb"): Recommendation(
        tp_size=2, quantization="fp8", kv_cache_dtype="fp8", max_batch_size=128
    ),
    ("llama-3.1-70b-instruct", "h200-141gb"): Recommendation(
        tp_size=2, quantization="fp8", kv_cache_dtype="fp8", max_batch_size=256,
        max_input_len=16384, max_seq_len=32768, max_num_tokens=16384,
    ),
    ("mixtral-8x7b-instruct", "a100-40gb"): Recommendation(tp_size=4, max_batch_size=64),
    ("mixtral-8x7b-instruct", "a100-80gb"): Recommendation(tp_size=2, max_batch_size=64),
    ("mixtral-8x7b-instruct", "h100-80gb"): Recommendation(
        tp_size=1, quantization="fp8", kv_cache_dtype="fp8", max_batch_size=128
    ),
    ("mixtral-8x7b-instruct", "h200-141gb"): Recommendation(
        tp_size=1, quantization="fp8", kv_cache_dtype="fp8", max_batch_size=256,
        max_input_len=16384, max_seq_len=32768, max_num_tokens=16384,
    ),
}
# Llama 3.3 70B has Llama 3.1 70B's architecture, so it shares its recommendations.
RECOMMENDATIONS.update(
    {("llama-3.3-70b-instruct", gpu): rec for (model, gpu), rec in list(RECOMMENDATIONS.items())
     if model == "llama-3.1-70b-instruct"}
)


def recommended_spec(model_key: str, gpu: str = "h100-80gb", **overrides: object):
    """An :class:`engines.spec.EngineSpec` with the recommended settings for ``model_key`` on ``gpu``.

    ``gpu`` is a GPU key ('a100-80gb', 'h100-80gb', 'h200-141gb', ...) or an AWS instance type
    ('p5.48xlarge'); ``overrides`` are EngineSpec fields that win over the recommendation.
    """
    from .spec import EngineSpec  # local: keeps this module importable without pydantic

    model = get_model(model_key)
    gpu_info = get_gpu(gpu)
    try:
        rec = RECOMMENDATIONS[(model.key, gpu_info.key)]
    except KeyError:
        known = sorted(g for (m, g) in RECOMMENDATIONS if m == model.key)
        raise KeyError(
            f"no recommended settings for '{model.key}' on '{gpu_info.key}' "
            f"(recommended GPUs: {', '.join(known)})"
        ) from None
    fields: dict[str, Any] = {**rec.fields(), **overrides}
    return EngineSpec(model=model.key, **fields)
