"""Configuration values of the EKS managed add-ons that need any (pure; the cluster wires them).

vpc-cni: NetworkPolicy enforcement is off unless ``enableNetworkPolicy`` is "true" (the add-on's
configuration schema follows the aws-vpc-cni chart's values: ``enableNetworkPolicy: "false"``,
``nodeAgent.enabled: true``, ``env.NETWORK_POLICY_ENFORCING_MODE: "standard"`` in
charts/aws-vpc-cni/values.yaml of aws/amazon-vpc-cni-k8s v1.20.1 @d885b3b0fb45, the version the
EKS user guide lists for Kubernetes 1.33, ``v1.20.1-eksbuild.3``; key table in
tests/platform/data/aws-vpc-cni-v1.20.1.values-keys.json). With it on, the add-on's network policy
agent (the ``aws-eks-nodeagent`` container of aws-node) enforces policies with eBPF; upstream's
prerequisites are VPC CNI >= v1.14.0 and node kernels >= 5.10 (AL2023: 6.1), and nothing on the
IAM side (docs/network-policy-faq.md of the same repository; EKS user guide
"cni-network-policy-configure"). Enforcement stays in the "standard" mode (a new pod is reachable
until the policies selecting it are programmed, a second or so), not "strict" (every pod, the
operators' included, denied until a policy admits it).
"""

from __future__ import annotations

import re

VPC_CNI_MIN_NETWORK_POLICY = (1, 14, 0)
"""First VPC CNI release with the network policy agent (amazon-vpc-cni-k8s v1.14.0)."""


def vpc_cni_configuration(network_policy: bool) -> dict:
    """``configurationValues`` of the vpc-cni add-on (an empty dict: none needed)."""
    if not network_policy:
        return {}
    return {"enableNetworkPolicy": "true", "nodeAgent": {"enabled": True}}


def vpc_cni_version_problem(version: str | None, network_policy: bool) -> str | None:
    """Why a pinned vpc-cni add-on version cannot enforce NetworkPolicies, or None."""
    if not network_policy or version is None:
        return None  # EKS's default for every supported Kubernetes version is newer than v1.14
    match = re.match(r"v(\d+)\.(\d+)\.(\d+)", version)
    if match and tuple(int(g) for g in match.groups()) < VPC_CNI_MIN_NETWORK_POLICY:
        return (
            f"cluster.eks.addonVersions.vpc-cni: '{version}' predates network policy support "
            "(v1.14.0): pin v1.14.0-eksbuild.1 or later, or remove the pin"
        )
    return None
