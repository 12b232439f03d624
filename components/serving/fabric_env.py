"""Environment of GPU processes for the pool's fabric: NCCL, libfabric (EFA), UCX and NIXL."""

from __future__ import annotations

from components.config.scheduling import NodePool
from engines.llm_api_checks import kv_transfer_problem

_RDMA_READ_INSTANCE_FAMILIES = ("p4d", "p4de", "p5", "p5e", "p5en", "p6")
"""EC2 families whose EFA supports RDMA read (FI_EFA_USE_DEVICE_RDMA=1: GPUDirect RDMA)."""


def fabric_env(pool: NodePool) -> dict[str, str]:
    """NCCL / libfabric environment for the pool's fabric.

    NCCL's bootstrap and OpenMPI's TCP traffic use the pod interface ``eth0`` on every fabric.

    * EFA: libfabric's efa provider (the aws-ofi-nccl plugin carries NCCL over it), GPUDirect
      RDMA on the instance families that support it, fork safety for the python/MPI processes.
    * InfiniBand / RoCE: NCCL's IB transport on the mlx5 HCAs (prefix match: every mlx5 device
      the RDMA device plugin exposes), GID index 3 (RoCE v2) on RoCE.
    * none: sockets between nodes; NCCL uses NVLink/PCIe inside a node.
    """
    env = {"NCCL_SOCKET_IFNAME": "eth0", "NCCL_DEBUG": "WARN"}
    if pool.fabric == "efa":
        env.update({"FI_PROVIDER": "efa", "FI_EFA_FORK_SAFE": "1"})
        family = (pool.instance_type or "").split(".")[0]
        if family in _RDMA_READ_INSTANCE_FAMILIES:
            env["FI_EFA_USE_DEVICE_RDMA"] = "1"
    elif pool.fabric in ("infiniband", "roce"):
        env.update({"NCCL_IB_DISABLE": "0", "NCCL_IB_HCA": "mlx5"})
        if pool.fabric == "roce":
            env["NCCL_IB_GID_INDEX"] = "3"
    return env


# ---- KV-cache transfer between context and generation groups (prefill-decode) -----------------

KV_TRANSFER_SOURCES = {
    "backends": "docs/source/features/disagg-serving.md @0434b982fa38: cache_transceiver_config.backend "
    "DEFAULT | UCX | NIXL | MPI; NIXL selects its transport with TRTLLM_NIXL_KVCACHE_BACKEND (UCX default, "
    "LIBFABRIC from v0.16.0); AWS EFA example: LIBFABRIC + FI_PROVIDER=efa + FI_EFA_USE_DEVICE_RDMA=1; "
    "the release container lacks the LIBFABRIC plugin (NIXL_PLUGINS_DIR points at a pre-compiled one)",
    "ucx_devices": "same page, FAQ: leave UCX_NET_DEVICES unset so UCX uses every device it sees",
}
"""Upstream facts the KV-transfer environment follows (source and commit)."""

UCX_RDMA_TRANSPORTS = "ib,cuda_copy,cuda_ipc,sm,self"
"""UCX_TLS on InfiniBand/RoCE: ``ib`` (rc, ud, dc verbs transports on the HCAs the RDMA device
plugin gives the pod), GPU memory copies, shared memory inside the pod. No ``tcp``: a pod whose
RDMA device is missing fails to connect instead of silently moving KV caches over TCP."""

def kv_transfer_env(pool: NodePool, backend: str, nixl_plugins_dir: str | None = None) -> dict[str, str]:
    """Environment of a context or generation group for its KV-cache transceiver (see SOURCES).

    * EFA: NIXL over libfabric's efa provider (``TRTLLM_NIXL_KVCACHE_BACKEND=LIBFABRIC``; the
      fabric env already sets FI_PROVIDER and GPUDirect RDMA); ``nixl_plugins_dir`` holds the
      LIBFABRIC plugin, which the release image does not ship.
    * InfiniBand/RoCE: UCX on the verbs transports (``UCX_TLS``), RoCE v2 GID index 3 as NCCL;
      NIXL selects its UCX backend explicitly.
    * none: UCX's defaults (TCP between nodes).
    """
    backend = backend.upper()
    problem = kv_transfer_problem(pool.fabric, backend)
    if problem is not None:
        raise ValueError(f"cache_transceiver_config.backend on a '{pool.fabric}' pool: {problem}")
    env: dict[str, str] = {}
    nixl = backend in ("NIXL", "DEFAULT")  # DEFAULT is NIXL upstream
    if pool.fabric == "efa":
        env["TRTLLM_NIXL_KVCACHE_BACKEND"] = "LIBFABRIC"
        env["FI_LOG_LEVEL"] = "warn"
        if nixl_plugins_dir:
            env["NIXL_PLUGINS_DIR"] = nixl_plugins_dir
    elif pool.fabric in ("infiniband", "roce"):
        env["UCX_TLS"] = UCX_RDMA_TRANSPORTS
        if pool.fabric == "roce":
            env["UCX_IB_GID_INDEX"] = "3"
        if nixl:
            env["TRTLLM_NIXL_KVCACHE_BACKEND"] = "UCX"
    return env
