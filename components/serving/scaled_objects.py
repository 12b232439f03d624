"""KEDA ScaledObjects as Pulumi resources, and the preStop drain of serving pods.

The manifests come from :mod:`components.platform.keda` (pure builders checked against the
KEDA CRD schema); here they become ``keda.sh/v1alpha1`` custom resources. A tier with a
ScaledObject has no HorizontalPodAutoscaler of its own: KEDA creates one (``keda-hpa-<name>``)
and two HPAs on one target would fight.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.platform.keda import API_VERSION, KIND


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
