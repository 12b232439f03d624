"""orchestrator.routing: config → router flags, worker KV-cache event buffers, refusals and warnings."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import yaml

from components.config import ConfigError, load_stack_config
from components.config.deployment import RoutingConfig
from components.serving.llmapi.args import llmapi_deployment_args, stack_inputs
from components.serving.llmapi.router import routing_flags
from disaggctl.synth.program import read_stack_config
from tests.components.config.conftest import PROJECT_DIR, RawConfig
from tests.components.serving.conftest import SYSTEM

RELEASE_13 = "1.3.0rc5"
"""The project's worker image declared as built from a 1.3 release (``images.trtllmVersion``)."""


@pytest.fixture
def dev_config() -> RawConfig:
    return RawConfig(read_stack_config(PROJECT_DIR, "dev")[1])


@pytest.fixture
def prod_config() -> RawConfig:
    return RawConfig(read_stack_config(PROJECT_DIR, "prod")[1])


def with_routing(config: Any, index: int, routing: dict[str, Any], version: str | None = None) -> Any:
    deployments = config.section("deployments")
    deployments[index].setdefault("orchestrator", {})["routing"] = routing
    config.set("deployments", deployments)
    if version is not None:
        images = config.section("images")
        images["trtllmVersion"] = version
        config.set("images", images)
    return config


def args_of(config: Any, index: int):
    stack = load_stack_config(config.raw)
    deployment = stack.deployments[index]
    pools = stack.cluster.node_pools()
    return llmapi_deployment_args(
        deployment, namespace="ns", worker_image=stack.images.trtllm, frontend_image=None, model_dir="/m",
        gpu_pools=pools, system_pool=SYSTEM, claim_name="store", mount_path="/models", runtime_files={},
        aws_load_balancer=True, custom_metrics=False, **stack_inputs(stack, deployment),
    )  # fmt: skip


def kv_config(spec, role: str = "prefill") -> dict[str, Any]:
    """The KV-cache section of the YAML the group's servers read (the spec holds typed options)."""
    return yaml.safe_load(spec.options_yaml(role))["kv_cache_config"]


def test_least_outstanding_renders_no_flags():
    assert routing_flags(RoutingConfig(), kv_events=False, tokens_per_block=32) == []


def test_kv_aware_flags_carry_weights_events_block_size_and_threshold():
    routing = RoutingConfig(policy="kv-aware", overlap_weight=3, load_weight=0.5, max_local_prefill_tokens=256)
    assert routing_flags(routing, kv_events=True, tokens_per_block=64) == [
        "--routing", "kv-aware", "--kv-events", "on", "--kv-overlap-weight", "3", "--kv-load-weight", "0.5",
        "--tokens-per-block", "64", "--max-local-prefill-tokens", "256"]


def test_flags_are_accepted_by_the_router_itself():
    from runtime.router import kv_config as router_kv_config
    from runtime.router import parse_args

    flags = routing_flags(RoutingConfig(policy="kv-aware", max_local_prefill_tokens=8), True, 16)
    kv = router_kv_config(parse_args(["--context", "static://a:1", "--generation", "static://b:1", *flags]))
    assert kv is not None and kv.events and kv.tokens_per_block == 16 and kv.max_local_prefill_tokens == 8
    assert kv.weights.overlap == 2.0


def test_prod_routers_route_kv_aware_approximately_on_release_1_2(prod_config):
    args = args_of(prod_config, 0)
    assert args.routing.policy == "kv-aware" and args.kv_events is False
    assert all("event_buffer_max_size" not in kv_config(s, role) for role, s in args.workers.items())


def test_kv_events_on_a_proven_image_reach_prefill_but_not_decode(prod_config):
    args = args_of(with_routing(prod_config, 0, {"policy": "kv-aware", "kvEvents": "auto"}, RELEASE_13), 0)
    assert args.kv_events is True
    assert kv_config(args.workers["prefill"])["event_buffer_max_size"] == 1024
    assert "event_buffer_max_size" not in kv_config(args.workers["decode"], "decode")  # the generation path publishes none


def test_kv_events_off_keeps_the_router_approximate(prod_config):
    args = args_of(with_routing(prod_config, 0, {"policy": "kv-aware", "kvEvents": "off"}, RELEASE_13), 0)
    assert args.kv_events is False
    assert "event_buffer_max_size" not in kv_config(args.workers["prefill"])


def test_kv_events_on_an_unproven_image_is_refused_in_one_line(prod_config):
    with pytest.raises(ConfigError) as caught:
        load_stack_config(with_routing(prod_config, 0, {"policy": "kv-aware", "kvEvents": "on"}).raw)
    (line,) = [p for p in caught.value.problems if "kvEvents" in p]
    assert line.startswith("disagg:deployments[0].orchestrator.routing.kvEvents is 'on', but TensorRT-LLM 1.2")
    assert "set kvEvents: auto" in line and "\n" not in line


def test_kv_aware_without_block_reuse_is_refused(dev_config):
    deployments = dev_config.section("deployments")
    deployments[0]["workers"].setdefault("llmApi", {}).setdefault("kvCacheConfig", {})["enableBlockReuse"] = False
    dev_config.set("deployments", deployments)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(with_routing(dev_config, 0, {"policy": "kv-aware"}).raw)
    assert any("enableBlockReuse is false, but orchestrator.routing.policy is kv-aware" in p
               for p in caught.value.problems)


def test_a_local_prefill_threshold_needs_kv_aware(dev_config):
    with pytest.raises(ConfigError) as caught:
        load_stack_config(with_routing(dev_config, 0, {"maxLocalPrefillTokens": 100}).raw)
    assert any("maxLocalPrefillTokens 100 needs policy kv-aware" in p for p in caught.value.problems)


def test_deprecated_routing_policy_still_loads_with_a_warning(dev_config):
    deployments = dev_config.section("deployments")
    deployments[0].setdefault("orchestrator", {})["routingPolicy"] = "least-outstanding-requests"
    dev_config.set("deployments", deployments)
    stack = load_stack_config(dev_config.raw)
    assert stack.deployments[0].orchestrator.routing.policy == "least-outstanding"
    assert any("orchestrator.routingPolicy is deprecated" in w for w in stack.deploy_warnings())


def test_round_robin_was_never_implemented_and_is_refused(dev_config):
    deployments = dev_config.section("deployments")
    deployments[0].setdefault("orchestrator", {})["routingPolicy"] = "round-robin"
    dev_config.set("deployments", deployments)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(dev_config.raw)
    assert any("'round-robin' was never implemented" in p for p in caught.value.problems)


def test_router_command_ends_with_the_routing_flags(prod_config):
    from components.serving.llmapi.router import LlmApiRouterArgs, router_command

    args = args_of(prod_config, 0)
    router = LlmApiRouterArgs(instance="x", namespace="ns", image="i", pool=SYSTEM, context_url="dns://a:1",
                              generation_url="dns://b:1", runtime_volume={}, runtime_hash="h", routing=args.routing,
                              kv_events=args.kv_events, tokens_per_block=args.tokens_per_block)
    argv = router_command(router)
    assert shlex.join(argv).endswith("--routing kv-aware --kv-events off --kv-overlap-weight 2 --kv-load-weight 1 "
                                     "--tokens-per-block 32")
