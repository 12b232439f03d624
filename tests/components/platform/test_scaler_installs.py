"""PlatformOperators installs KEDA when enabled, the AWS Load Balancer Controller on EKS only."""

from __future__ import annotations

from components.cluster.contract import AwsClusterInfo
from components.config.platform import PlatformConfig
from components.platform import PlatformOperators


def deploy(mocks, clusters, fabric, config, aws=False):
    def program():
        handle = clusters.handle(fabric, provider=mocks.provider())
        if aws:
            handle.aws = AwsClusterInfo(
                region="us-east-2", cluster_name="llm-prod", vpc_id="vpc-0abc", node_role_name="node",  # type: ignore[arg-type]
                load_balancer_controller_role_arn="arn:aws:iam::123456789012:role/lb",  # type: ignore[arg-type]
            )
        return PlatformOperators("llm-platform", handle, config)

    return mocks.run(program)


def test_keda_is_installed_when_enabled_in_its_namespace(mocks, clusters):
    out = deploy(mocks, clusters, "infiniband", PlatformConfig.model_validate({"keda": {"enabled": True}}))
    release = out.releases()["keda"]
    assert (release.inputs["namespace"], release.inputs["version"], release.inputs["createNamespace"]) == ("keda", "2.20.2", True)
    assert "keda" in out.result.installed


def test_load_balancer_controller_on_eks_unless_turned_off(mocks, clusters):
    out = deploy(mocks, clusters, "efa", PlatformConfig(), aws=True)
    release = out.releases()["aws-load-balancer-controller"]
    assert (release.inputs["namespace"], release.inputs["version"]) == ("kube-system", "3.5.0")
    off = deploy(mocks, clusters, "efa", PlatformConfig.model_validate({"loadBalancerController": {"enabled": False}}), aws=True)
    assert "aws-load-balancer-controller" not in off.releases()


def test_no_load_balancer_controller_or_karpenter_on_an_existing_cluster(mocks, clusters):
    out = deploy(mocks, clusters, "infiniband", PlatformConfig())
    assert not {"aws-load-balancer-controller", "karpenter"} & set(out.releases())
