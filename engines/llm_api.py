"""LLM API options of one worker group and the YAML ``trtllm-serve`` reads from them.

``trtllm-serve serve <model dir> --backend pytorch --extra_llm_api_options <yaml>`` merges the
YAML into its ``TorchLlmArgs`` (``--config`` is the newer alias of the same option,
tensorrt_llm/commands/serve.py @00209af149e7). Upstream validates that YAML with pydantic
``extra="forbid"``, so a misspelt key stops the server at start-up; here every rendered key is
checked against a table derived from tensorrt_llm/llmapi/llm_args.py
(tests/engines/data/llm_args_keys.json) instead, before anything is deployed.

The options are typed pydantic models with camelCase YAML keys (``llmApi.maxBatchSize``), like
:class:`engines.spec.EngineSpec`; :func:`llm_api_options` turns them into upstream's snake_case
dict for one role. Standard library + pydantic only.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

KV_TRANSFER_TIMEOUT_MS = 60000
"""``cache_transceiver_config.kv_transfer_timeout_ms`` rendered where the release has the option and
the group sets none: upstream's own default since PR #12249 (``runtime/capabilities.py``)."""

Role = Literal["aggregated", "context", "generation"]
"""What a worker group serves: whole requests, or the context/generation phase of
prefill/decode disaggregation (upstream's ``--server_role`` CONTEXT/GENERATION)."""
ROLES: tuple[Role, ...] = ("aggregated", "context", "generation")
GroupKey = Literal["workers", "prefill", "decode"]
"""A deployment's worker-group key."""
GROUP_KEYS: tuple[GroupKey, ...] = ("workers", "prefill", "decode")
"""Every worker-group key, in the order deployments list them."""
GROUP_ROLES: dict[str, Role] = {"workers": "aggregated", "prefill": "context", "decode": "generation"}
"""Worker-group key of a deployment (``ModelDeploymentConfig.worker_groups()``) -> its role."""
Mode = Literal["tensor-parallel", "prefill-decode"]
"""How a deployment splits its work: one group serving whole requests, or prefill and decode groups."""
MODE_GROUPS: dict[Mode, tuple[GroupKey, ...]] = {"tensor-parallel": ("workers",), "prefill-decode": ("prefill", "decode")}
"""Deployment mode -> its worker-group keys, in deployment order (the one table: imported, never re-typed)."""

KvCacheDtype = Literal["auto", "fp8", "nvfp4", "float16", "bfloat16"]
"""``kv_cache_config.dtype``: 'auto' keeps the checkpoint's KV-cache quantization (NVIDIA's FP8
and FP4 checkpoints carry FP8 KV); the others override it (KvCacheConfig.validate_dtype)."""
CacheTransceiverBackend = Literal["UCX", "NIXL", "MPI", "DEFAULT"]


class _Options(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_default=True
    )


class KvCacheOptions(_Options):
    """``kv_cache_config``: the paged KV cache of each rank."""

    free_gpu_memory_fraction: float = Field(default=0.9, gt=0, le=1)
    """Share of the GPU memory left after weights and activations that becomes KV cache."""
    enable_block_reuse: bool = True
    """Reuse cached prefixes across requests."""
    dtype: KvCacheDtype = "auto"
    tokens_per_block: int = Field(default=32, ge=1)
    """Tokens per KV-cache block; both sides of prefill/decode must agree."""
    event_buffer_max_size: int = Field(default=0, ge=0)
    """KV-cache events kept for ``POST /kv_cache_events`` (0: none). Set by the deployment when its
    router routes by KV-cache events (``orchestrator.routing``); rendered only when > 0."""

    @model_validator(mode="after")
    def _power_of_two(self) -> KvCacheOptions:
        n = self.tokens_per_block
        if n & (n - 1) or not 8 <= n <= 256:
            raise ValueError(
                f"tokensPerBlock ({n}) must be a power of two between 8 and 256: use 32 or 64"
            )
        return self


class CudaGraphOptions(_Options):
    """``cuda_graph_config``: CUDA graphs for decode-only batches (DecodeCudaGraphConfig)."""

    enable_padding: bool = True
    """Round batches up to the nearest captured size."""
    max_batch_size: int | None = Field(default=None, ge=1)
    """Largest captured batch; None: the group's maxBatchSize."""
    batch_sizes: tuple[int, ...] | None = None
    """Explicit captured batch sizes; upstream then derives max_batch_size = max(batch_sizes)."""

    @model_validator(mode="after")
    def _sizes_consistent(self) -> CudaGraphOptions:
        if self.batch_sizes is not None:
            if not self.batch_sizes or min(self.batch_sizes) < 1:
                raise ValueError(f"batchSizes {list(self.batch_sizes)} must be positive integers: fix the list")
            if self.max_batch_size is not None and self.max_batch_size != max(self.batch_sizes):
                raise ValueError(
                    f"maxBatchSize ({self.max_batch_size}) must equal max(batchSizes) "
                    f"({max(self.batch_sizes)}) when both are set (upstream BaseCudaGraphConfig): "
                    "drop one of them"
                )
        return self


class CacheTransceiverOptions(_Options):
    """``cache_transceiver_config``: how KV cache moves from context to generation servers."""

    backend: CacheTransceiverBackend = "UCX"
    max_tokens_in_buffer: int | None = Field(default=None, ge=1)
    """Pre-allocated transfer buffer in tokens; upstream recommends >= the longest prompt."""
    kv_transfer_timeout_ms: int | None = Field(default=None, ge=1)
    """How long a context server holds a request's KV blocks for the generation side to pull
    them, and a generation server waits for them (ms). None: 60000 where the image's release has
    the option (``runtime/capabilities.py`` row ``kv_transfer_timeout_ms``), left out of the YAML
    elsewhere (upstream's strict options would refuse the key)."""


class LlmApiOptions(_Options):
    """The LLM API arguments of one worker group (``workers.llmApi``)."""

    tensor_parallel_size: int = Field(default=1, ge=1)
    pipeline_parallel_size: int = Field(default=1, ge=1)
    moe_expert_parallel_size: int | None = Field(default=None, ge=1)
    """Expert parallelism of MoE models (divides tensorParallelSize); None: upstream's choice."""
    enable_attention_dp: bool = False
    """Attention data parallelism: each TP rank runs attention on its own requests."""
    max_batch_size: int = Field(default=64, ge=1)
    max_num_tokens: int = Field(default=8192, ge=1)
    """Tokens of one forward pass (all requests of the batch, after padding removal)."""
    max_seq_len: int = Field(default=8192, ge=2)
    """Prompt plus output of one request."""
    kv_cache_config: KvCacheOptions = KvCacheOptions()
    cuda_graph_config: CudaGraphOptions | None = CudaGraphOptions()
    """None disables CUDA graphs."""
    enable_chunked_prefill: bool = True
    """Split prompts longer than maxNumTokens over several forward passes."""
    disable_overlap_scheduler: bool | None = None
    """None: disabled on context servers (upstream does not support the overlap scheduler
    there), enabled elsewhere."""
    enable_iter_perf_stats: bool = True
    """Iteration statistics, which the ``trtllm_kv_cache_utilization`` metric the autoscaler
    reads is computed from."""
    return_perf_metrics: bool = True
    """Per-request performance metrics; with ``enableIterPerfStats`` it makes ``trtllm-serve``
    export Prometheus text on ``/prometheus/metrics`` (what the autoscaler scrapes)."""
    cache_transceiver_config: CacheTransceiverOptions | None = None
    """Prefill/decode only; None there means UCX with upstream's default buffer."""

    @property
    def world_size(self) -> int:
        """GPUs one group needs: tensorParallelSize × pipelineParallelSize."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def overlap_scheduler_disabled(self, role: Role) -> bool:
        """``disable_overlap_scheduler`` as rendered for ``role``."""
        if self.disable_overlap_scheduler is not None:
            return self.disable_overlap_scheduler
        return role == "context"

    def cuda_graph_max_batch_size(self) -> int | None:
        """Largest CUDA-graph batch the YAML asks for (None: graphs disabled)."""
        graphs = self.cuda_graph_config
        if graphs is None:
            return None
        if graphs.batch_sizes:
            return max(graphs.batch_sizes)
        return graphs.max_batch_size if graphs.max_batch_size is not None else self.max_batch_size


def llm_api_options(group_options: LlmApiOptions, *, role: Role, kv_transfer_timeout: bool = False) -> dict[str, Any]:
    """The ``TorchLlmArgs`` keys (upstream snake_case) ``trtllm-serve`` is given for ``role``.

    Context and generation servers always carry a ``cache_transceiver_config`` (UCX unless
    configured): without one upstream creates no cache transceiver and cannot move KV cache.
    Aggregated servers never do. ``kv_transfer_timeout``: the image's release has
    ``cache_transceiver_config.kv_transfer_timeout_ms`` (the capability table's row, read by the
    caller): it is rendered, 60000 ms unless the group sets it.
    """
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    o = group_options
    kv = o.kv_cache_config
    out: dict[str, Any] = {
        "tensor_parallel_size": o.tensor_parallel_size,
        "pipeline_parallel_size": o.pipeline_parallel_size,
    }
    if o.moe_expert_parallel_size is not None:
        out["moe_expert_parallel_size"] = o.moe_expert_parallel_size
    out.update(
        {
            "enable_attention_dp": o.enable_attention_dp,
            "max_batch_size": o.max_batch_size,
            "max_num_tokens": o.max_num_tokens,
            "max_seq_len": o.max_seq_len,
            "kv_cache_config": {
                "free_gpu_memory_fraction": kv.free_gpu_memory_fraction,
                "enable_block_reuse": kv.enable_block_reuse,
                "dtype": kv.dtype,
                "tokens_per_block": kv.tokens_per_block,
                **({"event_buffer_max_size": kv.event_buffer_max_size} if kv.event_buffer_max_size else {}),
            },
            "enable_chunked_prefill": o.enable_chunked_prefill,
            "disable_overlap_scheduler": o.overlap_scheduler_disabled(role),
            "enable_iter_perf_stats": o.enable_iter_perf_stats,
            "return_perf_metrics": o.return_perf_metrics,
        }
    )
    graphs = o.cuda_graph_config
    if graphs is None:
        out["cuda_graph_config"] = None
    else:
        rendered: dict[str, Any] = {"enable_padding": graphs.enable_padding}
        if graphs.batch_sizes:
            rendered["batch_sizes"] = sorted(graphs.batch_sizes)
        else:
            rendered["max_batch_size"] = o.cuda_graph_max_batch_size()
        out["cuda_graph_config"] = rendered
    if role != "aggregated":
        transceiver = o.cache_transceiver_config or CacheTransceiverOptions()
        rendered_tc: dict[str, Any] = {"backend": transceiver.backend}
        if transceiver.max_tokens_in_buffer is not None:
            rendered_tc["max_tokens_in_buffer"] = transceiver.max_tokens_in_buffer
        if kv_transfer_timeout:
            rendered_tc["kv_transfer_timeout_ms"] = transceiver.kv_transfer_timeout_ms or KV_TRANSFER_TIMEOUT_MS
        elif transceiver.kv_transfer_timeout_ms is not None:
            raise ValueError(
                f"cacheTransceiverConfig.kvTransferTimeoutMs: {transceiver.kv_transfer_timeout_ms} is not an option "
                "of the image's TensorRT-LLM release (runtime/capabilities.py row kv_transfer_timeout_ms): remove it "
                "or use a newer image"
            )
        out["cache_transceiver_config"] = rendered_tc
    return out


def llm_api_yaml(group_options: LlmApiOptions, *, role: Role, kv_transfer_timeout: bool = False) -> str:
    """:func:`llm_api_options` as the YAML file ``--extra_llm_api_options`` names.

    Written as block YAML with JSON-quoted scalars (valid YAML 1.1 and 1.2, read by upstream's
    ``yaml.safe_load``), keys in a fixed order, so the file is byte-stable for reviews.
    """
    header = f"# trtllm-serve --extra_llm_api_options, role {role} (generated)\n"
    return header + "".join(_yaml_lines(llm_api_options(group_options, role=role, kv_transfer_timeout=kv_transfer_timeout), 0))


def _yaml_lines(mapping: dict[str, Any], indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:\n")
            lines += _yaml_lines(value, indent + 1)
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}\n")
    return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return json.dumps(value)
