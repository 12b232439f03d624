"""KEDA: the controller (Helm, pinned) and pure ScaledObject builders for the serving tiers.

Worker groups scale as a whole: the ScaledObject targets the LeaderWorkerSet's ``scale``
subresource (``replicas`` = groups). llmapi groups scale on the router's per-pool gauges
(``router_outstanding_requests``, ``router_outstanding_prompt_tokens``: the router sees every
request on every release) and, only where ``runtime/capabilities.py`` proves them for the image,
on the leaders' own gauges (``trtllm_num_requests_waiting``, ``trtllm_kv_cache_utilization``:
``tensorrt_llm/metrics/collector.py`` @050f80def8df, TensorRT-LLM 1.3); engine-runtime groups on
Triton's TensorRT-LLM backend metrics. The frontend Deployment
scales on its requests in flight (and CPU). Scale-in never cuts a stream: the HPA behaviour
removes one replica per ``drain_seconds`` (:func:`components.config.capacity.stream_drain_seconds`),
the same time the pods' preStop drain and termination grace give the longest request.

Schema: ``keda.sh/v1alpha1`` ScaledObject of kedacore/keda v2.20.2
(tests/components/platform/data/scaledobject-keda-2.20.2.schema.json).
"""

from __future__ import annotations

from components.cluster.contract import ClusterHandle
from components.config.platform import ChartConfig, PlatformConfig
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:Keda"
RELEASE_NAME = "keda"
API_VERSION = "keda.sh/v1alpha1"
KIND = "ScaledObject"
LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
LWS_KIND = "LeaderWorkerSet"

WAITING_REQUESTS = "trtllm_num_requests_waiting"
"""Gauge: requests queued in a TRT-LLM executor (per leader, labels model_name, engine_type)."""
KV_CACHE_UTILIZATION = "trtllm_kv_cache_utilization"
"""Gauge: fraction of the KV-cache blocks in use (0-1)."""
FRONTEND_IN_FLIGHT = "frontend_requests_in_flight"
"""Gauge the frontend (``python -m runtime.frontend``) must export on /metrics: requests accepted
and not yet finished (streams included)."""

ROUTER_IN_FLIGHT = "router_endpoint_inflight"
"""Gauge the router (``python -m runtime.router``) exports: requests outstanding per endpoint."""
TRITON_PENDING = "nv_inference_pending_request_count"
"""Gauge Triton exports per model: requests received and not yet executing (triton-inference-server
/server docs/user_guide/metrics.md, "Pending Request Count")."""
TRITON_WAITING = 'nv_trt_llm_request_metrics{request_type="waiting",'
"""TRT-LLM backend gauge of requests waiting in the batch manager (tensorrtllm_backend
docs/model_config.md metrics; the same series platform/autoscaling_metrics.py reads)."""
TRITON_KV_BLOCKS = "nv_trt_llm_kv_cache_block_metrics"

POLLING_INTERVAL_S = 15

ROUTER_OUTSTANDING_REQUESTS = "router_outstanding_requests"
"""Gauge the router exports per pool (``workers`` | ``context`` | ``generation``): requests sent to
the pool and not yet answered. The router sees every request, on every TensorRT-LLM release."""
ROUTER_OUTSTANDING_PROMPT_TOKENS = "router_outstanding_prompt_tokens"
"""Gauge the router exports per pool: prompt tokens of the requests outstanding there."""
ROUTER_METRICS = (ROUTER_OUTSTANDING_REQUESTS, ROUTER_OUTSTANDING_PROMPT_TOKENS, ROUTER_IN_FLIGHT)
"""Every router gauge a scaler or a drain may query (``runtime/router.py`` exports them)."""
ROUTER_POOLS = {"workers": "workers", "prefill": "context", "decode": "generation"}
"""Worker-group role -> the router's ``pool`` label."""


def lws_leader_pod_pattern(lws_name: str) -> str:
    """Prometheus regex of a LeaderWorkerSet's leader pods: ``<name>-<group>`` (workers are
    ``<name>-<group>-<index>``, kubernetes-sigs/lws pod naming)."""
    return f"{lws_name}-[0-9]+"


def deployment_pod_pattern(deployment_name: str) -> str:
    """Prometheus regex of a Deployment's pods: ``<name>-<replicaset hash>-<suffix>``."""
    return f"{deployment_name}-[a-z0-9]+-[a-z0-9]+"


def _selector(namespace: str, pod_pattern: str) -> str:
    return f'namespace="{namespace}",pod=~"{pod_pattern}"'


def waiting_requests_query(namespace: str, pod_pattern: str) -> str:
    """Requests waiting in all groups' executors (AverageValue: per group)."""
    return f"sum({WAITING_REQUESTS}{{{_selector(namespace, pod_pattern)}}})"


def kv_cache_query(namespace: str, pod_pattern: str) -> str:
    """Mean KV-cache utilization over the groups' leaders (Value: the HPA scales by ratio)."""
    return f"avg({KV_CACHE_UTILIZATION}{{{_selector(namespace, pod_pattern)}}})"


def in_flight_query(namespace: str, pod_pattern: str, metric: str = FRONTEND_IN_FLIGHT) -> str:
    """Requests in flight on all replicas of a CPU tier (AverageValue: per replica)."""
    return f"sum({metric}{{{_selector(namespace, pod_pattern)}}})"


def router_pool_query(namespace: str, router_pod_pattern: str, pool: str, metric: str) -> str:
    """A router gauge of one pool, summed over the router replicas of one deployment."""
    return f'sum({metric}{{{_selector(namespace, router_pod_pattern)},pool="{pool}"}})'


def triton_waiting_query(namespace: str, pod_pattern: str) -> str:
    """Engine runtime: requests waiting in the TRT-LLM batch managers of all group leaders."""
    return f"sum({TRITON_WAITING}{_selector(namespace, pod_pattern)}}})"


def triton_kv_cache_query(namespace: str, pod_pattern: str) -> str:
    """Engine runtime: KV-cache blocks used over blocks available, across the group leaders."""
    selector = _selector(namespace, pod_pattern)
    return (
        f'sum({TRITON_KV_BLOCKS}{{kv_cache_block_type="used",{selector}}}) / '
        f'clamp_min(sum({TRITON_KV_BLOCKS}{{kv_cache_block_type="max",{selector}}}), 1)'
    )


def prometheus_trigger(name: str, server: str, query: str, threshold: float, metric_type: str) -> dict:
    """One KEDA ``prometheus`` trigger."""
    return {
        "type": "prometheus",
        "name": name,
        "metricType": metric_type,
        "metadata": {"serverAddress": server, "query": query, "threshold": _number(threshold)},
    }


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def scaling_behavior(drain_seconds: int, scale_up_step: int = 1) -> dict:
    """HPA behaviour: add ``scale_up_step`` replicas a minute; remove one per drain period, after
    the load has been low for a full drain period (a draining replica finishes its streams)."""
    period = max(60, min(1800, drain_seconds))
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": scale_up_step, "periodSeconds": 60}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": min(3600, max(300, drain_seconds)),
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": period}],
        },
    }


def _scaled_object(
    name: str,
    namespace: str,
    target: dict,
    min_replicas: int,
    max_replicas: int,
    triggers: list[dict],
    drain_seconds: int,
    labels: dict[str, str] | None,
) -> dict:
    if not 1 <= min_replicas <= max_replicas:
        raise ValueError(
            f"ScaledObject {name}: replicas must satisfy 1 ≤ min ({min_replicas}) ≤ max "
            f"({max_replicas}): fix the group's minGroups/maxGroups"
        )
    metadata: dict = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": target,
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max_replicas,
            "pollingInterval": POLLING_INTERVAL_S,
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": scaling_behavior(drain_seconds)}
            },
            "triggers": triggers,
        },
    }


def lws_scaled_object(
    name: str,
    namespace: str,
    lws_name: str,
    min_groups: int,
    max_groups: int,
    prometheus_url: str,
    target_waiting_requests: float,
    target_kv_cache_utilization: float,
    drain_seconds: int,
    labels: dict[str, str] | None = None,
    server: str = "trtllm-serve",
) -> dict:
    """ScaledObject scaling a LeaderWorkerSet's groups on waiting requests and KV-cache use;
    ``server``: ``trtllm-serve`` (llmapi leaders) or ``triton`` (engine-runtime leaders)."""
    pods = lws_leader_pod_pattern(lws_name)
    triton = server == "triton"
    waiting = triton_waiting_query if triton else waiting_requests_query
    kv_cache = triton_kv_cache_query if triton else kv_cache_query
    return _scaled_object(
        name,
        namespace,
        {"apiVersion": LWS_API_VERSION, "kind": LWS_KIND, "name": lws_name},
        min_groups,
        max_groups,
        [
            prometheus_trigger(
                "waiting-requests",
                prometheus_url,
                waiting(namespace, pods),
                target_waiting_requests,
                "AverageValue",
            ),
            prometheus_trigger(
                "kv-cache-utilization",
                prometheus_url,
                kv_cache(namespace, pods),
                target_kv_cache_utilization,
                "Value",
            ),
        ],
        drain_seconds,
        labels,
    )


def router_scaled_triggers(
    namespace: str,
    router_deployment: str,
    role: str,
    prometheus_url: str,
    target_outstanding_requests: float,
    target_outstanding_prompt_tokens: float | None,
) -> list[dict]:
    """Triggers of one llmapi role from the router's gauges (AverageValue: per group): requests
    outstanding on the role's pool and, for context groups, their queued prompt tokens."""
    pods, pool = deployment_pod_pattern(router_deployment), ROUTER_POOLS[role]
    triggers = [
        prometheus_trigger(
            "outstanding-requests",
            prometheus_url,
            router_pool_query(namespace, pods, pool, ROUTER_OUTSTANDING_REQUESTS),
            target_outstanding_requests,
            "AverageValue",
        )
    ]
    if target_outstanding_prompt_tokens is not None:
        triggers.append(
            prometheus_trigger(
                "outstanding-prompt-tokens",
                prometheus_url,
                router_pool_query(namespace, pods, pool, ROUTER_OUTSTANDING_PROMPT_TOKENS),
                target_outstanding_prompt_tokens,
                "AverageValue",
            )
        )
    return triggers


def llmapi_scaled_object(
    name: str,
    namespace: str,
    lws_name: str,
    min_groups: int,
    max_groups: int,
    prometheus_url: str,
    router_triggers: list[dict],
    worker_gauges: bool,
    target_waiting_requests: float,
    target_kv_cache_utilization: float,
    drain_seconds: int,
    labels: dict[str, str] | None = None,
) -> dict:
    """ScaledObject of an llmapi role: the router's triggers always; the leaders' own gauges
    (waiting requests, KV-cache use) only where the capability table proves them."""
    triggers = list(router_triggers)
    if worker_gauges:
        pods = lws_leader_pod_pattern(lws_name)
        triggers += [
            prometheus_trigger(
                "waiting-requests", prometheus_url, waiting_requests_query(namespace, pods),
                target_waiting_requests, "AverageValue",
            ),
            prometheus_trigger(
                "kv-cache-utilization", prometheus_url, kv_cache_query(namespace, pods),
                target_kv_cache_utilization, "Value",
            ),
        ]  # fmt: skip
    return _scaled_object(
        name,
        namespace,
        {"apiVersion": LWS_API_VERSION, "kind": LWS_KIND, "name": lws_name},
        min_groups,
        max_groups,
        triggers,
        drain_seconds,
        labels,
    )


def deployment_scaled_object(
    name: str,
    namespace: str,
    deployment_name: str,
    min_replicas: int,
    max_replicas: int,
    prometheus_url: str,
    target_in_flight: float,
    drain_seconds: int,
    target_cpu_utilization: int | None = None,
    labels: dict[str, str] | None = None,
    in_flight_metric: str = FRONTEND_IN_FLIGHT,
) -> dict:
    """ScaledObject scaling a Deployment (frontend, router) on requests in flight (the gauge
    ``in_flight_metric`` its pods export), and CPU if given."""
    triggers = [
        prometheus_trigger(
            "requests-in-flight",
            prometheus_url,
            in_flight_query(namespace, deployment_pod_pattern(deployment_name), in_flight_metric),
            target_in_flight,
            "AverageValue",
        )
    ]
    if target_cpu_utilization is not None:
        triggers.append(
            {"type": "cpu", "name": "cpu", "metricType": "Utilization", "metadata": {"value": str(target_cpu_utilization)}}
        )
    return _scaled_object(
        name,
        namespace,
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name},
        min_replicas,
        max_replicas,
        triggers,
        drain_seconds,
        labels,
    )


def keda_values(handle: ClusterHandle) -> dict:
    """Helm values of the keda chart: operator, metrics server and webhooks on the system pool.

    The chart's default lets the operator scale every resource of every API group (``*/scale``);
    here it may scale LeaderWorkerSets only (Deployments and StatefulSets come with the chart):
    ``rbac.scaledRefKinds`` of kedacore/charts keda/values.yaml @cbb9bb8ce080 (the ``kind`` field
    is the resource's plural name, as keda/templates/manager/clusterrole.yaml renders
    ``<kind>/scale``).
    """
    values: dict = {"rbac": {"scaledRefKinds": [{"apiGroup": "leaderworkerset.x-k8s.io", "kind": "leaderworkersets"}]}}
    selector = system_node_selector(handle.system_pool)
    if selector:
        values["nodeSelector"] = selector
    return values


class Keda(ChartComponent):
    """The keda Helm release (its own namespace, created by Helm)."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME
    CREATE_NAMESPACE = True

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.keda.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        return keda_values(handle)

    def release_namespace(self, config: PlatformConfig) -> str:
        return config.keda.namespace
