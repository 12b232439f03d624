"""KEDA ScaledObjects as Pulumi resources, and the preStop drain of serving pods.

The manifests come from :mod:`components.platform.keda` (pure builders checked against the
KEDA CRD schema); here they become ``keda.sh/v1alpha1`` custom resources. A tier with a
ScaledObject has no HorizontalPodAutoscaler of its own: KEDA creates one (``keda-hpa-<name>``)
and two HPAs on one target would fight.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.platform.keda import API_VERSION, KIND, ROUTER_IN_FLIGHT, deployment_pod_pattern
from runtime.capabilities import REQUEST_GAUGES


def scaled_object(name: str, manifest: dict, opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """The ScaledObject ``manifest`` (named ``<name>-scaledobject`` in Pulumi)."""
    return k8s.apiextensions.CustomResource(
        f"{name}-scaledobject",
        api_version=API_VERSION,
        kind=KIND,
        metadata=manifest["metadata"],
        spec=manifest["spec"],
        opts=opts,
    )


def pre_stop_sleep(seconds: int) -> dict:
    """``lifecycle`` of a container that keeps serving ``seconds`` after its pod starts
    terminating (Kubernetes' built-in sleep action, GA in 1.32: no ``sleep`` binary needed)."""
    return {"preStop": {"sleep": {"seconds": seconds}}}


DRAIN_METRICS = REQUEST_GAUGES
"""Gauges of ``trtllm-serve`` whose sum is the work a terminating group still has: only on the
generations whose capability row ``request_gauges`` proves them (``runtime/capabilities.py``)."""

_DRAIN_SCRIPT = """\
import os, sys, time, urllib.request
url, settle, limit = sys.argv[1].format(**os.environ), float(sys.argv[2]), float(sys.argv[3])
names = sys.argv[4:]
time.sleep(settle)
deadline = time.monotonic() + limit
idle = 0
while time.monotonic() < deadline:
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        sys.exit(0)  # the server is gone: nothing left to drain
    busy = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.split("{", 1)[0].split(" ", 1)[0] in names)
    idle = idle + 1 if busy == 0 else 0
    if idle >= 2:
        sys.exit(0)
    time.sleep(2)
"""
"""Standard-library drain (``{VAR}`` in the URL reads the container's environment; Kubernetes
expands ``$(VAR)`` in commands but not in lifecycle hooks): wait ``settle`` s (the router drops the pod from discovery), then poll
the Prometheus text at ``url`` every 2 s until the named gauges sum to 0 twice in a row, the server
is gone, or ``limit`` s pass."""


def drain_command(metrics_url: str, settle_s: int, drain_s: int) -> list[str]:
    """The drain as an exec command (python3 is in every TRT-LLM image)."""
    return ["python3", "-c", _DRAIN_SCRIPT, metrics_url, str(settle_s), str(drain_s), *DRAIN_METRICS]


def pre_stop_drain(metrics_url: str, settle_s: int, drain_s: int) -> dict:
    """``lifecycle`` of a GPU server that finishes the requests it has before it stops: an idle
    group scales in after ``settle_s`` + a few seconds instead of sleeping the worst-case drain."""
    return {"preStop": {"exec": {"command": drain_command(metrics_url, settle_s, drain_s)}}}


_ROUTER_DRAIN_SCRIPT = """\
import json, os, re, socket, sys, time, urllib.parse, urllib.request
prom, template, settle, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
host = sys.argv[5].format(**os.environ)
time.sleep(settle)
deadline = time.monotonic() + limit
idle = 0
while time.monotonic() < deadline:
    try:
        ip = socket.gethostbyname(host)
        query = template.replace("@IP@", re.escape(ip).replace("\\\\", "\\\\\\\\"))
        url = prom.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
        result = json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
    except (OSError, ValueError, KeyError):
        result = None  # Prometheus or DNS unreachable: keep the pod until the limit
    busy = 1.0 if not result else sum(float(r["value"][1]) for r in result)
    idle = idle + 1 if busy == 0 else 0
    if idle >= 2:
        sys.exit(0)
    time.sleep(5)
"""
"""Drain on the router's view (standard library): wait ``settle`` s, then ask Prometheus every 5 s
for the requests the routers still have outstanding on this group's leader (``@IP@`` is its
address, resolved from ``host``), until two answers say 0 or ``limit`` s pass. No series (the
routers dropped the endpoint) or no answer counts as busy: the pod stays rather than cut a stream."""


def router_drain_query(namespace: str, router_deployment: str, pool: str, port: int) -> str:
    """PromQL of the requests the router replicas of one deployment have on one leader
    (``@IP@`` stands for its address, filled in by the drain)."""
    pods = deployment_pod_pattern(router_deployment)
    return (
        f'sum({ROUTER_IN_FLIGHT}{{namespace="{namespace}",pod=~"{pods}",pool="{pool}",'
        f'endpoint=~"(https?://)?@IP@:{port}/?"}})'
    )


def router_drain_command(prometheus_url: str, query: str, host: str, settle_s: int, drain_s: int) -> list[str]:
    """The router-view drain as an exec command (``{VAR}`` in ``host`` reads the environment)."""
    return ["python3", "-c", _ROUTER_DRAIN_SCRIPT, prometheus_url, query, str(settle_s), str(drain_s), host]


def pre_stop_router_drain(prometheus_url: str, query: str, host: str, settle_s: int, drain_s: int) -> dict:
    """``lifecycle`` of a GPU server whose release exports no request gauges: it finishes the
    requests the routers still have on it, as Prometheus last scraped them from the routers."""
    return {"preStop": {"exec": {"command": router_drain_command(prometheus_url, query, host, settle_s, drain_s)}}}
