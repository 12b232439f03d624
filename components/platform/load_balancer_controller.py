"""AwsLoadBalancerController: the controller that turns the frontends' Services into NLBs on EKS.

Without it, a Service of type LoadBalancer with ``aws-load-balancer-type: external`` gets no load
balancer at all (the in-tree controller ignores it). Installed from the eks-charts repository
(chart 3.5.0 = controller v3.5.0) in kube-system, its service account bound to the IRSA role the
cluster layer created with upstream's IAM policy, unchanged
(:func:`components.cluster.aws_iam.load_balancer_controller_policy`).

:func:`nlb_service_annotations` is what a Service must carry for the controller to reconcile it
as an NLB with pod (IP) targets, as kubernetes-sigs/aws-load-balancer-controller
``docs/guide/service/annotations.md`` @11eb202c97e4 (v3.5.0) documents: ``aws-load-balancer-type:
external`` (the controller reconciles ``external`` and the deprecated ``nlb-ip``),
``aws-load-balancer-nlb-target-type: ip`` and ``aws-load-balancer-scheme`` (``internal`` is the
default, ``internet-facing`` must be asked for).
"""

from __future__ import annotations

from components.cluster.aws_iam import LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT
from components.cluster.contract import ClusterHandle
from components.config.platform import ChartConfig, PlatformConfig
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:AwsLoadBalancerController"
RELEASE_NAME = "aws-load-balancer-controller"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"

LB_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
LB_TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
LB_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"


def nlb_service_annotations(internal: bool = True) -> dict[str, str]:
    """Annotations of a Service the controller provisions an NLB for (IP targets)."""
    return {
        LB_TYPE: "external",
        LB_TARGET_TYPE: "ip",
        LB_SCHEME: "internal" if internal else "internet-facing",
    }


def should_install(config: PlatformConfig, handle: ClusterHandle) -> bool:
    """Installed on EKS unless turned off; never elsewhere (no IAM role to run with)."""
    enabled = config.load_balancer_controller.enabled
    return handle.aws is not None and enabled is not False


def load_balancer_controller_values(handle: ClusterHandle, role_arn: object) -> dict:
    """Helm values of the aws-load-balancer-controller chart for this cluster."""
    assert handle.aws is not None
    _, account = LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT
    values: dict = {
        "clusterName": handle.aws.cluster_name,
        "region": handle.aws.region,
        "vpcId": handle.aws.vpc_id,
        "replicaCount": 2,
        "serviceAccount": {"create": True, "name": account, "annotations": {IRSA_ANNOTATION: role_arn}},
        # only Services that ask for it (aws-load-balancer-type: external) get an NLB
        "enableServiceMutatorWebhook": False,
    }
    selector = system_node_selector(handle.system_pool)
    if selector:
        values["nodeSelector"] = selector
    return values


class AwsLoadBalancerController(ChartComponent):
    """The aws-load-balancer-controller Helm release in kube-system."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    def check(self, handle: ClusterHandle, config: PlatformConfig) -> None:
        if handle.aws is None or handle.aws.load_balancer_controller_role_arn is None:
            raise ValueError(
                f"AWS Load Balancer Controller on cluster '{handle.name}', which is not an EKS "
                "cluster of this stack: install your own load balancer integration there"
            )

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.load_balancer_controller.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        assert handle.aws is not None and handle.aws.load_balancer_controller_role_arn is not None  # check()
        return load_balancer_controller_values(handle, handle.aws.load_balancer_controller_role_arn)

    def release_namespace(self, config: PlatformConfig) -> str:
        return LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT[0]
