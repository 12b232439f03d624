"""What the images carry (images.*Features) against what the stack asks of them."""

from __future__ import annotations

import pytest

from components.config.errors import ConfigError
from components.config.loader import load_stack_config

STOCK = "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"


def problems_of(config) -> list[str]:
    try:
        load_stack_config(config.raw)
    except ConfigError as err:
        return [line.removeprefix("  - ") for line in str(err).splitlines()[1:]]
    return []


def test_prod_as_shipped_names_a_worker_image_that_carries_the_plugin(prod_config) -> None:
    config = load_stack_config(prod_config.raw)
    assert "nixl-libfabric" in config.images.trtllm_features
    assert not config.images.trtllm.startswith("nvcr.io/nvidia/tensorrt-llm/release")
    assert config.images.llmapi_tiers_image() == config.images.tiers and "uvloop" in config.images.tiers_features
    assert config.trtllm_generation() == "1.2"


def test_the_stock_image_with_nixl_on_efa_is_refused_in_one_line(prod_config) -> None:
    prod_config.set("images", {"trtllm": STOCK})
    assert problems_of(prod_config) == [
        "disagg:deployments[0].prefill.llmApi.cacheTransceiverConfig.backend: NIXL on EFA needs libfabric and NIXL's "
        f"LIBFABRIC plugin, which images.trtllm '{STOCK}' is not declared to carry (images.trtllmFeatures lacks "
        "'nixl-libfabric'; the stock release image never does): build images/worker/Dockerfile, set images.trtllm to "
        "it and images.trtllmFeatures: [nixl-libfabric]"
    ]


def test_the_stock_image_cannot_be_declared_to_carry_the_plugin(prod_config) -> None:
    prod_config.set("images", {"trtllm": STOCK, "trtllmFeatures": ["nixl-libfabric"]})
    (problem,) = problems_of(prod_config)
    assert problem.startswith("disagg:images.trtllmFeatures: ['nixl-libfabric'] declared for the stock image")


def test_a_release_without_libfabric_selection_is_refused_citing_the_row(prod_config) -> None:
    images = prod_config.section("images")
    prod_config.set("images", {**images, "trtllmVersion": "1.1.0"})
    (problem,) = problems_of(prod_config)
    assert "TensorRT-LLM 1.1" in problem and "runtime/capabilities.py row 1.1.nixl_backends" in problem


@pytest.mark.parametrize("version", ["1.2.1", "1.3.0rc24"])
def test_kv_transfer_timeout_option_follows_the_table(prod_config, version) -> None:
    prod_config.set("images", {**prod_config.section("images"), "trtllmVersion": version})
    deployments = prod_config.section("deployments")
    deployments[0]["decode"]["llmApi"]["cacheTransceiverConfig"]["kvTransferTimeoutMs"] = 30000
    prod_config.set("deployments", deployments)
    found = [p for p in problems_of(prod_config) if "kvTransferTimeoutMs" in p]
    if version.startswith("1.2"):
        assert found == [
            "disagg:deployments[0].decode.llmApi.cacheTransceiverConfig.kvTransferTimeoutMs: 30000 is not an option of "
            "TensorRT-LLM 1.2 (runtime/capabilities.py row 1.2.kv_transfer_timeout_ms (release branch not read here; a "
            "1.1/1.2-era llm_args.py copy has it (default None) but no release file was read: treated absent)): remove "
            "it or use a newer images.trtllm"
        ]
    else:
        assert found == []
