"""NetworkPolicies of one model deployment: default deny, then exactly the flows the tiers need.

* every pod of the deployment: no ingress, no egress, except DNS (kube-dns, UDP/TCP 53);
* frontend: ingress from anywhere on its serving port(s) only (clients, the load balancer);
  egress to the router/orchestrator port;
* router (orchestrator): ingress from the frontend only; egress to the worker-group leaders'
  serving port;
* workers: ingress from the router on the serving port, and any port from the pods of their own
  LeaderWorkerSet (MPI/orted, NCCL bootstrap, UCX between the group's pods) and, in
  prefill-decode mode, from the other role's pods (KV-cache transfer); the same peers on egress;
* metrics ports: ingress from the monitoring namespaces (Prometheus scrapes what the HPAs use);
* storage: egress to ``storage_cidrs`` on the Lustre ports, for in-pod clients only. The FSx CSI
  driver mounts Lustre in the node's kernel, whose traffic pod policies do not see, so the
  default is none. Hugging Face egress belongs to model preparation only (not a serving pod).

RDMA traffic (EFA SRD, InfiniBand/RoCE verbs) bypasses the pod's IP stack; the policies cover
the TCP side (bootstrap, control, fallbacks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict

from components.serving.labels import PART_OF, metadata
from components.serving.pulumi_options import child_options, k8s_provider

LUSTRE_PORTS = ((988, None), (1018, 1023))
"""FSx for Lustre client ports: 988 and 1018-1023 (AWS FSx for Lustre security-group docs)."""
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def deployment_selector(instance: str) -> dict[str, str]:
    """Every pod of one model deployment."""
    return {"app.kubernetes.io/instance": instance, "app.kubernetes.io/part-of": PART_OF}


def tcp_ports(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def pods_peer(selector: Mapping[str, str]) -> dict:
    return {"podSelector": {"matchLabels": dict(selector)}}


def namespaces_peer(names: Sequence[str]) -> dict:
    return {
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(names)}]
        }
    }


@dataclass(frozen=True)
class TierPolicy:
    """What one tier's pods may receive and send (beyond DNS)."""

    name: str
    """``<deployment>-<tier>``: the NetworkPolicy's name."""
    selector: dict[str, str]
    ingress: list[dict] = field(default_factory=list)
    egress: list[dict] = field(default_factory=list)


def rule(peers: Sequence[dict] | None, ports: list[dict] | None) -> dict:
    """One ingress/egress rule; ``peers`` None: any source/destination; ``ports`` None: any port."""
    out: dict = {}
    if ports:
        out["ports"] = ports
    if peers is not None:
        out["peers"] = list(peers)
    return out


def _manifest(name: str, namespace: str, instance: str, selector: Mapping[str, str], ingress, egress) -> dict:
    def render(rules: list[dict], direction: str) -> list[dict]:
        key = "from" if direction == "ingress" else "to"
        out = []
        for r in rules:
            entry = {k: v for k, v in r.items() if k != "peers"}
            if "peers" in r:
                entry[key] = r["peers"]
            out.append(entry)
        return out

    spec: dict = {"podSelector": {"matchLabels": dict(selector)}, "policyTypes": ["Ingress", "Egress"]}
    if ingress:
        spec["ingress"] = render(ingress, "ingress")
    if egress:
        spec["egress"] = render(egress, "egress")
    labels = {**deployment_selector(instance), "app.kubernetes.io/component": "network-policy"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata(name, namespace, labels), "spec": spec}


def network_policy_manifests(
    instance: str,
    namespace: str,
    tiers: Sequence[TierPolicy],
    *,
    storage_cidrs: Sequence[str] = (),
) -> list[dict]:
    """Default deny + DNS for the whole deployment, then one allow policy per tier (sorted by name)."""
    everyone = deployment_selector(instance)
    base_egress = [rule([DNS_PEER], [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}])]
    if storage_cidrs:
        ports = [{"protocol": "TCP", "port": p, **({"endPort": e} if e else {})} for p, e in LUSTRE_PORTS]
        base_egress.append(rule([{"ipBlock": {"cidr": c}} for c in storage_cidrs], ports))
    out = [
        _manifest(f"{instance}-default-deny", namespace, instance, everyone, [], []),
        _manifest(f"{instance}-dns-storage-egress", namespace, instance, everyone, [], base_egress),
    ]
    for tier in sorted(tiers, key=lambda t: t.name):
        out.append(_manifest(tier.name, namespace, instance, tier.selector, tier.ingress, tier.egress))
    return out


def metrics_ingress(monitoring_namespaces: Sequence[str], *ports: int) -> list[dict]:
    """Prometheus scrapes from the monitoring namespaces (none: no rule)."""
    if not monitoring_namespaces:
        return []
    return [rule([namespaces_peer(monitoring_namespaces)], tcp_ports(*ports))]


def worker_tier(
    name: str,
    own_set: Mapping[str, str],
    callers: Mapping[str, str],
    serving_ports: Sequence[int],
    metrics_ports: Sequence[int],
    kv_peers: Sequence[Mapping[str, str]],
    monitoring_namespaces: Sequence[str],
    extra_egress: Sequence[dict] = (),
) -> TierPolicy:
    """A LeaderWorkerSet's pods: callers on the serving port, own group and KV peers on any port
    (``extra_egress``: e.g. the drain's Prometheus queries, :func:`prometheus_egress`)."""
    peers = [pods_peer(own_set), *[pods_peer(p) for p in kv_peers]]
    return TierPolicy(
        name=name,
        selector=dict(own_set),
        ingress=[
            rule([pods_peer(callers)], tcp_ports(*serving_ports)),
            rule(peers, None),
            *metrics_ingress(monitoring_namespaces, *metrics_ports),
        ],
        egress=[rule(peers, None), *extra_egress],
    )


def prometheus_egress(prometheus_url: str, monitoring_namespaces: Sequence[str]) -> list[dict]:
    """Egress to the Prometheus at ``prometheus_url``: its namespace when the URL names a cluster
    Service (``<svc>.<namespace>.svc[...]``), else the monitoring namespaces; its port (the scheme's default if none)."""
    from urllib.parse import urlsplit

    parts = urlsplit(prometheus_url)
    labels = (parts.hostname or "").split(".")
    namespaces = [labels[1]] if len(labels) >= 3 and labels[2] == "svc" else list(monitoring_namespaces)
    if not namespaces:
        return []
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return [rule([namespaces_peer(namespaces)], tcp_ports(port))]


TYPE_TOKEN = "disagg:serving:NetworkPolicies"


class NetworkPoliciesArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    instance: str
    namespace: str
    tiers: tuple[TierPolicy, ...]
    storage_cidrs: tuple[str, ...] = ()


class NetworkPolicies(pulumi.ComponentResource):
    """The NetworkPolicies of one deployment (:func:`network_policy_manifests`)."""

    policies: list[k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        provider = k8s_provider(opts, f"NetworkPolicies '{name}'")
        super().__init__(TYPE_TOKEN, name, None, opts)
        manifests = network_policy_manifests(
            args.instance, args.namespace, args.tiers, storage_cidrs=args.storage_cidrs
        )
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{m['metadata']['name'][len(args.instance) + 1:]}",
                metadata=m["metadata"],
                spec=m["spec"],
                opts=child_options(self, provider, opts),
            )
            for m in manifests
        ]
        self.register_outputs({"names": [m["metadata"]["name"] for m in manifests]})
