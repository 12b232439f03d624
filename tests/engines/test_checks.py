"""Cross-checks: memory fit, parallelism, precision support."""

from __future__ import annotations

import pytest

from engines.catalog import get_model
from engines.checks import (
    GIB,
    check_engine,
    check_fits_memory,
    check_parallelism,
    check_quantization_supported,
    estimate_memory,
    parse_sm,
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
