"""ModelPreparation: one checkpoint put on shared storage by a Kubernetes Job (llmapi runtime).

The Job runs ``python -m engines.prepare`` (standard library + huggingface_hub, both in the
TensorRT-LLM release image) from a ConfigMap holding the entrypoint and the request, on the
system (CPU) pool: downloading needs no GPU. Job and ConfigMap are named after the *model key*
(content address of repository + revision + quantization, ``engines.prepare.model_key``):

* unchanged source -> same Job, no diff, nothing reruns;
* a new revision or precision -> new key -> a new Job downloads into a new directory beside the
  one still being served; workers move to it once it is complete (they wait for ``model_dir``);
* a changed pod setting with the same key replaces the Job under the same name; the
  entrypoint finds the ``.complete`` marker and exits at once.

The pod follows the Kubernetes "restricted" Pod Security Standard: non-root (uid/gid 1000),
seccomp RuntimeDefault, no privilege escalation, all capabilities dropped, read-only root
filesystem (``/tmp`` and ``HOME`` on an emptyDir), no service-account token; its NetworkPolicy
lets it reach DNS and HTTPS only (:mod:`components.models.job_pods`). The shared store must be
writable by gid 1000 (``fsGroup``; on FSx for Lustre, whose CSI driver does not apply fsGroup,
make the ``models/`` directory group-writable once). The Hugging Face token is a file mounted
from the Secret (``HF_TOKEN_PATH``), never an environment variable nor in the spec. As for engine builds,
``ttlSecondsAfterFinished`` stays unset (a deleted Job would be recreated and rerun), and
``pulumi.com/replaceUnready`` reruns a failed Job (e.g. after the token Secret was created).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from components.config.images import DEFAULT_TRTLLM_IMAGE
from components.config.models import ModelSourceConfig
from components.config.scheduling import NodePool
from components.models.job_pods import (
    hashed_job_name,
    hf_token_env,
    hf_token_mount,
    hf_token_volume,
    restricted_container_security_context,
    restricted_pod_security_context,
)
from components.models.store_job import CODE_MOUNT, declare_store_job, engines_code_data, engines_code_files

TYPE_TOKEN = "disagg:models:ModelPreparation"
REQUEST_FILE = "request.json"
RUN_AS = 1000
_CODE_FILES = engines_code_files("prepare")


class ModelPreparationArgs(BaseModel):
    """Which checkpoint, where it goes, and where the Job runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str
    """Key in ``disagg:models``: names the directory ``<mount>/models/<name>/<model key>``."""
    source: ModelSourceConfig
    namespace: str
    pool: NodePool
    """Where the Job runs: the system (CPU) pool; only its nodeSelector and tolerations are used."""
    storage_claim_name: str
    """ReadWriteMany PVC of the shared store."""
    store_mount_path: str = "/models"
    image: str = DEFAULT_TRTLLM_IMAGE
    hf_token_secret: str | None = None
    """Secret holding a Hugging Face token (gated models such as Llama need one)."""
    hf_token_secret_key: str = "HF_TOKEN"
    cpu: str = "2"
    memory: str = "8Gi"
    backoff_limit: int = Field(default=2, ge=0)
    active_deadline_seconds: int = Field(default=3 * 3600, ge=600)
    """Bounds a stalled download; size it from the checkpoint and the store
    (:func:`components.models.await_budget.model_preparation_deadline`): Pulumi waits this long
    plus a margin (``customTimeouts``)."""
    wait_for_completion: bool = True
    """Await the Job in ``pulumi up``; False sets ``pulumi.com/skipAwait``."""


def model_path(store_mount_path: str, name: str, source: ModelSourceConfig) -> str:
    """Directory of the prepared checkpoint in pods mounting the store at ``store_mount_path``."""
    return f"{store_mount_path.rstrip('/')}/models/{name}/{source.key()}"


def preparation_request(name: str, source: ModelSourceConfig) -> dict[str, Any]:
    """The JSON the entrypoint reads."""
    return {
        "name": name,
        "model": source.model,
        "repository": source.repository,
        "revision": source.revision,
        "quantization": source.quantization,
        "gated": source.gated,
        "modelKey": source.key(),
    }


def job_name(name: str, source: ModelSourceConfig) -> str:
    """Kubernetes name of the Job (and its ConfigMap): ``<name>-<model key>``."""
    return hashed_job_name("ModelPreparation", name, source.key())


class ModelPreparation(pulumi.ComponentResource):
    """Puts ``args.source`` once into ``model_dir`` on the shared store."""

    model_path: str
    """Path of the checkpoint directory in pods mounting the store at ``store_mount_path``."""
    model_dir: pulumi.Output[str]
    """``model_path`` as an output of the Job: resources using it wait for the download."""
    model_key: str
    """Content address of repository + revision + quantization."""
    job_name: pulumi.Output[str]
    job: k8s.batch.v1.Job
    network_policy: k8s.networking.v1.NetworkPolicy

    def __init__(self, name: str, args: ModelPreparationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        source = args.source
        self.model_key = source.key()
        self.model_path = model_path(args.store_mount_path, args.name, source)
        k8s_name = job_name(name, source)
        labels = {
            "app.kubernetes.io/name": "model-preparation",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/part-of": "disagg-inference",
            "disagg.ai/model": args.name,
            "disagg.ai/model-key": self.model_key,
        }
        data = engines_code_data(_CODE_FILES)
        data[REQUEST_FILE] = json.dumps(preparation_request(args.name, source), indent=2, sort_keys=True) + "\n"
        store_job = declare_store_job(
            self, name, k8s_name, args.namespace, labels, data, pod_spec(args, k8s_name),
            backoff_limit=args.backoff_limit, active_deadline_seconds=args.active_deadline_seconds,
            wait_for_completion=args.wait_for_completion,
        )  # fmt: skip
        self.network_policy, self.job, self.job_name = store_job.network_policy, store_job.job, store_job.job_name
        self.model_dir = self.job_name.apply(lambda _: self.model_path)
        self.register_outputs(
            {"model_dir": self.model_dir, "model_key": self.model_key, "job_name": self.job_name}
        )


def pod_spec(args: ModelPreparationArgs, config_map_name: str) -> dict[str, Any]:
    """The Job's pod spec (a plain Kubernetes dict, tested directly)."""
    mount = args.store_mount_path.rstrip("/") or "/"
    env: list[dict[str, Any]] = [
        {"name": "PYTHONPATH", "value": CODE_MOUNT},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "HF_HOME", "value": "/tmp/hf"},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
        {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "0"},
    ]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if args.hf_token_secret:
        env += [{"name": name, "value": value} for name, value in hf_token_env().items()]
        volumes.append(hf_token_volume(args.hf_token_secret, args.hf_token_secret_key))
        mounts.append(hf_token_mount())
    items = [{"key": key, "path": path} for key, path in _CODE_FILES.items()]
    items.append({"key": REQUEST_FILE, "path": REQUEST_FILE})
    container = {
        "name": "prepare",
        "image": args.image,
        "command": ["python3", "-m", "engines.prepare"],
        "args": ["--request", f"{CODE_MOUNT}/{REQUEST_FILE}", "--store", mount],
        "workingDir": CODE_MOUNT,
        "env": env,
        "resources": {
            "requests": {"cpu": args.cpu, "memory": args.memory},
            "limits": {"memory": args.memory},
        },
        "securityContext": restricted_container_security_context(),
        "volumeMounts": [
            {"name": "store", "mountPath": mount},
            {"name": "code", "mountPath": CODE_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            *mounts,
        ],
    }
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "nodeSelector": dict(sorted(args.pool.node_selector.items())),
        "tolerations": [t.to_k8s() for t in args.pool.tolerations],
        "securityContext": restricted_pod_security_context(),
        "containers": [container],
        "volumes": [
            {"name": "store", "persistentVolumeClaim": {"claimName": args.storage_claim_name}},
            {"name": "code", "configMap": {"name": config_map_name, "items": items}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            *volumes,
        ],
    }
