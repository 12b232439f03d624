"""Cross-checks: memory fit, parallelism, precision support."""

from __future__ import annotations

import dataclasses

import pytest

from engines.catalog import MODELS, get_model
from engines.checks import (
    GIB,
    check_engine,
    check_fits_memory,
    check_parallelism,
    check_quantization_supported,
    estimate_memory,
    parse_sm,
    weight_bytes_per_param,
)
from engines.spec import EngineSpec

L8, L70, MIXTRAL = "llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "mixtral-8x7b-instruct"


def test_70b_bf16_on_one_80gb_gpu_is_too_large():
    (problem,) = check_fits_memory(EngineSpec(model=L70), gpu_memory_gib=80, gpus=1)
    assert problem.startswith("model too large: 'llama-3.1-70b-instruct' at bfloat16 with tpSize 1 × ppSize 1 ")
    # 70.55e9 parameters × 2 bytes = 131.4 GiB on one GPU
    assert "needs 131.4 GiB of weights per GPU" in problem
    assert "one 80 GiB GPU has 72.0 GiB usable (90%)" in problem
    assert problem.endswith(
        "raise tpSize to 2, quantize the weights (quantization: fp8 on Hopper/Ada, int4_awq on Ampere), "
        "or lower maxSeqLen/maxNumTokens"
    )


def test_70b_bf16_tp8_fits_80gb_gpus():
    assert check_fits_memory(EngineSpec(model=L70, tp_size=8), gpu_memory_gib=80, gpus=8) == []


def test_dev_stack_8b_tp4_fits_a100_40gb():
    assert check_fits_memory(EngineSpec(model=L8, tp_size=4), gpu_memory_gib=40, gpus=4) == []


def test_70b_fp8_needs_two_h100s():
    fp8 = EngineSpec(model=L70, quantization="fp8", kv_cache_dtype="fp8")
    (problem,) = check_fits_memory(fp8, 80, 1)
    assert "raise tpSize to 2, or lower maxSeqLen/maxNumTokens" in problem
    assert check_fits_memory(fp8.model_copy(update={"tp_size": 2}), 80, 2) == []


def test_gpu_count_must_match_world_size():
    (problem,) = check_fits_memory(EngineSpec(model=L8, tp_size=2), 80, 4)
    assert problem == (
        "tpSize × ppSize = 2 × 1 = 2 GPUs, but the engine is given 4: make tpSize × ppSize equal 4 "
        "or give it 2 GPUs"
    )


def test_unknown_model_is_reported():
    (problem,) = check_fits_memory(EngineSpec(model="my-model"), 80, 1)
    assert problem.startswith("model 'my-model' is not in the engine catalog (known: ")
    assert problem.endswith(": use one of them or add it to engines/catalog.py")


def test_quantization_shrinks_layer_weights_not_embeddings():
    model = get_model(L70)
    bf16 = estimate_memory(EngineSpec(model=L70), model).weights
    fp8 = estimate_memory(EngineSpec(model=L70, quantization="fp8"), model).weights
    awq = estimate_memory(EngineSpec(model=L70, quantization="int4_awq"), model).weights
    embeddings = model.embedding_params * 2
    layers = (model.param_count - model.embedding_params)
    assert bf16 == pytest.approx(layers * 2 + embeddings)
    assert fp8 == pytest.approx(layers * 1 + embeddings)
    assert awq == pytest.approx(layers * (0.5 + 2 / 128) + embeddings)


def test_kv_cache_for_one_sequence():
    model = get_model(L8)
    # 2 (K,V) × 32 layers × 8 KV heads × 128 × 2 bytes × 8192 tokens = 1 GiB
    assert estimate_memory(EngineSpec(model=L8), model).kv_min == 1 * GIB
    assert estimate_memory(EngineSpec(model=L8, kv_cache_dtype="fp8"), model).kv_min == 0.5 * GIB
    # tp 4 splits the 8 KV heads; tp 16 replicates them, one head per GPU
    assert estimate_memory(EngineSpec(model=L8, tp_size=4), model).kv_min == 0.25 * GIB
    assert estimate_memory(EngineSpec(model=L8, tp_size=16), model).kv_min == 0.125 * GIB


def test_tp_must_divide_attention_heads():
    assert check_parallelism(EngineSpec(model=L8, tp_size=3)) == [
        "tpSize (3) must divide the 32 attention heads of 'llama-3.1-8b-instruct': use one of "
        "1, 2, 4, 8, 16, 32",
        "tpSize (3) must divide the 8 KV heads of 'llama-3.1-8b-instruct' or be a multiple of them "
        "(KV heads are then replicated): use one of 1, 2, 4, 8 or a multiple of 8",
    ]


def test_tp_above_kv_heads_replicates_them():
    assert check_parallelism(EngineSpec(model=L70, tp_size=16)) == []


def test_pp_must_divide_layers():
    assert check_parallelism(EngineSpec(model=L70, pp_size=3)) == [
        "ppSize (3) must divide the 80 layers of 'llama-3.1-70b-instruct': use one of "
        "1, 2, 4, 5, 8, 10, 16, 20, 40"
    ]


def test_awq_groups_must_not_straddle_tp_shards():
    (problem,) = check_parallelism(EngineSpec(model=L8, tp_size=32, quantization="int4_awq"))
    assert problem == (
        "quantization 'int4_awq' groups weights by 128, but the MLP width 14336 split over tpSize 32 "
        "is 448 per GPU, not a multiple of 128: lower tpSize or use quantization fp8/int8_wo"
    )


def test_max_seq_len_beyond_trained_context():
    spec = EngineSpec(model=MIXTRAL, max_input_len=32768, max_seq_len=65536, max_num_tokens=8192)
    assert check_parallelism(spec) == [
        "maxSeqLen (65536) exceeds the 32768 positions 'mixtral-8x7b-instruct' was trained for: lower "
        "maxSeqLen to at most 32768"
    ]


def test_fp8_needs_hopper_or_ada():
    spec = EngineSpec(model=L8, quantization="fp8")
    assert check_quantization_supported(spec, "ampere") == [
        "quantization 'fp8' needs Ada/Hopper (sm89) or newer, not ampere (sm80): use quantization: "
        "int8_sq or int4_awq, or Hopper GPUs (p5/p5e)"
    ]
    assert check_quantization_supported(spec, "hopper") == []
    assert check_quantization_supported(spec, "sm_89") == []


def test_w4a8_on_a100_suggests_int4_awq():
    (problem,) = check_quantization_supported(EngineSpec(model=L8, quantization="w4a8_awq"), "p4d.24xlarge")
    assert problem.startswith("quantization 'w4a8_awq' needs Ada/Hopper (sm89) or newer, not p4d.24xlarge (sm80)")
    assert "use quantization: int4_awq" in problem


def test_fp8_kv_cache_on_ampere():
    assert check_quantization_supported(EngineSpec(model=L8, kv_cache_dtype="fp8"), "a100-80gb") == [
        "kvCacheDtype 'fp8' needs Ada/Hopper (sm89+), not a100-80gb (sm80): use kvCacheDtype: int8 or auto"
    ]


def test_int4_awq_runs_on_ampere():
    assert check_quantization_supported(EngineSpec(model=L8, quantization="int4_awq"), "sm80") == []


def test_bf16_needs_ampere():
    assert check_quantization_supported(EngineSpec(model=L8), "turing") == [
        "dtype 'bfloat16' needs Ampere (sm80) or newer, not turing (sm75): use dtype: float16"
    ]


def test_unrecognised_arch():
    (problem,) = check_quantization_supported(EngineSpec(model=L8), "kepler")
    assert problem.startswith("GPU architecture 'kepler' is not recognised: give an architecture")


@pytest.mark.parametrize(
    ("text", "sm"),
    [("hopper", 90), ("sm90", 90), ("sm_89", 89), ("9.0", 90), ("10.0", 100), ("h200-141gb", 90),
     ("p4de.24xlarge", 80), ("blackwell", 100), ("nonsense", None)],
)
def test_parse_sm(text, sm):
    assert parse_sm(text) == sm


def test_check_engine_combines_all():
    spec = EngineSpec(model=L70, quantization="fp8", pp_size=3)
    problems = check_engine(spec, 80, 3, "ampere")
    assert [p.split(" ")[0] for p in problems] == ["ppSize", "quantization"]


# --- every rule at its boundary (issue 26: the mutants these kill are named in each docstring) ---


@pytest.mark.parametrize(
    ("dtype", "quantization", "per_param"),
    [("bfloat16", "none", 2.0), ("float16", "none", 2.0), ("bfloat16", "fp8", 1.0),
     ("bfloat16", "int8_sq", 1.0), ("bfloat16", "int8_wo", 1.0), ("bfloat16", "int4_wo", 0.5),
     # 4 bits + one 16-bit scale per group of 128: 0.5 + 2/128
     ("bfloat16", "int4_awq", 0.515625), ("bfloat16", "w4a8_awq", 0.515625)],
)
def test_weight_bytes_per_param_of_every_precision(dtype, quantization, per_param):
    assert weight_bytes_per_param(EngineSpec(model=L8, dtype=dtype, quantization=quantization)) == per_param


def test_memory_estimate_of_an_fp16_engine_split_over_tp_and_pp():
    """70B at float16, tp 2 × pp 2, 4 sequences × 2 beams, 2048 tokens per step, 4096-token sequences.

    Layer parameters: 80 × (2 × 8192² + 2 × 8192 × 1024 + 3 × 8192 × 28672 + 2 × 8192) + 8192
    = 68 452 360 192. Embedding table 128256 × 8192 = 1 050 673 152.
    weights = 68 452 360 192 × 2 B / 4 + table × 2 B (input embedding) + table × 2 B / 2 (LM head)
            = 34 226 180 096 + 2 101 346 304 + 1 050 673 152 = 37 378 199 552
    kv_min  = 2 (K, V) × 40 layers × 4 KV heads × 128 × 2 B × 4096 tokens = 335 544 320
    activations = 2048 × 2 B × (4 × 8192 + 2 × 28672 / 2) + 4 × 2 × 128256 / 2 × 4 B (fp32 logits)
                = 251 658 240 + 2 052 096 = 253 710 336
    overhead = 2.5 GiB = 2 684 354 560
    """
    spec = EngineSpec(model=L70, dtype="float16", tp_size=2, pp_size=2, max_batch_size=4, max_beam_width=2,
                      max_num_tokens=2048, max_input_len=2048, max_seq_len=4096)
    est = estimate_memory(spec, get_model(L70))
    assert (est.weights, est.kv_min, est.activations, est.overhead) == (
        37_378_199_552, 335_544_320, 253_710_336, 2_684_354_560)
    assert est.total == 40_651_808_768


def test_activations_count_the_experts_a_token_is_routed_to():
    """Mixtral: 8192 tokens × 2 B × (4 × 4096 + 2 × 14336 × 2 experts) + 64 × 32000 × 4 B
    = 1 207 959 552 + 8 192 000."""
    assert estimate_memory(EngineSpec(model=MIXTRAL), get_model(MIXTRAL)).activations == 1_216_151_552


def test_tied_embeddings_keep_one_table():
    """No LM head of its own: 6 979 588 096 layer parameters × 2 B + one 525 336 576 table × 2 B."""
    tied = dataclasses.replace(get_model(L8), key="tied-8b", tie_word_embeddings=True)
    assert estimate_memory(EngineSpec(model=L8), tied).weights == 15_009_849_344


def test_int8_kv_cache_takes_one_byte_per_element():
    assert estimate_memory(EngineSpec(model=L8, kv_cache_dtype="int8"), get_model(L8)).kv_min == 0.5 * GIB


# 8B at bf16, tp 1: 16 060 522 496 weights + 1 GiB KV + 771 031 040 activations + 2.5 GiB
# = 20 589 649 920 bytes = 19.17560577392578 GiB, which is 90% of this GPU exactly
L8_EXACT_GIB = 21.306228637695312
# 70B at bf16 on tp 2 needs 76 653 961 216 bytes = 90% of this GPU exactly
L70_TP2_EXACT_GIB = 79.32173834906683


def test_an_engine_needing_exactly_the_usable_memory_fits():
    assert L8_EXACT_GIB * 0.9 * GIB == 20_589_649_920
    assert check_fits_memory(EngineSpec(model=L8), L8_EXACT_GIB, 1) == []
    (problem,) = check_fits_memory(EngineSpec(model=L8), 21.3, 1)
    assert " = 19.2 GiB, but one 21.3 GiB GPU has 19.2 GiB usable (90%): " in problem


@pytest.mark.parametrize(
    ("gpu_gib", "fix"),
    [(L70_TP2_EXACT_GIB, "raise tpSize to 2"), (48, "raise tpSize to 4"), (24, "raise tpSize to 8"),
     (16, "raise tpSize to 16"), (12, "add pipeline stages (ppSize)")],
)
def test_the_suggested_tp_is_the_smallest_that_fits(gpu_gib, fix):
    """70B bf16 per GPU: 71.4 GiB on tp 2, 38.2 on 4, 21.6 on 8, 13.4 on 16."""
    (problem,) = check_fits_memory(EngineSpec(model=L70), gpu_gib, 1)
    assert problem.split("(90%): ")[1] == (
        f"{fix}, quantize the weights (quantization: fp8 on Hopper/Ada, int4_awq on Ampere), "
        "or lower maxSeqLen/maxNumTokens"
    )


def test_no_tp_is_suggested_that_does_not_divide_the_attention_heads(monkeypatch):
    """A 40-head 70B fits 16 GiB GPUs only on tp 16 (12.9 GiB), which does not divide 40 heads."""
    forty = dataclasses.replace(get_model(L70), key="forty-heads", num_attention_heads=40)
    monkeypatch.setitem(MODELS, "forty-heads", forty)
    (problem,) = check_fits_memory(EngineSpec(model="forty-heads"), 16, 1)
    assert problem.split("(90%): ")[1].startswith("add pipeline stages (ppSize), quantize the weights")


def test_a_too_large_pipelined_engine_keeps_its_pp_in_the_fix():
    assert check_fits_memory(EngineSpec(model=L70, pp_size=2), 40, 2) == [
        "model too large: 'llama-3.1-70b-instruct' at bfloat16 with tpSize 1 × ppSize 2 needs 67.7 GiB of "
        "weights per GPU + 1.2 GiB KV cache for one 8192-token sequence + 1.4 GiB activations + 2.5 GiB "
        "runtime = 72.8 GiB, but one 40 GiB GPU has 36.0 GiB usable (90%): raise tpSize to 4 (with ppSize 2), "
        "quantize the weights (quantization: fp8 on Hopper/Ada, int4_awq on Ampere), or lower "
        "maxSeqLen/maxNumTokens"
    ]


def test_a_too_large_quantized_engine_names_its_quantization():
    assert check_fits_memory(EngineSpec(model=L70, quantization="fp8"), 80, 1) == [
        "model too large: 'llama-3.1-70b-instruct' at fp8 with tpSize 1 × ppSize 1 needs 67.7 GiB of weights "
        "per GPU + 2.5 GiB KV cache for one 8192-token sequence + 1.4 GiB activations + 2.5 GiB runtime = "
        "74.1 GiB, but one 80 GiB GPU has 72.0 GiB usable (90%): raise tpSize to 2, or lower "
        "maxSeqLen/maxNumTokens"
    ]


def test_unknown_model_in_the_parallelism_check():
    (problem,) = check_parallelism(EngineSpec(model="my-model"))
    assert problem.startswith("model 'my-model' is not in the engine catalog (known: llama-3.1-70b-instruct, ")


def test_divisors_listed_go_up_to_64(monkeypatch):
    (heads, _) = check_parallelism(EngineSpec(model=L70, tp_size=3))
    assert heads.endswith("64 attention heads of 'llama-3.1-70b-instruct': use one of 1, 2, 4, 8, 16, 32, 64")
    odd = dataclasses.replace(get_model(L8), key="65-layers", num_layers=65)
    monkeypatch.setitem(MODELS, "65-layers", odd)
    assert check_parallelism(EngineSpec(model="65-layers", pp_size=2)) == [
        "ppSize (2) must divide the 65 layers of '65-layers': use one of 1, 5, 13"
    ]


def test_tp_above_the_kv_heads_must_be_a_multiple_of_them():
    assert check_parallelism(EngineSpec(model=L70, tp_size=12))[1] == (
        "tpSize (12) must divide the 8 KV heads of 'llama-3.1-70b-instruct' or be a multiple of them "
        "(KV heads are then replicated): use one of 1, 2, 4, 8 or a multiple of 8"
    )


def test_awq_shards_that_are_whole_groups_pass():
    assert check_parallelism(EngineSpec(model=L8, tp_size=2, quantization="w4a8_awq")) == []


def test_max_seq_len_may_equal_the_trained_context():
    spec = EngineSpec(model=MIXTRAL, max_input_len=4096, max_seq_len=32768)
    assert check_parallelism(spec) == []


def test_parse_sm_of_an_int_and_of_pre_ampere_names():
    assert parse_sm(90) == 90
    assert parse_sm(" Volta ") == 70
    assert parse_sm("turing") == 75
    assert check_quantization_supported(EngineSpec(model=L8, quantization="fp8"), 89) == []


@pytest.mark.parametrize(
    ("quantization", "need", "arch", "alternative"),
    [("int8_sq", 80, "Ampere", "none"), ("int8_wo", 80, "Ampere", "none"), ("int4_wo", 80, "Ampere", "none"),
     ("int4_awq", 80, "Ampere", "none"), ("fp8", 89, "Ada/Hopper", "int8_sq or int4_awq"),
     ("w4a8_awq", 89, "Ada/Hopper", "int4_awq")],
)
def test_each_quantization_needs_its_sm_exactly(quantization, need, arch, alternative):
    spec = EngineSpec(model=L8, dtype="float16", quantization=quantization)
    assert check_quantization_supported(spec, need) == []
    assert check_quantization_supported(spec, need - 1) == [
        f"quantization '{quantization}' needs {arch} (sm{need}) or newer, not {need - 1} (sm{need - 1}): "
        f"use quantization: {alternative}, or Hopper GPUs (p5/p5e)"
    ]


def test_bf16_and_fp8_kv_cache_at_their_sm_boundaries():
    assert check_quantization_supported(EngineSpec(model=L8), "sm_79") == [
        "dtype 'bfloat16' needs Ampere (sm80) or newer, not sm_79 (sm79): use dtype: float16"
    ]
    fp8_kv = EngineSpec(model=L8, kv_cache_dtype="fp8")
    assert check_quantization_supported(fp8_kv, "ada") == []
    assert check_quantization_supported(fp8_kv, 88) == [
        "kvCacheDtype 'fp8' needs Ada/Hopper (sm89+), not 88 (sm88): use kvCacheDtype: int8 or auto"
    ]


def test_check_engine_lists_parallelism_then_memory_then_precision():
    spec = EngineSpec(model=L70, tp_size=3)
    problems = check_engine(spec, 40, 3, "volta")
    assert [p.split(" ")[0] for p in problems] == ["tpSize", "tpSize", "model", "dtype"]
    assert problems[2].endswith("one 40 GiB GPU has 36.0 GiB usable (90%): raise tpSize to 8, quantize the "
                                "weights (quantization: fp8 on Hopper/Ada, int4_awq on Ampere), or lower "
                                "maxSeqLen/maxNumTokens")
    assert check_engine(spec, 40, 3) == problems[:3]


def test_check_engine_reports_an_unknown_model_once():
    (unknown, bf16) = check_engine(EngineSpec(model="my-model"), 80, 1, "volta")
    assert unknown.startswith("model 'my-model' is not in the engine catalog")
    assert bf16 == "dtype 'bfloat16' needs Ampere (sm80) or newer, not volta (sm70): use dtype: float16"
