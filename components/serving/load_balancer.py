"""How a frontend Service is exposed: internal by default, internet-facing only on explicit opt-in.

On EKS a ``LoadBalancer`` Service becomes an NLB through the AWS Load Balancer Controller
(annotations below, IP targets). An internet-facing NLB must name the client CIDRs it accepts
(``loadBalancerSourceRanges``, which the controller turns into the NLB security group's rules),
so a public endpoint is never open to the whole internet by accident.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.platform.load_balancer_controller import nlb_service_annotations

OPEN_CIDRS = ("0.0.0.0/0", "::/0")


def exposure_problem(service_type: str, public: bool, source_ranges: Sequence[str]) -> str | None:
    """Why the requested exposure is refused (None: fine)."""
    if public and service_type != "LoadBalancer":
        return "a public frontend needs serviceType LoadBalancer: set it, or keep the frontend internal"
    if public and not source_ranges:
        return (
            "an internet-facing load balancer needs loadBalancerSourceRanges (the client CIDRs it accepts): "
            "list them, or keep the frontend internal"
        )
    open_ranges = [r for r in source_ranges if r in OPEN_CIDRS]
    if open_ranges:
        return f"loadBalancerSourceRanges {open_ranges} opens the frontend to every address: list the client CIDRs"
    return None


def load_balancer_annotations(service_type: str, aws: bool, public: bool) -> dict[str, str]:
    """AWS Load Balancer Controller annotations of a frontend Service (none off AWS or for ClusterIP)."""
    if service_type != "LoadBalancer" or not aws:
        return {}
    return nlb_service_annotations(internal=not public)


def service_host(name: str, namespace: str) -> str:
    """Cluster DNS name of a Service."""
    return f"{name}.{namespace}.svc.cluster.local"


def load_balancer_host(status: Any) -> str | None:
    """Hostname (or IP) of a Service's first load-balancer ingress, if provisioned."""

    def get(obj, key, attr):
        if obj is None:
            return None
        return obj.get(key) if isinstance(obj, dict) else getattr(obj, attr, None)

    ingress = get(get(status, "loadBalancer", "load_balancer"), "ingress", "ingress") or []
    for entry in ingress:
        host = get(entry, "hostname", "hostname") or get(entry, "ip", "ip")
        if host:
            return host
    return None
