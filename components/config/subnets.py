"""The subnet layout of a GPU cluster's VPC (pure): private, public and GPU subnet CIDRs per zone.

Validated with the configuration (``vpcCidr`` must leave room for every zone) and built by
``components.cluster.aws_network``, which documents the layout.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class ZoneSubnets:
    """The CIDRs planned for one availability zone."""

    zone: str
    private: str
    public: str
    gpu: str


def plan_subnets(vpc_cidr: str, zones: list[str]) -> dict[str, ZoneSubnets]:
    """CIDRs of the private, public and GPU subnet of each zone, by zone (order of ``zones``).

    A zone's CIDRs depend only on its position in ``zones``, so adding a GPU pool (a GPU
    subnet) or a zone at the end never moves an existing subnet.
    """
    network = ipaddress.ip_network(vpc_cidr)
    if len(zones) > 6:
        raise ValueError(f"{len(zones)} availability zones: the layout has room for 6")
    if len(set(zones)) != len(zones):
        raise ValueError(f"availability zones {zones} list a zone twice: remove the duplicate")
    eighths: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(network.subnets(prefixlen_diff=3))
    gpu = list(eighths[6].subnets(prefixlen_diff=3))
    public = list(eighths[7].subnets(prefixlen_diff=3))
    return {
        zone: ZoneSubnets(zone, str(eighths[i]), str(public[i]), str(gpu[i]))
        for i, zone in enumerate(zones)
    }
