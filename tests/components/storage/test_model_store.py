"""ModelStore: namespace and ReadWriteMany claim on the cluster's shared storage."""

from __future__ import annotations

import pulumi_kubernetes as k8s
import pytest

from components.cluster.contract import ClusterHandle, SharedStorage
from components.config.scheduling import NodePool
from components.storage.model_store import ModelStore, claim_spec

SYSTEM = NodePool(name="system", gpus_per_node=0, gpu_memory_gib=0, node_selector={})


def handle(storage: SharedStorage | None) -> ClusterHandle:
    import pulumi

    return ClusterHandle(
        name="llm-test",
        provider=k8s.Provider("llm-test-k8s", kubeconfig="{}"),
        kubeconfig=pulumi.Output.from_input("{}"),
        fabric="efa",
        system_pool=SYSTEM,
        storage=storage,
    )


FSX = SharedStorage(storage_class="fsx-lustre", size_gib=1200, kind="fsx-lustre")
S3 = SharedStorage(storage_class="s3-models", size_gib=1200, kind="s3-mountpoint")


def test_fsx_claim_and_namespace(declare) -> None:
    store, declared = declare(lambda: ModelStore("llm-test-store", handle(FSX), "llm-serving"))
    assert (store.namespace, store.claim_name, store.mount_path) == ("llm-serving", "model-store", "/models")
    namespace = declared.one("kubernetes:core/v1:Namespace")
    assert namespace.name == "llm-test-store-namespace" and namespace.inputs["metadata"]["name"] == "llm-serving"
    assert namespace.inputs["metadata"]["labels"] == {"app.kubernetes.io/part-of": "disagg-inference"}
    claim = declared.one("kubernetes:core/v1:PersistentVolumeClaim")
    assert claim.name == "llm-test-store-claim"
    assert claim.inputs["metadata"]["name"] == "model-store"
    assert claim.inputs["metadata"]["namespace"] == "llm-serving"
    assert claim.inputs["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "fsx-lustre",
        "resources": {"requests": {"storage": "1200Gi"}},
    }
    assert any(urn.endswith("::llm-test-store-namespace") for urn in claim.dependencies)
    for resource in (namespace, claim):
        assert "pulumi:providers:kubernetes::llm-test-k8s::" in resource.provider
        assert resource.parent_name == "llm-test-store"
    assert declared.one("disagg:storage:ModelStore").name == "llm-test-store"


def test_resources_are_attributes(declare) -> None:
    store, _ = declare(lambda: ModelStore("s", handle(FSX), "llm-serving"))
    assert isinstance(store.namespace_resource, k8s.core.v1.Namespace)
    assert isinstance(store.claim, k8s.core.v1.PersistentVolumeClaim)


def test_s3_claim_binds_the_static_volume() -> None:
    assert claim_spec(S3) == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "s3-models",
        "volumeName": "s3-models",
        "resources": {"requests": {"storage": "1200Gi"}},
    }


def test_existing_storage_class_is_claimed_dynamically() -> None:
    spec = claim_spec(SharedStorage(storage_class="weka-rwx", size_gib=3000, kind="existing"))
    assert spec["storageClassName"] == "weka-rwx" and "volumeName" not in spec
    assert spec["resources"] == {"requests": {"storage": "3000Gi"}}


def test_no_shared_storage_is_refused(declare) -> None:
    with pytest.raises(ValueError) as error:
        declare(lambda: ModelStore("s", handle(None), "llm-serving"))
    assert str(error.value) == (
        "cluster 'llm-test' has no shared storage, but engines and weights need a ReadWriteMany "
        "volume: set disagg:cluster.eks.storage.kind to fsx-lustre or s3-mountpoint "
        "(or storageClass for an existing cluster)"
    )


def test_bad_namespace_is_refused(declare) -> None:
    with pytest.raises(ValueError, match="namespace 'LLM_Serving' must be lowercase letters"):
        declare(lambda: ModelStore("s", handle(FSX), "LLM_Serving"))


def test_fsx_claim_waits_for_bound_under_its_own_timeout(declare) -> None:
    """pulumi-kubernetes' built-in claim await stops after 5 minutes whatever the timeout; on FSx
    (a new file system, Immediate binding) the claim waits for Bound through pulumi.com/waitFor,
    which runs under customTimeouts (30m). Other kinds keep the built-in await."""
    _, declared = declare(lambda: ModelStore("llm-test-store", handle(FSX), "llm-serving"))
    claim = declared.one("kubernetes:core/v1:PersistentVolumeClaim")
    assert claim.inputs["metadata"]["annotations"] == {"pulumi.com/waitFor": "jsonpath={.status.phase}=Bound"}
    assert claim.options == {"customTimeouts": {"create": "30m"}}
    _, declared = declare(lambda: ModelStore("llm-test-store", handle(S3), "llm-serving"))
    assert "annotations" not in declared.one("kubernetes:core/v1:PersistentVolumeClaim").inputs["metadata"]
