"""EngineSpec: production defaults, validation messages, content hash."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from engines.spec import EngineSpec

MODEL = "llama-3.1-8b-instruct"


def error_of(**fields) -> str:
    with pytest.raises(ValidationError) as info:
        EngineSpec(model=MODEL, **fields)
    (error,) = info.value.errors()
    return error["msg"].removeprefix("Value error, ")


def test_defaults_are_in_flight_batching_settings():
    spec = EngineSpec(model=MODEL)
    assert (spec.paged_kv_cache, spec.remove_input_padding, spec.use_paged_context_fmha) == (True, True, True)
    assert spec.kv_cache_type == "paged"
    assert spec.resolved_gemm_plugin() == "bfloat16"
    assert spec.resolved_attention_plugin() == "bfloat16"


def test_camel_case_keys_are_read():
    spec = EngineSpec.model_validate(
        {"model": MODEL, "tpSize": 2, "kvCacheDtype": "fp8", "gemmPlugin": "disable", "tokensPerBlock": 64}
    )
    assert (spec.tp_size, spec.kv_cache_dtype, spec.gemm_plugin, spec.tokens_per_block) == (2, "fp8", "disable", 64)


def test_world_size_is_tp_times_pp():
    assert EngineSpec(model=MODEL, tp_size=4, pp_size=2).world_size == 8


def test_paged_kv_cache_off_is_rejected():
    assert error_of(paged_kv_cache=False) == (
        "pagedKvCache is false, but Triton's in-flight batching needs a paged KV cache: "
        "set pagedKvCache: true"
    )


def test_padding_kept_is_rejected():
    assert error_of(remove_input_padding=False) == (
        "removeInputPadding is false, but Triton's in-flight batching needs packed inputs: "
        "set removeInputPadding: true"
    )


def test_paged_context_fmha_needs_context_fmha():
    assert error_of(context_fmha=False) == (
        "usePagedContextFmha is true but contextFmha is false: paged context FMHA runs on the "
        "fused attention kernels, set contextFmha: true or usePagedContextFmha: false"
    )


def test_chunked_context_needs_paged_context_fmha():
    assert error_of(max_num_tokens=2048, max_input_len=4096, use_paged_context_fmha=False) == (
        "maxNumTokens (2048) is smaller than maxInputLen (4096), so long prompts must be chunked, "
        "which needs usePagedContextFmha: true; enable it or raise maxNumTokens to at least 4096"
    )


def test_small_max_num_tokens_is_fine_with_chunked_context():
    assert EngineSpec(model=MODEL, max_num_tokens=2048, max_input_len=4096).max_num_tokens == 2048


def test_fp8_gemm_plugin_needs_fp8_weights():
    assert error_of(gemm_plugin="fp8") == (
        "gemmPlugin 'fp8' needs quantization 'fp8' (it is 'none'): set gemmPlugin: auto or quantization: fp8"
    )


def test_plugin_dtype_must_match_model_dtype():
    assert error_of(gpt_attention_plugin="float16") == (
        "gptAttentionPlugin 'float16' differs from dtype 'bfloat16': set gptAttentionPlugin: auto "
        "(it follows dtype)"
    )


def test_tokens_per_block_power_of_two():
    assert error_of(tokens_per_block=48) == (
        "tokensPerBlock (48) must be a power of two between 8 and 256: use 32 or 64"
    )


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValidationError) as info:
        EngineSpec(model=MODEL, paged_kv_cache=False, tokens_per_block=48)
    message = info.value.errors()[0]["msg"]
    assert "pagedKvCache is false" in message and "tokensPerBlock (48)" in message


def test_unknown_key_is_rejected():
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        EngineSpec.model_validate({"model": MODEL, "pagedContextFmha": True})


def test_content_hash_is_16_hex_and_independent_of_spelling():
    from_yaml = EngineSpec.model_validate({"model": MODEL, "tpSize": 4, "maxBatchSize": 32})
    from_python = EngineSpec(max_batch_size=32, tp_size=4, model=MODEL)
    assert re.fullmatch(r"[0-9a-f]{16}", from_yaml.content_hash())
    assert from_yaml.content_hash() == from_python.content_hash()


@pytest.mark.parametrize(
    "change",
    [
        {"tp_size": 2},
        {"dtype": "float16"},
        {"quantization": "fp8"},
        {"kv_cache_dtype": "fp8"},
        {"max_seq_len": 16384},
        {"gemm_plugin": "disable"},
        {"tokens_per_block": 64},
        {"checkpoint": "/models/hf/llama"},
    ],
)
def test_content_hash_changes_with_any_field(change):
    base = EngineSpec(model=MODEL)
    assert base.model_copy(update=change).content_hash() != base.content_hash()
    assert EngineSpec(model=MODEL, **change).content_hash() != base.content_hash()
