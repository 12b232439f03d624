"""Pure checks of LLM API worker groups against their model, their GPUs and each other.

Each function returns problems as ``"<key below the group>: <value>: <fix>"`` strings (empty
list: fine); the stack validation prefixes them with the group's full key
(``disagg:deployments[0].workers``). The rules and their upstream sources:

* GPUs: a group runs tensor_parallel_size × pipeline_parallel_size ranks, one per GPU
  (``_ParallelConfig.world_size`` = tp × pp × cp in tensorrt_llm/llmapi/llm_args.py; context
  parallelism is not exposed here). Expert parallelism splits the MoE layers within the TP ranks
  (``Mapping``: moe_tp × moe_ep = tp), so moeExpertParallelSize divides tensorParallelSize.
* Heads: TP splits attention heads, so tp divides the attention heads and divides (or is a
  multiple of, replicating) the KV heads, as for engines (engines/checks.py); attention DP keeps
  attention unsplit, so it lifts the attention-head rule.
* Limits: ``BaseLlmArgs.validate_runtime_args`` warns when max_batch_size > max_num_tokens (a full
  decode batch can never be scheduled) -- refused here; without chunked prefill a prompt longer
  than max_num_tokens cannot be scheduled at all; CUDA graphs are captured up to their
  max_batch_size, which must not exceed the runtime's.
* Precision: FP8 weights/KV need Ada or Hopper (sm89+), NVFP4 needs Blackwell (sm100+)
  (TensorRT-LLM docs/source/reference/support-matrix.md; KvCacheConfig.dtype).
* Prefill/decode: the C++ cache formatter transfers KV cache only between servers with the same
  KV data type, the same tokens per block and head size, the same number of layers and
  uniform KV heads per layer, non-MLA attention, and context parallelism 1 on the context side
  (``CacheFormatter::inquireSupport``, cpp/tensorrt_llm/batch_manager/cacheFormatter.cpp, stored
  snapshot of NVIDIA/TensorRT-LLM main, July 2026); TP and PP may differ between the sides (the
  formatter splits and concatenates heads and layers; each side's TP dividing, or being a
  multiple of, the KV heads is checked per group). The transfer buffer must hold whole blocks
  (``TLLM_CHECK(maxNumTokens % tokensPerBlock == 0)``, cacheTransBuffer.cpp @012f8ad2031a) and
  upstream asks for ``max_tokens_in_buffer`` >= the longest prompt (examples/disaggregated/
  README.md: "Set it >= the maximum ISL"; docs/source/features/disagg-serving.md; smaller
  buffers have deadlocked transfers under load). MPI moves KV cache only inside one MPI world,
  which two separately started servers never share, so only UCX and NIXL are accepted ('DEFAULT'
  resolves per server from environment variables, NIXL otherwise: ``_resolve_default_backend``
  in llm_args.py). Context servers run without the overlap scheduler (examples/disaggregated/
  README.md: "not yet supported in disaggregated context server architectures").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalog import ModelInfo
from .checks import GIB, RUNTIME_OVERHEAD_GIB, USABLE_FRACTION, parse_sm
from .llm_api import LlmApiOptions

WEIGHT_BYTES: dict[str, float] = {"none": 2.0, "fp8": 1.0, "nvfp4": 0.5 + 1 / 16}
"""Bytes per transformer-layer parameter: bf16; FP8; NVFP4 = 4 bits plus one FP8 scale per
16-element block. Embeddings and the LM head stay 16-bit in ModelOpt checkpoints."""
MIN_SM: dict[str, int] = {"none": 80, "fp8": 89, "nvfp4": 100}
"""Lowest compute capability (× 10) running each weight precision."""
ARCH_OF_SM: dict[int, str] = {80: "Ampere (sm80+)", 89: "Ada/Hopper (sm89+)", 100: "Blackwell (sm100)"}
"""How a refusal names the GPUs a minimum compute capability of MIN_SM asks for."""
KV_BYTES: dict[str, float] = {"fp8": 1.0, "nvfp4": 0.5 + 1 / 16, "float16": 2.0, "bfloat16": 2.0}
TRANSFER_BACKENDS = ("UCX", "NIXL")
"""Cache transceiver backends that move KV cache between separately started servers."""


def kv_bytes(options: LlmApiOptions, quantization: str) -> float:
    """Bytes of one KV element: 'auto' keeps the checkpoint's (FP8 in NVIDIA's FP8/FP4 ones)."""
    dtype = options.kv_cache_config.dtype
    if dtype == "auto":
        return 1.0 if quantization in ("fp8", "nvfp4") else 2.0
    return KV_BYTES[dtype]


def effective_kv_dtype(options: LlmApiOptions, quantization: str) -> str:
    """The KV-cache element type a server really uses ('auto' resolved)."""
    dtype = options.kv_cache_config.dtype
    if dtype != "auto":
        return dtype
    return "fp8" if quantization in ("fp8", "nvfp4") else "bfloat16"


@dataclass(frozen=True)
class LlmApiMemory:
    """Per-GPU memory of the busiest rank, in bytes."""

    weights: float
    activations: float
    overhead: float
    kv_per_sequence: float
    """KV cache one maxSeqLen-token sequence takes on one GPU."""


def estimate_llm_api_memory(options: LlmApiOptions, model: ModelInfo, quantization: str) -> LlmApiMemory:
    """Weights, activations and the KV cache of one full sequence on the busiest GPU."""
    tp, pp = options.tensor_parallel_size, options.pipeline_parallel_size
    h = model.hidden_size
    q = model.num_attention_heads * model.head_dim
    attention_per_layer = 2 * h * q + 2 * h * model.num_kv_heads * model.head_dim
    layer_params = model.param_count - model.embedding_params
    bpp = WEIGHT_BYTES[quantization]
    weights = (layer_params * bpp + model.embedding_params * 2.0) / (tp * pp)
    if options.enable_attention_dp:  # attention weights are replicated on every TP rank
        weights += model.num_layers * attention_per_layer * bpp * (1 - 1 / tp) / pp
    kv_heads = model.num_kv_heads if options.enable_attention_dp else max(1, math.ceil(model.num_kv_heads / tp))
    kv_per_token = 2 * math.ceil(model.num_layers / pp) * kv_heads * model.head_dim * kv_bytes(options, quantization)
    mlp_width = model.intermediate_size * max(1, model.experts_per_token) / tp
    activations = (
        options.max_num_tokens * 2.0 * (4 * h + 2 * mlp_width)
        + options.max_batch_size * model.vocab_size / tp * 4  # fp32 logits
    )
    return LlmApiMemory(
        weights=weights,
        activations=activations,
        overhead=RUNTIME_OVERHEAD_GIB * GIB,
        kv_per_sequence=kv_per_token * options.max_seq_len,
    )


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0 and d <= 64)


def check_group_gpus(options: LlmApiOptions, pods_per_group: int, gpus_per_pod: int) -> list[str]:
    """tp × pp must equal the GPUs a group gets (podsPerGroup × gpusPerPod)."""
    given = pods_per_group * gpus_per_pod
    need = options.world_size
    if need == given:
        return []
    if need % gpus_per_pod == 0:
        fix = f"set podsPerGroup: {need // gpus_per_pod}"
    elif need < gpus_per_pod:
        fix = f"set gpusPerPod: {need}"
    else:
        fix = f"set gpusPerPod to a divisor of {need}"
    return [
        f"llmApi: tensorParallelSize × pipelineParallelSize = {options.tensor_parallel_size} × "
        f"{options.pipeline_parallel_size} = {need} GPUs, but the group gets podsPerGroup "
        f"{pods_per_group} × gpusPerPod {gpus_per_pod} = {given}: {fix}, or change "
        "tensorParallelSize/pipelineParallelSize"
    ]


def check_parallelism(options: LlmApiOptions, model: ModelInfo) -> list[str]:
    """Parallel sizes against the model's heads, layers and experts."""
    problems: list[str] = []
    tp, pp = options.tensor_parallel_size, options.pipeline_parallel_size
    if not options.enable_attention_dp and model.num_attention_heads % tp:
        problems.append(
            f"llmApi.tensorParallelSize: {tp} must divide the {model.num_attention_heads} attention "
            f"heads of '{model.key}': use one of {_divisors(model.num_attention_heads)}"
        )
    kv = model.num_kv_heads
    if not options.enable_attention_dp and ((tp <= kv and kv % tp) or (tp > kv and tp % kv)):
        problems.append(
            f"llmApi.tensorParallelSize: {tp} must divide the {kv} KV heads of '{model.key}' or be a "
            f"multiple of them: use one of {_divisors(kv)} or a multiple of {kv}"
        )
    if pp > model.num_layers:
        problems.append(
            f"llmApi.pipelineParallelSize: {pp} stages exceed the {model.num_layers} layers of "
            f"'{model.key}': use at most {model.num_layers}"
        )
    ep = options.moe_expert_parallel_size
    if ep is not None:
        if not model.num_experts:
            problems.append(
                f"llmApi.moeExpertParallelSize: {ep} is set, but '{model.key}' is a dense model "
                "without experts: remove moeExpertParallelSize"
            )
        elif tp % ep or model.num_experts % ep:
            problems.append(
                f"llmApi.moeExpertParallelSize: {ep} must divide tensorParallelSize {tp} and the "
                f"{model.num_experts} experts of '{model.key}' (expert and tensor parallelism of the "
                f"MoE layers multiply to tensorParallelSize): use one of "
                f"{_divisors(math.gcd(tp, model.num_experts))}"
            )
    return problems


def check_limits(options: LlmApiOptions, model: ModelInfo) -> list[str]:
    """Sequence, token and batch limits against each other and the model's context."""
    problems: list[str] = []
    o = options
    if o.max_seq_len > model.max_position_embeddings:
        problems.append(
            f"llmApi.maxSeqLen: {o.max_seq_len} exceeds the {model.max_position_embeddings} positions "
            f"'{model.key}' was trained for: lower maxSeqLen to at most {model.max_position_embeddings}"
        )
    if o.max_num_tokens < o.max_batch_size:
        problems.append(
            f"llmApi.maxNumTokens: {o.max_num_tokens} is below maxBatchSize {o.max_batch_size}, so a full "
            "batch of decoding requests (one token each) never fits one forward pass (upstream warns: "
            f"max_batch_size should be <= max_num_tokens): raise maxNumTokens to at least {o.max_batch_size} "
            "or lower maxBatchSize"
        )
    if not o.enable_chunked_prefill and o.max_num_tokens < o.max_seq_len:
        problems.append(
            f"llmApi.maxNumTokens: {o.max_num_tokens} is below maxSeqLen {o.max_seq_len} without chunked "
            "prefill, so longer prompts can never be scheduled: set enableChunkedPrefill: true or raise "
            f"maxNumTokens to {o.max_seq_len}"
        )
    tokens_per_block = o.kv_cache_config.tokens_per_block
    if o.enable_chunked_prefill and o.max_num_tokens < tokens_per_block:
        problems.append(
            f"llmApi.maxNumTokens: {o.max_num_tokens} is below one KV-cache block ({tokens_per_block} "
            f"tokens), the unit prompts are chunked in: raise maxNumTokens to at least {tokens_per_block}"
        )
    graphs = o.cuda_graph_max_batch_size()
    if graphs is not None and graphs > o.max_batch_size:
        key = "batchSizes" if o.cuda_graph_config and o.cuda_graph_config.batch_sizes else "maxBatchSize"
        problems.append(
            f"llmApi.cudaGraphConfig.{key}: CUDA graphs up to batch {graphs} exceed the group's "
            f"maxBatchSize {o.max_batch_size}, so the larger graphs are never used but cost memory: "
            f"capture at most {o.max_batch_size}"
        )
    return problems


def check_precision(options: LlmApiOptions, quantization: str, gpu_arch: str | int) -> list[str]:
    """Whether the GPU architecture runs the checkpoint's precision and the KV-cache type."""
    sm = parse_sm(gpu_arch)
    if sm is None:
        return [
            f"llmApi: GPU architecture '{gpu_arch}' of the pool is not recognised: give the pool an "
            "architecture (ampere, ada, hopper, blackwell)"
        ]
    where = f"{gpu_arch} (sm{sm})"
    problems: list[str] = []
    need = MIN_SM[quantization]
    if sm < need:
        other = {"nvfp4": "use quantization fp8 on Hopper or", "fp8": "use quantization none or"}.get(quantization, "use")
        problems.append(
            f"model.quantization: '{quantization}' weights need {ARCH_OF_SM[need]}, not {where}: {other} "
            "a pool with newer GPUs"
        )
    dtype = options.kv_cache_config.dtype
    kv_need = {"fp8": 89, "nvfp4": 100}.get(dtype)
    if kv_need is not None and sm < kv_need:
        arch = ARCH_OF_SM[kv_need]
        problems.append(
            f"llmApi.kvCacheConfig.dtype: '{dtype}' needs {arch}, not {where}: use dtype: auto"
            + (" or fp8" if dtype == "nvfp4" and sm >= 89 else "")
        )
    return problems


def check_memory(
    options: LlmApiOptions,
    model: ModelInfo,
    quantization: str,
    gpu_memory_gib: float,
    gpu_arch: str | int | None = None,
) -> list[str]:
    """Weights + activations fit each GPU, and the KV-cache share holds one maxSeqLen sequence.

    The fixes offered are those the GPU runs (``gpu_arch``; None: unknown, all are offered): no FP8
    checkpoint or KV cache on Ampere, no NVFP4 before Blackwell, nothing already in use.
    """
    sm = parse_sm(gpu_arch) if gpu_arch is not None else None
    lighter = [q for q in ("fp8", "nvfp4") if WEIGHT_BYTES[q] < WEIGHT_BYTES[quantization] and (sm is None or sm >= MIN_SM[q])]
    kv_fp8 = effective_kv_dtype(options, quantization) not in ("fp8", "nvfp4") and (sm is None or sm >= 89)
    est = estimate_llm_api_memory(options, model, quantization)
    usable = gpu_memory_gib * USABLE_FRACTION * GIB
    free = usable - est.weights - est.activations - est.overhead
    tp, pp = options.tensor_parallel_size, options.pipeline_parallel_size
    precision = "bf16" if quantization == "none" else quantization
    fits = f"'{model.key}' at {precision} over tp {tp} × pp {pp}"
    if free <= 0:
        return [
            f"llmApi: model too large: {fits} needs {_gib(est.weights)} GiB of weights + "
            f"{_gib(est.activations)} GiB activations + {_gib(est.overhead)} GiB runtime per GPU, but one "
            f"{gpu_memory_gib} GiB GPU has {_gib(usable)} GiB usable: raise tensorParallelSize or "
            "pipelineParallelSize, "
            + (f"use a quantized checkpoint (model quantization {'/'.join(lighter)}), " if lighter else "")
            + "or lower maxNumTokens"
        ]
    fraction = options.kv_cache_config.free_gpu_memory_fraction
    kv_budget = free * fraction
    if kv_budget < est.kv_per_sequence:
        return [
            f"llmApi.maxSeqLen: one {options.max_seq_len}-token sequence of {fits} needs "
            f"{_gib(est.kv_per_sequence)} GiB of KV cache per GPU, but freeGpuMemoryFraction {fraction} of "
            f"the {_gib(free)} GiB left after weights leaves {_gib(kv_budget)} GiB: lower maxSeqLen, raise "
            "kvCacheConfig.freeGpuMemoryFraction, " + ("use kvCacheConfig.dtype fp8, " if kv_fp8 else "") + "or add GPUs"
        ]
    return []


def _gib(value: float) -> str:
    return f"{value / GIB:.1f}"


def check_group(
    options: LlmApiOptions,
    model: ModelInfo,
    quantization: str,
    *,
    pods_per_group: int,
    gpus_per_pod: int,
    gpu_memory_gib: float,
    gpu_arch: str | None,
) -> list[str]:
    """Every single-group check (GPUs, parallelism, limits, precision, memory)."""
    problems = check_group_gpus(options, pods_per_group, gpus_per_pod)
    problems += check_parallelism(options, model)
    problems += check_limits(options, model)
    precision = check_precision(options, quantization, gpu_arch) if gpu_arch else []
    problems += precision
    if not any(p.startswith("model.quantization") for p in precision):  # weights the GPU cannot run: sized once fixed
        problems += check_memory(options, model, quantization, gpu_memory_gib, gpu_arch)
    return problems


def check_prefill_decode(
    context: LlmApiOptions, generation: LlmApiOptions, quantization: str, fabric: str | None = None
) -> list[str]:
    """Whether the context (prefill) and generation (decode) groups can exchange KV cache.

    Messages are keyed below the deployment (``prefill.llmApi...``/``decode.llmApi...``); a fix names
    the backend that works over ``fabric`` (NIXL on EFA, where UCX has no transport).
    """
    problems: list[str] = []
    ctx_kv, gen_kv = context.kv_cache_config, generation.kv_cache_config
    ctx_dtype = effective_kv_dtype(context, quantization)
    gen_dtype = effective_kv_dtype(generation, quantization)
    if ctx_dtype != gen_dtype:
        problems.append(
            f"decode.llmApi.kvCacheConfig.dtype: '{gen_kv.dtype}' ({gen_dtype}) differs from the prefill "
            f"side's '{ctx_kv.dtype}' ({ctx_dtype}); the cache formatter only transfers KV cache of the "
            "same data type: set the same kvCacheConfig.dtype on both sides"
        )
    if ctx_kv.tokens_per_block != gen_kv.tokens_per_block:
        problems.append(
            f"decode.llmApi.kvCacheConfig.tokensPerBlock: {gen_kv.tokens_per_block} differs from the "
            f"prefill side's {ctx_kv.tokens_per_block}; the cache formatter transfers whole blocks and "
            "needs the same size on both sides: set the same tokensPerBlock on both"
        )
    sides = (("prefill", context), ("decode", generation))
    backends = {}
    for side, options in sides:
        transceiver = options.cache_transceiver_config
        backend = transceiver.backend if transceiver is not None else None
        backends[side] = backend
        if backend is None:
            problems.append(
                f"{side}.llmApi.cacheTransceiverConfig: missing; prefill-decode moves KV cache through a "
                f"cache transceiver: set cacheTransceiverConfig: {suggested_transceiver(fabric)} on both sides"
            )
        elif backend == "MPI":
            problems.append(
                f"{side}.llmApi.cacheTransceiverConfig.backend: 'MPI' moves KV cache only between ranks of "
                "one MPI world, but prefill and decode servers are started separately: use UCX or NIXL"
            )
        elif backend not in TRANSFER_BACKENDS:
            problems.append(
                f"{side}.llmApi.cacheTransceiverConfig.backend: '{backend}' leaves the choice to "
                "environment variables on each server (NIXL by default), so the sides may disagree: "
                "name UCX or NIXL explicitly"
            )
    if (
        backends["prefill"] in TRANSFER_BACKENDS
        and backends["decode"] in TRANSFER_BACKENDS
        and backends["prefill"] != backends["decode"]
    ):
        problems.append(
            f"decode.llmApi.cacheTransceiverConfig.backend: '{backends['decode']}' differs from the prefill "
            f"side's '{backends['prefill']}'; both ends of a transfer must speak the same backend: use the "
            "same backend on both sides"
        )
    longest_prompt = context.max_seq_len
    for side, options in sides:
        transceiver = options.cache_transceiver_config
        if transceiver is None or transceiver.max_tokens_in_buffer is None:
            continue
        buffer = transceiver.max_tokens_in_buffer
        block = options.kv_cache_config.tokens_per_block
        if buffer % block:
            problems.append(
                f"{side}.llmApi.cacheTransceiverConfig.maxTokensInBuffer: {buffer} is not a multiple of "
                f"tokensPerBlock {block} (upstream asserts whole blocks): use "
                f"{math.ceil(buffer / block) * block}"
            )
        if buffer < longest_prompt:
            problems.append(
                f"{side}.llmApi.cacheTransceiverConfig.maxTokensInBuffer: {buffer} is below the prefill "
                f"side's maxSeqLen {longest_prompt}; upstream requires the buffer to hold the longest prompt "
                f"(smaller buffers deadlock transfers under load): set it to at least {longest_prompt}"
            )
    if generation.max_seq_len < context.max_seq_len:
        problems.append(
            f"decode.llmApi.maxSeqLen: {generation.max_seq_len} is below the prefill side's "
            f"{context.max_seq_len}, so a prompt the prefill side accepts may not fit the decode side: "
            f"set decode maxSeqLen to at least {context.max_seq_len}"
        )
    if context.disable_overlap_scheduler is False:
        problems.append(
            "prefill.llmApi.disableOverlapScheduler: false, but context servers do not support the overlap "
            "scheduler (upstream disagg-serving guide): remove the key or set it to true"
        )
    return problems


def suggested_transceiver(fabric: str | None) -> str:
    """The cacheTransceiverConfig to suggest over ``fabric`` (see :func:`kv_transfer_problem`)."""
    return "{backend: NIXL} (UCX has no EFA transport)" if fabric == "efa" else "{backend: UCX} (or NIXL)"


def kv_transfer_problem(fabric: str, backend: str) -> str | None:
    """Why cache-transceiver ``backend`` cannot move KV caches over ``fabric`` (None: it can).

    Upstream docs/source/features/disagg-serving.md @0434b982fa38: backends DEFAULT | UCX | NIXL |
    MPI; on AWS EFA, NIXL with its LIBFABRIC backend (UCX has no EFA transport); MPI moves KV only
    inside one MPI world, which separate context and generation groups never share.
    """
    backend = backend.upper()
    if backend not in ("DEFAULT", "UCX", "NIXL", "MPI"):
        return f"backend {backend!r} is not one of DEFAULT, UCX, NIXL, MPI"
    if fabric == "efa" and backend == "UCX":
        return "UCX has no EFA transport: use backend NIXL (its LIBFABRIC backend speaks EFA)"
    if backend == "MPI":
        return "the MPI backend needs one MPI world over context and generation groups: use NIXL or UCX"
    return None
