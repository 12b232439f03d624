"""AWS Load Balancer Controller: annotations it reads, chart keys, IAM policy scope."""

from __future__ import annotations

import json
from pathlib import Path

from components.cluster import aws_iam
from components.cluster.contract import AwsClusterInfo
from components.platform.load_balancer_controller import (
    load_balancer_controller_values,
    nlb_service_annotations,
)
from components.serving.load_balancer import load_balancer_annotations

ANNOTATIONS = json.loads(
    (Path(__file__).parent / "data" / "aws-load-balancer-controller-v3.5.0.service-annotations.json").read_text()
)["annotations"]


def test_nlb_annotations_are_ones_the_controller_reads() -> None:
    """docs/guide/service/annotations.md @v3.5.0: type external (reconciled by the controller),
    nlb-target-type ip, scheme internal | internet-facing."""
    for internal in (True, False):
        for key in nlb_service_annotations(internal):
            assert key in ANNOTATIONS
    assert nlb_service_annotations(False)["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert nlb_service_annotations()["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"


def test_the_frontend_service_annotations_are_the_controllers() -> None:
    """Both runtimes' frontend Services take their annotations from nlb_service_annotations."""
    assert load_balancer_annotations("LoadBalancer", True, public=False) == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    }
    assert load_balancer_annotations("LoadBalancer", True, public=True) == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    }
    assert load_balancer_annotations("ClusterIP", True, public=False) == {}
    assert load_balancer_annotations("LoadBalancer", False, public=False) == {}


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters) -> None:
    handle = clusters.handle("efa")
    handle.aws = AwsClusterInfo(region="us-east-2", cluster_name="llm-prod", vpc_id="vpc-0abc", node_role_name="node")  # type: ignore[arg-type]
    values = load_balancer_controller_values(handle, "arn:aws:iam::123456789012:role/lb")
    assert values["serviceAccount"] == {
        "create": True,
        "name": "aws-load-balancer-controller",
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/lb"},
    }
    assert upstream.unknown_values(values, upstream.key_table("aws-load-balancer-controller-3.5.0.values-keys.json")) == []


def test_iam_policy_is_exactly_upstreams() -> None:
    """The attached policy is upstream's v3.5.0 document, statement for statement (no region
    condition: it would deny iam:*ServerCertificate* and shield:*, which are not regional)."""
    upstream = json.loads(aws_iam.LOAD_BALANCER_CONTROLLER_POLICY_FILE.read_text())
    attached = json.loads(aws_iam.load_balancer_controller_policy())
    assert attached == upstream
    assert len(attached["Statement"]) == 16
    assert "aws:RequestedRegion" not in aws_iam.load_balancer_controller_policy()
