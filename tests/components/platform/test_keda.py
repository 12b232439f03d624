"""KEDA ScaledObjects for LeaderWorkerSets and Deployments, against the v2.20.2 CRD and chart keys."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from components.platform.keda import (
    deployment_scaled_object,
    keda_values,
    lws_leader_pod_pattern,
    lws_scaled_object,
    scaling_behavior,
)

PROM = "http://prometheus-operated.monitoring.svc:9090"
SCHEMA = json.loads((Path(__file__).parent / "data" / "scaledobject-keda-2.20.2.schema.json").read_text())


def workers() -> dict:
    return lws_scaled_object("llama-70b-workers", "llm-prod", "llama-70b-workers", 1, 4, PROM, 4, 0.75, 92)


def frontend() -> dict:
    return deployment_scaled_object("llama-70b-frontend", "llm-prod", "llama-70b-frontend", 3, 12, PROM, 64, 92, 70)


@pytest.mark.parametrize("build", [workers, frontend], ids=["lws", "deployment"])
def test_scaled_objects_match_the_upstream_crd(upstream, build) -> None:
    validator = jsonschema.Draft7Validator(upstream.strict(SCHEMA["openAPIV3Schema"]))
    assert [e.message for e in validator.iter_errors(build())] == []


def test_workers_scale_the_leader_worker_set_scale_subresource() -> None:
    spec = workers()["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": "llama-70b-workers",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)


def test_worker_triggers_query_the_trtllm_gauges_of_the_leaders() -> None:
    """tensorrt_llm/metrics/collector.py @050f80def8df: trtllm_num_requests_waiting and
    trtllm_kv_cache_utilization are gauges on each group leader's trtllm-serve."""
    triggers = {t["name"]: t for t in workers()["spec"]["triggers"]}
    selector = 'namespace="llm-prod",pod=~"llama-70b-workers-[0-9]+"'
    assert triggers["waiting-requests"]["metadata"] == {
        "serverAddress": PROM,
        "query": f"sum(trtllm_num_requests_waiting{{{selector}}})",
        "threshold": "4",
    }
    assert triggers["waiting-requests"]["metricType"] == "AverageValue"
    assert triggers["kv-cache-utilization"]["metadata"]["query"] == f"avg(trtllm_kv_cache_utilization{{{selector}}})"
    assert (triggers["kv-cache-utilization"]["metricType"], triggers["kv-cache-utilization"]["metadata"]["threshold"]) == ("Value", "0.75")


def test_leader_pattern_matches_leaders_not_workers() -> None:
    import re

    pattern = re.compile(lws_leader_pod_pattern("llama-70b-workers"))
    assert pattern.fullmatch("llama-70b-workers-3")
    assert not pattern.fullmatch("llama-70b-workers-3-1")


def test_frontend_scales_on_requests_in_flight_and_cpu() -> None:
    triggers = frontend()["spec"]["triggers"]
    assert triggers[0]["metadata"]["query"] == (
        'sum(frontend_requests_in_flight{namespace="llm-prod",pod=~"llama-70b-frontend-[a-z0-9]+-[a-z0-9]+"})'
    )
    assert triggers[1] == {"type": "cpu", "name": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}


def test_scale_in_removes_one_replica_per_drain_period() -> None:
    behavior = scaling_behavior(600)
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 600}]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert scaling_behavior(30)["scaleDown"]["policies"][0]["periodSeconds"] == 60


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match=r"1 ≤ min \(0\) ≤ max \(4\)"):
        lws_scaled_object("w", "ns", "w", 0, 4, PROM, 4, 0.8, 60)


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters) -> None:
    values = keda_values(clusters.handle("efa"))
    assert values == {
        "nodeSelector": {"disagg.dev/pool": "system"},
        "rbac": {"scaledRefKinds": [{"apiGroup": "leaderworkerset.x-k8s.io", "kind": "leaderworkersets"}]},
    }
    assert upstream.unknown_values(values, upstream.key_table("keda-2.20.2.values-keys.json")) == []


def test_frontend_metric_the_scaler_reads_is_the_one_the_frontend_exports() -> None:
    from components.platform.keda import FRONTEND_IN_FLIGHT
    from runtime.frontend import Frontend  # noqa: F401  (the module that registers the gauge)

    source = (Path(__file__).resolve().parents[3] / "runtime" / "frontend.py").read_text()
    assert f'reg.gauge("{FRONTEND_IN_FLIGHT}"' in source
