"""NetworkPolicies are enforced, or the stack says why not: vpc-cni configuration on EKS, the
declared CNI of an existing cluster (refused when it cannot enforce them, warned when unknown)."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from components.cluster.aws import AwsGpuCluster
from components.cluster.aws_addons import vpc_cni_configuration
from components.config import ConfigError, load_stack_config
from components.config.cluster import EksConfig, network_policy_warnings, vpc_cni_version_problem
from disaggctl.synth.program import read_stack_config

ADDON = "aws:eks/addon:Addon"
PROJECT_DIR = Path(__file__).resolve().parents[3]
TABLE = json.loads((PROJECT_DIR / "tests/components/platform/data/aws-vpc-cni-v1.20.1.values-keys.json").read_text())["paths"]


@pytest.fixture
def build(declare):
    def run(config: EksConfig, name: str = "llm-test"):
        def program() -> AwsGpuCluster:
            provider = aws.Provider("aws", region=config.region)
            return AwsGpuCluster(name, config, pulumi.ResourceOptions(providers={"aws": provider}))

        return declare(program)

    return run


def key_paths(values: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        out.append(f"{prefix}{key}")
        if isinstance(value, dict):
            out += key_paths(value, f"{prefix}{key}.")
    return out


def test_configuration_keys_exist_in_the_pinned_chart_with_their_kinds() -> None:
    """The add-on's configuration schema follows the aws-vpc-cni chart values (v1.20.1)."""
    values = vpc_cni_configuration(network_policy=True)
    assert {path: TABLE.get(path) for path in key_paths(values)} == {
        "enableNetworkPolicy": "string",  # the chart's "false" is a string, and so is ours
        "nodeAgent": "map",
        "nodeAgent.enabled": "bool",
    }
    assert values == {"enableNetworkPolicy": "true", "nodeAgent": {"enabled": True}}


def vpc_cni(declared) -> dict:
    (addon,) = [a for a in declared.of_type(ADDON) if a.inputs["addonName"] == "vpc-cni"]
    return addon.inputs


def test_the_eks_vpc_cni_enforces_network_policies(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    assert json.loads(vpc_cni(declared)["configurationValues"]) == {
        "enableNetworkPolicy": "true", "nodeAgent": {"enabled": True},
    }  # fmt: skip
    others = [a.inputs for a in declared.of_type(ADDON) if a.inputs["addonName"] != "vpc-cni"]
    assert others and not any("configurationValues" in a for a in others)


def test_opting_out_sends_no_configuration(build, make_eks) -> None:
    _, declared = build(make_eks(networkPolicy=False), "open")
    assert "configurationValues" not in vpc_cni(declared)


@pytest.mark.parametrize(
    ("version", "refused"),
    [("v1.13.4-eksbuild.1", True), ("v1.14.0-eksbuild.3", False), ("v1.20.1-eksbuild.3", False), (None, False)],
)
def test_a_pinned_vpc_cni_older_than_network_policy_support_is_refused(version, refused) -> None:
    problem = vpc_cni_version_problem(version, network_policy=True)
    assert (problem is not None) is refused
    assert vpc_cni_version_problem(version, network_policy=False) is None


def stack(**cluster_changes) -> dict[str, str]:
    _, raw, _ = read_stack_config(PROJECT_DIR, "dev")
    cluster = json.loads(raw["disagg:cluster"])
    for path, value in cluster_changes.items():
        section, key = path.split(".")
        cluster[section][key] = value
    raw["disagg:cluster"] = json.dumps(cluster)
    return raw


def test_dev_declares_enforcement_and_warns_about_nothing() -> None:
    assert network_policy_warnings(load_stack_config(stack()).cluster) == []


def test_eks_without_enforcement_is_one_warning() -> None:
    config = load_stack_config(stack(**{"eks.networkPolicy": False}))
    assert set(network_policy_warnings(config.cluster)) <= set(config.deploy_warnings())  # what the program prints
    assert network_policy_warnings(config.cluster) == [
        "disagg:cluster.eks.networkPolicy is false: the stack's NetworkPolicies are declared but the VPC "
        "CNI does not enforce them (every pod can reach every other)"
    ]


def test_an_old_pinned_vpc_cni_fails_the_stack_with_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_stack_config(stack(**{"eks.addonVersions": {"vpc-cni": "v1.12.6-eksbuild.2"}}))
    assert str(info.value).splitlines()[-1].strip().lstrip("- ") == (
        "disagg:cluster.eks.addonVersions.vpc-cni: 'v1.12.6-eksbuild.2' predates network policy support "
        "(v1.14.0): pin v1.14.0-eksbuild.1 or later, or remove the pin"
    )


def existing(cni: str | None) -> dict[str, str]:
    _, raw, _ = read_stack_config(PROJECT_DIR, "dev")
    cluster = {
        "name": "onprem", "provider": "existing",
        "existing": {
            "kubeconfig": "[secret]", "fabric": "infiniband", "storageClass": "weka-rwx",
            "gpuPools": [{"name": "a100", "gpusPerNode": 8, "gpuMemoryGib": 40, "gpuArch": "ampere",
                          "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}}],
        },
    }  # fmt: skip
    if cni is not None:
        cluster["existing"]["cni"] = cni
    raw["disagg:cluster"] = json.dumps(cluster)
    deployments = json.loads(raw["disagg:deployments"])
    deployments[0]["workers"]["pool"] = "a100"
    deployments[0].pop("workload")
    raw["disagg:deployments"] = json.dumps(deployments)
    return raw


@pytest.mark.parametrize("cni", ["flannel", "vpc-cni"])
def test_an_existing_cluster_whose_cni_does_not_enforce_policies_is_refused(cni) -> None:
    with pytest.raises(ConfigError) as info:
        load_stack_config(existing(cni), ["disagg:cluster"])
    lines = [line for line in str(info.value).splitlines() if "cluster.existing.cni" in line]
    assert len(lines) == 1
    assert f"'{cni}' does not enforce NetworkPolicies" in lines[0]


@pytest.mark.parametrize("cni", ["calico", "cilium", "vpc-cni-network-policy"])
def test_an_enforcing_cni_is_accepted_silently(cni) -> None:
    assert network_policy_warnings(load_stack_config(existing(cni), ["disagg:cluster"]).cluster) == []


def test_an_undeclared_cni_is_one_warning() -> None:
    (warning,) = network_policy_warnings(load_stack_config(existing(None), ["disagg:cluster"]).cluster)
    assert warning.startswith("disagg:cluster.existing.cni is unknown: the stack's NetworkPolicies are enforced only")
