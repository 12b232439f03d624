"""Real limits the configuration is checked against, each with its source.

Values are the documented hard limits or default quotas at the time of writing; a number beyond
them fails at apply time (or never fits), so it is refused up front instead.
"""

from __future__ import annotations

import difflib
import re
from datetime import date

# -- AWS regions and zones ---------------------------------------------------------------------

EKS_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "af-south-1",
        "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
        "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ca-central-1", "ca-west-1",
        "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1",
        "eu-south-2", "eu-north-1",
        "il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1",
        "us-gov-east-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1",
    }
)
"""Regions with an EKS endpoint. Source: AWS General Reference, "Amazon Elastic Kubernetes Service
endpoints and quotas" (https://docs.aws.amazon.com/general/latest/gr/eks.html)."""

AZ_LETTERS = "abcdef"
"""Availability-zone suffixes: no region has more than six zones (us-east-1: a-f). Source: EC2
User Guide, "Regions and Zones"."""

def region_problem(region: str) -> str | None:
    """Why ``region`` is no AWS region with EKS, or None (the closest one suggested)."""
    if region in EKS_REGIONS:
        return None
    close = difflib.get_close_matches(region, sorted(EKS_REGIONS), n=1, cutoff=0.7)
    fix = f"did you mean '{close[0]}'?" if close else "fix it, e.g. us-west-2"
    return f"'{region}' is not an AWS region with EKS (https://docs.aws.amazon.com/general/latest/gr/eks.html): {fix}"


_ZONE = re.compile(r"^(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d)(?P<letter>[a-z])$")
_LOCAL_ZONE = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-\d-[a-z0-9-]+$")


def zone_problem(zone: str, region: str) -> str | None:
    """Why ``zone`` cannot hold this cluster's managed node groups in ``region``, or None."""
    if _LOCAL_ZONE.match(zone):
        return (
            f"'{zone}' is a Local Zone or Wavelength Zone, where EKS managed node groups cannot run "
            "(EKS User Guide, 'Create a managed node group'): use a regular zone such as "
            f"{region}a"
        )
    match = _ZONE.match(zone)
    if match is None or match["letter"] not in AZ_LETTERS or match["region"] not in EKS_REGIONS:
        letter = match["letter"] if match is not None and match["letter"] in AZ_LETTERS else None
        # a valid letter after a wrong region part: the zone of this region with that letter, if close
        close = difflib.get_close_matches(zone, [f"{region}{letter}"], n=1, cutoff=0.8) if letter else []
        fix = f"did you mean '{close[0]}'?" if close else f"fix it, e.g. {region}a"
        return f"'{zone}' is not an availability zone name (region + letter a-f): {fix}"
    if match["region"] != region:
        return f"'{zone}' is not in region '{region}': use zones such as {region}a"
    return None


# -- EKS -----------------------------------------------------------------------------------------

EKS_VERSION_SUPPORT: dict[str, tuple[date, date]] = {
    "1.29": (date(2025, 3, 23), date(2026, 3, 23)),
    "1.30": (date(2025, 7, 23), date(2026, 7, 23)),
    "1.31": (date(2025, 11, 26), date(2026, 11, 26)),
    "1.32": (date(2026, 3, 23), date(2027, 3, 23)),
    "1.33": (date(2026, 7, 29), date(2027, 7, 29)),
    "1.34": (date(2026, 12, 2), date(2027, 12, 2)),
    "1.35": (date(2027, 3, 27), date(2028, 3, 27)),
}
"""Kubernetes minor version -> (end of standard support, end of extended support) on EKS: 14
months of standard support from the EKS release, then 12 of extended support at an extra price
per cluster hour. Source: EKS User Guide, "Understand the Kubernetes version lifecycle on EKS",
Amazon EKS Kubernetes release calendar
(https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html), as read offline in
2026 (1.36 is released but its dates were not readable here: add the row from the calendar)."""
EKS_KUBERNETES_VERSIONS = tuple(EKS_VERSION_SUPPORT)
"""Kubernetes minor versions EKS offers (standard or extended support)."""
EKS_DEFAULT_KUBERNETES_VERSION = "1.35"
"""In standard support until 2027-03-27 (1.34's ends on 2026-12-02)."""
EXTENDED_SUPPORT_WARNING_DAYS = 60


def eks_version_warning(version: str, today: date) -> str | None:
    """A warning when ``version`` is in EKS extended support on ``today`` or enters it within
    EXTENDED_SUPPORT_WARNING_DAYS; None otherwise (and for versions not in the table)."""
    if version not in EKS_VERSION_SUPPORT:
        return None
    standard_end, extended_end = EKS_VERSION_SUPPORT[version]
    newest = max(EKS_VERSION_SUPPORT, key=lambda v: EKS_VERSION_SUPPORT[v][0])
    target = (
        f'"{newest}"' if newest != version
        else "the next minor version EKS releases (add its row to limits.EKS_VERSION_SUPPORT)"
    )
    if today >= standard_end:
        return (
            f"Kubernetes {version} is in EKS extended support since {standard_end} (an extra price per "
            f"cluster hour; auto-upgraded after {extended_end}): set kubernetesVersion {target}"
        )
    days = (standard_end - today).days
    if days <= EXTENDED_SUPPORT_WARNING_DAYS:
        return (
            f"Kubernetes {version} leaves EKS standard support on {standard_end} ({days} days; extended "
            f"support costs extra per cluster hour): plan the upgrade to {target}"
        )
    return None

EKS_MANAGED_NODE_GROUPS_PER_CLUSTER = 30
EKS_NODES_PER_MANAGED_NODE_GROUP = 450
EKS_PUBLIC_ACCESS_CIDRS = 40
"""Default EKS quotas: managed node groups per cluster, nodes per managed node group, and CIDR
blocks of the public endpoint. Source: https://docs.aws.amazon.com/general/latest/gr/eks.html
("Service quotas") and the EKS API reference (VpcConfigRequest.publicAccessCidrs)."""

KUBERNETES_MAX_NODES = 5000
KUBERNETES_MAX_PODS_PER_NODE = 110
KUBERNETES_MAX_PODS = 150_000
"""Largest cluster Kubernetes supports. Source: kubernetes.io/docs/setup/best-practices/cluster-large/."""

SYSTEM_INSTANCE_FAMILIES = frozenset(
    {
        "m5", "m5a", "m5n", "m6i", "m6a", "m6in", "m7i", "m7i-flex", "m7a", "m8i",
        "c5", "c5a", "c5n", "c6i", "c6a", "c6in", "c7i", "c7i-flex", "c7a", "c8i",
        "r5", "r5a", "r5n", "r6i", "r6a", "r7i", "r7a", "r8i", "t3", "t3a",
    }
)
"""x86_64 general-purpose, compute and memory families for the system node group, whose AMI type
is AL2023_x86_64_STANDARD (Graviton and GPU types do not boot it). Source: EC2 User Guide,
"Instance types" (general purpose, compute optimized, memory optimized)."""
INSTANCE_SIZES = frozenset(
    {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge",
     "48xlarge", "metal"}
)

# -- storage ---------------------------------------------------------------------------------------

FSX_LUSTRE_MAX_GIB = 100_800
"""Default FSx for Lustre storage quota (GiB); capacities are 1200, 2400 or multiples of 2400.
Source: FSx API reference, CreateFileSystem StorageCapacity, and the FSx for Lustre quotas page
(also SageMaker's FSxLustreConfig.SizeInGiB range 1200-100800)."""
EBS_GP3_MAX_GIB = 65_536
"""Largest gp3 volume. Source: EBS User Guide, "Amazon EBS volume types" (gp3: 1 GiB - 64 TiB)."""
EXISTING_STORAGE_MAX_GIB = 1024 * 1024
"""1 PiB: more than any model store needs; a larger request is a typo."""

# -- quantities ---------------------------------------------------------------------------------------

MAX_CPU_CORES = 1920
MAX_MEMORY_BYTES = 32 * 1024**4
"""No EC2 instance has more than 1920 vCPUs or 32 TiB of memory (u7in-32tb.224xlarge), so no
container request can exceed them. Source: EC2 User Guide, "Memory optimized instances"."""
MAX_GPU_MEMORY_GIB = 288
"""No GPU has more memory (B300, 288 GB HBM3e)."""
