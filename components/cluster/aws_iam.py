"""IAM for the EKS cluster, as pure data: managed policies per role and policy documents.

Least privilege, role by role:

* the control plane role gets ``AmazonEKSClusterPolicy`` only;
* the node role gets what a kubelet needs (``AmazonEKSWorkerNodePolicy``, image pulls from ECR,
  optionally Session Manager) and *not* the CNI policy: the VPC CNI gets its own role through
  IRSA, so pods on the node cannot use the node's credentials to manage network interfaces;
* each CSI driver gets a role for its own service account (IRSA), with an inline policy of the
  actions it calls (FSx: file systems only; S3: one bucket) rather than a managed FullAccess policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")
NODE_SSM_POLICY = "AmazonSSMManagedInstanceCore"
CNI_POLICY = "AmazonEKS_CNI_Policy"
FSX_CSI_ACTIONS = (
    "fsx:CreateFileSystem",
    "fsx:DeleteFileSystem",
    "fsx:DescribeFileSystems",
    "fsx:TagResource",
    "fsx:UpdateFileSystem",
)
"""What the FSx for Lustre CSI controller calls (instead of ``AmazonFSxFullAccess``). Source:
kubernetes-sigs/aws-fsx-csi-driver docs/install.md (commit 5b227125add708cd0b87c76abe1a4c074e71dfc5),
"Using IAM instance profile" policy; pkg/cloud/cloud.go calls exactly Create/Delete/Describe/
UpdateFileSystem. Its S3 data-repository statements (``s3:ListBucket``, the s3.data-source service
role) are left out: this project links no S3 bucket to the file system."""
MAX_METADATA_HOPS = 1
"""IMDSv2 response hop limit of every node: pods (one hop further) cannot read the node role's
credentials; they get their own through IRSA. EKS best practices, "Restrict access to the
instance profile assigned to the worker node". Host-network pods (aws-node, kube-proxy) are not
a hop further and keep IMDS; the FSx CSI node driver, which is not, falls back to the Kubernetes
API for its instance data (aws-fsx-csi-driver pkg/cloud/metadata.go, NewMetadataService, commit
5b227125add708cd0b87c76abe1a4c074e71dfc5)."""
CLUSTER_ADMIN_ACCESS_POLICY = "AmazonEKSClusterAdminPolicy"

CNI_SERVICE_ACCOUNT = ("kube-system", "aws-node")
FSX_CSI_SERVICE_ACCOUNT = ("kube-system", "fsx-csi-controller-sa")
S3_CSI_SERVICE_ACCOUNT = ("kube-system", "s3-csi-driver-sa")


def aws_partition(region: str) -> str:
    """The ARN partition of ``region`` (``aws``, ``aws-cn`` or ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def managed_policy_arn(policy: str, partition: str = "aws") -> str:
    """ARN of the AWS managed IAM policy ``policy``."""
    return f"arn:{partition}:iam::aws:policy/{policy}"


def access_policy_arn(policy: str, partition: str = "aws") -> str:
    """ARN of an EKS access policy (used by access entries, not IAM)."""
    return f"arn:{partition}:eks::aws:cluster-access-policy/{policy}"


def service_trust_policy(service: str) -> str:
    """Trust policy letting an AWS service (``eks.amazonaws.com``, ``ec2.amazonaws.com``) assume a role."""
    return _document(
        [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    )


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> str:
    """Trust policy letting one Kubernetes service account assume a role (IRSA)."""
    issuer = issuer_url.removeprefix("https://")
    return _document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:aud": "sts.amazonaws.com",
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    }
                },
            }
        ]
    )


def s3_mountpoint_policy(bucket_arn: str) -> str:
    """What Mountpoint for S3 needs on one bucket: list it, read, write and delete its objects."""
    return _document(
        [
            {"Sid": "ListBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]},
            {
                "Sid": "ReadWriteObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
                "Resource": [f"{bucket_arn}/*"],
            },
        ]
    )


def fsx_csi_policy(partition: str = "aws") -> str:
    """Least-privilege policy of the FSx CSI controller: the file-system actions it calls, and the
    FSx service-linked role (created on the account's first file system)."""
    return _document(
        [
            {"Sid": "ManageFileSystems", "Effect": "Allow", "Action": list(FSX_CSI_ACTIONS), "Resource": ["*"]},
            {
                "Sid": "FsxServiceLinkedRole",
                "Effect": "Allow",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": ["*"],
                "Condition": {"StringLike": {"iam:AWSServiceName": ["fsx.amazonaws.com"]}},
            },
        ]
    )


def _document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


# --- Karpenter (aws/karpenter-provider-aws v1.14.1, website/content/en/preview/getting-started/
# getting-started-with-karpenter/cloudformation.yaml @bde00654cd31: the controller policies and the
# interruption queue, expressed here for one cluster) ----------------------------------------------

KARPENTER_SERVICE_ACCOUNT = ("kube-system", "karpenter")
LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT = ("kube-system", "aws-load-balancer-controller")
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"

INTERRUPTION_EVENTS: dict[str, dict[str, list[str]]] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "capacity-reservation-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}
"""EventBridge rules feeding Karpenter's interruption queue (name -> event pattern)."""


def pod_identity_trust_policy() -> str:
    """Trust policy of a role assumed through EKS Pod Identity."""
    return _document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ]
    )


def karpenter_controller_policy(
    cluster: str, region: str, account: str, partition: str, node_role_arn: str, queue_arn: str
) -> str:
    """What the Karpenter controller of ``cluster`` may do: launch, tag and terminate its own
    instances, manage instance profiles of its node classes, pass the node role, read the queue."""
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
    request_owned = {
        f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster,
    }
    created = [f"{ec2}:*:{kind}/*" for kind in (
        "fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request"
    )]
    profile = f"arn:{partition}:iam::{account}:instance-profile/*"
    region_tag = {"aws:ResourceTag/topology.kubernetes.io/region": region}
    cluster_arn = f"arn:{partition}:eks:{region}:{account}:cluster/{cluster}"
    return _document(
        [
            {
                "Sid": "AllowScopedEC2InstanceAccessActions",
                "Effect": "Allow",
                "Resource": [
                    f"{ec2}::image/*",
                    f"{ec2}::snapshot/*",
                    *(f"{ec2}:*:{kind}/*" for kind in (
                        "security-group", "subnet", "capacity-reservation", "placement-group"
                    )),
                ],
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            },
            {
                "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
                "Effect": "Allow",
                "Resource": f"{ec2}:*:launch-template/*",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
            },
            {
                "Sid": "AllowScopedEC2InstanceActionsWithTags",
                "Effect": "Allow",
                "Resource": created,
                "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                "Condition": {
                    "StringEquals": request_owned,
                    "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
                },
            },
            {
                "Sid": "AllowScopedResourceCreationTagging",
                "Effect": "Allow",
                "Resource": created,
                "Action": "ec2:CreateTags",
                "Condition": {
                    "StringEquals": {
                        **request_owned,
                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                    },
                    "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
                },
            },
            {
                "Sid": "AllowScopedResourceTagging",
                "Effect": "Allow",
                "Resource": f"{ec2}:*:instance/*",
                "Action": "ec2:CreateTags",
                "Condition": {
                    "StringEquals": owned,
                    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                    "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster},
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                    },
                },
            },
            {
                "Sid": "AllowScopedDeletion",
                "Effect": "Allow",
                "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
                "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
            },
            {
                "Sid": "AllowPassingInstanceRole",
                "Effect": "Allow",
                "Resource": node_role_arn,
                "Action": "iam:PassRole",
                "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
            },
            {
                "Sid": "AllowScopedInstanceProfileCreationActions",
                "Effect": "Allow",
                "Resource": profile,
                "Action": ["iam:CreateInstanceProfile"],
                "Condition": {
                    "StringEquals": {**request_owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                    "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            },
            {
                "Sid": "AllowScopedInstanceProfileTagActions",
                "Effect": "Allow",
                "Resource": profile,
                "Action": ["iam:TagInstanceProfile"],
                "Condition": {
                    "StringEquals": {
                        **owned, **region_tag, **request_owned,
                        "aws:RequestTag/topology.kubernetes.io/region": region,
                    },
                    "StringLike": {
                        "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                        "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    },
                },
            },
            {
                "Sid": "AllowScopedInstanceProfileActions",
                "Effect": "Allow",
                "Resource": profile,
                "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
                "Condition": {
                    "StringEquals": {**owned, **region_tag},
                    "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            },
            {"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow", "Resource": cluster_arn, "Action": "eks:DescribeCluster"},
            {
                "Sid": "AllowInterruptionQueueActions",
                "Effect": "Allow",
                "Resource": queue_arn,
                "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            },
            {
                "Sid": "AllowRegionalReadActions",
                "Effect": "Allow",
                "Resource": "*",
                "Action": [
                    "ec2:DescribeCapacityReservations",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribePlacementGroups",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets",
                ],
                "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
            },
            {
                "Sid": "AllowSSMReadActions",
                "Effect": "Allow",
                "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
                "Action": "ssm:GetParameter",
            },
            {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
            {"Sid": "AllowUnscopedInstanceProfileListAction", "Effect": "Allow", "Resource": "*", "Action": "iam:ListInstanceProfiles"},
            {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow", "Resource": profile, "Action": "iam:GetInstanceProfile"},
        ]
    )


def interruption_queue_policy(queue_arn: str) -> str:
    """SQS policy of the interruption queue: EventBridge (and SQS) may send; nothing over plain HTTP."""
    return _document(
        [
            {
                "Sid": "EventBridgeSends",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyHTTP",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]
    )


LOAD_BALANCER_CONTROLLER_POLICY_FILE = (
    Path(__file__).parent / "data" / "aws-load-balancer-controller-v3.5.0.iam-policy.json"
)


def load_balancer_controller_policy() -> str:
    """Upstream's AWS Load Balancer Controller policy, unchanged (kubernetes-sigs/aws-load-balancer-controller
    ``docs/install/iam_policy.json`` @11eb202c97e4, v3.5.0, the pinned chart's app version).

    Not scoped to the cluster's region: an ``aws:RequestedRegion`` condition would deny the calls
    that do not go to it: ``iam:ListServerCertificates``/``iam:GetServerCertificate`` (IAM is
    global) and ``shield:*`` (Shield Advanced is served from us-east-1), which the controller makes
    for HTTPS listeners and Shield-protected load balancers."""
    document = json.loads(LOAD_BALANCER_CONTROLLER_POLICY_FILE.read_text())
    return _document(document["Statement"])
