"""KV-cache transfer environment per fabric and backend (prefill-decode)."""

from __future__ import annotations

import pytest

from components.serving.fabric_env import kv_transfer_env
from engines.llm_api_checks import kv_transfer_problem
from tests.components.serving.conftest import H100, IB

ROCE = IB.__class__("roce", 8, 80, {"p": "roce"}, fabric="roce", rdma_resource="rdma/roce")


def test_backends_each_fabric_can_use():
    assert kv_transfer_problem("efa", "NIXL") is None and kv_transfer_problem("efa", "default") is None
    assert kv_transfer_problem("efa", "UCX") == "UCX has no EFA transport: use backend NIXL (its LIBFABRIC backend speaks EFA)"
    assert kv_transfer_problem("infiniband", "UCX") is None
    assert "one MPI world" in kv_transfer_problem("roce", "MPI")
    assert kv_transfer_problem("none", "TCP") == "backend 'TCP' is not one of DEFAULT, UCX, NIXL, MPI"


def test_efa_nixl_env_is_upstreams_libfabric_example():
    assert kv_transfer_env(H100, "NIXL") == {"TRTLLM_NIXL_KVCACHE_BACKEND": "LIBFABRIC", "FI_LOG_LEVEL": "warn"}


def test_roce_ucx_env_uses_gid_index_3():
    assert kv_transfer_env(ROCE, "UCX") == {"UCX_TLS": "ib,cuda_copy,cuda_ipc,sm,self", "UCX_IB_GID_INDEX": "3"}


def test_refused_backend_raises_with_the_fabric():
    with pytest.raises(ValueError, match="cache_transceiver_config.backend on a 'efa' pool: UCX has no EFA transport"):
        kv_transfer_env(H100, "UCX")
