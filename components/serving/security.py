"""Security contexts of every serving pod: non-root, RuntimeDefault seccomp, no capabilities.

One exception, made here and nowhere else: GPU pods on an RDMA fabric (EFA, InfiniBand, RoCE)
add ``IPC_LOCK``, which RDMA memory registration needs to pin pages beyond RLIMIT_MEMLOCK.
Kubernetes grants added capabilities to non-root processes only through the bounding set (no
ambient capabilities), so non-root ranks rely on the node's unlimited memlock limit
(containerd's ``LimitMEMLOCK=infinity``, the default of the EKS and GPU Operator node images);
IPC_LOCK keeps images that switch to root working and documents the need.

Keys from Secrets (Triton's restricted APIs, a public frontend's client key) are files, never
environment variables: the container's bash reads them into unexported shell variables and passes
them on tritonserver's command line, which is the only way Triton takes them.

Read-only root filesystems: every container writes only to emptyDirs (``/tmp`` with HOME and the
caches below it, the state directory, ``/dev/shm``), so the image stays immutable at runtime.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from components.config.scheduling import NodePool

RUN_AS_USER = 1000
"""Numeric user of every serving container (the ``triton-server`` user of the Triton images and
the first user of Ubuntu-based TRT-LLM images; ``runAsNonRoot`` needs a number to verify)."""
RUN_AS_GROUP = 1000
FS_GROUP = 1000
"""Group that owns mounted volumes (Secrets mode 0440 stay readable by the container)."""
TMP_DIR = "/tmp"
"""emptyDir: scratch, HOME and caches (the root filesystem is read-only)."""

WRITABLE_ENV = {
    "HOME": f"{TMP_DIR}/home",
    "XDG_CACHE_HOME": f"{TMP_DIR}/cache",
    "TRITON_CACHE_DIR": f"{TMP_DIR}/cache/triton",
    "TORCH_EXTENSIONS_DIR": f"{TMP_DIR}/cache/torch_extensions",
    "TORCHINDUCTOR_CACHE_DIR": f"{TMP_DIR}/cache/inductor",
    "TMPDIR": TMP_DIR,
}
"""Where processes write (HOME, kernel/JIT caches, MPI session dirs): all under the /tmp emptyDir."""


def pod_security_context(run_as_user: int = RUN_AS_USER, run_as_group: int = RUN_AS_GROUP) -> dict:
    """Pod-level securityContext of every serving pod."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_group,
        "fsGroup": FS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(*, rdma: bool = False, read_only_root_filesystem: bool = True) -> dict:
    """Container securityContext: no privilege escalation, every capability dropped (IPC_LOCK
    added back for RDMA, see the module docstring), read-only root filesystem."""
    capabilities: dict = {"drop": ["ALL"]}
    if rdma:
        capabilities["add"] = ["IPC_LOCK"]
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": capabilities,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root_filesystem,
        "runAsNonRoot": True,
    }


def uses_rdma(pool: NodePool) -> bool:
    return pool.fabric != "none"


def gpu_security_context(pool: NodePool, read_only_root_filesystem: bool = True) -> dict:
    """Container securityContext of a GPU pod on ``pool`` (IPC_LOCK on RDMA fabrics)."""
    return container_security_context(rdma=uses_rdma(pool), read_only_root_filesystem=read_only_root_filesystem)


def tmp_volume(size: str = "8Gi") -> dict:
    """The /tmp emptyDir (HOME, caches, MPI session directories)."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": size}}


def tmp_mount() -> dict:
    return {"name": "tmp", "mountPath": TMP_DIR}


def secure_pod_spec(spec: dict, run_as_user: int = RUN_AS_USER, run_as_group: int = RUN_AS_GROUP) -> dict:
    """``spec`` with the pod securityContext and no service-account token (serving pods never
    call the Kubernetes API)."""
    return {
        **spec,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(run_as_user, run_as_group),
    }


# -- keys from Secrets, as files ------------------------------------------------------------------

SECRETS_DIR = "/var/run/secrets/disagg"
"""Where Secret-held keys are mounted (one directory per key, file ``key``, mode 0440)."""
_KUBELET_VAR = re.compile(r"\$\((\w+)\)")


def key_volume_name(var: str) -> str:
    return var.lower().replace("_", "-")


def key_path(var: str) -> str:
    """The file holding the key that ``$(var)`` stands for in an argument."""
    return f"{SECRETS_DIR}/{key_volume_name(var)}/key"


def key_volumes(keys: Mapping[str, tuple[str, str]]) -> list[dict]:
    """Secret volumes of ``keys`` (variable -> (Secret name, key)), sorted."""
    return [
        {
            "name": key_volume_name(var),
            "secret": {"secretName": secret, "items": [{"key": key, "path": "key"}], "defaultMode": 0o440},
        }
        for var, (secret, key) in sorted(keys.items())
    ]


def key_mounts(keys: Mapping[str, tuple[str, str]]) -> list[dict]:
    return [
        {"name": key_volume_name(var), "mountPath": f"{SECRETS_DIR}/{key_volume_name(var)}", "readOnly": True}
        for var in sorted(keys)
    ]


def read_keys_lines(keys: Mapping[str, tuple[str, str]]) -> list[str]:
    """bash lines reading each key from its file into an unexported shell variable."""
    return [f"IFS= read -r {var} < {key_path(var)} || [ -n \"${var}\" ]" for var in sorted(keys)]


def shell_word(arg: str) -> str:
    """``arg`` as one bash word: literal text quoted, each ``$(VAR)`` (the placeholder
    ``config.security`` renders) expanded from the shell variable ``read_keys_lines`` set."""
    parts = _KUBELET_VAR.split(arg)
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(f'"${{{part}}}"')
        elif part:
            out.append(shlex.quote(part))
    return "".join(out) or "''"
