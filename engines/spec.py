"""EngineSpec: the typed description of one TensorRT-LLM engine build."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

Dtype = Literal["float16", "bfloat16"]
Quantization = Literal["none", "fp8", "int4_awq", "int8_sq", "w4a8_awq", "int8_wo", "int4_wo"]


class EngineSpec(BaseModel):
    """One engine: which model, how it is sharded, and the runtime limits baked into it.

    Every field takes part in :meth:`content_hash`, so an unchanged spec maps to the same
    engine location and never rebuilds; any change yields a new location and a rebuild.
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

    @property
    def world_size(self) -> int:
        """GPUs the engine runs on: tp_size × pp_size."""
        return self.tp_size * self.pp_size

    @model_validator(mode="after")
    def _limits_consistent(self) -> EngineSpec:
        if self.max_input_len >= self.max_seq_len:
            raise ValueError(
                f"maxInputLen ({self.max_input_len}) must be smaller than maxSeqLen "
                f"({self.max_seq_len}): raise maxSeqLen or lower maxInputLen"
            )
        return self

    def content_hash(self) -> str:
        """Stable short hash of every field: the engine's storage key."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
