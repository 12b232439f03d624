"""deployments[i].serving: the llmapi tiers' timeouts and admission, derived from the workload's SLO."""

from __future__ import annotations

import math
from typing import Any

import pytest

from components.config import ConfigError, load_stack_config
from components.config.serving_tiers import (
    PROCESS_BODY_S,
    PROCESS_CONNECT_S,
    PROCESS_FIRST_BYTE_S,
    PROCESS_HEADER_S,
    PROCESS_IDLE_S,
    PROCESS_MAX_INFLIGHT,
    PROCESS_QUEUE_TIMEOUT_S,
    PROCESS_REQUEST_S,
    ServingTiersConfig,
    resolve_tiers,
)
from components.config.workload import WorkloadConfig
from runtime import frontend as frontend_process
from runtime import router as router_process

D0 = "disagg:deployments[0]"


def workload(ttft_ms: float = 800, tpot_ms: float = 25, **target: Any) -> WorkloadConfig:
    target = target or {"concurrency": 100}
    return WorkloadConfig.model_validate(
        {"inputTokens": 2000, "outputTokens": 300, "slo": {"ttftMs": ttft_ms, "tpotMs": tpot_ms}, **target}
    )


def resolve(w: WorkloadConfig | None, serving: dict | None = None, **kw: Any):
    fields = {"max_output_tokens": 8191, "drain_seconds": 450, "frontend_min_replicas": 1, "router_min_replicas": 1}
    return resolve_tiers(ServingTiersConfig.model_validate(serving or {}), w, **{**fields, **kw})


def problems_of(config: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stack_config(config.raw)
    return caught.value.problems


def with_serving(config: Any, serving: dict) -> Any:
    deployments = config.section("deployments")
    deployments[0]["serving"] = serving
    return config.set("deployments", deployments)


FRONTEND_REQUIRED = ["--router", "http://r:1", "--served-model-name", "m", "--tokenizer", "bytes", "--max-seq-len", "64"]


@pytest.mark.parametrize(("module", "tier", "argv"), [(frontend_process, "frontend", FRONTEND_REQUIRED),
                                                      (router_process, "router", [])])
def test_no_workload_means_the_processes_own_defaults(module: Any, tier: str, argv: list[str]) -> None:
    parsed = module.parse_args(argv)
    tiers = resolve(None, drain_seconds=60)
    router, settings = tiers["router"], tiers[tier]
    assert (router.connect_timeout, router.first_byte_timeout, router.idle_timeout, router.request_timeout) == (
        parsed.connect_timeout, parsed.first_byte_timeout, parsed.idle_timeout, parsed.request_timeout,
    ) == (PROCESS_CONNECT_S, PROCESS_FIRST_BYTE_S, PROCESS_IDLE_S, PROCESS_REQUEST_S)  # fmt: skip
    assert settings.max_inflight == parsed.max_inflight == PROCESS_MAX_INFLIGHT[tier]
    assert (settings.header_timeout, settings.body_timeout, settings.queue_timeout, settings.max_queue) == (
        parsed.header_timeout, parsed.body_timeout, parsed.queue_timeout, parsed.max_queue,
    ) == (PROCESS_HEADER_S, PROCESS_BODY_S, PROCESS_QUEUE_TIMEOUT_S, 0)  # fmt: skip


def test_no_workload_request_timeout_still_covers_a_long_drain() -> None:
    assert resolve(None, drain_seconds=5000)["router"].request_timeout == 5000


def test_first_byte_is_twenty_ttfts_bounded_below_by_30_s() -> None:
    assert resolve(workload(ttft_ms=800))["router"].first_byte_timeout == 30.0  # dev: 20 × 0.8 s = 16 s < floor
    assert resolve(workload(ttft_ms=5000))["router"].first_byte_timeout == 100.0  # 20 × 5 s


def test_idle_is_a_hundred_tpots_bounded_below_by_10_s() -> None:
    assert resolve(workload(tpot_ms=25))["router"].idle_timeout == 10.0  # 100 × 25 ms = 2.5 s < floor
    assert resolve(workload(tpot_ms=250))["router"].idle_timeout == 25.0


def test_request_timeout_never_below_the_drain() -> None:
    # 30 + 8191 × 1.5 × 25 ms = 337.2 s: below the 450 s drain, so the drain wins
    assert resolve(workload(tpot_ms=25), drain_seconds=450)["router"].request_timeout == 450.0
    # 30 + 8191 × 1.5 × 60 ms = 767.2 s: the SLO's longest output wins
    assert resolve(workload(tpot_ms=60), drain_seconds=450)["router"].request_timeout == math.ceil(30 + 8191 * 1.5 * 0.06)


def test_inflight_from_the_plans_concurrency_per_minimum_replica() -> None:
    planned = workload(concurrency=None, requestRate=25.0)
    planned = planned.model_copy(update={"prediction": _prediction(420)})
    tiers = resolve(planned, frontend_min_replicas=3, router_min_replicas=2)
    assert (tiers["frontend"].max_inflight, tiers["router"].max_inflight) == (280, 420)  # 2 × 420 / 3, 2 × 420 / 2


def test_inflight_from_declared_concurrency_and_from_request_rate() -> None:
    assert resolve(workload(concurrency=1000), router_min_replicas=4)["router"].max_inflight == 500
    # Little's law: 160 req/s × (0.8 s + 300 × 25 ms) = 1328 in flight, × 2 over 2 replicas
    assert resolve(workload(requestRate=160.0), router_min_replicas=2)["router"].max_inflight == 1328


def test_inflight_floor_is_twice_the_keda_target() -> None:
    tiers = resolve(workload(concurrency=1), frontend_min_replicas=4, router_min_replicas=4)
    assert (tiers["frontend"].max_inflight, tiers["router"].max_inflight) == (128, 256)


def test_frontend_waits_longer_than_the_router_and_across_both_phases() -> None:
    tp = resolve(workload())
    assert tp["frontend"].first_byte_timeout == tp["router"].first_byte_timeout + 5
    assert tp["frontend"].idle_timeout == tp["router"].idle_timeout + 5
    assert tp["frontend"].request_timeout == tp["router"].request_timeout + 5
    pd = resolve(workload(), phases=2)
    assert pd["frontend"].first_byte_timeout == 2 * 30 + 5  # context phase, then the generation's first token
    assert pd["frontend"].request_timeout == 450 + 30 + 5


def test_configured_values_win_over_derived() -> None:
    serving = {"timeouts": {"firstByteSeconds": 12, "idleSeconds": 3, "requestSeconds": 900, "connectSeconds": 1,
                            "headerSeconds": 4, "bodySeconds": 6},
               "admission": {"frontendMaxInflight": 7, "routerMaxInflight": 9, "maxQueue": 3, "queueTimeoutSeconds": 0.5},
               "drainDelaySeconds": 2}  # fmt: skip
    router = resolve(workload(), serving)["router"]
    assert (router.first_byte_timeout, router.idle_timeout, router.request_timeout, router.connect_timeout) == (12, 3, 900, 1)
    assert (router.header_timeout, router.body_timeout, router.max_inflight, router.max_queue) == (4, 6, 9, 3)
    assert (router.queue_timeout, router.drain_delay) == (0.5, 2)
    assert resolve(workload(), serving)["frontend"].max_inflight == 7


def test_shipped_dev_stack_resolves_from_its_slo(dev_config: Any) -> None:
    from components.config.serving_tiers import deployment_tiers

    config = load_stack_config(dev_config.raw)
    (deployment,) = config.deployments
    tiers = deployment_tiers(config, deployment)
    # SLO TTFT 800 ms, TPOT 25 ms; maxSeqLen 8192 → drain 450 s; plan concurrency 128 on 1 + 1 replicas
    assert (tiers["router"].first_byte_timeout, tiers["router"].idle_timeout, tiers["router"].request_timeout) == (30, 10, 450)
    assert (tiers["frontend"].max_inflight, tiers["router"].max_inflight) == (256, 256)
    assert tiers["router"].drain_delay == tiers["frontend"].drain_delay == 0


@pytest.mark.parametrize(
    ("serving", "expected"),
    [
        (
            {"timeouts": {"idleSeconds": 600, "requestSeconds": 300}},
            f"{D0}.serving.timeouts.idleSeconds 600 is longer than serving.timeouts.requestSeconds 300: a stalled "
            "stream would never reach it; lower idleSeconds or raise requestSeconds",
        ),
        (
            {"timeouts": {"firstByteSeconds": 500}},
            f"{D0}.serving.timeouts.firstByteSeconds 500 is longer than serving.timeouts.requestSeconds 450 (derived): "
            "every stream would hit the request timeout first; lower firstByteSeconds or raise requestSeconds",
        ),
        (
            {"timeouts": {"connectSeconds": 40}},
            f"{D0}.serving.timeouts.connectSeconds 40 is not shorter than serving.timeouts.firstByteSeconds 30 "
            "(derived): the first byte includes the connection; lower connectSeconds or raise firstByteSeconds",
        ),
        (
            {"admission": {"maxQueue": 8, "queueTimeoutSeconds": 30}},
            f"{D0}.serving.admission.queueTimeoutSeconds 30 is not shorter than serving.timeouts.firstByteSeconds 30 "
            "(derived): a queued request would time out before it was sent; lower queueTimeoutSeconds",
        ),
    ],
)
def test_inconsistent_values_are_refused_in_one_line(dev_config: Any, serving: dict, expected: str) -> None:
    assert problems_of(with_serving(dev_config, serving)) == [expected]


def test_a_bound_at_or_below_the_keda_target_is_refused(dev_config: Any) -> None:
    platform = dev_config.section("platform") if "disagg:platform" in dev_config.raw else {}
    dev_config.set("platform", {**platform, "keda": {**platform.get("keda", {}), "enabled": True}})
    problems = problems_of(with_serving(dev_config, {"admission": {"frontendMaxInflight": 64}}))
    assert f"{D0}.serving.admission.frontendMaxInflight 64 is not above the frontend's KEDA target of 64 requests in " \
        "flight per replica: the frontend would refuse requests before KEDA scales it out; raise frontendMaxInflight " \
        "above 64" in problems


def test_serving_on_the_engine_runtime_is_refused(engine_config: Any) -> None:
    (problem,) = problems_of(with_serving(engine_config, {"drainDelaySeconds": 1}))
    assert "serving is set, but runtime is 'engine'" in problem
    assert problem.endswith("remove serving or set runtime: llmapi")


def test_a_nonpositive_timeout_is_refused(dev_config: Any) -> None:
    (problem,) = problems_of(with_serving(dev_config, {"timeouts": {"idleSeconds": 0}}))
    assert problem.startswith(f"{D0}.serving.timeouts.idleSeconds")
    assert "greater than 0" in problem


def _prediction(concurrency: int) -> Any:
    from components.config.workload import PredictionConfig

    return PredictionConfig.model_validate({
        "source": "test", "gpu": "H100-80GB-HBM3", "tokensPerSecondPerGpu": 1, "tokensPerSecondPerUser": 1,
        "ttftMs": 900, "tpotMs": 29, "requestsPerSecond": 25, "concurrency": concurrency,
        "roles": {"workers": {"tensorParallelSize": 8, "maxBatchSize": 160, "groups": 3}},
    })  # fmt: skip


def test_readme_example_is_valid_config_and_dev_s_derived_values(dev_config: Any) -> None:
    import re

    import yaml

    from components.config.serving_tiers import deployment_tiers
    from tests.components.config.conftest import PROJECT_DIR

    readme = (PROJECT_DIR / "README.md").read_text()
    (block,) = re.findall(r"```yaml\n(serving:\n.*?)```", readme, re.S)
    example = ServingTiersConfig.model_validate(yaml.safe_load(block)["serving"])
    config = load_stack_config(dev_config.raw)
    derived = deployment_tiers(config, config.deployments[0])
    explicit = resolve_tiers(example, None, max_output_tokens=1, drain_seconds=0, frontend_min_replicas=1,
                             router_min_replicas=1)  # every value given: nothing derived
    assert explicit == derived


def _dev_with(dev_config: Any, slo_tpot_ms: float | None = None, serving: dict | None = None,
              workload: bool = True) -> Any:
    deployments = dev_config.section("deployments")
    if slo_tpot_ms is not None:
        deployments[0]["workload"]["slo"]["tpotMs"] = slo_tpot_ms
    if not workload:
        deployments[0].pop("workload")
    if serving is not None:
        deployments[0]["serving"] = serving
    config = load_stack_config(dev_config.set("deployments", deployments).raw)
    return config, config.deployments[0]


@pytest.mark.parametrize(
    ("tpot_ms", "serving", "with_workload", "drain"),
    [
        (25, None, True, 450),   # 30 + 8191 × 1.5 × 25 ms = 338 s: the 50 ms estimate (450 s) is longer
        (60, None, True, math.ceil(30 + 8191 * 1.5 * 0.060)),   # 768 s: the derived request timeout is longer
        (25, {"timeouts": {"requestSeconds": 2000}}, True, 2000),  # an explicit timeout lets streams run that long
        (25, {"timeouts": {"requestSeconds": 460}}, True, 460),
        (None, None, False, 450),  # no workload: the estimate, not the process's one-hour default
    ],
)
def test_the_drain_waits_as_long_as_the_router_lets_a_stream_run(
        dev_config: Any, tpot_ms: float | None, serving: dict | None, with_workload: bool, drain: int) -> None:
    from components.config.capacity import deployment_drain_seconds
    from components.config.serving_tiers import deployment_tiers, serving_drain_seconds

    config, deployment = _dev_with(dev_config, tpot_ms, serving, with_workload)
    assert deployment_drain_seconds(config, deployment) == 450
    assert serving_drain_seconds(config, deployment) == drain
    if with_workload:
        assert deployment_tiers(config, deployment)["router"].request_timeout == drain


def test_the_rendered_drain_follows_the_slo(dev_config: Any) -> None:
    from components.serving.llmapi.args import stack_inputs

    config, deployment = _dev_with(dev_config, 60)
    assert stack_inputs(config, deployment)["drain_seconds"] == 768


def test_an_engine_deployment_drains_by_the_estimate(engine_config: Any) -> None:
    from components.config.serving_tiers import serving_drain_seconds

    config = load_stack_config(engine_config.raw)
    assert serving_drain_seconds(config, config.deployments[0]) == 450
