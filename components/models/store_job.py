"""The resources of a content-addressed Job that writes into the shared store (engine builds,
model preparation): its code ConfigMap, a NetworkPolicy that exists before the pod (DNS + HTTPS
egress only, :func:`job_pods.job_network_policy`), and the Job itself, awaited up to its deadline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

import engines
from components.models.await_budget import job_await_seconds
from components.models.job_pods import job_network_policy

CODE_MOUNT = "/opt/disagg"
"""Where a store Job's code ConfigMap is mounted (its PYTHONPATH and working directory)."""
_ENGINES_DIR = Path(engines.__file__).parent


def engines_code_files(*modules: str) -> dict[str, str]:
    """ConfigMap key -> path under CODE_MOUNT of the ``engines`` modules a Job runs (with the
    package's ``__init__``; ConfigMap keys cannot contain '/')."""
    return {f"{module}.py": f"engines/{module}.py" for module in ("__init__", *modules)}


def engines_code_data(files: dict[str, str]) -> dict[str, str]:
    """The ConfigMap data of ``files`` (:func:`engines_code_files`): each module's source."""
    return {key: (_ENGINES_DIR / key).read_text() for key in files}


@dataclass(frozen=True)
class StoreJob:
    config_map: k8s.core.v1.ConfigMap
    network_policy: k8s.networking.v1.NetworkPolicy
    job: k8s.batch.v1.Job
    job_name: pulumi.Output[str]


def declare_store_job(
    parent: pulumi.Resource,
    name: str,
    k8s_name: str,
    namespace: str,
    labels: dict[str, str],
    code: dict[str, str],
    pod_spec: Any,
    *,
    backoff_limit: int,
    active_deadline_seconds: int,
    wait_for_completion: bool,
) -> StoreJob:
    """ConfigMap ``<name>-code``, NetworkPolicy ``<name>-network-policy`` and Job ``<name>-job``
    (all Kubernetes-named ``k8s_name``), children of ``parent``."""
    child = pulumi.ResourceOptions(parent=parent)
    metadata = k8s.meta.v1.ObjectMetaArgs(name=k8s_name, namespace=namespace, labels=labels)
    config_map = k8s.core.v1.ConfigMap(f"{name}-code", metadata=metadata, data=code, opts=child)
    policy = job_network_policy(k8s_name, namespace, labels)
    network_policy = k8s.networking.v1.NetworkPolicy(  # before the pod exists
        f"{name}-network-policy", metadata=policy["metadata"], spec=policy["spec"], opts=child
    )
    annotations = {"pulumi.com/replaceUnready": "true"}
    if not wait_for_completion:
        annotations["pulumi.com/skipAwait"] = "true"
    job = k8s.batch.v1.Job(
        f"{name}-job",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=k8s_name, namespace=namespace, labels=labels, annotations=annotations),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=backoff_limit,
            active_deadline_seconds=active_deadline_seconds,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels), spec=cast(Any, pod_spec)
            ),
        ),
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=[config_map, network_policy],
            custom_timeouts=pulumi.CustomTimeouts(create=f"{job_await_seconds(active_deadline_seconds)}s"),
        ),
    )
    job_name = job.metadata.apply(lambda meta: cast(str, meta.name))
    return StoreJob(config_map, network_policy, job, job_name)
