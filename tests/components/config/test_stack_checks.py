"""validation.check_stack rule by rule, on the smallest stack that passes it: secrets, exposure,
worker capacity, existing clusters, /dev/shm, and the warnings and aws:region check next to it.

Each refusal is shown with its exact message next to the value one step inside the rule.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config import StackConfig
from components.config.validation import check_provider_region, check_stack, stack_warnings

EKS_CLUSTER: dict[str, Any] = {
    "name": "c",
    "eks": {
        "region": "us-west-2", "availabilityZones": ["us-west-2a", "us-west-2b"], "publicAccessCidrs": ["100.20.0.0/24"],
        "gpuNodePools": [{"name": "h100", "instanceType": "p5.48xlarge", "availabilityZone": "us-west-2a", "maxSize": 2}],
    },
}  # fmt: skip
"""A new cluster: one pool of two 8-GPU nodes (2 TiB of memory each); the system group keeps maxSize 4."""

SECRET_KEYS = frozenset({"disagg:cluster", "disagg:hfToken", "disagg:tritonAdminKey", "disagg:apiKeys"})
"""Every credential key passed as a Pulumi secret (as `pulumi config set --secret` does)."""

PUBLIC = {"llama-8b": {"sourceRanges": ["100.20.0.0/24"], "auth": {"key": {"secretName": "llama-api-key"}}}}
EXPOSED = {"serviceType": "LoadBalancer", "internalLoadBalancer": False}


def eks(**fields: Any) -> dict[str, Any]:
    cluster = copy.deepcopy(EKS_CLUSTER)
    cluster["eks"].update(fields)
    return cluster


def existing(**fields: Any) -> dict[str, Any]:
    pool = {"name": "h100", "gpusPerNode": 8, "gpuMemoryGib": 80, "gpuArch": "hopper",
            "nodeSelector": {"nvidia.com/gpu.product": "H100"}}  # fmt: skip
    cluster = {"kubeconfig": "apiVersion: v1\nkind: Config\n", "storageClass": "nfs", "gpuPools": [pool], **fields}
    return {"name": "onprem", "provider": "existing", "existing": cluster}


def stack(
    cluster: dict[str, Any] = EKS_CLUSTER, workers: dict[str, Any] | None = None, frontend: dict[str, Any] | None = None,
    **top: Any,
) -> StackConfig:
    """One deployment 'llama-8b': tp-4 groups of one 4-GPU pod (two per node) on pool h100."""
    return StackConfig.model_validate(
        {
            "cluster": cluster,
            "engines": {"l8": {"model": "llama-3.1-8b-instruct", "tpSize": 4, "ppSize": 1}},
            "deployments": [
                {
                    "name": "llama-8b",
                    "frontend": {"serviceType": "ClusterIP", **(frontend or {})},
                    "workers": {"engine": "l8", "pool": "h100", "groups": 1, "podsPerGroup": 1, "gpusPerPod": 4,
                                **(workers or {})},  # fmt: skip
                }
            ],
            **top,
        }
    )


def problems(config: StackConfig, secret_keys: frozenset[str] = SECRET_KEYS) -> list[str]:
    return check_stack(config, secret_keys)


def test_the_smallest_stacks_pass() -> None:
    assert problems(stack()) == []
    assert problems(stack(existing())) == []


# -- secrets ---------------------------------------------------------------------------------------


def test_credentials_in_plain_text_are_refused_each_with_its_command() -> None:
    config = stack(hfToken="hf_x", tritonAdminKey="t", apiKeys={"llama-8b": "k"}, frontend=EXPOSED,
                   platform={"security": {"publicFrontends": PUBLIC}})  # fmt: skip
    assert problems(config) == []
    assert problems(config, frozenset({"disagg:cluster"})) == [
        "disagg:hfToken: the value is in the stack file in plain text (value hidden): remove it, rotate the "
        "credential, and store it encrypted: pulumi config set --secret hfToken <value>",
        "disagg:tritonAdminKey: the value is in the stack file in plain text (value hidden): remove it, rotate the "
        "credential, and store it encrypted: pulumi config set --secret tritonAdminKey <value>",
        "disagg:apiKeys: the value is in the stack file in plain text (value hidden): remove it, rotate the "
        "credential, and store it encrypted: pulumi config set --secret --path 'apiKeys.<deployment>' <key>",
    ]


def test_no_api_keys_is_no_plain_text_secret() -> None:
    assert problems(stack(apiKeys={}), frozenset({"disagg:cluster"})) == []


def test_an_hf_token_needs_a_secret_to_go_to() -> None:
    assert problems(stack(hfToken="hf_x", hfTokenSecret=None)) == [
        "disagg:hfToken is set but hfTokenSecret is null (no Secret to create): set hfTokenSecret: hf-token or drop hfToken"
    ]


def test_an_api_key_needs_a_public_frontend() -> None:
    assert problems(stack(apiKeys={"llama-8b": "k"})) == [
        "disagg:apiKeys.llama-8b: 'llama-8b' has no publicFrontends entry (its auth.key names the Secret to create): "
        "add the entry or drop the key"
    ]


def test_a_triton_admin_key_needs_the_restriction() -> None:
    assert problems(stack(tritonAdminKey="t")) == []  # the restriction is on by default
    assert problems(stack(tritonAdminKey="t", platform={"security": {"tritonRestrictedApis": {"enabled": False}}})) == [
        "disagg:tritonAdminKey is set but platform.security.tritonRestrictedApis.enabled is false (nothing reads it): "
        "drop tritonAdminKey or enable the restriction"
    ]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"apiKeys": {"llama-8b": "k"}, "frontend": EXPOSED, "platform": {"security": {"publicFrontends": {
            "llama-8b": {**PUBLIC["llama-8b"], "auth": {"key": {"secretName": "hf-token"}}}}}}},
         "disagg:hfToken and apiKeys.llama-8b: both would create the Secret 'hf-token': give each its own secretName"),
        ({"tritonAdminKey": "t", "platform": {"security": {"tritonRestrictedApis": {"key": {"secretName": "hf-token"}}}}},
         "disagg:hfToken and tritonAdminKey: both would create the Secret 'hf-token': give each its own secretName"),
        # groups of two pods get generated MPI SSH keys in <deployment>-mpi-ssh
        ({"hfTokenSecret": "llama-8b-mpi-ssh", "workers": {"podsPerGroup": 2, "gpusPerPod": 2}},
         "disagg:hfToken and mpiSshKeys (llama-8b): both would create the Secret 'llama-8b-mpi-ssh': give each its own "
         "secretName"),
    ],
)  # fmt: skip
def test_two_settings_creating_one_secret_are_refused(settings: dict[str, Any], expected: str) -> None:
    assert problems(stack(hfToken="hf_x", **settings)) == [expected]


def test_single_pod_groups_or_existing_mpi_keys_create_no_mpi_secret() -> None:
    assert problems(stack(hfToken="hf_x", hfTokenSecret="llama-8b-mpi-ssh")) == []
    assert problems(stack(hfToken="hf_x", hfTokenSecret="llama-8b-mpi-ssh", mpiSshKeys="existing",
                          workers={"podsPerGroup": 2, "gpusPerPod": 2})) == []  # fmt: skip


# -- exposure ----------------------------------------------------------------------------------------


def test_an_internet_facing_frontend_needs_its_opt_in() -> None:
    assert problems(stack(frontend=EXPOSED, platform={"security": {"publicFrontends": PUBLIC}})) == []
    assert problems(stack(frontend=EXPOSED)) == [
        "disagg:deployments[0].frontend.internalLoadBalancer: false makes the frontend internet-facing, which needs an "
        "explicit opt-in: add disagg:platform.security.publicFrontends.llama-8b with sourceRanges and auth, or keep "
        "internalLoadBalancer: true"
    ]


@pytest.mark.parametrize("frontend", [{}, {"serviceType": "LoadBalancer"}, {"internalLoadBalancer": False}])
def test_an_opt_in_for_a_frontend_that_is_not_internet_facing_is_refused(frontend: dict[str, Any]) -> None:
    """ClusterIP, or an internal load balancer (the default): the opt-in does nothing."""
    assert problems(stack(frontend=frontend, platform={"security": {"publicFrontends": PUBLIC}})) == [
        "disagg:platform.security.publicFrontends.llama-8b: the frontend of 'llama-8b' is not internet-facing (set its "
        "frontend serviceType: LoadBalancer and internalLoadBalancer: false), so this opt-in does nothing: remove it "
        "or expose it"
    ]


def test_an_opt_in_naming_no_deployment_is_refused() -> None:
    public = {"other": PUBLIC["llama-8b"], **PUBLIC}
    assert problems(stack(frontend=EXPOSED, platform={"security": {"publicFrontends": public}})) == [
        "disagg:platform.security.publicFrontends.other: no deployment is named 'other' (deployments: llama-8b): fix "
        "the name or remove it"
    ]


# -- worker groups fit their pool ---------------------------------------------------------------------


def test_workers_fit_their_pool_two_pods_per_node() -> None:
    """4-GPU pods on 8-GPU nodes: 4 groups fill the two nodes, 5 need a third (rounded up)."""
    assert problems(stack(workers={"groups": 4})) == []
    assert problems(stack(workers={"groups": 5})) == [
        "disagg:deployments[0].workers: at their largest (groups or maxGroups) the worker groups on pool 'h100' need "
        "3 nodes, but its maxSize is 2: lower groups/maxGroups or raise the pool's maxSize (at most 450)"
    ]


def test_workers_fit_their_pool_at_max_groups() -> None:
    assert problems(stack(workers={"groups": 1, "minGroups": 1, "maxGroups": 4})) == []
    assert problems(stack(workers={"groups": 1, "minGroups": 1, "maxGroups": 5})) == [
        "disagg:deployments[0].workers: at their largest (groups or maxGroups) the worker groups on pool 'h100' need "
        "3 nodes, but its maxSize is 2: lower groups/maxGroups or raise the pool's maxSize (at most 450)"
    ]


def test_pods_on_an_existing_cluster_fit_5000_nodes() -> None:
    assert problems(stack(existing(), workers={"groups": 2500, "podsPerGroup": 2, "gpusPerPod": 2})) == []
    assert problems(stack(existing(), workers={"groups": 2501, "podsPerGroup": 2, "gpusPerPod": 2})) == [
        "disagg:deployments[0].workers: 2501 groups × 2 pods need more nodes than a Kubernetes cluster holds (5000): "
        "lower groups/maxGroups"
    ]
    assert problems(stack(existing(), workers={"groups": 1, "minGroups": 1, "maxGroups": 2501, "podsPerGroup": 2,
                                               "gpusPerPod": 2})) == [  # fmt: skip
        "disagg:deployments[0].workers: 2501 groups × 2 pods need more nodes than a Kubernetes cluster holds (5000): "
        "lower groups/maxGroups"
    ]


# -- existing clusters ----------------------------------------------------------------------------------


def test_an_existing_cni_without_network_policies_is_refused() -> None:
    assert problems(stack(existing(cni="flannel"))) == [
        "disagg:cluster.existing.cni: 'flannel' does not enforce NetworkPolicies, so the stack's tier isolation would "
        "do nothing: enable policy enforcement in the CNI (e.g. vpc-cni-network-policy, Calico, Cilium) and declare it"
    ]


@pytest.mark.parametrize("name", ["Weka_RWX", "a" * 254])
def test_a_storage_class_is_a_kubernetes_name_of_at_most_253_characters(name: str) -> None:
    assert problems(stack(existing(storageClass="a" * 253))) == []
    assert problems(stack(existing(storageClass=name))) == [
        f"disagg:cluster.existing.storageClass: '{name}' is not a StorageClass name (lowercase letters, digits, '-' "
        "and '.'): use the name kubectl get storageclass shows"
    ]


# -- /dev/shm, warnings, aws:region ----------------------------------------------------------------------


def test_shm_fits_the_node_memory() -> None:
    """p5.48xlarge: 2048 GiB of memory."""
    assert problems(stack(workers={"shmSize": "2048Gi"})) == []
    assert problems(stack(workers={"shmSize": "2049Gi"})) == [
        "disagg:deployments[0].workers.shmSize: '2049Gi' is more than the 2048 GiB of memory of a p5.48xlarge node: "
        "lower it (the default 64Gi suits trtllm-serve)"
    ]


def test_gpu_subnets_smaller_than_a_slash_24_are_warned() -> None:
    """plan_subnets gives each zone's GPU subnet the VPC's prefix + 6: a /18 VPC gives /24s."""
    assert stack_warnings(stack(eks(vpcCidr="10.0.0.0/18"))) == []
    assert stack_warnings(stack(eks(vpcCidr="10.0.0.0/19"))) == [
        "disagg:cluster.eks.vpcCidr: '10.0.0.0/19' leaves each zone a /25 GPU subnet (123 addresses), while the VPC "
        "CNI keeps a spare network interface's addresses warm on every node (WARM_ENI_TARGET=1, up to 50 on p4d/p5), "
        "so a few GPU nodes exhaust it and pods stay Pending: use a /16 (or a /18 at most)"
    ]
    assert stack_warnings(stack(existing())) == []


def test_aws_region_must_be_the_clusters() -> None:
    assert check_provider_region(stack(), "us-west-2") == []
    assert check_provider_region(stack(), None) == []
    assert check_provider_region(stack(existing()), "us-east-1") == []
    assert check_provider_region(stack(), "us-east-1") == [
        "aws:region: 'us-east-1' differs from disagg:cluster.eks.region 'us-west-2' (the cluster is built in "
        "eks.region, anything on the default provider would land in aws:region): set aws:region: us-west-2"
    ]


# -- more edges: pods larger than a node, quotas already reported, the VPC's room, labels, kubeconfig files --


def test_a_pod_larger_than_its_node_counts_one_node() -> None:
    """16-GPU pods on 8-GPU nodes (refused by the capacity checks; here each pod counts one node)."""
    config = stack(workers={"groups": 3, "gpusPerPod": 16}, engines={"l8": {"model": "llama-3.1-70b-instruct", "tpSize": 16}})
    assert problems(config) == [
        "disagg:deployments[0].workers: at their largest (groups or maxGroups) the worker groups on pool 'h100' need "
        "3 nodes, but its maxSize is 2: lower groups/maxGroups or raise the pool's maxSize (at most 450)"
    ]


def test_frontends_that_are_not_internet_facing_need_no_opt_in() -> None:
    assert problems(stack(frontend={"internalLoadBalancer": False})) == []  # ClusterIP
    assert problems(stack(frontend={"serviceType": "LoadBalancer"})) == []  # internal by default


def test_the_default_triton_secret_is_created_only_with_a_triton_admin_key() -> None:
    assert problems(stack(hfToken="hf_x", hfTokenSecret="triton-admin-key")) == []


def test_an_invalid_shm_size_is_refused_once() -> None:
    assert problems(stack(workers={"shmSize": "lots"})) == [
        "disagg:deployments[0].workers.shmSize: 'lots' is not a Kubernetes quantity (e.g. 16Gi): fix it"
    ]


def test_the_node_total_is_not_reported_on_top_of_a_node_group_beyond_its_quota() -> None:
    """12 pools × 400 nodes + 451 system nodes pass 5000, but the 451 is the problem to fix first."""
    pools = [{"name": f"g{i}", "instanceType": "g6.xlarge", "efa": False, "placementGroup": False, "maxSize": 400}
             for i in range(12)]  # fmt: skip
    config = stack(eks(gpuNodePools=[*EKS_CLUSTER["eks"]["gpuNodePools"], *pools], systemNodeGroup={"maxSize": 451}))
    assert problems(config) == [
        "disagg:cluster.eks.systemNodeGroup.maxSize: 451 nodes exceed EKS's 450 nodes per managed node group: lower "
        "it, or split the pool"
    ]


def test_the_gpu_subnet_holds_the_pools_at_max_size_to_the_last_address() -> None:
    """A /17 VPC: /23 GPU subnets, 512 - 5 reserved = 507 addresses; a g6.12xlarge node takes 4 + 9 = 13."""
    pool = {"name": "h100", "instanceType": "g6.12xlarge", "efa": False, "placementGroup": False,
            "availabilityZone": "us-west-2a"}  # fmt: skip
    assert problems(stack(eks(vpcCidr="10.0.0.0/17", gpuNodePools=[{**pool, "maxSize": 39}]))) == []
    assert problems(stack(eks(vpcCidr="10.0.0.0/17", gpuNodePools=[{**pool, "maxSize": 40}]))) == [
        "disagg:cluster.eks.vpcCidr: '10.0.0.0/17' is too small: the GPU subnet of us-west-2a (10.0.96.0/23, 507 "
        "usable addresses) cannot hold the 520 addresses its pools need at maxSize: use a larger VPC (e.g. a /16) or "
        "lower the pools' maxSize"
    ]


def test_a_long_label_key_is_named_by_its_first_80_characters() -> None:
    key = "kubernetes.io/" + "x" * 90
    config = stack(eks(gpuNodePools=[{**EKS_CLUSTER["eks"]["gpuNodePools"][0], "labels": {key: "v"}}]))
    assert problems(config) == [
        f"disagg:cluster.eks.gpuNodePools[0].labels.{key[:80]}: '{key[:80]}' is not a label key ([prefix/]name, "
        "name at most 63 letters, digits, '-', '_', '.'): fix it"
    ]


def test_a_kubeconfig_file_is_read_for_its_context(tmp_path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\ncontexts:\n- name: onprem\n  context: {cluster: c, user: u}\n")
    assert problems(stack(existing(kubeconfig=str(path), context="onprem"))) == []
    assert problems(stack(existing(kubeconfig=str(path), context="prod"))) == [
        "disagg:cluster.existing.context: context 'prod' is not in the kubeconfig (contexts: onprem): pick one of them "
        "or remove the key"
    ]


def test_the_offline_placeholder_of_a_secret_kubeconfig_is_not_read() -> None:
    """disaggctl synth renders secrets as '[secret]': no file of that name is looked for."""
    assert problems(stack(existing(kubeconfig="[secret]"))) == []


def test_a_vpc_cni_pin_without_network_policies_is_refused() -> None:
    assert problems(stack(eks(addonVersions={"vpc-cni": "v1.14.0-eksbuild.1"}))) == []
    assert problems(stack(eks(addonVersions={"vpc-cni": "v1.13.4-eksbuild.1"}))) == [
        "disagg:cluster.eks.addonVersions.vpc-cni: 'v1.13.4-eksbuild.1' predates network policy support (v1.14.0): pin "
        "v1.14.0-eksbuild.1 or later, or remove the pin"
    ]
