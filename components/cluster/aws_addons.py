"""Configuration values of the EKS managed add-ons that need any (pure; the cluster wires them).

vpc-cni: NetworkPolicy enforcement is off unless ``enableNetworkPolicy`` is "true" (the add-on's
configuration schema follows the aws-vpc-cni chart's values: ``enableNetworkPolicy: "false"``,
``nodeAgent.enabled: true``, ``env.NETWORK_POLICY_ENFORCING_MODE: "standard"`` in
charts/aws-vpc-cni/values.yaml of aws/amazon-vpc-cni-k8s v1.20.1 @d885b3b0fb45, the version the
EKS user guide lists for Kubernetes 1.33, ``v1.20.1-eksbuild.3``; key table in
tests/components/platform/data/aws-vpc-cni-v1.20.1.values-keys.json). With it on, the add-on's network policy
agent (the ``aws-eks-nodeagent`` container of aws-node) enforces policies with eBPF; upstream's
prerequisites are VPC CNI >= v1.14.0 and node kernels >= 5.10 (AL2023: 6.1), and nothing on the
IAM side (the version check: ``components.config.cluster.vpc_cni_version_problem``;
docs/network-policy-faq.md of the same repository; EKS user guide
"cni-network-policy-configure"). Enforcement stays in the "standard" mode (a new pod is reachable
until the policies selecting it are programmed, a second or so), not "strict" (every pod, the
operators' included, denied until a policy admits it).
"""

from __future__ import annotations


def vpc_cni_configuration(network_policy: bool) -> dict:
    """``configurationValues`` of the vpc-cni add-on (an empty dict: none needed)."""
    if not network_policy:
        return {}
    return {"enableNetworkPolicy": "true", "nodeAgent": {"enabled": True}}
