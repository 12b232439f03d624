"""KarpenterAws: what Karpenter needs from AWS — its controller role and its interruption queue.

As upstream documents it (aws/karpenter-provider-aws v1.14.1, getting-started cloudformation.yaml):
an SQS queue (SSE, 5-minute retention, HTTPS only) fed by EventBridge rules for health events,
spot interruptions, rebalance recommendations, instance state changes and capacity-reservation
interruptions; a controller role with the scoped policy of
:func:`components.cluster.aws_iam.karpenter_controller_policy`, given to the ``kube-system/karpenter``
service account through EKS Pod Identity (the agent add-on is installed with the cluster), so
no service-account annotation and no OIDC trust are needed. Nodes reuse the cluster's node role.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict

from components.cluster import aws_iam
from components.cluster.aws_node_pool import StrInput

TYPE_TOKEN = "disagg:cluster:KarpenterAws"
QUEUE_RETENTION_S = 300


class KarpenterAwsArgs(BaseModel):
    """The cluster Karpenter serves."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    cluster_name: str
    eks_cluster_name: StrInput
    region: str
    partition: str = "aws"
    node_role_arn: StrInput


class KarpenterAws(pulumi.ComponentResource):
    """Interruption queue + EventBridge rules, controller role + Pod Identity association."""

    queue_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    dependencies: list[pulumi.Resource]
    """Role policy and Pod Identity association: the controller must start after them."""

    def __init__(self, name: str, args: KarpenterAwsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        queue = aws.sqs.Queue(
            f"{name}-interruption-queue",
            name=f"{args.cluster_name}-karpenter",
            message_retention_seconds=QUEUE_RETENTION_S,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruption-queue-policy",
            queue_url=queue.url,
            policy=queue.arn.apply(aws_iam.interruption_queue_policy),
            opts=child,
        )
        for rule_name, pattern in aws_iam.INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{rule_name}",
                description=f"Karpenter interruption handling of {args.cluster_name}: {rule_name}",
                event_pattern=json.dumps(pattern, sort_keys=True),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{rule_name}-target",
                rule=rule.name,
                target_id="KarpenterInterruptionQueueTarget",
                arn=queue.arn,
                opts=child,
            )
        role = aws.iam.Role(
            f"{name}-controller-role",
            assume_role_policy=aws_iam.pod_identity_trust_policy(),
            description=f"EKS cluster {args.cluster_name}: Karpenter controller (Pod Identity)",
            opts=child,
        )
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        policy = aws.iam.RolePolicy(
            f"{name}-controller-policy",
            role=role.name,
            policy=pulumi.Output.all(account, args.node_role_arn, queue.arn).apply(
                lambda v: aws_iam.karpenter_controller_policy(
                    args.cluster_name, args.region, v[0], args.partition, v[1], v[2]
                )
            ),
            opts=child,
        )
        namespace, service_account = aws_iam.KARPENTER_SERVICE_ACCOUNT
        association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity",
            cluster_name=args.eks_cluster_name,
            namespace=namespace,
            service_account=service_account,
            role_arn=role.arn,
            opts=child,
        )
        self.queue_name = queue.name
        self.role_arn = role.arn
        self.dependencies = [policy, association]
        self.register_outputs({"queueName": self.queue_name, "roleArn": self.role_arn})
