"""The KV-transfer fabric check: NIXL's own benchmark (nixlbench) between two GPU pods.

The NCCL check (:mod:`.fabric`) proves the collective path; prefill/decode moves KV cache through
a different one: the cache transceiver's NIXL agent over libfabric (EFA) or UCX (InfiniBand/RoCE).
This check moves KV-sized buffers GPU memory to GPU memory over exactly that path, with upstream's
``nixlbench`` (ai-dynamo/nixl ``benchmark/nixlbench``) built against the NIXL of the worker image
(``images/kv-fabric-check/Dockerfile``): same plugin, same libfabric, same environment.

:func:`render_kv_fabric_check` returns plain Kubernetes objects: an etcd Pod and Service (nixlbench
coordinates its two processes through etcd, as upstream's README runs it:
``quay.io/coreos/etcd:v3.5.18``) and an Indexed Job of two pods on two different nodes (required
pod anti-affinity), each running ``nixlbench --backend <LIBFABRIC|UCX> --initiator_seg_type VRAM
--target_seg_type VRAM`` with the block size of one KV-cache block and batches up to a prompt's
blocks. ``kubectl logs -l batch.kubernetes.io/job-name=<name> --prefix --tail=-1`` is what
:func:`parse_nixlbench_log` reads.

Output format, from nixlbench's source at NIXL tag 0.9.0 (commit 2d475e4ae5bf):
``src/utils/utils.cpp`` ``xferBenchConfig::printConfig`` (``<option, padded to 60>: <value>``
between lines of 160 ``*`` / ``-``), ``printStatsHeader`` / ``printStats`` (columns ``Block Size
(B)``, ``Batch Size``, ``B/W (GB/Sec)``, [``Aggregate B/W (GB/Sec)``, ``Network Util (%)`` with
more than two processes], ``Avg Lat. (us)``, ``Avg/P99 Prep``, ``Avg/P99 Post``, ``Avg/P99 Tx``;
bandwidth with 6 decimals, times with 1); ``src/worker/nixl/nixl_worker.cpp`` (``Init nixl worker,
dev <d> rank <r>, type <initiator|target>, hostname <h>``; ``NIXL: <message> (Error code: <n>)``);
``src/main.cpp`` / ``utils.cpp`` failures (``Failed to synchronize all processes``, ``Consistency
check failed``, ``Unsupported NIXLBench backend``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .fabric import EFA_RESOURCE, GPU_RESOURCE, Toleration

ETCD_IMAGE = "quay.io/coreos/etcd:v3.5.18"
"""The etcd upstream's nixlbench README starts for coordination (NIXL tag 0.9.0)."""
ETCD_PORT = 2379
NIXLBENCH = "nixlbench"
Fabric = Literal["efa", "infiniband", "roce"]
BACKENDS: dict[str, str] = {"efa": "LIBFABRIC", "infiniband": "UCX", "roce": "UCX"}
"""The NIXL backend the project's workers use per fabric (components/serving/fabric_env.py)."""
UCX_RDMA_TRANSPORTS = "ib,cuda_copy,cuda_ipc,sm,self"
"""As the workers' ``UCX_TLS`` on InfiniBand/RoCE (no tcp: a missing HCA fails instead of falling back)."""


def kv_block_bytes(
    layers: int, kv_heads: int, head_dim: int, tokens_per_block: int, dtype_bytes: int = 2, tensor_parallel: int = 1
) -> int:
    """Bytes of one KV-cache block on one tensor-parallel rank: K and V of every layer."""
    heads = max(1, kv_heads // tensor_parallel)
    return 2 * layers * heads * head_dim * tokens_per_block * dtype_bytes


class KvFabricCheckSpec(BaseModel):
    """What to move, between which pods, over which backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    """The worker image with nixlbench (images/kv-fabric-check/Dockerfile built FROM images.trtllm)."""
    fabric: Fabric
    name: str = Field(default="kv-fabric-check", pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    gpus_per_pod: int = Field(default=1, ge=1, le=16)
    efa_interfaces: int = Field(default=0, ge=0, le=32)
    rdma_resource: str | None = None
    rdma_count: int = Field(default=1, ge=1, le=64)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    block_bytes: int = Field(default=kv_block_bytes(80, 8, 128, 32, 2, 2), ge=4096)
    """One KV-cache block per rank (default: Llama-3.1-70B bf16, 32 tokens, tp 2: 5 MiB)."""
    max_blocks: int = Field(default=128, ge=1, le=65536)
    """Blocks of the longest prompt moved at once (batches 1, 2, 4 ... up to this)."""
    num_iter: int = Field(default=100, ge=1, le=100000)
    warmup_iter: int = Field(default=10, ge=0, le=10000)
    op_type: Literal["WRITE", "READ"] = "READ"
    """READ: the generation side pulls the context side's blocks, as the transceiver does."""
    backend: Literal["LIBFABRIC", "UCX"] | None = None
    """None: the workers' backend on this fabric (:data:`BACKENDS`)."""
    extra_env: dict[str, str] = Field(default_factory=dict)
    active_deadline_seconds: int = Field(default=1800, ge=60, le=6 * 3600)

    @model_validator(mode="after")
    def _fabric_resource(self) -> KvFabricCheckSpec:
        if self.fabric == "efa" and self.efa_interfaces < 1:
            raise ValueError("fabric 'efa' needs efa_interfaces >= 1 (the EFA interfaces a worker pod gets)")
        if self.fabric != "efa" and not self.rdma_resource:
            raise ValueError(f"fabric {self.fabric!r} needs rdma_resource (e.g. rdma/rdma_shared_device_a)")
        if self.fabric == "efa" and self.nixl_backend == "UCX":
            raise ValueError("backend UCX on EFA: UCX has no EFA transport, the workers use LIBFABRIC")
        return self

    @property
    def nixl_backend(self) -> str:
        return self.backend or BACKENDS[self.fabric]

    @property
    def max_batch(self) -> int:
        """nixlbench doubles the batch from 1: the first power of two covering ``max_blocks``."""
        batch = 1
        while batch < self.max_blocks:
            batch *= 2
        return batch

    @property
    def total_buffer_bytes(self) -> int:
        """Per process: the largest batch of blocks, twice (nixlbench splits it over its iovs)."""
        return 2 * self.block_bytes * self.max_batch


def kv_fabric_env(spec: KvFabricCheckSpec) -> dict[str, str]:
    """Environment of both pods: the workers' KV-transfer settings for the fabric."""
    if spec.fabric == "efa":
        env = {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1", "FI_EFA_FORK_SAFE": "1", "FI_LOG_LEVEL": "warn"}
    else:
        env = {"UCX_TLS": UCX_RDMA_TRANSPORTS}
        if spec.fabric == "roce":
            env["UCX_IB_GID_INDEX"] = "3"
    env.update(spec.extra_env)
    return env


def nixlbench_argv(spec: KvFabricCheckSpec, etcd_url: str) -> list[str]:
    return [
        NIXLBENCH,
        "--etcd_endpoints", etcd_url,
        "--benchmark_group", spec.name,
        "--backend", spec.nixl_backend,
        "--initiator_seg_type", "VRAM",
        "--target_seg_type", "VRAM",
        "--scheme", "pairwise",
        "--mode", "SG",
        "--op_type", spec.op_type,
        "--total_buffer_size", str(spec.total_buffer_bytes),
        "--start_block_size", str(spec.block_bytes),
        "--max_block_size", str(spec.block_bytes),
        "--start_batch_size", "1",
        "--max_batch_size", str(spec.max_batch),
        "--large_blk_iter_ftr", "1",  # every block size runs num_iter (KV blocks are > 1 MiB)
        "--num_iter", str(spec.num_iter),
        "--warmup_iter", str(spec.warmup_iter),
        "--check_consistency",
    ]  # fmt: skip


def run_script(spec: KvFabricCheckSpec, etcd_url: str) -> str:
    """Both pods: report the node, wait for etcd, run nixlbench, report its status."""
    return f"""set -uo pipefail
echo "kv-fabric-check: pod ${{JOB_COMPLETION_INDEX}} on node ${{NODE_NAME}} (hostname $(hostname)), backend {spec.nixl_backend}"
for _ in $(seq 60); do
  python3 -c "import urllib.request; urllib.request.urlopen('{etcd_url}/health', timeout=2)" 2>/dev/null && break
  sleep 2
done
{shlex.join(nixlbench_argv(spec, etcd_url))}
status=$?
echo "kv-fabric-check: nixlbench exited with status $status"
exit $status
"""


def _labels(spec: KvFabricCheckSpec, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kv-fabric-check",
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "disaggctl",
    }


def _restricted(read_only: bool = True) -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only,
        "capabilities": {"drop": ["ALL"]},
    }


def render_kv_fabric_check(spec: KvFabricCheckSpec) -> list[dict]:
    """etcd Service + Pod, then the two-pod Indexed Job (apply in this order)."""
    etcd_name = f"{spec.name}-etcd"
    etcd_url = f"http://{etcd_name}.{spec.namespace}.svc.cluster.local:{ETCD_PORT}"
    etcd_labels = _labels(spec, "etcd")
    etcd_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": etcd_name, "namespace": spec.namespace, "labels": etcd_labels},
        "spec": {
            "selector": dict(etcd_labels),
            "ports": [{"name": "client", "port": ETCD_PORT, "targetPort": ETCD_PORT, "protocol": "TCP"}],
        },
    }
    etcd_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": etcd_name, "namespace": spec.namespace, "labels": etcd_labels},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "etcd",
                    "image": ETCD_IMAGE,
                    "command": [
                        "/usr/local/bin/etcd", "--data-dir=/etcd-data",
                        f"--listen-client-urls=http://0.0.0.0:{ETCD_PORT}",
                        f"--advertise-client-urls=http://0.0.0.0:{ETCD_PORT}",
                    ],  # fmt: skip
                    "ports": [{"name": "client", "containerPort": ETCD_PORT}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    "securityContext": _restricted(),
                    "volumeMounts": [{"name": "data", "mountPath": "/etcd-data"}],
                }
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }
    resources = {GPU_RESOURCE: str(spec.gpus_per_pod)}
    if spec.fabric == "efa":
        resources[EFA_RESOURCE] = str(spec.efa_interfaces)
    else:
        assert spec.rdma_resource is not None
        resources[spec.rdma_resource] = str(spec.rdma_count)
    bench_labels = _labels(spec, "nixlbench")
    env: list[dict] = [{"name": k, "value": v} for k, v in sorted(kv_fabric_env(spec).items())]
    env.append({"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    tolerations = [t.to_k8s() for t in spec.tolerations]
    if not any(t["key"] == GPU_RESOURCE for t in tolerations):
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    pod_spec: dict = {
        "restartPolicy": "Never",
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": dict(bench_labels)}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
        "tolerations": tolerations,
        "containers": [
            {
                "name": "nixlbench",
                "image": spec.image,
                "command": ["/bin/bash", "-c", run_script(spec, etcd_url)],
                "env": env,
                "resources": {"requests": dict(resources), "limits": dict(resources)},
                # registered GPU memory and libfabric/UCX pinning need IPC_LOCK (as the workers)
                "securityContext": {**_restricted(read_only=False), "capabilities": {"drop": ["ALL"], "add": ["IPC_LOCK"]}},
                "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
            }
        ],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}],
    }
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(sorted(spec.node_selector.items()))
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": bench_labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": 2,
            "parallelism": 2,
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "ttlSecondsAfterFinished": 24 * 3600,
            "template": {"metadata": {"labels": dict(bench_labels)}, "spec": pod_spec},
        },
    }
    return [etcd_service, etcd_pod, job]


# ------------------------------------------------------------------------------------------ parsing

_PREFIX = re.compile(r"^\[pod/[^\]]+\]\s?")
_OPTION = re.compile(r"^(?P<desc>\S.*?)\s*: (?P<value>.*)$")
_OPTION_KEY = re.compile(r"\(--(?P<key>\w+)")
_INIT = re.compile(
    r"^Init nixl worker, dev (?P<dev>\S+) rank (?P<rank>\d+), type (?P<type>\w+), hostname (?P<host>\S+)"
)
_NODE = re.compile(r"^kv-fabric-check: pod (?P<index>\d+) on node (?P<node>\S+)")
_EXIT = re.compile(r"^kv-fabric-check: nixlbench exited with status (?P<status>\d+)")
_NUM = r"(-?\d+(?:\.\d+)?|-?nan|-?inf)"
_ROW10 = re.compile(rf"^\s*(\d+)\s+(\d+)\s+{_NUM}" + rf"\s+{_NUM}" * 7 + r"\s*$")
_ROW12 = re.compile(rf"^\s*(\d+)\s+(\d+)\s+{_NUM}\s+{_NUM}\s+{_NUM}" + rf"\s+{_NUM}" * 7 + r"\s*$")
_FAILURES = re.compile(
    r"^NIXL: .*\(Error code: -?\d+\)|Failed to synchronize all processes|Consistency check failed"
    r"|Unsupported NIXLBench backend|Failed to create|Failed to get hostname|VRAM segment type not supported"
    r"|Invalid segment type|terminate called|Segmentation fault|core dumped"
)


@dataclass(frozen=True)
class TransferRow:
    """One nixlbench result line (bandwidth GB/s, times µs)."""

    block_bytes: int
    batch: int
    bandwidth_gbps: float
    avg_latency_us: float
    p99_transfer_us: float
    aggregate_gbps: float | None = None


@dataclass
class NixlbenchResult:
    options: dict[str, str] = field(default_factory=dict)
    """printConfig options by flag name (``backend``, ``op_type``, ``initiator_seg_type`` ...)."""
    workers: dict[int, tuple[str, str]] = field(default_factory=dict)
    """rank -> (type, hostname) from ``Init nixl worker`` lines."""
    nodes: dict[int, str] = field(default_factory=dict)
    """Job completion index -> node (the check's own first line)."""
    rows: list[TransferRow] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    exit_statuses: list[int] = field(default_factory=list)

    @property
    def backend(self) -> str | None:
        return self.options.get("backend")

    @property
    def peak_gbps(self) -> float:
        return max((r.bandwidth_gbps for r in self.rows), default=0.0)

    @property
    def complete(self) -> bool:
        return bool(self.rows) and bool(self.exit_statuses) and all(s == 0 for s in self.exit_statuses)


def parse_nixlbench_log(text: str) -> NixlbenchResult:
    """Parse nixlbench output (one pod's or both, ``kubectl logs --prefix`` prefixes allowed)."""
    result = NixlbenchResult()
    in_config = False
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw.rstrip())
        if line.startswith("NIXLBench Configuration"):
            in_config = True
            continue
        if in_config and set(line) == {"-"} and len(line) >= 40:
            in_config = False
            continue
        if in_config:
            option = _OPTION.match(line)
            if option:
                key = _OPTION_KEY.search(option["desc"])
                result.options[key["key"] if key else option["desc"].strip()] = option["value"].strip()
            continue
        if match := _INIT.match(line):
            result.workers[int(match["rank"])] = (match["type"], match["host"])
        elif match := _NODE.match(line):
            result.nodes[int(match["index"])] = match["node"]
        elif match := _EXIT.match(line):
            result.exit_statuses.append(int(match["status"]))
        elif match := _ROW12.match(line):
            g = match.groups()
            result.rows.append(
                TransferRow(int(g[0]), int(g[1]), float(g[2]), float(g[5]), float(g[11]), aggregate_gbps=float(g[3]))
            )
        elif match := _ROW10.match(line):
            g = match.groups()
            result.rows.append(TransferRow(int(g[0]), int(g[1]), float(g[2]), float(g[3]), float(g[9])))
        elif _FAILURES.search(line):
            result.failures.append(line.strip())
    return result


def kv_fabric_problems(
    result: NixlbenchResult,
    *,
    expect_backend: str,
    min_bandwidth_gbps: float | None = None,
    block_bytes: int | None = None,
) -> list[str]:
    """Why the KV path failed the check (empty: it passed). One line each, with what to look at."""
    problems = [f"nixlbench reported: {f}" for f in result.failures]
    if result.backend is None:
        problems.append("no nixlbench configuration in the log: did nixlbench start? (kubectl logs of both pods)")
    elif result.backend.upper() != expect_backend.upper():
        problems.append(f"nixlbench ran backend {result.backend}, but the workers use {expect_backend}")
    for side in ("initiator_seg_type", "target_seg_type"):
        if result.options.get(side, "VRAM") != "VRAM":
            problems.append(f"{side} is {result.options[side]}: KV cache lives in GPU memory (VRAM)")
    if len(set(result.nodes.values())) == 1 and len(result.nodes) >= 2:
        problems.append(f"both pods ran on node {next(iter(result.nodes.values()))}: no inter-node transfer was measured")
    hosts = {host for _, host in result.workers.values()}
    if len(result.workers) >= 2 and len(hosts) == 1:
        problems.append("initiator and target share a hostname: no inter-pod transfer was measured")
    if not result.rows:
        problems.append("no transfer result rows: the run did not finish")
    elif block_bytes is not None and all(r.block_bytes != block_bytes for r in result.rows):
        problems.append(f"no row moved {block_bytes}-byte blocks (the KV-cache block size)")
    if any(s != 0 for s in result.exit_statuses):
        problems.append(f"nixlbench exited with status {max(result.exit_statuses)}")
    if result.rows and min_bandwidth_gbps is not None and result.peak_gbps < min_bandwidth_gbps:
        problems.append(
            f"peak KV-transfer bandwidth {result.peak_gbps:.2f} GB/s is below {min_bandwidth_gbps:g} GB/s"
        )
    return problems


def render_summary(result: NixlbenchResult) -> str:
    lines = [
        f"backend: {result.backend or '?'}  op: {result.options.get('op_type', '?')}  "
        f"segments: {result.options.get('initiator_seg_type', '?')} -> {result.options.get('target_seg_type', '?')}",
        "nodes: " + (", ".join(f"pod {i}: {n}" for i, n in sorted(result.nodes.items())) or "?"),
    ]
    for row in result.rows:
        lines.append(
            f"  {row.block_bytes:>12} B x {row.batch:>5}: {row.bandwidth_gbps:9.3f} GB/s, "
            f"avg {row.avg_latency_us:.1f} us, p99 tx {row.p99_transfer_us:.1f} us"
        )
    lines.append(f"peak: {result.peak_gbps:.3f} GB/s")
    return "\n".join(lines) + "\n"


def spec_for_deployment(config, deployment_name: str, image: str, **overrides) -> KvFabricCheckSpec:
    """The check of one prefill/decode deployment of a loaded stack (``StackConfig``, duck-typed):
    its context pool's fabric and per-pod fabric share, the KV block of its model on the context
    side's tensor parallelism, and blocks up to its longest prompt. ValueError in one line otherwise."""
    deployment = next((d for d in config.deployments if d.name == deployment_name), None)
    if deployment is None:
        known = ", ".join(d.name for d in config.deployments) or "none"
        raise ValueError(f"no deployment '{deployment_name}' in the stack (known: {known})")
    if deployment.prefill is None:
        raise ValueError(f"deployment '{deployment_name}' is not prefill-decode: it moves no KV cache between groups")
    group = deployment.prefill
    pool = config.cluster.node_pools()[group.pool]
    if pool.fabric not in BACKENDS:
        raise ValueError(f"pool '{pool.name}' has fabric '{pool.fabric}': a KV fabric check needs efa, infiniband or roce")
    source = config.models[group.model]
    info, options = source.info, group.llm_api
    kv = options.kv_cache_config
    fp8 = kv.dtype == "fp8" or (kv.dtype == "auto" and source.quantization == "fp8")
    block = kv_block_bytes(
        info.num_layers, info.num_kv_heads, info.head_dim, kv.tokens_per_block, 1 if fp8 else 2,
        options.tensor_parallel_size,
    )  # fmt: skip
    gpus = group.gpus_per_pod or pool.gpus_per_node
    share = gpus / pool.gpus_per_node if pool.gpus_per_node else 1.0
    resources = pool.fabric_resources(share)
    fields: dict = {
        "image": image,
        "fabric": pool.fabric,
        "name": f"{deployment_name}-kv-check"[:40].rstrip("-"),
        "namespace": config.namespace,
        "gpus_per_pod": gpus,
        "efa_interfaces": int(resources.get(EFA_RESOURCE, 0)),
        "rdma_resource": pool.rdma_resource,
        "node_selector": dict(pool.node_selector),
        "tolerations": tuple(Toleration(**t.to_k8s()) for t in pool.tolerations),
        "block_bytes": block,
        "max_blocks": max(1, min(65536, -(-options.max_seq_len // kv.tokens_per_block))),
        "backend": (options.cache_transceiver_config.backend if options.cache_transceiver_config else None),
    }
    if fields["backend"] not in ("LIBFABRIC", "UCX"):
        fields["backend"] = None  # NIXL/DEFAULT: the fabric's NIXL transport
    fields.update(overrides)
    return KvFabricCheckSpec(**fields)


def load_stack(project_dir, stack: str):
    """The validated ``StackConfig`` of ``Pulumi.<stack>.yaml`` (offline: encrypted values become a
    placeholder). ValueError (or ``ConfigError``) in one line when it cannot be read."""
    import json
    from pathlib import Path

    import yaml

    from components.config.base import OFFLINE_SECRET
    from components.config.loader import load_stack_config
    from components.config.stack_file import read_stack_file

    project_dir = Path(project_dir)
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists() or not (project_dir / "Pulumi.yaml").exists():
        raise ValueError(f"no Pulumi.yaml and {stack_file.name} in {project_dir}: pass --project")
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]

    def unsecret(value):
        if isinstance(value, dict):
            return OFFLINE_SECRET if set(value) == {"secure"} else {k: unsecret(v) for k, v in value.items()}
        return [unsecret(v) for v in value] if isinstance(value, list) else value

    raw = {}
    for key, value in (read_stack_file(stack_file).get("config") or {}).items():
        value = unsecret(value)
        raw[key if ":" in key else f"{project}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return load_stack_config(raw)
