"""What ``pulumi destroy`` leaves behind (or cannot delete) in a synthesized stack.

A pure function over the synth's resource documents, so that ``docs/teardown.md`` can be checked
against every stack: each thing listed here must be named there, with how to delete it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Retained:
    """One thing a destroy keeps, or stops at."""

    resource: str
    """The synth resource it comes from (``type`` + name)."""
    doc_key: str
    """The words ``docs/teardown.md`` names it by."""
    why: str


def _inputs(document: Mapping[str, Any]) -> dict[str, Any]:
    return dict(document.get("inputs") or {})


def retained_on_delete(documents: Iterable[Mapping[str, Any]]) -> list[Retained]:
    """Everything the stack retains on delete: resources with the ``retainOnDelete`` or ``protect``
    option, storage with reclaim policy Retain (the file system or bucket behind it outlives its
    claim), buckets that refuse to be deleted while they hold objects, and the control plane's log
    group, which EKS creates outside the stack."""
    kept: list[Retained] = []
    for document in documents:
        typ, name = str(document.get("type")), str(document.get("name"))
        inputs, options = _inputs(document), document.get("options") or {}
        resource = f"{typ} {name}"
        if options.get("retainOnDelete"):
            kept.append(Retained(resource, f"retainOnDelete: `{name}`", "the provider's delete is never called"))
        if options.get("protect"):
            kept.append(Retained(resource, f"protect: `{name}`", "pulumi destroy refuses protected resources"))
        if typ == "kubernetes:storage.k8s.io/v1:StorageClass" and inputs.get("reclaimPolicy", "Delete") == "Retain":
            class_name = (inputs.get("metadata") or {}).get("name", name)
            kept.append(Retained(
                resource, f"StorageClass `{class_name}`",
                "its volumes (the FSx for Lustre file system) outlive their claims",
            ))
        if typ == "kubernetes:core/v1:PersistentVolume":
            spec = inputs.get("spec") or {}
            if spec.get("persistentVolumeReclaimPolicy", "Retain") == "Retain":
                volume = (inputs.get("metadata") or {}).get("name", name)
                kept.append(Retained(resource, f"PersistentVolume `{volume}`", "the bucket behind it is kept"))
        if typ == "aws:s3/bucket:Bucket" and not inputs.get("forceDestroy"):
            kept.append(Retained(resource, "S3 bucket", "a bucket holding objects cannot be deleted"))
        if typ == "aws:eks/cluster:Cluster" and inputs.get("enabledClusterLogTypes"):
            cluster = inputs.get("name", name)
            kept.append(Retained(
                resource, "/aws/eks/<cluster>/cluster", f"EKS creates the log group /aws/eks/{cluster}/cluster; nothing deletes it",
            ))
    return kept


def missing_from(doc_text: str, kept: Iterable[Retained]) -> list[str]:
    """One line per retained thing ``doc_text`` does not name."""
    return [
        f"{item.resource}: {item.why}, but the teardown doc does not name '{item.doc_key}': add it with "
        "how to delete it"
        for item in kept
        if item.doc_key not in doc_text
    ]
