"""Kubernetes quantities and container requests/limits (CPU, memory with /dev/shm, GPUs, fabric)."""

from __future__ import annotations

import re

from components.config.scheduling import GPU_RESOURCE, NodePool

_QUANTITY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}  # fmt: skip


def memory_bytes(quantity: str) -> int:
    """Bytes of an integer memory quantity such as ``64Gi`` or ``500M``."""
    m = _QUANTITY.match(quantity)
    if m is None:
        raise ValueError(f"memory quantity '{quantity}' is not an integer with a unit (e.g. 32Gi): fix it")
    return int(m.group(1)) * _UNITS[m.group(2)]


def memory_limit(memory: str, shm_size: str) -> str:
    """A container's memory limit: its request plus its RAM-backed /dev/shm.

    Pages written to a ``medium: Memory`` emptyDir are charged to the pod's memory cgroup, so a
    limit equal to the request would let a full /dev/shm OOM-kill the container.
    """
    total = memory_bytes(memory) + memory_bytes(shm_size)
    for unit in ("Pi", "Ti", "Gi", "Mi", "Ki"):
        if total % _UNITS[unit] == 0:
            return f"{total // _UNITS[unit]}{unit}"
    return str(total)


def gpu_resources(pool: NodePool, gpus: int, cpu: str, memory: str, shm_size: str) -> dict:
    """Requests/limits of a GPU container: ``gpus`` GPUs and the same share of the node's fabric.

    CPU is limited to the request (every serving pod has CPU limits; request the cores the
    NCCL/MPI progress threads need, so CFS throttling does not bite); memory is limited to the
    request plus ``shm_size`` (see :func:`memory_limit`); extended resources are limited to the
    request.
    """
    share = gpus / pool.gpus_per_node if pool.gpus_per_node else 1.0
    extended = {GPU_RESOURCE: str(gpus), **pool.fabric_resources(share)}
    return {
        "requests": {"cpu": cpu, "memory": memory, **extended},
        "limits": {"cpu": cpu, "memory": memory_limit(memory, shm_size), **extended},
    }


def quantity(value: float) -> str:
    """A Kubernetes quantity: integers as is, fractions in milli-units (0.75 -> '750m')."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"
