"""LLM API options rendered for trtllm-serve, checked against upstream's key table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import StackConfig, load_stack_config
from disaggctl.synth.program import read_stack_config
from engines.llm_api import (
    GROUP_ROLES,
    CacheTransceiverOptions,
    CudaGraphOptions,
    KvCacheOptions,
    LlmApiOptions,
    llm_api_options,
    llm_api_yaml,
)

DATA = Path(__file__).parent / "data"
PROJECT_DIR = Path(__file__).resolve().parents[2]
KEYS = json.loads((DATA / "llm_args_keys.json").read_text())
NESTED = {"kv_cache_config": "KvCacheConfig", "cuda_graph_config": "CudaGraphConfig",
          "cache_transceiver_config": "CacheTransceiverConfig"}


def _matches(value: Any, spec: str) -> bool:
    for alternative in spec.split("|"):
        kind, _, rest = alternative.partition(":")
        if kind == "any":
            return True
        if kind == "null" and value is None:
            return True
        if kind == "bool" and isinstance(value, bool):
            return True
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if kind == "str" and isinstance(value, str):
            return True
        if kind in ("dict", "object") and isinstance(value, dict):
            return True
        if kind == "literal" and isinstance(value, str) and value in rest.split(","):
            return True
        if kind.startswith("list[") and isinstance(value, list):
            inner = kind[5:-1]
            if all(_matches(v, inner) for v in value):
                return True
    return False


def problems_against_upstream(rendered: dict[str, Any], cls: str = "TorchLlmArgs", prefix: str = "") -> list[str]:
    """Every key and value of ``rendered`` against the key table, recursively into nested configs."""
    table = KEYS[cls]
    problems = []
    for key, value in rendered.items():
        path = f"{prefix}{key}"
        if key not in table:
            problems.append(f"{path}: not a field of {cls}")
            continue
        if not _matches(value, table[key]):
            problems.append(f"{path}: {value!r} does not match {table[key]}")
        nested = NESTED.get(key) if cls == "TorchLlmArgs" else None
        if nested and isinstance(value, dict):
            problems += problems_against_upstream(value, nested, f"{path}.")
    return problems


def stack(name: str) -> StackConfig:
    _, raw, _ = read_stack_config(PROJECT_DIR, name)
    return load_stack_config(raw)


RENDERED = [
    (f"{name}/{d.name}/{group_role}", g.llm_api, GROUP_ROLES[group_role])
    for name in ("dev", "prod")
    for d in stack(name).deployments
    if d.runtime == "llmapi"
    for group_role, g in d.worker_groups().items()
]


def test_the_stacks_render_every_role() -> None:
    assert {role for _, _, role in RENDERED} == {"aggregated", "context", "generation"}
    # dev workers; prod llama-70b and llama-70b-pd each as prefill + decode (their planned layouts)
    assert [(name, role) for name, _, role in RENDERED] == [
        ("dev/llama-8b/workers", "aggregated"),
        ("prod/llama-70b/prefill", "context"),
        ("prod/llama-70b/decode", "generation"),
        ("prod/llama-70b-pd/prefill", "context"),
        ("prod/llama-70b-pd/decode", "generation"),
    ]


@pytest.mark.parametrize(("options", "role"), [r[1:] for r in RENDERED], ids=[r[0] for r in RENDERED])
def test_stack_yaml_uses_only_upstream_keys_and_types(options: LlmApiOptions, role) -> None:
    text = llm_api_yaml(options, role=role)
    parsed = yaml.safe_load(text)
    assert parsed == llm_api_options(options, role=role)
    assert problems_against_upstream(parsed) == []


def test_the_key_table_catches_a_wrong_key_and_type() -> None:
    assert problems_against_upstream({"max_batch_sise": 8, "kv_cache_config": {"dtype": "int4"}}) == [
        "max_batch_sise: not a field of TorchLlmArgs",
        "kv_cache_config.dtype: 'int4' does not match literal:auto,fp8,fp8_ds_mla,nvfp4,float16,bfloat16,float32",
    ]


def test_key_table_names_its_source() -> None:
    source = KEYS["source"]
    assert (source["repository"], source["path"]) == ("NVIDIA/TensorRT-LLM", "tensorrt_llm/llmapi/llm_args.py")
    assert len(source["commit"]) == 40
    assert "tensor_parallel_size" in KEYS["TorchLlmArgs"] and "disable_overlap_scheduler" in KEYS["TorchLlmArgs"]
    assert KEYS["CacheTransceiverConfig"]["backend"] == "literal:DEFAULT,UCX,NIXL,MOONCAKE,MPI|null"


def test_dev_yaml_is_byte_stable() -> None:
    (_, options, _), = [r for r in RENDERED if r[0].startswith("dev/")]
    assert llm_api_yaml(options, role="aggregated") == (
        "# trtllm-serve --extra_llm_api_options, role aggregated (generated)\n"
        "tensor_parallel_size: 2\n"
        "pipeline_parallel_size: 1\n"
        "enable_attention_dp: false\n"
        "max_batch_size: 64\n"
        "max_num_tokens: 4096\n"
        "max_seq_len: 8192\n"
        "kv_cache_config:\n"
        "  free_gpu_memory_fraction: 0.9\n"
        "  enable_block_reuse: true\n"
        '  dtype: "auto"\n'
        "  tokens_per_block: 32\n"
        "enable_chunked_prefill: true\n"
        "disable_overlap_scheduler: false\n"
        "enable_iter_perf_stats: true\n"
        "return_perf_metrics: true\n"
        "cuda_graph_config:\n"
        "  enable_padding: true\n"
        "  max_batch_size: 64\n"
    )


def test_context_and_generation_carry_a_transceiver_and_aggregated_does_not() -> None:
    options = LlmApiOptions()
    assert "cache_transceiver_config" not in llm_api_options(options, role="aggregated")
    assert llm_api_options(options, role="context")["cache_transceiver_config"] == {"backend": "UCX"}
    configured = LlmApiOptions(cache_transceiver_config=CacheTransceiverOptions(backend="NIXL", max_tokens_in_buffer=4096))
    assert llm_api_options(configured, role="generation")["cache_transceiver_config"] == {
        "backend": "NIXL", "max_tokens_in_buffer": 4096,
    }


def test_overlap_scheduler_is_off_on_context_servers_by_default() -> None:
    options = LlmApiOptions()
    assert llm_api_options(options, role="context")["disable_overlap_scheduler"] is True
    assert llm_api_options(options, role="generation")["disable_overlap_scheduler"] is False
    forced = LlmApiOptions(disable_overlap_scheduler=True)
    assert llm_api_options(forced, role="aggregated")["disable_overlap_scheduler"] is True


def test_cuda_graphs_follow_the_batch_size_unless_given() -> None:
    assert llm_api_options(LlmApiOptions(max_batch_size=96), role="aggregated")["cuda_graph_config"] == {
        "enable_padding": True, "max_batch_size": 96,
    }
    explicit = LlmApiOptions(cuda_graph_config=CudaGraphOptions(batch_sizes=(16, 1, 8)))
    assert llm_api_options(explicit, role="aggregated")["cuda_graph_config"] == {
        "enable_padding": True, "batch_sizes": [1, 8, 16],
    }
    assert llm_api_options(LlmApiOptions(cuda_graph_config=None), role="context")["cuda_graph_config"] is None


def test_expert_parallelism_is_rendered_only_when_set() -> None:
    assert "moe_expert_parallel_size" not in llm_api_options(LlmApiOptions(), role="aggregated")
    assert llm_api_options(LlmApiOptions(moe_expert_parallel_size=4), role="aggregated")["moe_expert_parallel_size"] == 4


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role 'prefill' is not one of aggregated, context, generation"):
        llm_api_options(LlmApiOptions(), role="prefill")  # type: ignore[arg-type]


def test_options_read_camel_case_and_refuse_unknown_keys() -> None:
    options = LlmApiOptions.model_validate({"tensorParallelSize": 2, "kvCacheConfig": {"tokensPerBlock": 64}})
    assert (options.tensor_parallel_size, options.kv_cache_config.tokens_per_block) == (2, 64)
    with pytest.raises(ValueError, match="maxBatchSise"):
        LlmApiOptions.model_validate({"maxBatchSise": 2})


def test_tokens_per_block_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match=r"tokensPerBlock \(48\) must be a power of two between 8 and 256"):
        KvCacheOptions(tokens_per_block=48)


def test_cuda_graph_sizes_must_agree() -> None:
    with pytest.raises(ValueError, match=r"maxBatchSize \(32\) must equal max\(batchSizes\) \(16\)"):
        CudaGraphOptions(max_batch_size=32, batch_sizes=(1, 16))
