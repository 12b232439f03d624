"""ModelStore: the namespace and the ReadWriteMany claim engines and weights live on.

The claim is made on the cluster's shared storage (``handle.storage``):

* ``fsx-lustre`` and ``existing``: a dynamically provisioned claim of the StorageClass;
* ``s3-mountpoint``: a claim bound to the cluster's static Mountpoint PersistentVolume, which
  AwsGpuCluster names after its storage class (``volumeName`` = ``storageClassName``).

Names are plain strings known at plan time (``namespace``, ``claim_name``, ``mount_path``) so
callers can build pod specs from them; depend on the component (or ``claim``) to wait for them.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle, SharedStorage
from components.config.base import check_dns_label

TYPE_TOKEN = "disagg:storage:ModelStore"
CLAIM_NAME = "model-store"
MOUNT_PATH = "/models"
STATIC_KINDS = ("s3-mountpoint",)
"""Storage kinds with one pre-created PersistentVolume named like the storage class."""
PROVISION_TIMEOUT = "30m"
"""A new FSx for Lustre file system takes 5-15 minutes before the claim is Bound."""
WAIT_FOR_BOUND = {"pulumi.com/waitFor": "jsonpath={.status.phase}=Bound"}
"""pulumi-kubernetes' own claim await gives up after a fixed 5 minutes whatever the resource's
timeout (``untilCoreV1PersistentVolumeClaimReady``: ``WatchUntil(pvcReady, 5*time.Minute)``,
provider/pkg/await/awaiters.go @94977969d641); a ``pulumi.com/waitFor`` condition replaces it and
runs under the resource's ``customTimeouts`` (provider/pkg/await/await.go ``Creation``,
provider/pkg/metadata/overrides.go ``ReadyCondition``). Only for dynamically provisioned FSx
(its StorageClass binds Immediately): a WaitForFirstConsumer class of an existing cluster leaves
the claim Pending until a pod uses it, which the built-in await accepts."""


def claim_annotations(storage: SharedStorage) -> dict[str, str]:
    """Annotations of the store's claim: wait for Bound under PROVISION_TIMEOUT on FSx."""
    return dict(WAIT_FOR_BOUND) if storage.kind == "fsx-lustre" else {}


def claim_spec(storage: SharedStorage) -> dict[str, Any]:
    """Spec of the store's PersistentVolumeClaim on ``storage``."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": storage.storage_class,
        "resources": {"requests": {"storage": f"{storage.size_gib}Gi"}},
    }
    if storage.kind in STATIC_KINDS:
        spec["volumeName"] = storage.storage_class
    return spec


class ModelStore(pulumi.ComponentResource):
    """The serving namespace and its shared ReadWriteMany volume claim."""

    namespace: str
    """Name of the namespace (plain string, known at plan time)."""
    claim_name: str
    mount_path: str
    storage: SharedStorage
    """The cluster's shared storage the claim is made on."""
    namespace_resource: k8s.core.v1.Namespace
    claim: k8s.core.v1.PersistentVolumeClaim

    def __init__(
        self,
        name: str,
        handle: ClusterHandle,
        namespace: str,
        opts: pulumi.ResourceOptions | None = None,
        claim_name: str = CLAIM_NAME,
        mount_path: str = MOUNT_PATH,
    ):
        if handle.storage is None:
            raise ValueError(
                f"cluster '{handle.name}' has no shared storage, but engines and weights need a "
                "ReadWriteMany volume: set disagg:cluster.eks.storage.kind to fsx-lustre or "
                "s3-mountpoint (or storageClass for an existing cluster)"
            )
        check_dns_label(namespace, "namespace")
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.namespace, self.claim_name, self.mount_path = namespace, claim_name, mount_path
        storage = self.storage = handle.storage

        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels={"app.kubernetes.io/part-of": "disagg-inference"}),
            opts=pulumi.ResourceOptions(parent=self, provider=handle.provider),
        )
        self.claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=claim_name,
                namespace=self.namespace_resource.metadata.name,
                labels={"app.kubernetes.io/part-of": "disagg-inference", "disagg.dev/storage-kind": storage.kind},
                annotations=claim_annotations(storage) or None,
            ),
            spec=cast(Any, claim_spec(storage)),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=handle.provider,
                custom_timeouts=pulumi.CustomTimeouts(create=PROVISION_TIMEOUT),
            ),
        )
        self.register_outputs(
            {"namespace": namespace, "claimName": claim_name, "mountPath": mount_path, "claim": self.claim.id}
        )
