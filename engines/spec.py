"""EngineSpec: the typed description of one TensorRT-LLM engine build."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

Dtype = Literal["float16", "bfloat16"]
Quantization = Literal["none", "fp8", "int4_awq", "int8_sq", "w4a8_awq", "int8_wo", "int4_wo"]
"""Weight/activation quantization; every value but 'none' is a ``--qformat`` of upstream's
``examples/quantization/quantize.py`` (NVIDIA Model Optimizer)."""
KvCacheDtype = Literal["auto", "fp8", "int8"]
"""KV-cache element type: 'auto' keeps ``dtype``; 'fp8'/'int8' quantize it (``--kv_cache_dtype``)."""
GemmPlugin = Literal["auto", "float16", "bfloat16", "fp8", "disable"]
AttentionPlugin = Literal["auto", "float16", "bfloat16"]


class EngineSpec(BaseModel):
    """One engine: which model, how it is sharded, and the runtime limits baked into it.

    Every field takes part in :meth:`content_hash`, so an unchanged spec maps to the same
    engine location and never rebuilds; any change yields a new location and a rebuild.

    The defaults are those of an engine served by Triton's TensorRT-LLM backend with
    in-flight batching (paged KV cache, packed inputs, attention plugin, chunked context).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    model: str = Field(description="Catalog key of the model, e.g. 'llama-3.1-8b-instruct'.")
    checkpoint: str | None = Field(
        default=None,
        description="Where the weights come from (HF repo id or a path on shared storage); "
        "defaults to the catalog entry's source.",
    )
    dtype: Dtype = "bfloat16"
    quantization: Quantization = "none"
    tp_size: int = Field(default=1, ge=1, description="Tensor-parallel ranks.")
    pp_size: int = Field(default=1, ge=1, description="Pipeline-parallel stages.")
    max_batch_size: int = Field(default=64, ge=1)
    max_input_len: int = Field(default=4096, ge=1)
    max_seq_len: int = Field(default=8192, ge=2)
    max_num_tokens: int = Field(default=8192, ge=1)
    paged_kv_cache: bool = True
    use_paged_context_fmha: bool = True
    use_fused_mlp: bool = True

    # ---- added for engine builds (issue 5); defaults are production settings ----
    max_beam_width: int = Field(default=1, ge=1, description="Beams per request baked into the engine.")
    kv_cache_dtype: KvCacheDtype = "auto"
    gemm_plugin: GemmPlugin = Field(
        default="auto",
        description="cuBLASLt GEMM plugin precision; 'auto' follows dtype, 'fp8' needs quantization fp8, "
        "'disable' lets TensorRT pick GEMM kernels.",
    )
    gpt_attention_plugin: AttentionPlugin = Field(
        default="auto", description="Attention plugin precision; 'auto' follows dtype."
    )
    remove_input_padding: bool = Field(
        default=True, description="Pack the tokens of a batch (required by in-flight batching)."
    )
    context_fmha: bool = Field(default=True, description="Fused multi-head attention in the context phase.")
    tokens_per_block: int = Field(default=32, ge=1, description="Tokens per paged KV-cache block.")
    multiple_profiles: bool = Field(
        default=False, description="Several TensorRT optimization profiles (longer builds, faster runs)."
    )

    @property
    def world_size(self) -> int:
        """GPUs the engine runs on: tp_size × pp_size."""
        return self.tp_size * self.pp_size

    @property
    def kv_cache_type(self) -> Literal["paged", "continuous"]:
        """The ``trtllm-build --kv_cache_type`` value this spec asks for."""
        return "paged" if self.paged_kv_cache else "continuous"

    def resolved_gemm_plugin(self) -> str:
        """``gemm_plugin`` with 'auto' replaced by ``dtype`` (what the engine really uses)."""
        return self.dtype if self.gemm_plugin == "auto" else self.gemm_plugin

    def resolved_attention_plugin(self) -> str:
        """``gpt_attention_plugin`` with 'auto' replaced by ``dtype``."""
        return self.dtype if self.gpt_attention_plugin == "auto" else self.gpt_attention_plugin

    @model_validator(mode="after")
    def _limits_consistent(self) -> EngineSpec:
        if self.max_input_len >= self.max_seq_len:
            raise ValueError(
                f"maxInputLen ({self.max_input_len}) must be smaller than maxSeqLen "
                f"({self.max_seq_len}): raise maxSeqLen or lower maxInputLen"
            )
        return self

    @model_validator(mode="after")
    def _build_options_consistent(self) -> EngineSpec:
        problems = self.build_option_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def build_option_problems(self) -> list[str]:
        """Inconsistent build options, one message each naming the camelCase key and the fix.

        Hardware-independent only; GPU checks live in :mod:`engines.checks`.
        """
        problems: list[str] = []
        if not self.paged_kv_cache:
            problems.append(
                "pagedKvCache is false, but Triton's in-flight batching needs a paged KV cache: "
                "set pagedKvCache: true"
            )
        if not self.remove_input_padding:
            problems.append(
                "removeInputPadding is false, but Triton's in-flight batching needs packed inputs: "
                "set removeInputPadding: true"
            )
        if self.use_paged_context_fmha and not self.context_fmha:
            problems.append(
                "usePagedContextFmha is true but contextFmha is false: paged context FMHA runs on "
                "the fused attention kernels, set contextFmha: true or usePagedContextFmha: false"
            )
        if self.max_num_tokens < self.max_input_len and not self.use_paged_context_fmha:
            problems.append(
                f"maxNumTokens ({self.max_num_tokens}) is smaller than maxInputLen "
                f"({self.max_input_len}), so long prompts must be chunked, which needs "
                f"usePagedContextFmha: true; enable it or raise maxNumTokens to at least "
                f"{self.max_input_len}"
            )
        if self.gemm_plugin == "fp8" and self.quantization != "fp8":
            problems.append(
                f"gemmPlugin 'fp8' needs quantization 'fp8' (it is '{self.quantization}'): "
                "set gemmPlugin: auto or quantization: fp8"
            )
        for key, value in (("gemmPlugin", self.gemm_plugin), ("gptAttentionPlugin", self.gpt_attention_plugin)):
            if value in ("float16", "bfloat16") and value != self.dtype:
                problems.append(
                    f"{key} '{value}' differs from dtype '{self.dtype}': set {key}: auto "
                    "(it follows dtype)"
                )
        if self.tokens_per_block & (self.tokens_per_block - 1) or not 8 <= self.tokens_per_block <= 256:
            problems.append(
                f"tokensPerBlock ({self.tokens_per_block}) must be a power of two between 8 and 256: "
                "use 32 or 64"
            )
        if self.quantization == "int8_sq" and self.kv_cache_dtype == "fp8":
            problems.append(
                "kvCacheDtype 'fp8' with quantization 'int8_sq' mixes FP8 and INT8 kernels: "
                "use kvCacheDtype: int8 or quantization: fp8"
            )
        return problems

    def content_hash(self) -> str:
        """Stable short hash of every field: the engine's storage key."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
