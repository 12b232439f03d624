"""Labels and metadata of every serving object, and the LeaderWorkerSet API names."""

from __future__ import annotations

from collections.abc import Mapping

PART_OF = "disagg-inference"
ROLE_LABEL = "disagg.dev/role"
"""Worker-group role of a pod: 'workers', or 'prefill' / 'decode' in prefill-decode mode."""
REPOSITORY_HASH_ANNOTATION = "disagg.dev/repository-hash"
"""Pod-template annotation: content hash of the model repository, so a changed repository rolls pods."""

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
LWS_KIND = "LeaderWorkerSet"
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
LWS_EXCLUSIVE_TOPOLOGY = "leaderworkerset.sigs.k8s.io/exclusive-topology"


ENGINE_APP = "triton"
"""``app.kubernetes.io/name`` of the engine runtime's pods (the default of :func:`labels`)."""


def labels(instance: str, component: str, role: str | None = None, app: str = ENGINE_APP) -> dict[str, str]:
    """Standard labels of one serving component's objects (also their pod selectors); ``app`` is
    the runtime: 'triton' (engine) or 'llmapi'."""
    out = {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
    }
    if role is not None:
        out[ROLE_LABEL] = role
    return out


def metadata(name: str, namespace: str, object_labels: Mapping[str, str], annotations=None) -> dict:
    out: dict = {"name": name, "namespace": namespace, "labels": dict(object_labels)}
    if annotations:
        out["annotations"] = dict(annotations)
    return out

