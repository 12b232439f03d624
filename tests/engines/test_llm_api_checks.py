"""LLM API group checks computed directly (no stack): memory figures, limits, pairing."""

from __future__ import annotations

import dataclasses

from engines import llm_api_checks as checks
from engines.catalog import MODELS
from engines.checks import GIB
from engines.llm_api import CacheTransceiverOptions, CudaGraphOptions, KvCacheOptions, LlmApiOptions

L8, L70, MIX = MODELS["llama-3.1-8b-instruct"], MODELS["llama-3.1-70b-instruct"], MODELS["mixtral-8x7b-instruct"]


def test_weights_shrink_with_precision_and_parallelism() -> None:
    bf16 = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8), L70, "none")
    fp8 = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8), L70, "fp8")
    nvfp4 = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8), L70, "nvfp4")
    assert round(bf16.weights / GIB, 1) == 16.4  # 70.6e9 params × 2 B / 8
    assert bf16.weights > fp8.weights > nvfp4.weights
    tp8pp2 = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8, pipeline_parallel_size=2), L70, "none")
    assert round(tp8pp2.weights * 2 / bf16.weights, 3) == 1.0


def test_kv_per_sequence_follows_dtype_heads_and_stages() -> None:
    base = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8, max_seq_len=32768), L70, "none")
    # 2 (K,V) × 80 layers × 1 KV head per GPU × 128 × 2 B × 32768 tokens
    assert base.kv_per_sequence == 2 * 80 * 1 * 128 * 2 * 32768
    fp8 = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8, max_seq_len=32768), L70, "fp8")
    assert fp8.kv_per_sequence == base.kv_per_sequence / 2  # NVIDIA FP8 checkpoints carry FP8 KV
    adp = LlmApiOptions(tensor_parallel_size=8, max_seq_len=32768, enable_attention_dp=True)
    assert checks.estimate_llm_api_memory(adp, L70, "none").kv_per_sequence == 8 * base.kv_per_sequence


def test_effective_kv_dtype() -> None:
    assert checks.effective_kv_dtype(LlmApiOptions(), "none") == "bfloat16"
    assert checks.effective_kv_dtype(LlmApiOptions(), "fp8") == "fp8"
    assert checks.effective_kv_dtype(LlmApiOptions(kv_cache_config=KvCacheOptions(dtype="fp8")), "none") == "fp8"


def test_70b_bf16_fits_sixteen_h100_but_not_one() -> None:
    assert checks.check_memory(LlmApiOptions(tensor_parallel_size=8, pipeline_parallel_size=2, max_seq_len=32768), L70, "none", 80) == []
    (problem,) = checks.check_memory(LlmApiOptions(), L70, "none", 80)
    assert problem.startswith("llmApi: model too large: 'llama-3.1-70b-instruct' at bf16 over tp 1 × pp 1 needs 131.4 GiB")


def test_gpus_fix_suggestions() -> None:
    assert checks.check_group_gpus(LlmApiOptions(tensor_parallel_size=8, pipeline_parallel_size=2), 2, 8) == []
    (more_pods,) = checks.check_group_gpus(LlmApiOptions(tensor_parallel_size=16), 1, 8)
    assert "set podsPerGroup: 2" in more_pods
    (fewer_gpus,) = checks.check_group_gpus(LlmApiOptions(tensor_parallel_size=2), 1, 8)
    assert "set gpusPerPod: 2" in fewer_gpus


def test_expert_parallelism_rules() -> None:
    assert checks.check_parallelism(LlmApiOptions(tensor_parallel_size=4, moe_expert_parallel_size=4), MIX) == []
    (dense,) = checks.check_parallelism(LlmApiOptions(tensor_parallel_size=4, moe_expert_parallel_size=2), L8)
    assert dense.startswith("llmApi.moeExpertParallelSize: 2 is set, but 'llama-3.1-8b-instruct' is a dense model")
    (odd,) = checks.check_parallelism(LlmApiOptions(tensor_parallel_size=4, moe_expert_parallel_size=3), MIX)
    assert odd.endswith("use one of 1, 2, 4")


def test_attention_dp_lifts_the_head_rule() -> None:
    options = LlmApiOptions(tensor_parallel_size=16, enable_attention_dp=True)
    assert checks.check_parallelism(options, L8) == []
    assert len(checks.check_parallelism(LlmApiOptions(tensor_parallel_size=3), L8)) == 2


def test_nvfp4_needs_blackwell() -> None:
    (problem,) = checks.check_precision(LlmApiOptions(), "nvfp4", "hopper")
    assert problem == (
        "model.quantization: 'nvfp4' weights need Blackwell (sm100), not hopper (sm90): use quantization fp8 on "
        "Hopper or a pool with newer GPUs"
    )
    assert checks.check_precision(LlmApiOptions(), "nvfp4", "blackwell") == []
    assert checks.check_precision(LlmApiOptions(), "fp8", "ada") == []


def test_a_consistent_pair_passes() -> None:
    side = LlmApiOptions(
        tensor_parallel_size=8,
        max_seq_len=32768,
        max_num_tokens=32768,
        cache_transceiver_config=CacheTransceiverOptions(backend="NIXL", max_tokens_in_buffer=32768),
    )
    generation = side.model_copy(update={"tensor_parallel_size": 4})  # TP may differ between the sides
    assert checks.check_prefill_decode(side, generation, "fp8") == []


def test_default_backend_is_refused_for_its_ambiguity() -> None:
    side = LlmApiOptions(cache_transceiver_config=CacheTransceiverOptions(backend="DEFAULT"))
    problems = checks.check_prefill_decode(side, side, "none")
    assert len(problems) == 2 and "leaves the choice to environment variables" in problems[0]


# --- memory figures, computed by hand from the models' config.json ---------------------------


def test_attention_dp_copies_the_attention_weights_onto_every_rank() -> None:
    """llama-3.1-70b: 80 layers × (2 × 8192 × 8192 (Q, O) + 2 × 8192 × 1024 (K, V)) = 11.25 Gi
    attention parameters; attention DP keeps them whole on each of the 8 ranks instead of 1/8:
    (1 − 1/8) × 11.25 Gi × 2 B = 19.6875 GiB more per GPU in bf16."""
    plain = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8), L70, "none")
    adp = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8, enable_attention_dp=True), L70, "none")
    assert (adp.weights - plain.weights) / GIB == 19.6875


def test_attention_dp_copies_split_over_stages_and_shrink_with_precision() -> None:
    """fp8 (1 B) over pp 2: 19.6875 / 2 (bytes) / 2 (half the layers per stage) = 4.921875 GiB."""
    options = LlmApiOptions(tensor_parallel_size=8, pipeline_parallel_size=2)
    plain = checks.estimate_llm_api_memory(options, L70, "fp8")
    adp = checks.estimate_llm_api_memory(options.model_copy(update={"enable_attention_dp": True}), L70, "fp8")
    assert (adp.weights - plain.weights) / GIB == 4.921875


def test_attention_dp_on_one_rank_copies_nothing() -> None:
    one = checks.estimate_llm_api_memory(LlmApiOptions(), L8, "none")
    assert checks.estimate_llm_api_memory(LlmApiOptions(enable_attention_dp=True), L8, "none").weights == one.weights


def test_memory_of_llama_8b_on_one_gpu() -> None:
    """Weights: 6.98e9 layer params × 2 B + 2 × 128256 × 4096 embedding/head params × 2 B.
    Activations: maxNumTokens 8192 × 2 B × (4 × 4096 + 2 × 14336) + maxBatchSize 64 × 128256 ×
    4 B of fp32 logits. KV: 2 × 32 layers × 8 heads × 128 × 2 B × 8192 tokens = 1 GiB."""
    memory = checks.estimate_llm_api_memory(LlmApiOptions(), L8, "none")
    assert memory.weights == 16_060_522_496
    assert memory.activations == 8192 * 2 * (4 * 4096 + 2 * 14336) + 64 * 128256 * 4 == 771_031_040
    assert memory.overhead == 2.5 * GIB
    assert memory.kv_per_sequence == GIB


def test_moe_activations_count_the_active_experts_per_tp_rank() -> None:
    """mixtral (2 of 8 experts per token) at tp 2: MLP width 14336 × 2 / 2, logits 32000 / 2."""
    memory = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=2), MIX, "none")
    assert memory.activations == 8192 * 2 * (4 * 4096 + 2 * 14336) + 64 * 16000 * 4


def test_kv_heads_per_gpu_never_drop_below_one_and_stages_round_up() -> None:
    """tp 16 on 8 KV heads replicates: one head per GPU, as at tp 8; tp 4 holds two. pp 3 over 80
    layers: the busiest stage holds 27."""
    per_head = 2 * 80 * 128 * 2 * 8192
    for tp, heads in ((16, 1), (8, 1), (4, 2)):
        memory = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=tp), L70, "none")
        assert memory.kv_per_sequence == heads * per_head
    staged = checks.estimate_llm_api_memory(LlmApiOptions(tensor_parallel_size=8, pipeline_parallel_size=3), L70, "none")
    assert staged.kv_per_sequence == 2 * 27 * 128 * 2 * 8192


def test_kv_element_bytes() -> None:
    def kv(dtype: str, quantization: str) -> float:
        return checks.kv_bytes(LlmApiOptions(kv_cache_config=KvCacheOptions(dtype=dtype)), quantization)

    assert [kv("auto", q) for q in ("none", "fp8", "nvfp4")] == [2.0, 1.0, 1.0]
    assert [kv(d, "none") for d in ("fp8", "nvfp4", "float16", "bfloat16")] == [1.0, 0.5625, 2.0, 2.0]
    assert checks.effective_kv_dtype(LlmApiOptions(), "nvfp4") == "fp8"


def test_a_gpu_too_small_for_the_weights_is_refused() -> None:
    """llama-3.1-8b in bf16 needs 15.0 + 0.7 + 2.5 GiB; a 16 GiB GPU leaves 14.4 usable (90%)."""
    assert checks.check_memory(LlmApiOptions(), L8, "none", 24) == []
    assert checks.check_memory(LlmApiOptions(), L8, "none", 16) == [
        "llmApi: model too large: 'llama-3.1-8b-instruct' at bf16 over tp 1 × pp 1 needs 15.0 GiB of weights + "
        "0.7 GiB activations + 2.5 GiB runtime per GPU, but one 16 GiB GPU has 14.4 GiB usable: raise "
        "tensorParallelSize or pipelineParallelSize, use a quantized checkpoint (model quantization fp8/nvfp4), "
        "or lower maxNumTokens"
    ]


def test_a_kv_share_too_small_for_one_sequence_is_refused() -> None:
    """One 131072-token sequence of llama-3.1-8b is 16 GiB of KV; 10% of the 53.8 GiB left on an
    80 GiB GPU is 5.4 GiB, 50% is 26.9."""
    long = LlmApiOptions(max_seq_len=131072, kv_cache_config=KvCacheOptions(free_gpu_memory_fraction=0.5))
    assert checks.check_memory(long, L8, "none", 80) == []
    small = long.model_copy(update={"kv_cache_config": KvCacheOptions(free_gpu_memory_fraction=0.1)})
    assert checks.check_memory(small, L8, "none", 80) == [
        "llmApi.maxSeqLen: one 131072-token sequence of 'llama-3.1-8b-instruct' at bf16 over tp 1 × pp 1 needs "
        "16.0 GiB of KV cache per GPU, but freeGpuMemoryFraction 0.1 of the 53.8 GiB left after weights leaves "
        "5.4 GiB: lower maxSeqLen, raise kvCacheConfig.freeGpuMemoryFraction, use kvCacheConfig.dtype fp8, or add GPUs"
    ]


# --- parallelism: each rule on the smallest setting that breaks it ----------------------------

FORTY_HEADS = dataclasses.replace(L8, key="forty-heads", num_attention_heads=40)
"""llama-3.1-8b with 40 attention heads over its 8 KV heads (as Qwen2.5-14B has): a TP size can
divide the attention heads without fitting the KV heads."""


def test_tp_above_the_kv_heads_must_be_a_multiple_of_them() -> None:
    """tp 16 on a 70B with 8 KV heads replicates each KV head on two ranks: accepted; tp 10 on 8
    KV heads splits none evenly: refused, although 10 divides the 40 attention heads."""
    assert checks.check_parallelism(LlmApiOptions(tensor_parallel_size=16), L70) == []
    assert checks.check_parallelism(LlmApiOptions(tensor_parallel_size=10), FORTY_HEADS) == [
        "llmApi.tensorParallelSize: 10 must divide the 8 KV heads of 'forty-heads' or be a multiple of them: "
        "use one of 1, 2, 4, 8 or a multiple of 8"
    ]


def test_tp_below_the_kv_heads_must_divide_them() -> None:
    assert checks.check_parallelism(LlmApiOptions(tensor_parallel_size=8), FORTY_HEADS) == []
    (problem,) = checks.check_parallelism(LlmApiOptions(tensor_parallel_size=5), FORTY_HEADS)
    assert problem.startswith("llmApi.tensorParallelSize: 5 must divide the 8 KV heads")


def test_tp_must_divide_the_attention_heads() -> None:
    """tp 24 is a multiple of llama-70b's 8 KV heads but does not divide its 64 attention heads."""
    assert checks.check_parallelism(LlmApiOptions(tensor_parallel_size=24), L70) == [
        "llmApi.tensorParallelSize: 24 must divide the 64 attention heads of 'llama-3.1-70b-instruct': use one "
        "of 1, 2, 4, 8, 16, 32, 64"
    ]
    assert checks.check_parallelism(LlmApiOptions(tensor_parallel_size=24, enable_attention_dp=True), L70) == []


def test_more_stages_than_layers_is_refused() -> None:
    assert checks.check_parallelism(LlmApiOptions(pipeline_parallel_size=32), L8) == []
    assert checks.check_parallelism(LlmApiOptions(pipeline_parallel_size=33), L8) == [
        "llmApi.pipelineParallelSize: 33 stages exceed the 32 layers of 'llama-3.1-8b-instruct': use at most 32"
    ]


def test_expert_parallelism_must_divide_tp_even_when_it_divides_the_experts() -> None:
    (problem,) = checks.check_parallelism(LlmApiOptions(tensor_parallel_size=2, moe_expert_parallel_size=4), MIX)
    assert problem.startswith("llmApi.moeExpertParallelSize: 4 must divide tensorParallelSize 2 and the 8 experts")
    assert problem.endswith("use one of 1, 2")


def test_group_gpus_must_equal_tp_times_pp() -> None:
    assert checks.check_group_gpus(LlmApiOptions(tensor_parallel_size=12), 1, 8) == [
        "llmApi: tensorParallelSize × pipelineParallelSize = 12 × 1 = 12 GPUs, but the group gets podsPerGroup 1 × "
        "gpusPerPod 8 = 8: set gpusPerPod to a divisor of 12, or change tensorParallelSize/pipelineParallelSize"
    ]
    (same_pod,) = checks.check_group_gpus(LlmApiOptions(tensor_parallel_size=8), 2, 8)
    assert "= 16: set podsPerGroup: 1," in same_pod


# --- limits ------------------------------------------------------------------------------------


def test_limits_each_on_the_smallest_setting_that_breaks_it() -> None:
    def limits(**fields) -> list[str]:
        return [p.split(":")[0] + ": " + p.split(":")[1].split()[0] for p in checks.check_limits(LlmApiOptions(**fields), L8)]

    assert limits(max_seq_len=131072, max_num_tokens=131072) == []
    assert limits(max_seq_len=131073) == ["llmApi.maxSeqLen: 131073"]
    assert limits(max_batch_size=64, max_num_tokens=64) == []
    assert limits(max_batch_size=64, max_num_tokens=63) == ["llmApi.maxNumTokens: 63"]
    assert limits(enable_chunked_prefill=False, max_num_tokens=8192) == []
    assert limits(enable_chunked_prefill=False, max_num_tokens=8191) == ["llmApi.maxNumTokens: 8191"]
    assert limits(max_batch_size=16, max_num_tokens=32) == []
    assert limits(max_batch_size=16, max_num_tokens=31) == ["llmApi.maxNumTokens: 31"]


def test_cuda_graphs_larger_than_the_batch_are_refused() -> None:
    def graphs(config: CudaGraphOptions | None) -> list[str]:
        return checks.check_limits(LlmApiOptions(max_batch_size=64, cuda_graph_config=config), L8)

    assert graphs(None) == graphs(CudaGraphOptions(max_batch_size=64)) == []
    (by_max,) = graphs(CudaGraphOptions(max_batch_size=65))
    assert by_max == (
        "llmApi.cudaGraphConfig.maxBatchSize: CUDA graphs up to batch 65 exceed the group's maxBatchSize 64, "
        "so the larger graphs are never used but cost memory: capture at most 64"
    )
    (by_list,) = graphs(CudaGraphOptions(batch_sizes=(1, 8, 128)))
    assert by_list.startswith("llmApi.cudaGraphConfig.batchSizes: CUDA graphs up to batch 128")


# --- precision ---------------------------------------------------------------------------------


def test_precision_of_weights_and_kv_cache_per_architecture() -> None:
    def precision(quantization: str, arch: str, dtype: str = "auto") -> list[str]:
        return checks.check_precision(LlmApiOptions(kv_cache_config=KvCacheOptions(dtype=dtype)), quantization, arch)

    assert precision("none", "ampere") == precision("fp8", "ada") == precision("nvfp4", "blackwell", "nvfp4") == []
    assert precision("fp8", "ampere") == [
        "model.quantization: 'fp8' weights need Ada/Hopper (sm89+), not ampere (sm80): use quantization none or a "
        "pool with newer GPUs"
    ]
    assert precision("none", "ampere", "fp8") == [
        "llmApi.kvCacheConfig.dtype: 'fp8' needs Ada/Hopper (sm89+), not ampere (sm80): use dtype: auto"
    ]
    assert precision("none", "hopper", "nvfp4") == [
        "llmApi.kvCacheConfig.dtype: 'nvfp4' needs Blackwell (sm100), not hopper (sm90): use dtype: auto or fp8"
    ]
    assert precision("none", "ampere", "nvfp4")[0].endswith("use dtype: auto")  # sm80 runs no FP8 KV either
    assert precision("none", "ada", "nvfp4")[0].endswith("not ada (sm89): use dtype: auto or fp8")
    assert precision("none", "volta") == [
        "model.quantization: 'none' weights need Ampere (sm80+), not volta (sm70): use a pool with newer GPUs"
    ]
    assert precision("none", "sm75x") == [
        "llmApi: GPU architecture 'sm75x' of the pool is not recognised: give the pool an architecture (ampere, "
        "ada, hopper, blackwell)"
    ]


def test_check_group_runs_every_single_group_check() -> None:
    def group(arch: str | None, gpu_memory_gib: float) -> list[str]:
        return checks.check_group(
            LlmApiOptions(tensor_parallel_size=3, max_num_tokens=32), L8, "fp8",
            pods_per_group=1, gpus_per_pod=1, gpu_memory_gib=gpu_memory_gib, gpu_arch=arch,
        )

    keys = [p.split(":")[0] for p in group("ampere", 4)]
    assert keys == [
        "llmApi",  # 3 GPUs for 1
        "llmApi.tensorParallelSize", "llmApi.tensorParallelSize",  # 32 heads, 8 KV heads
        "llmApi.maxNumTokens",  # below maxBatchSize 64
        "model.quantization",  # fp8 on sm80: the weights are sized once a precision the GPU runs is chosen
    ]
    assert [p.split(":")[0] for p in group(None, 4)] == [*keys[:4], "llmApi"]  # arch unknown: 4 GiB GPU


# --- prefill/decode pairing ---------------------------------------------------------------------

NIXL = CacheTransceiverOptions(backend="NIXL", max_tokens_in_buffer=8192)


def pair(context: dict | None = None, generation: dict | None = None, quantization: str = "none") -> list[str]:
    side = LlmApiOptions(cache_transceiver_config=NIXL)
    return checks.check_prefill_decode(
        side.model_copy(update=context or {}), side.model_copy(update=generation or {}), quantization
    )


def test_a_consistent_default_pair_passes() -> None:
    assert pair() == []


def test_kv_dtypes_must_match_after_auto_is_resolved() -> None:
    fp8 = {"kv_cache_config": KvCacheOptions(dtype="fp8")}
    assert pair(fp8, None, "fp8") == []  # 'auto' on an FP8 checkpoint is fp8
    assert pair(fp8, None, "none") == [
        "decode.llmApi.kvCacheConfig.dtype: 'auto' (bfloat16) differs from the prefill side's 'fp8' (fp8); the "
        "cache formatter only transfers KV cache of the same data type: set the same kvCacheConfig.dtype on both sides"
    ]


def test_tokens_per_block_must_match() -> None:
    (problem,) = pair(None, {"kv_cache_config": KvCacheOptions(tokens_per_block=64)})
    assert problem.startswith("decode.llmApi.kvCacheConfig.tokensPerBlock: 64 differs from the prefill side's 32")


def test_each_side_needs_an_explicit_shared_transfer_backend() -> None:
    (missing,) = pair(None, {"cache_transceiver_config": None})
    assert missing.startswith("decode.llmApi.cacheTransceiverConfig: missing;")
    (mpi,) = pair({"cache_transceiver_config": CacheTransceiverOptions(backend="MPI")})
    assert mpi.startswith("prefill.llmApi.cacheTransceiverConfig.backend: 'MPI' moves KV cache only")
    (mixed,) = pair(None, {"cache_transceiver_config": CacheTransceiverOptions(backend="UCX", max_tokens_in_buffer=8192)})
    assert mixed.startswith("decode.llmApi.cacheTransceiverConfig.backend: 'UCX' differs from the prefill side's 'NIXL'")


def test_the_transfer_buffer_holds_whole_blocks_and_the_longest_prompt() -> None:
    def buffer(tokens: int) -> list[str]:
        return pair(None, {"cache_transceiver_config": CacheTransceiverOptions(backend="NIXL", max_tokens_in_buffer=tokens)})

    assert buffer(8192) == buffer(8224) == []
    assert buffer(8200) == [
        "decode.llmApi.cacheTransceiverConfig.maxTokensInBuffer: 8200 is not a multiple of tokensPerBlock 32 "
        "(upstream asserts whole blocks): use 8224"
    ]
    assert buffer(8160) == [
        "decode.llmApi.cacheTransceiverConfig.maxTokensInBuffer: 8160 is below the prefill side's maxSeqLen 8192; "
        "upstream requires the buffer to hold the longest prompt (smaller buffers deadlock transfers under load): "
        "set it to at least 8192"
    ]
    assert pair(None, {"cache_transceiver_config": CacheTransceiverOptions(backend="NIXL")}) == []


def test_decode_holds_every_prompt_prefill_accepts() -> None:
    assert pair({"max_seq_len": 4096}, None) == []
    assert pair(None, {"max_seq_len": 8191}) == [
        "decode.llmApi.maxSeqLen: 8191 is below the prefill side's 8192, so a prompt the prefill side accepts may "
        "not fit the decode side: set decode maxSeqLen to at least 8192"
    ]


def test_context_servers_refuse_the_overlap_scheduler() -> None:
    assert pair({"disable_overlap_scheduler": True}) == pair({"disable_overlap_scheduler": None}) == []
    (problem,) = pair({"disable_overlap_scheduler": False})
    assert problem.startswith("prefill.llmApi.disableOverlapScheduler: false")


def test_kv_transfer_backend_per_fabric() -> None:
    assert checks.kv_transfer_problem("efa", "nixl") is None
    assert checks.kv_transfer_problem("infiniband", "UCX") is None
    assert checks.kv_transfer_problem("efa", "default") is None
    assert checks.kv_transfer_problem("efa", "ucx") == "UCX has no EFA transport: use backend NIXL (its LIBFABRIC backend speaks EFA)"
    assert checks.kv_transfer_problem("infiniband", "MPI", ).startswith("the MPI backend needs one MPI world")
    assert checks.kv_transfer_problem("efa", "gloo") == "backend 'GLOO' is not one of DEFAULT, UCX, NIXL, MPI"


def test_an_fp8_kv_cache_is_offered_from_sm89_on() -> None:
    """The FP8 KV cache runs on Ada/Hopper (sm89) and newer: offered there, not on sm88 or Ampere."""
    small = LlmApiOptions(max_seq_len=131072, kv_cache_config=KvCacheOptions(free_gpu_memory_fraction=0.1))
    offers = {sm: "use kvCacheConfig.dtype fp8, " in checks.check_memory(small, L8, "none", 80, sm)[0]
              for sm in (80, 88, 89, 90)}
    assert offers == {80: False, 88: False, 89: True, 90: True}
    fp8_kv = small.model_copy(update={"kv_cache_config": KvCacheOptions(free_gpu_memory_fraction=0.05, dtype="fp8")})
    (problem,) = checks.check_memory(fp8_kv, L8, "none", 80, 90)
    assert "kvCacheConfig.dtype fp8" not in problem  # already in use


def test_nvfp4_weights_are_four_bits_plus_a_shared_eight_bit_scale_per_16() -> None:
    assert checks.WEIGHT_BYTES["nvfp4"] * 8 == 4 + 8 / 16
    assert (checks.WEIGHT_BYTES["none"], checks.WEIGHT_BYTES["fp8"]) == (2.0, 1.0)


def test_the_transceiver_suggested_per_fabric() -> None:
    assert checks.suggested_transceiver("efa") == "{backend: NIXL} (UCX has no EFA transport)"
    for fabric in ("infiniband", "roce", None):
        assert checks.suggested_transceiver(fabric) == "{backend: UCX} (or NIXL)"
