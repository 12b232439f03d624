"""Pod-spec pieces shared by the serving tiers: ports, paths, env, scheduling, volumes, mounts."""

from __future__ import annotations

from collections.abc import Mapping

from components.config.scheduling import NodePool

HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"

REPOSITORY_PATH = "/opt/disagg/model-repository"
"""Where the ConfigMap-delivered Triton model repository is mounted."""
STATE_DIR = "/var/run/disagg"
"""Per-pod scratch (emptyDir): MPI hostfile, SSH keys of a multi-node group."""


def env_list(values: Mapping[str, str]) -> list[dict[str, str]]:
    """``env`` entries sorted by name (deterministic manifests)."""
    return [{"name": k, "value": str(values[k])} for k in sorted(values)]


def triton_ports() -> list[dict]:
    """Container ports of a serving tritonserver."""
    return [
        {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
        {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
    ]



def mount(name: str, path: str, read_only: bool = False) -> dict:
    out: dict = {"name": name, "mountPath": path}
    if read_only:
        out["readOnly"] = True
    return out


# ---- volumes --------------------------------------------------------------------------------


def storage_volume(name: str, claim_name: str, read_only: bool = True) -> dict:
    """The shared ReadWriteMany PVC (engines, weights, tokenizers)."""
    return {"name": name, "persistentVolumeClaim": {"claimName": claim_name, "readOnly": read_only}}


def memory_volume(name: str, size: str) -> dict:
    """RAM-backed emptyDir (``/dev/shm`` for NCCL and the python backend)."""
    return {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": size}}


def scratch_volume(name: str) -> dict:
    return {"name": name, "emptyDir": {}}



def gpu_volumes(repository: dict, claim_name: str, shm_size: str) -> list[dict]:
    """Volumes of a GPU pod: model repository, shared storage (read-only), /dev/shm, scratch."""
    return [
        repository,
        storage_volume("store", claim_name),
        memory_volume("dshm", shm_size),
        scratch_volume("state"),
    ]


def gpu_mounts(repository_volume_name: str, mount_path: str) -> list[dict]:
    return [
        mount(repository_volume_name, REPOSITORY_PATH, read_only=True),
        mount("store", mount_path, read_only=True),
        mount("dshm", "/dev/shm"),
        mount("state", STATE_DIR),
    ]


# ---- scheduling, GPUs and fabric ------------------------------------------------------------


def node_selector(pool: NodePool) -> dict[str, str]:
    return dict(sorted(pool.node_selector.items()))


def tolerations(pool: NodePool) -> list[dict[str, str]]:
    return [t.to_k8s() for t in pool.tolerations]
