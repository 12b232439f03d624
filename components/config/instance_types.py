"""AWS GPU instance types: GPUs, GPU memory, EFA interfaces and network cards (pure data).

Facts are those of the EC2 documentation ("Accelerated computing instances" and "Elastic
Fabric Adapter: supported instance types"). ``max_efa_interfaces`` is the number of EFA
interfaces the instance accepts, one per network card; 0 means the type has no EFA.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

GpuArch = Literal["ampere", "ada", "hopper", "blackwell"]


@dataclass(frozen=True)
class InstanceType:
    """One EC2 instance type as the GPU node groups see it."""

    name: str
    gpus: int
    gpu_model: str
    gpu_memory_gib: int
    """Memory of one GPU."""
    gpu_arch: GpuArch
    vcpus: int
    memory_gib: int
    network_cards: int
    max_efa_interfaces: int
    """EFA interfaces the instance takes (one per network card); 0: no EFA."""

    @property
    def supports_efa(self) -> bool:
        return self.max_efa_interfaces > 0


@dataclass(frozen=True)
class NetworkInterfaceSlot:
    """One network interface of a launch template: where it attaches and what it is."""

    network_card_index: int
    device_index: int
    interface_type: Literal["efa", "efa-only"]


def _types(*items: InstanceType) -> dict[str, InstanceType]:
    return {item.name: item for item in items}


INSTANCE_TYPES: dict[str, InstanceType] = _types(
    InstanceType("p4d.24xlarge", 8, "A100-SXM4-40GB", 40, "ampere", 96, 1152, 4, 4),
    InstanceType("p4de.24xlarge", 8, "A100-SXM4-80GB", 80, "ampere", 96, 1152, 4, 4),
    InstanceType("p5.48xlarge", 8, "H100-80GB-HBM3", 80, "hopper", 192, 2048, 32, 32),
    InstanceType("p5e.48xlarge", 8, "H200-141GB", 141, "hopper", 192, 2048, 32, 32),
    InstanceType("p5en.48xlarge", 8, "H200-141GB", 141, "hopper", 192, 2048, 16, 16),
    InstanceType("p6-b200.48xlarge", 8, "B200-179GB", 179, "blackwell", 192, 2048, 8, 8),
    InstanceType("g5.xlarge", 1, "A10G", 24, "ampere", 4, 16, 1, 0),
    InstanceType("g5.12xlarge", 4, "A10G", 24, "ampere", 48, 192, 1, 1),
    InstanceType("g5.48xlarge", 8, "A10G", 24, "ampere", 192, 768, 1, 1),
    InstanceType("g6.xlarge", 1, "L4", 24, "ada", 4, 16, 1, 0),
    InstanceType("g6.12xlarge", 4, "L4", 24, "ada", 48, 192, 1, 1),
    InstanceType("g6.48xlarge", 8, "L4", 24, "ada", 192, 768, 1, 1),
    InstanceType("g6e.12xlarge", 4, "L40S", 48, "ada", 48, 384, 1, 1),
    InstanceType("g6e.48xlarge", 8, "L40S", 48, "ada", 192, 1536, 4, 4),
)


def lookup_instance_type(name: str) -> InstanceType:
    """The table entry for ``name``; ValueError naming the known types otherwise."""
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(INSTANCE_TYPES), n=1, cutoff=0.6)
        fix = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(sorted(INSTANCE_TYPES))}"
        raise ValueError(
            f"instance type '{str(name)[:60]}' is not a GPU instance type this project knows: {fix} "
            "(or add it to components/config/instance_types.py)"
        ) from None


def efa_interface_layout(instance: InstanceType) -> list[NetworkInterfaceSlot]:
    """Launch-template network interfaces giving ``instance`` every EFA interface it takes.

    One interface per network card. The first (card 0, device 0) is the primary ENI and
    carries IP traffic as well as EFA; the others sit at device index 1 of their card and
    are ``efa-only`` (no IP address consumed from the subnet), as AWS recommends for p5.
    """
    if not instance.supports_efa:
        raise ValueError(f"instance type '{instance.name}' has no EFA interfaces")
    return [
        NetworkInterfaceSlot(0, 0, "efa")
        if card == 0
        else NetworkInterfaceSlot(card, 1, "efa-only")
        for card in range(instance.max_efa_interfaces)
    ]
