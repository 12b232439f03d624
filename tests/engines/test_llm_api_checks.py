"""LLM API group checks computed directly (no stack): memory figures, limits, pairing."""

from __future__ import annotations

from engines import llm_api_checks as checks
from engines.catalog import MODELS
from engines.checks import GIB
from engines.llm_api import CacheTransceiverOptions, KvCacheOptions, LlmApiOptions

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
