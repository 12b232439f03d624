"""Catalog: architecture facts and recommended settings."""

from __future__ import annotations

import pytest

from engines.catalog import GPUS, MODELS, RECOMMENDATIONS, get_gpu, get_model, recommended_spec
from engines.checks import check_engine


@pytest.mark.parametrize("key", sorted(MODELS))
def test_architecture_adds_up_to_the_published_parameter_count(key):
    model = MODELS[key]
    assert model.param_count / 1e9 == pytest.approx(model.params_b, rel=0.01)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_heads_times_head_dim_is_hidden_size(key):
    model = MODELS[key]
    assert model.num_attention_heads * model.head_dim == model.hidden_size
    assert model.num_attention_heads % model.num_kv_heads == 0


def test_llama_8b_facts():
    m = get_model("llama-3.1-8b-instruct")
    assert (m.hf_repo, m.architecture) == ("meta-llama/Llama-3.1-8B-Instruct", "LlamaForCausalLM")
    assert (m.num_layers, m.hidden_size, m.num_kv_heads, m.vocab_size) == (32, 4096, 8, 128256)


def test_llama_70b_facts():
    m = get_model("llama-3.1-70b-instruct")
    assert (m.num_layers, m.hidden_size, m.num_attention_heads, m.num_kv_heads) == (80, 8192, 64, 8)
    assert m.intermediate_size == 28672


def test_mixtral_facts():
    m = get_model("mixtral-8x7b-instruct")
    assert (m.architecture, m.hf_repo) == ("MixtralForCausalLM", "mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert (m.num_experts, m.experts_per_token, m.vocab_size) == (8, 2, 32000)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="model 'gpt-5' is not in the engine catalog .*llama-3.1-8b-instruct"):
        get_model("gpt-5")


def test_gpu_by_instance_type():
    assert get_gpu("p5.48xlarge") is GPUS["h100-80gb"]
    assert get_gpu("p5en.48xlarge") is GPUS["h200-141gb"]
    assert get_gpu("p4de.24xlarge").memory_gib == 80


@pytest.mark.parametrize(("model", "gpu"), sorted(RECOMMENDATIONS))
def test_recommendations_pass_every_check_on_their_gpu(model, gpu):
    spec = recommended_spec(model, gpu)
    info = GPUS[gpu]
    assert check_engine(spec, info.memory_gib, spec.world_size, gpu) == []
    assert spec.world_size <= 8


def test_hopper_recommendation_is_fp8_and_ampere_is_not():
    assert recommended_spec("llama-3.1-70b-instruct", "h100-80gb").quantization == "fp8"
    assert recommended_spec("llama-3.1-70b-instruct", "a100-80gb").quantization == "none"


def test_recommendation_by_instance_type_and_overrides():
    spec = recommended_spec("llama-3.1-8b-instruct", "p5.48xlarge", max_batch_size=8)
    assert (spec.quantization, spec.max_batch_size) == ("fp8", 8)


def test_no_recommendation_for_unlisted_gpu():
    with pytest.raises(KeyError, match="no recommended settings for 'llama-3.1-8b-instruct' on 'l40s-48gb'"):
        recommended_spec("llama-3.1-8b-instruct", "l40s-48gb")
