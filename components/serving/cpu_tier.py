"""Manifests of a CPU tier of the llmapi runtime: Deployment, Service, CPU HPA (frontend, router).

Both tiers run one Python process from the ``runtime`` package on port 8000, serve ``/health``
(readiness and liveness) and Prometheus text on ``/metrics`` (scrape annotations), and spread
over zones and nodes. Pods are secure by default (:mod:`components.serving.security`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from components.config.scheduling import NodePool
from components.models.await_budget import cpu_tier_await_seconds
from components.serving.labels import metadata
from components.serving.pods import env_list, node_selector, tolerations
from components.serving.runtime_package import HASH_ANNOTATION, PYTHON_PATH, runtime_mount
from components.serving.scaled_objects import pre_stop_sleep
from components.serving.security import (
    WRITABLE_ENV,
    container_security_context,
    secure_pod_spec,
    tmp_mount,
    tmp_volume,
)

PORT = 8000
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
STARTUP_PERIOD_S, STARTUP_FAILURES = 5, 60
READY_PERIOD_S, READY_FAILURES = 5, 3
AWAIT_S = cpu_tier_await_seconds(STARTUP_PERIOD_S * STARTUP_FAILURES, READY_PERIOD_S * READY_FAILURES)
"""``customTimeouts`` (create and update) of a tier's Deployment: pulumi-kubernetes waits for
its rollout (provider/pkg/await/deployment.go @94977969d641), 10 minutes by default, and a new node
first pulls the TensorRT-LLM image the tiers run on."""


def prometheus_annotations(port: int, path: str) -> dict[str, str]:
    """Scrape annotations (the prometheus.io convention the Prometheus charts' pod jobs follow)."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": path}


def health_probe(*, period: int, failure_threshold: int, path: str = HEALTH_PATH, timeout: int = 5) -> dict:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failure_threshold,
    }


@dataclass(frozen=True)
class CpuTier:
    """Everything one CPU tier's Deployment needs."""

    name: str
    namespace: str
    pod_labels: dict[str, str]
    image: str
    command: list[str]
    pool: NodePool
    cpu: str
    memory: str
    replicas: int
    runtime_volume: dict
    runtime_hash: str
    env: dict[str, str] = field(default_factory=dict)
    extra_volumes: list[dict] = field(default_factory=list)
    extra_mounts: list[dict] = field(default_factory=list)
    termination_grace_period_s: int = 60
    live_path: str = HEALTH_PATH
    """Path of the startup and liveness probes: the router's ``/health`` is 503 until a worker
    group is ready, so its liveness reads ``/live``, or loading models would restart it."""
    ready_path: str = HEALTH_PATH
    """Path of the readiness probe. Readiness means "able to take requests": the router's is
    ``/live`` (it answers 503 itself while no worker is healthy), so that neither its Service nor
    ``pulumi up`` waits for GPU workers (which may wait for a Capacity Block)."""
    pre_stop_s: int = 0
    """Seconds the pod keeps serving after it starts terminating, before SIGTERM (0: none)."""


def check_tier_scaling(section: str, inflight_key: str, min_replicas: int, max_replicas: int,
                       keda: bool, max_inflight: int | None, target_in_flight: float) -> None:
    """The replica bounds and admission limit of one CPU tier, ValueError naming the key otherwise:
    minReplicas ≤ maxReplicas, and with KEDA an in-flight limit above the scaling target (else the tier
    refuses requests before KEDA scales it out)."""
    if min_replicas > max_replicas:
        raise ValueError(
            f"{section}.minReplicas ({min_replicas}) is larger than maxReplicas ({max_replicas}): "
            "raise maxReplicas or lower minReplicas"
        )
    if keda and max_inflight is not None and max_inflight <= target_in_flight:
        tier = "frontend" if section == "frontend" else "router"
        raise ValueError(
            f"serving.admission.{inflight_key} {max_inflight} is not above the {tier}'s KEDA target of "
            f"{target_in_flight:g} requests in flight per replica: it would refuse requests before KEDA "
            f"scales out; raise {inflight_key}"
        )


def cpu_deployment_manifest(tier: CpuTier) -> dict:
    """The tier's Deployment (replicas start at the minimum; the HPA owns them afterwards)."""
    env = {**WRITABLE_ENV, "PYTHONPATH": PYTHON_PATH, "PYTHONDONTWRITEBYTECODE": "1", **tier.env}
    container = {
        "name": "server",
        "image": tier.image,
        "command": tier.command,
        "env": env_list(env),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": tier.cpu, "memory": tier.memory},
            "limits": {"cpu": tier.cpu, "memory": tier.memory},
        },
        "startupProbe": health_probe(period=STARTUP_PERIOD_S, failure_threshold=STARTUP_FAILURES, path=tier.live_path),
        "readinessProbe": health_probe(period=READY_PERIOD_S, failure_threshold=READY_FAILURES, path=tier.ready_path),
        "livenessProbe": health_probe(period=10, failure_threshold=6, path=tier.live_path),
        "volumeMounts": [runtime_mount(), tmp_mount(), *tier.extra_mounts],
        "securityContext": container_security_context(),
    }
    if tier.pre_stop_s:
        container["lifecycle"] = pre_stop_sleep(tier.pre_stop_s)
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(tier.pod_labels)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]
    annotations = {**prometheus_annotations(PORT, METRICS_PATH), HASH_ANNOTATION: tier.runtime_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(tier.name, tier.namespace, tier.pod_labels),
        "spec": {
            "replicas": tier.replicas,
            "selector": {"matchLabels": dict(tier.pod_labels)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": dict(tier.pod_labels), "annotations": annotations},
                "spec": secure_pod_spec(
                    {
                        "containers": [container],
                        "volumes": [tier.runtime_volume, tmp_volume("1Gi"), *tier.extra_volumes],
                        "nodeSelector": node_selector(tier.pool),
                        "tolerations": tolerations(tier.pool),
                        "topologySpreadConstraints": spread,
                        "enableServiceLinks": False,
                        "terminationGracePeriodSeconds": tier.termination_grace_period_s,
                    }
                ),
            },
        },
    }


def cpu_service_manifest(
    name: str,
    namespace: str,
    pod_labels: Mapping[str, str],
    service_type: str = "ClusterIP",
    annotations: Mapping[str, str] | None = None,
    source_ranges: Sequence[str] = (),
) -> dict:
    spec: dict = {
        "type": service_type,
        "selector": dict(pod_labels),
        "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    if service_type == "LoadBalancer" and source_ranges:
        spec["loadBalancerSourceRanges"] = list(source_ranges)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, namespace, pod_labels, annotations),
        "spec": spec,
    }


def cpu_hpa_manifest(
    name: str, namespace: str, object_labels: Mapping[str, str], min_replicas: int, max_replicas: int, cpu_target: int
) -> dict:
    """Scale a CPU tier's Deployment on CPU utilization (its work is request parsing and streaming)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name, namespace, object_labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_target}},
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }
