"""EngineBuild: one TensorRT-LLM engine, built once by a Kubernetes Job onto shared storage.

The Job runs ``python -m engines.build`` from a ConfigMap holding the (standard-library-only)
entrypoint and the build request. Both are named after the *engine key*: the spec's content hash
salted with the image (``engines.build.engine_key``), as engines only load in the TensorRT-LLM
version that built them:

* unchanged spec and image -> same Job, no diff, nothing reruns; the engine stays where it is;
* changed spec or image -> new key -> a new Job (and ConfigMap) builds into a new directory and
  the old ones are deleted (the old engine directory stays on storage for pods still using it;
  workers move to the new one once the build is done, as they wait for ``engine_dir``);
* a changed pod setting with the same key replaces the Job under the same name
  (delete-before-replace); the entrypoint finds the engine and exits at once, or refuses (exit
  3) if the image tag now points at another TensorRT-LLM version than the one that built it.

``ttlSecondsAfterFinished`` is deliberately unset: Kubernetes would delete the finished Job and
the next ``pulumi up`` would recreate (rerun) it. By default Pulumi awaits the Job (status
Complete) so that workers created after it find their engine; ``wait_for_completion=False``
adds ``pulumi.com/skipAwait`` for previews/CI without GPUs. ``pulumi.com/replaceUnready`` makes
the next ``pulumi up`` rerun a Job that failed (e.g. after fixing a missing HF token).
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.config.scheduling import GPU_RESOURCE, NodePool
from components.models.job_pods import (
    hashed_job_name,
    hf_token_env,
    hf_token_mount,
    hf_token_volume,
    restricted_container_security_context,
    restricted_pod_security_context,
)
from components.models.store_job import CODE_MOUNT, declare_store_job, engines_code_data, engines_code_files
from engines import build as build_entrypoint
from engines import build_args
from engines.catalog import MODELS, get_model
from engines.spec import EngineSpec

TYPE_TOKEN = "disagg:engines:EngineBuild"
DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3"
"""Triton 25.10 with TensorRT-LLM 1.0.0, the version the build flags were checked against."""
SPEC_FILE = "spec.json"
_CODE_FILES = engines_code_files("build", "build_args")


class EngineBuildArgs(BaseModel):
    """What to build, with which image, where it runs and where the engine goes."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    spec: EngineSpec
    namespace: str
    pool: NodePool
    """GPU pool the build runs on: nodeSelector, tolerations, and at least tp × pp GPUs per node."""
    storage_claim_name: str
    """ReadWriteMany PVC of the shared storage engines and weights live on."""
    store_mount_path: str = "/models"
    """Where the PVC is mounted; engines land in ``<mount>/engines/<model>/<hash>/``."""
    image: str = DEFAULT_IMAGE
    hf_token_secret: str | None = None
    """Secret holding a Hugging Face token (gated models such as Llama need one)."""
    hf_token_secret_key: str = "HF_TOKEN"
    examples_dir: str = build_args.DEFAULT_EXAMPLES_DIR
    """TensorRT-LLM ``examples/`` inside the image (the Triton TRT-LLM image ships them in /app/examples)."""
    backoff_limit: int = Field(default=1, ge=0)
    active_deadline_seconds: int = Field(default=4 * 3600, ge=600)
    """Bounds a stuck build; the stack sizes it from the model and the store
    (``await_budget.engine_build_deadline``: download, build and calibration, at least 4 hours)."""
    shm_size_gib: int = Field(default=32, ge=1)
    """/dev/shm for NCCL and PyTorch data loaders during quantization."""
    cpu: int = Field(default=16, ge=1)
    memory_gib: int | None = Field(default=None, ge=8)
    """Host memory; default 1.5 × the bf16 weights + 32 GiB (conversion loads the whole model)."""
    wait_for_completion: bool = True
    """Await the Job in ``pulumi up``; False sets ``pulumi.com/skipAwait``."""

    @model_validator(mode="after")
    def _fits_pool(self) -> EngineBuildArgs:
        if self.pool.gpus_per_node < 1:
            raise ValueError(f"pool '{self.pool.name}' has no GPUs: build engines on a GPU pool")
        if self.spec.model not in MODELS:
            get_model(self.spec.model)  # raises, naming the known models
        return self

    def build_gpus(self) -> int:
        """GPUs the build Job takes: one per rank, at most one node's worth.

        ``trtllm-build`` builds the ranks of a multi-node engine (tp × pp above the node's GPUs)
        in turns on one node; ``--workers`` is the number built at once.
        """
        return min(self.spec.world_size, self.pool.gpus_per_node)

    def host_memory_gib(self) -> int:
        if self.memory_gib is not None:
            return self.memory_gib
        bf16_gib = get_model(self.spec.model).param_count * 2 / 1024**3
        return math.ceil(bf16_gib * 1.5) + 32


def engine_key(spec: EngineSpec, image: str) -> str:
    """Storage key of ``spec`` built by ``image`` (what the entrypoint computes too)."""
    return build_entrypoint.engine_key(spec.model_dump(mode="json"), image)


def build_request(spec: EngineSpec, image: str) -> dict:
    """The JSON the entrypoint reads: spec dump, its hash, the image, the engine key, and the
    catalog facts it needs."""
    model = get_model(spec.model)
    return {
        "spec": spec.model_dump(mode="json"),
        "contentHash": spec.content_hash(),
        "image": image,
        "engineKey": engine_key(spec, image),
        "architecture": model.architecture,
        "checkpoint": spec.checkpoint or model.hf_repo,
    }


def engine_path(store_mount_path: str, spec: EngineSpec, image: str) -> str:
    """Directory of ``spec``'s engine built by ``image`` on shared storage, as mounted in pods."""
    return f"{store_mount_path.rstrip('/')}/engines/{spec.model}/{engine_key(spec, image)}"


def job_name(name: str, spec: EngineSpec, image: str) -> str:
    """Kubernetes name of the build Job (and its ConfigMap): ``<name>-<engine key>``."""
    return hashed_job_name("EngineBuild", name, engine_key(spec, image))


class EngineBuild(pulumi.ComponentResource):
    """Builds ``args.spec`` once into ``engine_dir`` on the shared storage."""

    engine_path: str
    """Path of the engine directory in pods mounting the storage at ``store_mount_path``."""
    engine_dir: pulumi.Output[str]
    """``engine_path`` as an output of the Job: resources using it wait for the build."""
    content_hash: str
    """The spec's content hash (``EngineSpec.content_hash``)."""
    engine_key: str
    """The content hash salted with the image: names the engine directory and the Job."""
    job_name: pulumi.Output[str]
    job: k8s.batch.v1.Job
    network_policy: k8s.networking.v1.NetworkPolicy

    def __init__(self, name: str, args: EngineBuildArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        spec = args.spec
        self.content_hash = spec.content_hash()
        self.engine_key = engine_key(spec, args.image)
        self.engine_path = engine_path(args.store_mount_path, spec, args.image)
        k8s_name = job_name(name, spec, args.image)
        labels = {
            "app.kubernetes.io/name": "engine-build",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/part-of": "disagg-inference",
            "disagg.ai/engine-hash": self.content_hash,
            "disagg.ai/engine-key": self.engine_key,
        }
        data = engines_code_data(_CODE_FILES)
        data[SPEC_FILE] = json.dumps(build_request(spec, args.image), indent=2, sort_keys=True) + "\n"
        store_job = declare_store_job(
            self, name, k8s_name, args.namespace, labels, data, _pod_spec(args, k8s_name),
            backoff_limit=args.backoff_limit, active_deadline_seconds=args.active_deadline_seconds,
            wait_for_completion=args.wait_for_completion,
        )  # fmt: skip
        self.network_policy, self.job, self.job_name = store_job.network_policy, store_job.job, store_job.job_name
        self.engine_dir = self.job_name.apply(lambda _: self.engine_path)
        self.register_outputs(
            {
                "engine_dir": self.engine_dir,
                "content_hash": self.content_hash,
                "engine_key": self.engine_key,
                "job_name": self.job_name,
            }
        )


def _pod_spec(args: EngineBuildArgs, config_map_name: str) -> k8s.core.v1.PodSpecArgs:
    gpus = str(args.build_gpus())
    memory = f"{args.host_memory_gib()}Gi"
    env = [
        k8s.core.v1.EnvVarArgs(name="PYTHONPATH", value=CODE_MOUNT),
        k8s.core.v1.EnvVarArgs(name="PYTHONUNBUFFERED", value="1"),
        k8s.core.v1.EnvVarArgs(name="HF_HOME", value=f"{args.store_mount_path.rstrip('/')}/hf/.cache"),
        # the root filesystem is read-only: home, caches and scratch on the /tmp emptyDir
        k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp/home"),
        k8s.core.v1.EnvVarArgs(name="XDG_CACHE_HOME", value="/tmp/cache"),
        k8s.core.v1.EnvVarArgs(name="TMPDIR", value="/tmp"),
    ]
    token_mounts, token_volumes = [], []
    if args.hf_token_secret:  # a file from the Secret, never an environment variable
        env += [k8s.core.v1.EnvVarArgs(name=n, value=v) for n, v in hf_token_env().items()]
        token_mounts.append(hf_token_mount())
        token_volumes.append(hf_token_volume(args.hf_token_secret, args.hf_token_secret_key))
    container = k8s.core.v1.ContainerArgs(
        name="build",
        image=args.image,
        command=["python3", "-m", "engines.build"],
        args=[
            "--spec", f"{CODE_MOUNT}/{SPEC_FILE}",
            "--store", args.store_mount_path,
            "--examples-dir", args.examples_dir,
            "--workers", gpus,
        ],
        working_dir=CODE_MOUNT,
        env=env,
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": str(args.cpu), "memory": memory, GPU_RESOURCE: gpus},
            limits={"memory": memory, GPU_RESOURCE: gpus},
        ),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="store", mount_path=args.store_mount_path),
            k8s.core.v1.VolumeMountArgs(name="code", mount_path=CODE_MOUNT, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="dshm", mount_path="/dev/shm"),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            *[cast(Any, m) for m in token_mounts],
        ],
        security_context=cast(Any, restricted_container_security_context()),
    )
    items = [k8s.core.v1.KeyToPathArgs(key=key, path=path) for key, path in _CODE_FILES.items()]
    items.append(k8s.core.v1.KeyToPathArgs(key=SPEC_FILE, path=SPEC_FILE))
    return k8s.core.v1.PodSpecArgs(
        restart_policy="Never",
        automount_service_account_token=False,
        security_context=cast(Any, restricted_pod_security_context()),
        node_selector=dict(args.pool.node_selector),
        tolerations=[
            k8s.core.v1.TolerationArgs(**cast(dict[str, Any], t.to_k8s())) for t in args.pool.tolerations
        ],
        containers=[container],
        volumes=[
            k8s.core.v1.VolumeArgs(
                name="store",
                persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                    claim_name=args.storage_claim_name
                ),
            ),
            k8s.core.v1.VolumeArgs(
                name="code",
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map_name, items=items),
            ),
            k8s.core.v1.VolumeArgs(
                name="dshm",
                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                    medium="Memory", size_limit=f"{args.shm_size_gib}Gi"
                ),
            ),
            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="32Gi")),
            *[cast(Any, v) for v in token_volumes],
        ],
    )
