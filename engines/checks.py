"""Pure cross-checks of an EngineSpec against its model and the GPUs it will run on.

Each function returns a list of problems (empty: fine); every message names the camelCase
config key, the value and the fix. The stack validation prefixes them with the engine's key.

Precision support follows TensorRT-LLM's support matrix (docs/source/reference/
support-matrix.md): Ampere (sm80) runs FP16/BF16, INT8 SmoothQuant, INT8/INT4 weight-only
and INT4 AWQ; FP8 (weights, KV cache, FP8 GEMM plugin) and W4A8 AWQ need Ada (sm89) or
Hopper (sm90) and newer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .catalog import ARCH_SM, GPUS, MODELS, ModelInfo
from .spec import EngineSpec

GIB = 1024**3

USABLE_FRACTION = 0.9
"""Share of GPU memory an engine may plan for; the rest stays free for the CUDA allocator."""
RUNTIME_OVERHEAD_GIB = 2.5
"""CUDA context, NCCL and cuBLAS workspaces, TensorRT-LLM decoder buffers, per GPU."""
AWQ_GROUP_SIZE = 128
"""``--awq_block_size`` default of upstream's quantize.py: sharded dims must be multiples."""

_WEIGHT_BYTES: dict[str, float] = {
    "fp8": 1.0,
    "int8_sq": 1.0,
    "int8_wo": 1.0,
    # 4-bit weights plus one 16-bit scale per group of 128
    "int4_awq": 0.5 + 2 / AWQ_GROUP_SIZE,
    "w4a8_awq": 0.5 + 2 / AWQ_GROUP_SIZE,
    "int4_wo": 0.5,
}
_MIN_SM: dict[str, int] = {
    "int8_sq": 80,
    "int8_wo": 80,
    "int4_wo": 80,
    "int4_awq": 80,
    "fp8": 89,
    "w4a8_awq": 89,
}
"""Lowest compute capability (× 10) of each quantization ('none' has no floor of its own:
bfloat16 needing Ampere is checked separately)."""
_ARCH_NAMES = {**ARCH_SM, "volta": 70, "turing": 75}


def _dtype_bytes(dtype: str) -> float:
    return {"float16": 2.0, "bfloat16": 2.0}[dtype]


def weight_bytes_per_param(spec: EngineSpec) -> float:
    """Bytes per transformer-layer parameter at the spec's dtype/quantization."""
    return _WEIGHT_BYTES.get(spec.quantization, _dtype_bytes(spec.dtype))


def kv_element_bytes(spec: EngineSpec) -> float:
    return 1.0 if spec.kv_cache_dtype in ("fp8", "int8") else _dtype_bytes(spec.dtype)


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU memory of the busiest rank of an engine, in bytes."""

    weights: float
    kv_min: float
    """KV cache for one sequence of maxSeqLen tokens: the least an engine can serve with."""
    activations: float
    overhead: float

    @property
    def total(self) -> float:
        return self.weights + self.kv_min + self.activations + self.overhead


def estimate_memory(spec: EngineSpec, model: ModelInfo, tp: int | None = None, pp: int | None = None) -> MemoryEstimate:
    """Memory the busiest GPU of ``spec`` needs (optionally for another tp/pp).

    Transformer layers split over tp × pp GPUs; quantization applies to them only. The input
    embedding stays unquantized and replicated on every rank of the first stage (upstream's
    default, no ``--use_parallel_embedding``); the LM head is split over tp.
    """
    tp = tp or spec.tp_size
    pp = pp or spec.pp_size
    act_bytes = _dtype_bytes(spec.dtype)
    table = model.vocab_size * model.hidden_size
    layer_params = model.param_count - model.embedding_params
    weights = (
        layer_params * weight_bytes_per_param(spec) / (tp * pp)
        + table * act_bytes  # embedding on stage 0
        + (0 if model.tie_word_embeddings else table * act_bytes / tp)  # LM head on the last stage
    )
    kv_heads_per_gpu = math.ceil(model.num_kv_heads / tp)  # at least 1: tp > KV heads replicates them
    layers_per_gpu = math.ceil(model.num_layers / pp)
    kv_per_token = 2 * layers_per_gpu * kv_heads_per_gpu * model.head_dim * kv_element_bytes(spec)
    mlp_width = model.intermediate_size * max(1, model.experts_per_token) / tp
    activations = (
        spec.max_num_tokens * act_bytes * (4 * model.hidden_size + 2 * mlp_width)
        + spec.max_batch_size * spec.max_beam_width * model.vocab_size / tp * 4  # fp32 logits
    )
    return MemoryEstimate(
        weights=weights,
        kv_min=kv_per_token * spec.max_seq_len,
        activations=activations,
        overhead=RUNTIME_OVERHEAD_GIB * GIB,
    )


def _unknown_model(spec: EngineSpec) -> list[str]:
    return [
        f"model '{spec.model}' is not in the engine catalog (known: {', '.join(sorted(MODELS))}): "
        "use one of them or add it to engines/catalog.py"
    ]


def check_fits_memory(spec: EngineSpec, gpu_memory_gib: float, gpus: int) -> list[str]:
    """Whether ``spec``'s weights, a minimal KV cache and activations fit ``gpus`` GPUs.

    ``gpu_memory_gib`` is the memory of one GPU, ``gpus`` how many the engine gets (its world
    size, tpSize × ppSize, which is checked too).
    """
    model = MODELS.get(spec.model)
    if model is None:
        return _unknown_model(spec)
    problems: list[str] = []
    if gpus != spec.world_size:
        problems.append(
            f"tpSize × ppSize = {spec.tp_size} × {spec.pp_size} = {spec.world_size} GPUs, but the "
            f"engine is given {gpus}: make tpSize × ppSize equal {gpus} or give it {spec.world_size} GPUs"
        )
    usable = gpu_memory_gib * USABLE_FRACTION * GIB
    est = estimate_memory(spec, model)
    if est.total <= usable:
        return problems
    precision = spec.dtype if spec.quantization == "none" else spec.quantization
    fits = _smallest_fitting_tp(spec, model, usable)
    if fits is not None:
        fix = f"raise tpSize to {fits}" + (f" (with ppSize {spec.pp_size})" if spec.pp_size > 1 else "")
    else:
        fix = "add pipeline stages (ppSize)"
    if spec.quantization == "none":
        fix += ", quantize the weights (quantization: fp8 on Hopper/Ada, int4_awq on Ampere)"
    fix += ", or lower maxSeqLen/maxNumTokens"
    problems.append(
        f"model too large: '{spec.model}' at {precision} with tpSize {spec.tp_size} × ppSize "
        f"{spec.pp_size} needs {_gib(est.weights)} GiB of weights per GPU + {_gib(est.kv_min)} GiB KV "
        f"cache for one {spec.max_seq_len}-token sequence + {_gib(est.activations)} GiB activations + "
        f"{_gib(est.overhead)} GiB runtime = {_gib(est.total)} GiB, but one {gpu_memory_gib} GiB GPU "
        f"has {_gib(usable)} GiB usable ({USABLE_FRACTION:.0%}): {fix}"
    )
    return problems


def _smallest_fitting_tp(spec: EngineSpec, model: ModelInfo, usable: float) -> int | None:
    for tp in (2, 4, 8, 16):  # only called when spec.tp_size (>= 1) does not fit
        if tp <= spec.tp_size or model.num_attention_heads % tp:
            continue
        if estimate_memory(spec, model, tp=tp).total <= usable:
            return tp
    return None


def _gib(value: float) -> str:
    return f"{value / GIB:.1f}"


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0 and d <= 64)


def check_parallelism(spec: EngineSpec) -> list[str]:
    """tpSize/ppSize against the model's heads and layers, maxSeqLen against its context."""
    model = MODELS.get(spec.model)
    if model is None:
        return _unknown_model(spec)
    problems: list[str] = []
    tp, pp = spec.tp_size, spec.pp_size
    if model.num_attention_heads % tp:
        problems.append(
            f"tpSize ({tp}) must divide the {model.num_attention_heads} attention heads of "
            f"'{model.key}': use one of {_divisors(model.num_attention_heads)}"
        )
    kv = model.num_kv_heads
    if (tp <= kv and kv % tp) or (tp > kv and tp % kv):
        problems.append(
            f"tpSize ({tp}) must divide the {kv} KV heads of '{model.key}' or be a multiple of "
            f"them (KV heads are then replicated): use one of {_divisors(kv)} or a multiple of {kv}"
        )
    if model.num_layers % pp:
        problems.append(
            f"ppSize ({pp}) must divide the {model.num_layers} layers of '{model.key}': use one of "
            f"{_divisors(model.num_layers)}"
        )
    if spec.quantization in ("int4_awq", "w4a8_awq"):
        for name, dim in (("hidden size", model.hidden_size), ("MLP width", model.intermediate_size)):
            if dim % tp or (dim // tp) % AWQ_GROUP_SIZE:
                problems.append(
                    f"quantization '{spec.quantization}' groups weights by {AWQ_GROUP_SIZE}, but the "
                    f"{name} {dim} split over tpSize {tp} is {dim / tp:g} per GPU, not a multiple of "
                    f"{AWQ_GROUP_SIZE}: lower tpSize or use quantization fp8/int8_wo"
                )
    if spec.max_seq_len > model.max_position_embeddings:
        problems.append(
            f"maxSeqLen ({spec.max_seq_len}) exceeds the {model.max_position_embeddings} positions "
            f"'{model.key}' was trained for: lower maxSeqLen to at most {model.max_position_embeddings}"
        )
    return problems


def parse_sm(gpu_arch: str | int) -> int | None:
    """Compute capability × 10 from an arch name ('hopper'), a GPU key ('h100-80gb') or instance
    type ('p5.48xlarge'), or an SM string ('sm90', 'sm_90', '9.0', '90'); None if unknown."""
    if isinstance(gpu_arch, int):
        return gpu_arch
    text = gpu_arch.strip().lower()
    if text in _ARCH_NAMES:
        return _ARCH_NAMES[text]
    for gpu in GPUS.values():
        if text == gpu.key or text in gpu.instance_types:
            return gpu.sm
    match = re.fullmatch(r"(?:sm_?)?(\d{1,2})\.?(\d)", text)
    if match:
        return int(match.group(1) + match.group(2))
    return None


def check_quantization_supported(spec: EngineSpec, gpu_arch: str | int) -> list[str]:
    """Whether the GPU architecture runs ``spec``'s dtype, quantization and KV-cache type."""
    sm = parse_sm(gpu_arch)
    if sm is None:
        return [
            f"GPU architecture '{gpu_arch}' is not recognised: give an architecture "
            f"({', '.join(sorted(ARCH_SM))}), a GPU ({', '.join(sorted(GPUS))}) or an SM like 'sm90'"
        ]
    where = f"{gpu_arch} (sm{sm})"
    problems: list[str] = []
    if spec.dtype == "bfloat16" and sm < 80:
        problems.append(f"dtype 'bfloat16' needs Ampere (sm80) or newer, not {where}: use dtype: float16")
    need = _MIN_SM.get(spec.quantization)
    if need is not None and sm < need:
        # what runs one generation earlier: nothing quantized runs before Ampere
        alternative = {"fp8": "int8_sq or int4_awq", "w4a8_awq": "int4_awq"}.get(spec.quantization, "none")
        problems.append(
            f"quantization '{spec.quantization}' needs {_arch_of(need)} (sm{need}) or newer, not "
            f"{where}: use quantization: {alternative}, or Hopper GPUs (p5/p5e)"
        )
    if spec.kv_cache_dtype == "fp8" and sm < 89:
        problems.append(
            f"kvCacheDtype 'fp8' needs Ada/Hopper (sm89+), not {where}: use kvCacheDtype: int8 or auto"
        )
    return problems


def _arch_of(sm: int) -> str:
    return "Ada/Hopper" if sm == 89 else next(n.capitalize() for n, s in ARCH_SM.items() if s == sm)


def check_engine(spec: EngineSpec, gpu_memory_gib: float, gpus: int, gpu_arch: str | int | None = None) -> list[str]:
    """All checks of this module together (parallelism first: memory numbers assume it is valid)."""
    problems = check_parallelism(spec)
    if MODELS.get(spec.model) is not None:
        problems += check_fits_memory(spec, gpu_memory_gib, gpus)
    if gpu_arch is not None:
        problems += check_quantization_supported(spec, gpu_arch)
    return problems
