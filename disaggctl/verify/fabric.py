"""The NCCL fabric check: nccl-tests ``all_reduce_perf`` across two GPU nodes, as plain manifests.

:func:`render_fabric_check` returns Kubernetes objects (dicts, no Pulumi): a headless Service,
an ssh Secret (when a key pair is given) and an Indexed Job of two pods (completions =
parallelism = 2) that required pod anti-affinity on ``kubernetes.io/hostname`` puts on two
different nodes. Each pod requests every GPU of its node and the fabric: ``vpc.amazonaws.com/efa``
interfaces on EFA, the RDMA extended resource (``rdma/<name>``) on InfiniBand/RoCE.

Pod 1 runs sshd and waits; pod 0 waits for it, then runs ``mpirun`` over both pods (Open MPI
over ssh on port 2222, key from the Secret) with ``NCCL_DEBUG=INFO``, signals pod 1, and exits
with all_reduce_perf's status. ``kubectl logs job/<name>`` (pod 0) is what
``disaggctl verify fabric-check parse`` reads. No operator (MPI Operator, LWS) is needed; the
image must ship nccl-tests built with ``MPI=1``, Open MPI, and openssh (client and server).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

GPU_RESOURCE = "nvidia.com/gpu"
EFA_RESOURCE = "vpc.amazonaws.com/efa"
SSH_PORT = 2222
SSH_MOUNT = "/etc/fabric-check-ssh"
DONE_FILE = "/tmp/fabric-check-done"
PODS = 2

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SIZE = re.compile(r"^\d+[KMGkmg]?$")


class Toleration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = "NoSchedule"

    def to_k8s(self) -> dict[str, str]:
        out = {"key": self.key, "operator": self.operator}
        if self.operator == "Equal" and self.value is not None:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        return out


class SshKeyPair(BaseModel):
    """OpenSSH key pair for mpirun between the two pods (e.g. from ``ssh-keygen -t ed25519``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    private_key: str = Field(repr=False)
    public_key: str

    @field_validator("private_key")
    @classmethod
    def _private(cls, v: str) -> str:
        if "PRIVATE KEY-----" not in v:
            raise ValueError("private_key is not an OpenSSH/PEM private key (no 'PRIVATE KEY-----' marker)")
        return v if v.endswith("\n") else v + "\n"

    @field_validator("public_key")
    @classmethod
    def _public(cls, v: str) -> str:
        if not v.startswith(("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-")):
            raise ValueError("public_key is not an OpenSSH public key line (ssh-ed25519 ..., ssh-rsa ...)")
        return v.strip() + "\n"


class FabricCheckSpec(BaseModel):
    """What to run, where, and with which fabric."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    """Image with nccl-tests (built with MPI=1), Open MPI and openssh, e.g. an EFA-enabled nccl-tests image."""
    fabric: Literal["efa", "infiniband", "roce"]
    name: str = "nccl-fabric-check"
    namespace: str = "default"
    gpus_per_node: int = Field(default=8, ge=1, le=16)
    """GPUs each pod requests (all of its node's, to exercise every NIC)."""
    efa_interfaces: int = Field(default=0, ge=0, le=32)
    """``vpc.amazonaws.com/efa`` per pod; required on EFA (p4d: 4, p5: 32)."""
    rdma_resource: str | None = None
    """RDMA extended resource on InfiniBand/RoCE, e.g. ``rdma/rdma_shared_device_a``."""
    rdma_count: int = Field(default=1, ge=1, le=64)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    all_reduce_perf: str = "/opt/nccl-tests/build/all_reduce_perf"
    """Path of the binary inside the image."""
    min_bytes: str = "8"
    max_bytes: str = "4G"
    step_factor: int = Field(default=2, ge=2, le=16)
    iters: int = Field(default=20, ge=1, le=1000)
    extra_env: dict[str, str] = Field(default_factory=dict)
    """Environment added to (or overriding) the defaults, e.g. ``NCCL_IB_HCA``; forwarded to every rank."""
    active_deadline_seconds: int = Field(default=1800, ge=60, le=6 * 3600)
    """Hard limit for the whole Job (both pods)."""
    peer_wait_seconds: int = Field(default=600, ge=10, le=3600)
    """How long pod 0 waits for pod 1's sshd before failing."""
    shm_size: str = "32Gi"
    ssh_secret_name: str | None = None
    """Secret holding ``id_ed25519``/``id_ed25519.pub``/``authorized_keys``; default ``<name>-ssh``."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_LABEL.match(v) or len(v) > 50:
            raise ValueError(f"name {v!r} must be a DNS label of at most 50 characters (pod names append -<index>-<hash>)")
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError(f"namespace {v!r} is not a DNS label")
        return v

    @field_validator("min_bytes", "max_bytes")
    @classmethod
    def _size(cls, v: str) -> str:
        if not _SIZE.match(v):
            raise ValueError(f"size {v!r} is not nccl-tests syntax (a number with optional K/M/G, e.g. 8, 1G)")
        return v

    @field_validator("rdma_resource")
    @classmethod
    def _rdma(cls, v: str | None) -> str | None:
        if v is not None and ("/" not in v or v.startswith("/") or v.endswith("/")):
            raise ValueError(f"rdma_resource {v!r} is not an extended resource name like rdma/rdma_shared_device_a")
        return v

    @model_validator(mode="after")
    def _fabric_resource(self) -> FabricCheckSpec:
        if self.fabric == "efa" and self.efa_interfaces < 1:
            raise ValueError(
                "fabric 'efa' needs efa_interfaces >= 1 (the node's EFA count, e.g. 4 on p4d.24xlarge, 32 on p5.48xlarge)"
            )
        if self.fabric in ("infiniband", "roce") and not self.rdma_resource:
            raise ValueError(
                f"fabric {self.fabric!r} needs rdma_resource, the RDMA device plugin's resource "
                "(e.g. rdma/rdma_shared_device_a or rdma/ib)"
            )
        return self

    @property
    def secret_name(self) -> str:
        return self.ssh_secret_name or f"{self.name}-ssh"

    @property
    def expected_transport(self) -> str:
        """The nccl_log transport this fabric should produce."""
        return {"efa": "efa", "infiniband": "ib", "roce": "roce"}[self.fabric]


def spec_for_pool(pool, *, image: str, **overrides) -> FabricCheckSpec:
    """A spec for a ``components.config.scheduling.NodePool`` (duck-typed: no project import)."""
    if pool.fabric not in ("efa", "infiniband", "roce"):
        raise ValueError(f"node pool {pool.name!r} has fabric {pool.fabric!r}: a fabric check needs efa, infiniband or roce")
    fields: dict = {
        "image": image,
        "fabric": pool.fabric,
        "gpus_per_node": pool.gpus_per_node,
        "efa_interfaces": pool.efa_interfaces,
        "rdma_resource": pool.rdma_resource,
        "node_selector": dict(pool.node_selector),
        "tolerations": tuple(Toleration(**t.to_k8s()) for t in pool.tolerations),
    }
    fields.update(overrides)
    return FabricCheckSpec(**fields)


def fabric_resources(spec: FabricCheckSpec) -> dict[str, str]:
    """Extended resources one pod requests (and limits): GPUs and the fabric."""
    out = {GPU_RESOURCE: str(spec.gpus_per_node)}
    if spec.fabric == "efa":
        out[EFA_RESOURCE] = str(spec.efa_interfaces)
    else:
        assert spec.rdma_resource is not None
        out[spec.rdma_resource] = str(spec.rdma_count)
    return out


def fabric_env(spec: FabricCheckSpec) -> dict[str, str]:
    """NCCL/libfabric environment of every rank: NCCL_DEBUG=INFO plus the fabric's settings."""
    env = {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,NET"}
    if spec.fabric == "efa":
        env.update({"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1", "RDMAV_FORK_SAFE": "1"})
    else:
        env["NCCL_IB_DISABLE"] = "0"
        if spec.fabric == "roce":
            env["NCCL_IB_GID_INDEX"] = "3"
    env.update(spec.extra_env)
    return env


def labels(spec: FabricCheckSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "nccl-fabric-check",
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/managed-by": "disaggctl",
    }


def run_script(spec: FabricCheckSpec) -> str:
    """The container's shell script (both pods; the Job completion index picks the role)."""
    np_total = PODS * spec.gpus_per_node
    hosts = ",".join(f"${{JOB_NAME}}-{i}.${{SERVICE}}:{spec.gpus_per_node}" for i in range(PODS))
    forwarded = " ".join(f"-x {k}" for k in sorted(fabric_env(spec)))
    perf = shlex.join(
        [
            spec.all_reduce_perf,
            "-b", spec.min_bytes, "-e", spec.max_bytes, "-f", str(spec.step_factor),
            "-g", "1", "-n", str(spec.iters),
        ]
    )
    return f"""set -euo pipefail
mkdir -p /root/.ssh && chmod 700 /root/.ssh
cp {SSH_MOUNT}/id_ed25519 {SSH_MOUNT}/authorized_keys /root/.ssh/
chmod 600 /root/.ssh/id_ed25519 /root/.ssh/authorized_keys
printf 'Host *\\n  Port {SSH_PORT}\\n  StrictHostKeyChecking no\\n  UserKnownHostsFile /dev/null\\n  LogLevel ERROR\\n' > /root/.ssh/config
mkdir -p /run/sshd && ssh-keygen -A >/dev/null
/usr/sbin/sshd -p {SSH_PORT}
PEER="${{JOB_NAME}}-1.${{SERVICE}}"
if [ "${{JOB_COMPLETION_INDEX}}" != "0" ]; then
  echo "fabric-check: pod ${{JOB_COMPLETION_INDEX}} on node ${{NODE_NAME}} waiting for pod 0"
  while [ ! -f {DONE_FILE} ]; do sleep 2; done
  echo "fabric-check: pod 0 finished with status $(cat {DONE_FILE})"
  exit 0
fi
echo "fabric-check: pod 0 on node ${{NODE_NAME}}; waiting up to {spec.peer_wait_seconds}s for $PEER"
deadline=$(( $(date +%s) + {spec.peer_wait_seconds} ))
until ssh -o ConnectTimeout=5 "$PEER" true 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "fabric-check: FAIL: $PEER not reachable over ssh within {spec.peer_wait_seconds}s"; exit 1
  fi
  sleep 5
done
status=0
mpirun --allow-run-as-root -np {np_total} -H {hosts} --bind-to none \\
  --mca plm_rsh_args "-p {SSH_PORT}" {forwarded} \\
  {perf} || status=$?
ssh "$PEER" "echo $status > {DONE_FILE}" || true
echo "fabric-check: all_reduce_perf exited with status $status"
exit $status
"""


def render_fabric_check(spec: FabricCheckSpec, ssh_keypair: SshKeyPair | None = None) -> list[dict]:
    """Service, Secret (only with ``ssh_keypair``; otherwise create ``spec.secret_name`` yourself), Job."""

    def meta(name: str = spec.name) -> dict:
        return {"name": name, "namespace": spec.namespace, "labels": labels(spec)}

    selector = {"app.kubernetes.io/instance": spec.name, "app.kubernetes.io/name": "nccl-fabric-check"}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": dict(selector),
            "ports": [{"name": "ssh", "port": SSH_PORT, "targetPort": SSH_PORT, "protocol": "TCP"}],
        },
    }
    objects: list[dict] = [service]
    if ssh_keypair is not None:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta(spec.secret_name),
                "type": "Opaque",
                "stringData": {
                    "id_ed25519": ssh_keypair.private_key,
                    "id_ed25519.pub": ssh_keypair.public_key,
                    "authorized_keys": ssh_keypair.public_key,
                },
            }
        )
    resources = fabric_resources(spec)
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(fabric_env(spec).items())]
    env += [
        {"name": "JOB_NAME", "value": spec.name},
        {"name": "SERVICE", "value": spec.name},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    pod_spec: dict = {
        "subdomain": spec.name,
        "restartPolicy": "Never",
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
        "containers": [
            {
                "name": "nccl-tests",
                "image": spec.image,
                "command": ["/bin/bash", "-c", run_script(spec)],
                "env": env,
                "ports": [{"name": "ssh", "containerPort": SSH_PORT}],
                "resources": {"requests": dict(resources), "limits": dict(resources)},
                "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}},
                "volumeMounts": [
                    {"name": "dshm", "mountPath": "/dev/shm"},
                    {"name": "ssh", "mountPath": SSH_MOUNT, "readOnly": True},
                ],
            }
        ],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}},
            {"name": "ssh", "secret": {"secretName": spec.secret_name, "defaultMode": 0o400}},
        ],
    }
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(sorted(spec.node_selector.items()))
    tolerations = [t.to_k8s() for t in spec.tolerations]
    if not any(t["key"] == GPU_RESOURCE for t in tolerations):
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    pod_spec["tolerations"] = tolerations
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(),
        "spec": {
            "completionMode": "Indexed",
            "completions": PODS,
            "parallelism": PODS,
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "ttlSecondsAfterFinished": 24 * 3600,
            "template": {"metadata": {"labels": labels(spec)}, "spec": pod_spec},
        },
    }
    objects.append(job)
    return objects


def manifests_yaml(objects: Sequence[Mapping]) -> str:
    """Multi-document YAML for ``kubectl apply -f -``."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return "---\n".join(yaml.dump(dict(o), Dumper=_Dumper, sort_keys=False, width=1000) for o in objects)
