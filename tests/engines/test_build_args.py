"""argv builders against the flags upstream's parsers accept (tests/engines/data/*_flags.txt)."""

from __future__ import annotations

import pytest

from engines import build_args
from engines.spec import EngineSpec

L8 = "llama-3.1-8b-instruct"


def dump(**fields) -> dict:
    return EngineSpec(model=fields.pop("model", L8), **fields).model_dump(mode="json")


SPECS = {
    "default": dump(),
    "tp8-70b": dump(model="llama-3.1-70b-instruct", tp_size=8, max_batch_size=32),
    "fp8": dump(quantization="fp8", kv_cache_dtype="fp8"),
    "fp8-disable-gemm": dump(quantization="fp8", gemm_plugin="disable", multiple_profiles=True),
    "awq-fp16": dump(dtype="float16", quantization="int4_awq", use_fused_mlp=False),
    "pp2": dump(tp_size=2, pp_size=2, tokens_per_block=64, max_beam_width=2),
}


def test_upstream_parser_rejects_unknown_flags(parse_flags):
    with pytest.raises(ValueError, match="unrecognized arguments: --paged_context_fmha"):
        parse_flags("trtllm_build_flags.txt", ["--paged_context_fmha", "enable"])
    with pytest.raises(ValueError, match="invalid choice: 'yes'"):
        parse_flags("trtllm_build_flags.txt", ["--use_fused_mlp", "yes"])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_trtllm_build_argv_is_accepted_upstream(name, parse_flags):
    argv = build_args.trtllm_build_argv(SPECS[name], "/w/ckpt", "/w/engine", workers=4)
    assert argv[0] == "trtllm-build"
    args = parse_flags("trtllm_build_flags.txt", argv[1:])
    spec = SPECS[name]
    assert (args.checkpoint_dir, args.output_dir, args.workers) == ("/w/ckpt", "/w/engine", 4)
    assert (args.max_batch_size, args.max_input_len, args.max_seq_len, args.max_num_tokens) == (
        spec["max_batch_size"], spec["max_input_len"], spec["max_seq_len"], spec["max_num_tokens"]
    )
    assert (args.max_beam_width, args.tokens_per_block) == (spec["max_beam_width"], spec["tokens_per_block"])


def test_trtllm_build_production_options(parse_flags):
    args = parse_flags("trtllm_build_flags.txt", build_args.trtllm_build_argv(SPECS["default"], "c", "e")[1:])
    assert args.kv_cache_type == "paged"
    assert args.paged_kv_cache is None  # deprecated upstream; kv_cache_type replaces it
    assert (args.gemm_plugin, args.gpt_attention_plugin) == ("bfloat16", "bfloat16")
    assert (args.remove_input_padding, args.context_fmha, args.use_paged_context_fmha) == ("enable",) * 3
    assert (args.use_fused_mlp, args.multiple_profiles, args.use_fp8_context_fmha) == ("enable", "disable", "disable")


def test_fp8_context_fmha_only_with_fp8_weights_and_kv_cache(parse_flags):
    def fp8_context(spec):
        return parse_flags("trtllm_build_flags.txt", build_args.trtllm_build_argv(spec, "c", "e")[1:]).use_fp8_context_fmha

    assert fp8_context(SPECS["fp8"]) == "enable"
    assert fp8_context(SPECS["fp8-disable-gemm"]) == "disable"


def test_explicit_plugin_settings_pass_through(parse_flags):
    args = parse_flags("trtllm_build_flags.txt", build_args.trtllm_build_argv(SPECS["fp8-disable-gemm"], "c", "e")[1:])
    assert (args.gemm_plugin, args.multiple_profiles) == ("disable", "enable")
    args = parse_flags("trtllm_build_flags.txt", build_args.trtllm_build_argv(SPECS["awq-fp16"], "c", "e")[1:])
    assert (args.gemm_plugin, args.gpt_attention_plugin, args.use_fused_mlp) == ("float16", "float16", "disable")


@pytest.mark.parametrize("architecture", ["LlamaForCausalLM", "MixtralForCausalLM"])
def test_unquantized_conversion_uses_llama_converter(architecture, parse_flags):
    argv = build_args.convert_argv(SPECS["pp2"], architecture, "/hf/m", "/w/ckpt", "/app/examples", workers=4)
    assert argv[:2] == ["python3", "/app/examples/models/core/llama/convert_checkpoint.py"]
    args = parse_flags("llama_convert_checkpoint_flags.txt", argv[2:])
    assert (args.model_dir, args.output_dir, args.dtype) == ("/hf/m", "/w/ckpt", "bfloat16")
    assert (args.tp_size, args.pp_size, args.workers) == (2, 2, 4)


@pytest.mark.parametrize(
    ("name", "qformat", "kv"), [("fp8", "fp8", "fp8"), ("fp8-disable-gemm", "fp8", None), ("awq-fp16", "int4_awq", None)]
)
def test_quantized_conversion_uses_modelopt_quantize(name, qformat, kv, parse_flags):
    argv = build_args.convert_argv(SPECS[name], "LlamaForCausalLM", "/hf/m", "/w/ckpt", "/x/examples")
    assert argv[:2] == ["python3", "/x/examples/quantization/quantize.py"]
    args = parse_flags("quantize_flags.txt", argv[2:])
    assert (args.qformat, args.kv_cache_dtype, args.dtype) == (qformat, kv, SPECS[name]["dtype"])
    assert (args.model_dir, args.output_dir, args.tp_size, args.pp_size) == ("/hf/m", "/w/ckpt", 1, 1)


def test_quantized_kv_cache_alone_keeps_full_precision_weights(parse_flags):
    argv = build_args.convert_argv(dump(kv_cache_dtype="int8"), "LlamaForCausalLM", "m", "o")
    args = parse_flags("quantize_flags.txt", argv[2:])
    assert (args.qformat, args.kv_cache_dtype) == ("full_prec", "int8")


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="architecture 'GPT2LMHeadModel' has no checkpoint converter here"):
        build_args.convert_argv(SPECS["default"], "GPT2LMHeadModel", "m", "o")


def test_expected_engine_files_one_per_rank():
    assert build_args.expected_engine_files(SPECS["pp2"]) == [
        "config.json", "rank0.engine", "rank1.engine", "rank2.engine", "rank3.engine"
    ]


def test_download_skips_original_pth_weights():
    argv = build_args.download_argv("meta-llama/Llama-3.1-8B-Instruct", "/models/hf/x")
    assert argv[:2] == ["python3", "-c"]
    compile(argv[2], "<download>", "exec")
    assert argv[3:5] == ["meta-llama/Llama-3.1-8B-Instruct", "/models/hf/x"]
    assert "*.safetensors" in argv[5:] and not any("pth" in p or "original" in p for p in argv[5:])
