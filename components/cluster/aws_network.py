"""AwsNetwork: the VPC of a GPU cluster — public, private and dedicated GPU subnets per zone.

Layout (:func:`components.config.subnets.plan_subnets`): the VPC CIDR is cut in eighths. Eighths 0-5 are the private
subnets, one per availability zone (nodes, pods, the EKS control plane's interfaces and
internal load balancers). Eighth 6 is cut in eight again for the GPU subnets: one per zone a GPU
pool is pinned to, so that a pool's nodes share one subnet (EFA traffic never crosses subnets)
and its cluster placement group one zone. Eighth 7 is cut in eight for the public subnets
(NAT gateways, internet-facing load balancers). For a /16: private /19, GPU /22, public /22.

Each zone has its own NAT gateway and private route table (a zone outage does not cut the
others off); a GPU subnet uses the private route table of its zone.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.config.subnets import ZoneSubnets, plan_subnets

TYPE_TOKEN = "disagg:cluster:AwsNetwork"
ELB_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"


class AwsNetworkArgs(BaseModel):
    """Which VPC to build."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster_name: str
    """Tags subnets ``kubernetes.io/cluster/<name>`` and prefixes Name tags."""
    vpc_cidr: str = "10.0.0.0/16"
    availability_zones: list[str] = Field(min_length=2, max_length=6)
    gpu_zones: list[str] = []
    """Zones that get a dedicated GPU subnet (those GPU pools are pinned to)."""

    @model_validator(mode="after")
    def _gpu_zones_known(self) -> AwsNetworkArgs:
        for zone in self.gpu_zones:
            if zone not in self.availability_zones:
                raise ValueError(
                    f"GPU zone '{zone}' is not one of the availability zones "
                    f"({', '.join(self.availability_zones)}): add it there"
                )
        return self


class AwsNetwork(pulumi.ComponentResource):
    """VPC, internet gateway, per-zone NAT gateways and route tables, public/private/GPU subnets."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: dict[str, pulumi.Output[str]]
    """Public subnet of each zone."""
    private_subnet_ids: dict[str, pulumi.Output[str]]
    """Private subnet of each zone."""
    gpu_subnet_ids: dict[str, pulumi.Output[str]]
    """Dedicated GPU subnet of each zone in ``gpu_zones``."""
    plan: dict[str, ZoneSubnets]

    def __init__(self, name: str, args: AwsNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
        self.plan = plan_subnets(args.vpc_cidr, args.availability_zones)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": args.cluster_name},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={"Name": args.cluster_name}, opts=child
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags={"Name": f"{args.cluster_name}-public"}, opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default-route",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=child,
        )

        self.public_subnet_ids, self.private_subnet_ids, self.gpu_subnet_ids = {}, {}, {}
        for zone, cidrs in self.plan.items():
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=cidrs.public,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**cluster_tag, ELB_TAG: "1", "Name": f"{args.cluster_name}-public-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}-rta", subnet_id=public.id, route_table_id=public_routes.id, opts=child
            )
            address = aws.ec2.Eip(
                f"{name}-nat-{zone}-eip", domain="vpc", tags={"Name": f"{args.cluster_name}-nat-{zone}"}, opts=child
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=address.id,
                subnet_id=public.id,
                connectivity_type="public",
                tags={"Name": f"{args.cluster_name}-{zone}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
            )
            private_routes = aws.ec2.RouteTable(
                f"{name}-private-{zone}-rt",
                vpc_id=vpc.id,
                tags={"Name": f"{args.cluster_name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-private-{zone}-default-route",
                route_table_id=private_routes.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.id,
                opts=child,
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=cidrs.private,
                availability_zone=zone,
                tags={**cluster_tag, INTERNAL_ELB_TAG: "1", "Name": f"{args.cluster_name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}-rta", subnet_id=private.id, route_table_id=private_routes.id, opts=child
            )
            self.public_subnet_ids[zone] = public.id
            self.private_subnet_ids[zone] = private.id
            if zone in args.gpu_zones:
                gpu = aws.ec2.Subnet(
                    f"{name}-gpu-{zone}",
                    vpc_id=vpc.id,
                    cidr_block=cidrs.gpu,
                    availability_zone=zone,
                    tags={**cluster_tag, "Name": f"{args.cluster_name}-gpu-{zone}"},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(
                    f"{name}-gpu-{zone}-rta", subnet_id=gpu.id, route_table_id=private_routes.id, opts=child
                )
                self.gpu_subnet_ids[zone] = gpu.id

        self.vpc_id = vpc.id
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "gpuSubnetIds": self.gpu_subnet_ids,
            }
        )
