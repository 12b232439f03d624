"""Shared serving helpers: labels, repository ConfigMaps, fabric env, resources, layouts."""

from __future__ import annotations

import pytest

from components.config.scheduling import NodePool
from components.serving.autoscaling import pods_metric
from components.serving.fabric_env import fabric_env
from components.serving.group_layout import GroupLayout, group_layout
from components.serving.labels import labels
from components.serving.repository_config_maps import (
    config_map_key,
    content_hash,
    repository_config_maps,
    repository_files_from_config_maps,
    repository_volume,
)
from components.serving.resources import gpu_resources, memory_bytes, memory_limit, quantity
from components.serving.security import gpu_security_context
from components.serving.triton.model_repository import frontend_repository, repository_files
from components.serving.triton.orchestrator import executor_env

EFA_P5 = NodePool("h100", 8, 80, {"p": "h100"}, fabric="efa", efa_interfaces=32, instance_type="p5.48xlarge")
EFA_G5 = NodePool("g5", 8, 24, {"p": "g5"}, fabric="efa", efa_interfaces=1, instance_type="g5.48xlarge")
IB = NodePool("dgx", 8, 80, {"p": "dgx"}, fabric="infiniband", rdma_resource="rdma/ib")
ROCE = NodePool("roce", 8, 80, {"p": "roce"}, fabric="roce", rdma_resource="rdma/roce")
PLAIN = NodePool("l4", 4, 24, {"p": "l4"})


def test_labels_carry_instance_component_and_role():
    assert labels("llama", "orchestrator", "prefill") == {
        "app.kubernetes.io/name": "triton",
        "app.kubernetes.io/instance": "llama",
        "app.kubernetes.io/component": "orchestrator",
        "app.kubernetes.io/part-of": "disagg-inference",
        "disagg.dev/role": "prefill",
    }
    assert "disagg.dev/role" not in labels("llama", "frontend")


def test_config_map_keys_flatten_paths():
    assert config_map_key("preprocessing/1/model.py") == "preprocessing__1__model.py"
    assert config_map_key("ensemble/config.pbtxt") == "ensemble__config.pbtxt"
    with pytest.raises(ValueError, match="cannot be a ConfigMap key"):
        config_map_key("model/1/bad name.py")


def test_one_config_map_per_model_with_path_items(repo_args):
    files = repository_files(frontend_repository(repo_args()))
    maps = repository_config_maps("llama-frontend", files)
    assert [m.name for m in maps] == [
        "llama-frontend-ensemble",
        "llama-frontend-postprocessing",
        "llama-frontend-preprocessing",
        "llama-frontend-tensorrt-llm",
        "llama-frontend-tensorrt-llm-bls",
    ]
    pre = next(m for m in maps if m.model == "preprocessing")
    assert dict(pre.items) == {
        "preprocessing__1__disagg_tokenizers.py": "preprocessing/1/disagg_tokenizers.py",
        "preprocessing__1__model.py": "preprocessing/1/model.py",
        "preprocessing__config.pbtxt": "preprocessing/config.pbtxt",
    }
    assert repository_files_from_config_maps(maps) == files


def test_projected_volume_lists_every_item(repo_args):
    maps = repository_config_maps("x", repository_files(frontend_repository(repo_args())))
    volume = repository_volume("model-repository", maps)
    sources = volume["projected"]["sources"]
    assert [s["configMap"]["name"] for s in sources[:-1]] == [m.name for m in maps]
    paths = [i["path"] for s in sources[:-1] for i in s["configMap"]["items"]]
    assert "tensorrt_llm/1/model.py" in paths and "ensemble/config.pbtxt" in paths
    assert volume["projected"]["defaultMode"] == 0o444


def test_models_without_version_files_get_a_version_directory(repo_args):
    maps = repository_config_maps("x", repository_files(frontend_repository(repo_args())))
    sources = repository_volume("model-repository", maps)["projected"]["sources"]
    assert sources[-1] == {
        "downwardAPI": {"items": [{"path": "ensemble/1/.keep", "fieldRef": {"fieldPath": "metadata.namespace"}}]}
    }


def test_oversized_model_is_refused():
    with pytest.raises(ValueError, match="more than a ConfigMap holds"):
        repository_config_maps("x", {"big/1/model.py": "x" * 1_000_001})


def test_content_hash_is_order_independent_and_content_sensitive():
    a = {"m/config.pbtxt": "a", "n/config.pbtxt": "b"}
    assert content_hash(a) == content_hash(dict(reversed(list(a.items()))))
    assert content_hash(a) != content_hash({**a, "n/config.pbtxt": "c"})


def test_efa_env_enables_rdma_on_p5_only():
    env = fabric_env(EFA_P5)
    assert env["FI_PROVIDER"] == "efa"
    assert env["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert env["FI_EFA_FORK_SAFE"] == "1"
    assert env["NCCL_SOCKET_IFNAME"] == "eth0"
    assert "FI_EFA_USE_DEVICE_RDMA" not in fabric_env(EFA_G5)


def test_infiniband_and_roce_env():
    ib = fabric_env(IB)
    assert (ib["NCCL_IB_DISABLE"], ib["NCCL_IB_HCA"]) == ("0", "mlx5")
    assert "NCCL_IB_GID_INDEX" not in ib
    assert fabric_env(ROCE)["NCCL_IB_GID_INDEX"] == "3"
    assert "FI_PROVIDER" not in ib


def test_plain_pool_env_has_no_fabric_settings():
    assert fabric_env(PLAIN) == {"NCCL_SOCKET_IFNAME": "eth0", "NCCL_DEBUG": "WARN"}


def test_gpu_resources_take_the_fabric_share():
    half = gpu_resources(EFA_P5, 4, "8", "32Gi", "64Gi")
    assert half["requests"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4", "vpc.amazonaws.com/efa": "16"}
    assert half["limits"] == {"cpu": "8", "memory": "96Gi", "nvidia.com/gpu": "4", "vpc.amazonaws.com/efa": "16"}
    assert gpu_resources(IB, 8, "8", "32Gi", "1Gi")["limits"]["rdma/ib"] == "1"
    assert gpu_resources(PLAIN, 4, "8", "32Gi", "1Gi")["limits"]["cpu"] == "8"


def test_memory_limit_adds_the_shared_memory():
    assert memory_limit("32Gi", "64Gi") == "96Gi"
    assert memory_limit("1536Mi", "512Mi") == "2Gi"
    assert memory_limit("1G", "1Gi") == str(10**9 + 2**30)
    assert memory_bytes("500M") == 500 * 10**6
    with pytest.raises(ValueError, match="is not an integer with a unit"):
        memory_bytes("1.5Gi")


def test_ipc_lock_only_with_rdma():
    assert gpu_security_context(EFA_P5)["capabilities"] == {"drop": ["ALL"], "add": ["IPC_LOCK"]}
    assert gpu_security_context(IB)["capabilities"] == {"drop": ["ALL"], "add": ["IPC_LOCK"]}
    assert gpu_security_context(PLAIN)["capabilities"] == {"drop": ["ALL"]}


def test_single_node_layout_spawns():
    layout = GroupLayout(1, 4)
    assert (layout.world_size, layout.multi_node, layout.spawn) == (4, False, True)
    assert layout.participant_ids() is None
    assert layout.leader_slots() == 5


def test_multi_node_layout_lists_participants():
    layout = GroupLayout(2, 8)
    assert (layout.world_size, layout.multi_node, layout.spawn) == (16, True, False)
    assert layout.participant_ids() == ",".join(str(i) for i in range(1, 17))


def test_group_layout_defaults_to_the_whole_node():
    assert group_layout(2, None, EFA_P5) == GroupLayout(2, 8)
    assert group_layout(1, 4, EFA_P5) == GroupLayout(1, 4)


def test_executor_env_sets_orchestrator_mode_and_kv_transfer():
    single = executor_env(EFA_P5, GroupLayout(1, 8), "/models/e", kv_cache_transfer=False)
    assert single["TRTLLM_ORCHESTRATOR"] == "1"
    assert single["TRTLLM_ORCHESTRATOR_SPAWN_PROCESSES"] == "1"
    assert single["ENGINE_DIR"] == "/models/e"
    assert "TRTLLM_USE_UCX_KVCACHE" not in single
    multi = executor_env(EFA_P5, GroupLayout(2, 8), "/models/e", kv_cache_transfer=True)
    assert multi["TRTLLM_ORCHESTRATOR_SPAWN_PROCESSES"] == "0"
    assert multi["TRTLLM_USE_UCX_KVCACHE"] == "1"
    assert multi["FI_PROVIDER"] == "efa"


def test_quantities_and_pods_metrics():
    assert quantity(50) == "50"
    assert quantity(0.75) == "750m"
    assert quantity(4.0) == "4"
    assert pods_metric("trtllm_kv_cache_utilization", 0.8) == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "trtllm_kv_cache_utilization"},
            "target": {"type": "AverageValue", "averageValue": "800m"},
        },
    }


def test_engine_kv_transfer_puts_ucx_on_the_rdma_device_of_ib_pools():
    ib = executor_env(IB, GroupLayout(1, 8), "/e", kv_cache_transfer=True)
    assert (ib["TRTLLM_USE_UCX_KVCACHE"], ib["UCX_TLS"]) == ("1", "ib,cuda_copy,cuda_ipc,sm,self")
    roce = executor_env(ROCE, GroupLayout(1, 8), "/e", kv_cache_transfer=True)
    assert roce["UCX_IB_GID_INDEX"] == "3"
    efa = executor_env(EFA_P5, GroupLayout(1, 8), "/e", kv_cache_transfer=True)
    assert "UCX_TLS" not in efa
    assert "UCX_TLS" not in executor_env(IB, GroupLayout(1, 8), "/e", kv_cache_transfer=False)
