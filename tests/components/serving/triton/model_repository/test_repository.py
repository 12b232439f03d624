"""Rendered frontend/orchestrator repositories: parsed back from config.pbtxt and checked."""

from __future__ import annotations

import json

import pytest
from google.protobuf import text_format
from pydantic import ValidationError
from tritonclient.grpc import model_config_pb2 as mc

from components.serving.triton.model_repository import (
    DEFAULT_EXECUTOR_WORKER_PATH,
    EngineLimits,
    ModelRepositoryArgs,
    frontend_repository,
    orchestrator_repository,
    repository_files,
    standin_orchestrator_repository,
)
from engines.spec import EngineSpec


def parsed(repo, name: str) -> mc.ModelConfig:
    """The model's config.pbtxt as Triton would parse it."""
    text = repository_files(repo)[f"{name}/config.pbtxt"]
    return text_format.Parse(text, mc.ModelConfig())


def inputs(cfg: mc.ModelConfig) -> dict[str, mc.ModelInput]:
    return {i.name: i for i in cfg.input}


def params(cfg: mc.ModelConfig) -> dict[str, str]:
    return {k: v.string_value for k, v in cfg.parameters.items()}


def test_orchestrator_holds_only_the_real_tensorrt_llm(args):
    repo = orchestrator_repository(args)
    assert sorted(repository_files(repo)) == ["tensorrt_llm/config.pbtxt"]
    cfg = parsed(repo, "tensorrt_llm")
    assert cfg.backend == "tensorrtllm"
    assert cfg.model_transaction_policy.decoupled is True
    assert cfg.max_batch_size == args.limits.max_batch_size


def test_tensorrt_llm_parameters_use_upstream_keys(args_factory):
    args = args_factory(
        max_tokens_in_paged_kv_cache=4096, enable_kv_cache_reuse=True, kv_cache_free_gpu_mem_fraction=0.85
    )
    p = params(parsed(orchestrator_repository(args), "tensorrt_llm"))
    assert p["gpt_model_type"] == "inflight_fused_batching"
    assert p["gpt_model_path"] == "/engines/test"
    assert p["max_tokens_in_paged_kv_cache"] == "4096"
    assert p["enable_kv_cache_reuse"] == "true"
    assert p["kv_cache_free_gpu_mem_fraction"] == "0.85"
    assert p["exclude_input_in_output"] == "true"
    assert p["batch_scheduler_policy"] == "guaranteed_no_evict"
    assert p["executor_worker_path"] == DEFAULT_EXECUTOR_WORKER_PATH
    assert p["max_beam_width"] == "1"
    assert "batching_strategy" not in p  # upstream's template variable, rendered as gpt_model_type


def test_unset_optional_parameters_are_left_out(args):
    p = params(parsed(orchestrator_repository(args), "tensorrt_llm"))
    assert "max_tokens_in_paged_kv_cache" not in p
    assert "decoding_mode" not in p
    assert not any("${" in v for v in p.values())


def test_tensorrt_llm_tensors_match_upstream(args):
    cfg = parsed(orchestrator_repository(args), "tensorrt_llm")
    ins = inputs(cfg)
    assert ins["input_ids"].data_type == mc.TYPE_INT32 and list(ins["input_ids"].dims) == [-1]
    assert ins["input_ids"].allow_ragged_batch
    assert not ins["input_lengths"].optional and ins["input_lengths"].HasField("reshape")
    assert not ins["request_output_len"].optional
    assert ins["streaming"].data_type == mc.TYPE_BOOL and ins["streaming"].optional
    assert list(ins["stop_words_list"].dims) == [2, -1]
    assert ins["seed"].data_type == mc.TYPE_UINT64
    assert ins["runtime_top_p"].data_type == mc.TYPE_FP32
    outs = {o.name: o for o in cfg.output}
    assert list(outs["output_ids"].dims) == [-1, -1]
    assert list(outs["sequence_length"].dims) == [-1]


def test_dynamic_batching_prefers_the_engine_batch_size(args_factory):
    args = args_factory(max_queue_delay_microseconds=100, max_queue_size=32)
    cfg = parsed(orchestrator_repository(args), "tensorrt_llm")
    assert list(cfg.dynamic_batching.preferred_batch_size) == [args.limits.max_batch_size]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 100
    assert cfg.dynamic_batching.default_queue_policy.max_queue_size == 32


def _without(cfg: mc.ModelConfig, *fields: str) -> mc.ModelConfig:
    copy = mc.ModelConfig()
    copy.CopyFrom(cfg)
    for f in fields:
        copy.ClearField(f)
    return copy


def test_standin_config_differs_from_the_real_one_only_in_backend(args):
    real = parsed(orchestrator_repository(args), "tensorrt_llm")
    standin_repo = standin_orchestrator_repository(args)
    standin = parsed(standin_repo, "tensorrt_llm")
    assert standin.backend == "python"
    assert _without(standin, "backend") == _without(real, "backend")
    assert "tensorrt_llm/1/model.py" in repository_files(standin_repo)


def test_proxy_has_the_real_models_tensors_and_transaction_policy(args):
    real = parsed(orchestrator_repository(args), "tensorrt_llm")
    proxy = parsed(frontend_repository(args), "tensorrt_llm")
    assert proxy.backend == "python"
    assert list(proxy.input) == list(real.input)
    assert list(proxy.output) == list(real.output)
    assert proxy.model_transaction_policy.decoupled is True
    assert proxy.max_batch_size == real.max_batch_size


def test_proxy_points_at_the_orchestrator_url(args_factory):
    args = args_factory("llama-orchestrator.inference.svc:8001")
    p = params(parsed(frontend_repository(args), "tensorrt_llm"))
    assert p["orchestrator_url"] == "llama-orchestrator.inference.svc:8001"
    assert p["orchestrator_model_name"] == "tensorrt_llm"
    assert "gpt_model_path" not in p  # engine parameters stay on the orchestrator


def test_frontend_models_and_files(args):
    files = repository_files(frontend_repository(args))
    assert sorted(files) == [
        "ensemble/config.pbtxt",
        "postprocessing/1/disagg_tokenizers.py",
        "postprocessing/1/model.py",
        "postprocessing/config.pbtxt",
        "preprocessing/1/disagg_tokenizers.py",
        "preprocessing/1/model.py",
        "preprocessing/config.pbtxt",
        "tensorrt_llm/1/model.py",
        "tensorrt_llm/config.pbtxt",
        "tensorrt_llm_bls/1/model.py",
        "tensorrt_llm_bls/config.pbtxt",
    ]


def test_ensemble_wires_pre_llm_post_in_order(args):
    cfg = parsed(frontend_repository(args), "ensemble")
    assert cfg.platform == "ensemble"
    assert cfg.model_transaction_policy.decoupled is True
    steps = cfg.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["preprocessing", "tensorrt_llm", "postprocessing"]
    pre, llm, post = steps
    assert pre.input_map["QUERY"] == "text_input"
    assert pre.input_map["REQUEST_OUTPUT_LEN"] == "max_tokens"
    assert llm.input_map["input_ids"] == pre.output_map["INPUT_ID"]
    assert llm.input_map["input_lengths"] == pre.output_map["REQUEST_INPUT_LEN"]
    assert llm.input_map["stop_words_list"] == pre.output_map["STOP_WORDS_IDS"]
    assert llm.input_map["streaming"] == "stream"
    assert llm.input_map["runtime_top_k"] == "top_k"
    assert post.input_map["TOKENS_BATCH"] == llm.output_map["output_ids"]
    assert post.input_map["SEQUENCE_LENGTH"] == llm.output_map["sequence_length"]
    assert post.output_map["OUTPUT"] == "text_output"


def test_ensemble_client_tensors_match_upstream(args):
    cfg = parsed(frontend_repository(args), "ensemble")
    ins = inputs(cfg)
    for name, dtype in {
        "text_input": mc.TYPE_STRING,
        "max_tokens": mc.TYPE_INT32,
        "stream": mc.TYPE_BOOL,
        "bad_words": mc.TYPE_STRING,
        "stop_words": mc.TYPE_STRING,
        "end_id": mc.TYPE_INT32,
        "pad_id": mc.TYPE_INT32,
        "temperature": mc.TYPE_FP32,
        "top_k": mc.TYPE_INT32,
        "top_p": mc.TYPE_FP32,
    }.items():
        assert ins[name].data_type == dtype, name
    assert not ins["text_input"].optional and ins["max_tokens"].optional
    assert ins["stream"].optional
    outs = {o.name: o for o in cfg.output}
    assert outs["text_output"].data_type == mc.TYPE_STRING


def test_bls_is_decoupled_with_the_ensembles_interface(args):
    repo = frontend_repository(args)
    bls, ens = parsed(repo, "tensorrt_llm_bls"), parsed(repo, "ensemble")
    assert bls.backend == "python"
    assert bls.model_transaction_policy.decoupled is True
    assert list(bls.input) == list(ens.input)
    assert list(bls.output) == list(ens.output)
    mapping = json.loads(params(bls)["client_to_tensorrt_llm"])
    llm_step = ens.ensemble_scheduling.step[1]
    assert all(llm_step.input_map[k] == v for k, v in mapping.items())


def test_pre_and_postprocessing_carry_tokenizer_and_limits(args):
    repo = frontend_repository(args)
    pre, post = parsed(repo, "preprocessing"), parsed(repo, "postprocessing")
    assert params(pre)["tokenizer_kind"] == "bytes"
    assert params(pre)["tokenizer_dir"] == args.tokenizer.path
    assert params(pre)["max_input_len"] == str(args.limits.max_input_len)
    assert params(pre)["max_seq_len"] == str(args.limits.max_seq_len)
    assert params(post)["skip_special_tokens"] == "true"
    assert pre.max_batch_size == post.max_batch_size == args.limits.max_batch_size
    assert not pre.model_transaction_policy.decoupled


def test_limits_from_engine_spec():
    spec = EngineSpec(model="llama-3.1-8b-instruct", max_batch_size=32, max_input_len=2048, max_seq_len=4096)
    assert EngineLimits.from_engine_spec(spec) == EngineLimits(
        max_batch_size=32, max_input_len=2048, max_seq_len=4096
    )


def test_limits_within_the_engine_have_no_violations():
    spec = EngineSpec(model="m", max_batch_size=32, max_input_len=2048, max_seq_len=4096)
    assert EngineLimits(max_batch_size=16, max_input_len=1024, max_seq_len=4096).violations(spec) == []


def test_limits_beyond_the_engine_are_reported():
    spec = EngineSpec(model="m", max_batch_size=32, max_input_len=2048, max_seq_len=4096)
    problems = EngineLimits(max_batch_size=64, max_input_len=1024, max_seq_len=4096).violations(spec)
    assert problems == [
        "max_batch_size=64 exceeds the engine's max_batch_size=32: lower it to at most 32 or rebuild the engine"
    ]


def test_kv_cache_smaller_than_a_sequence_is_rejected(args_factory):
    with pytest.raises(
        ValidationError, match="maxTokensInPagedKvCache \\(16\\) is smaller than limits.maxSeqLen"
    ):
        args_factory(max_tokens_in_paged_kv_cache=16)


def test_limits_reject_input_not_shorter_than_sequence():
    with pytest.raises(ValidationError, match="maxInputLen \\(4096\\) must be smaller than maxSeqLen"):
        EngineLimits(max_batch_size=1, max_input_len=4096, max_seq_len=4096)


def test_args_read_camel_case_and_reject_unknown_keys():
    raw = {
        "limits": {"maxBatchSize": 16, "maxInputLen": 100, "maxSeqLen": 200},
        "tensorrtLlm": {"engineDir": "/e", "kvCacheFreeGpuMemFraction": 0.5},
        "frontend": {"orchestratorUrl": "o:8001"},
    }
    args = ModelRepositoryArgs.model_validate(raw)
    assert args.tensorrt_llm.kv_cache_free_gpu_mem_fraction == 0.5
    assert args.tokenizer.kind == "hf"  # production default
    with pytest.raises(ValidationError, match="maxBatchSizes"):
        ModelRepositoryArgs.model_validate({**raw, "limits": {**raw["limits"], "maxBatchSizes": 1}})


def test_default_max_tokens_reaches_preprocessing(args, args_factory):
    assert params(parsed(frontend_repository(args), "preprocessing"))["default_max_tokens"] == "40"
    without = args_factory(default_max_tokens=None)
    assert "default_max_tokens" not in params(parsed(frontend_repository(without), "preprocessing"))


def test_default_max_tokens_must_leave_room_for_the_prompt(args_factory):
    with pytest.raises(ValueError, match=r"frontend.defaultMaxTokens \(64\) must be smaller than limits.maxSeqLen \(64\)"):
        args_factory(default_max_tokens=64)
