"""ExistingCluster: kubeconfig text or path, context check, and the handle it gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from components.cluster.contract import SharedStorage
from components.cluster.existing import ExistingCluster
from components.config.cluster import ExistingClusterConfig
from components.config.kubeconfig import check_context, is_kubeconfig_text, read_kubeconfig
from components.config.scheduling import Toleration

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: onprem
  cluster: {server: "https://10.0.0.1:6443"}
contexts:
- name: onprem-admin
  context: {cluster: onprem, user: admin}
- name: onprem-readonly
  context: {cluster: onprem, user: viewer}
current-context: onprem-admin
users:
- name: admin
  user: {token: secret}
"""


def config(**overrides) -> ExistingClusterConfig:
    fields = {
        "kubeconfig": KUBECONFIG,
        "storageClass": "weka-rwx",
        "systemNodeSelector": {"node-role.example.com/cpu": "true"},
        "gpuPools": [
            {
                "name": "h100",
                "gpusPerNode": 8,
                "gpuMemoryGib": 80,
                "gpuArch": "hopper",
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            }
        ],
    }
    return ExistingClusterConfig.model_validate({**fields, **overrides})


def secret_value(recorded: object) -> object:
    """The plain value of an input the engine received as a secret (fails if it was not one)."""
    assert isinstance(recorded, dict), f"not a secret: {recorded!r}"
    assert recorded[rpc._special_sig_key] == rpc._special_secret_sig
    return recorded["value"]


@pytest.fixture
def existing(declare):
    def run(args: ExistingClusterConfig, name: str = "onprem"):
        return declare(lambda: ExistingCluster(name, args))

    return run


def test_handle_carries_fabric_rdma_resource_and_selectors(existing) -> None:
    cluster, _ = existing(config())
    handle = cluster.handle
    assert (handle.name, handle.platform, handle.fabric) == ("onprem", "existing", "infiniband")
    pool = handle.gpu_pools["h100"]
    assert pool.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pool.rdma_resource == "rdma/rdma_shared_device_a"
    assert pool.fabric == "infiniband"
    assert pool.tolerations == (Toleration(key="nvidia.com/gpu"),)
    assert pool.fabric_resources() == {"rdma/rdma_shared_device_a": "1"}
    assert (pool.gpus_per_node, pool.gpu_memory_gib, pool.gpu_arch) == (8, 80, "hopper")
    assert handle.system_pool.node_selector == {"node-role.example.com/cpu": "true"}
    assert handle.system_pool.gpus_per_node == 0
    assert handle.storage == SharedStorage(storage_class="weka-rwx", size_gib=2000, kind="existing")


def test_roce_uses_the_configured_rdma_resource(existing) -> None:
    cluster, _ = existing(config(fabric="roce", rdmaResourceName="rdma_roce"))
    assert cluster.handle.fabric == "roce"
    assert cluster.handle.gpu_pools["h100"].rdma_resource == "rdma/rdma_roce"


def test_no_fabric_means_no_rdma_resource(existing) -> None:
    cluster, _ = existing(config(fabric="none"))
    assert cluster.handle.gpu_pools["h100"].rdma_resource is None
    assert cluster.handle.gpu_pools["h100"].fabric_resources() == {}


def test_provider_gets_the_kubeconfig_and_context_as_a_secret(existing) -> None:
    cluster, declared = existing(config(context="onprem-readonly"))
    provider = declared.one("pulumi:providers:kubernetes")
    assert provider.name == "onprem-k8s" and provider.parent_name == "onprem"
    assert provider.inputs["context"] == "onprem-readonly"
    assert secret_value(provider.inputs["kubeconfig"]) == KUBECONFIG
    assert declared.resolve(cluster.handle.kubeconfig) == KUBECONFIG
    assert _sync_await(cluster.handle.kubeconfig.is_secret()) is True
    assert declared.one("disagg:cluster:ExistingCluster").name == "onprem"


def test_kubeconfig_path_is_read_at_plan_time(existing, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(KUBECONFIG)
    cluster, declared = existing(config(kubeconfig=str(path)))
    assert secret_value(declared.one("pulumi:providers:kubernetes").inputs["kubeconfig"]) == KUBECONFIG


def test_missing_kubeconfig_file_names_the_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ValueError) as error:
        read_kubeconfig(str(missing))
    assert str(error.value) == (
        f"disagg:cluster.existing.kubeconfig: '{missing}' is neither kubeconfig text nor an existing "
        "file: fix the path, or set the key to the kubeconfig content itself (as a secret)"
    )


def test_missing_file_fails_the_component(declare, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"disagg:cluster\.existing\.kubeconfig: '.*nope\.yaml' is neither"):
        declare(lambda: ExistingCluster("onprem", config(kubeconfig=str(tmp_path / "nope.yaml"))))


def test_unknown_context_is_refused() -> None:
    with pytest.raises(ValueError) as error:
        check_context(KUBECONFIG, "prod")
    assert str(error.value) == (
        "disagg:cluster.existing.context: context 'prod' is not in the kubeconfig (contexts: "
        "onprem-admin, onprem-readonly): pick one of them or remove the key"
    )
    check_context(KUBECONFIG, "onprem-admin")
    check_context(KUBECONFIG, None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (KUBECONFIG, True),
        ('{"apiVersion": "v1"}', True),
        ("apiVersion: v1", True),
        ("~/.kube/config", False),
        ("/etc/kubernetes/admin.conf", False),
    ],
)
def test_text_or_path(value: str, text: bool) -> None:
    assert is_kubeconfig_text(value) is text
