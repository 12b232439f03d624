"""LlmApiWorkers: trtllm-serve leaders, multi-node launch, discovery Service, HPA, env, component."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from components.platform.autoscaling_metrics import LLMAPI_KV_CACHE_UTILIZATION, LLMAPI_WAITING_REQUESTS
from components.serving.llmapi.workers import (
    LlmApiWorkers,
    discovery_url,
    headless_service_manifest,
    leader_argv,
    leader_pod_template,
    leader_script,
    leader_worker_set_manifest,
    serve_argv,
    worker_env,
    workers_hpa_manifest,
    workers_pdb_manifest,
)
from components.serving.mpi_ssh import SECRET_MOUNT
from components.serving.pods import STATE_DIR
from tests.components.serving.conftest import A100, H100, IB, broken

MODEL = "/models/models/llama/abc"


def leader_container(args) -> dict:
    (container,) = leader_pod_template(args, MODEL, "cm")["spec"]["containers"]
    return container


def env_of(args) -> dict[str, str]:
    return {e["name"]: e["value"] for e in leader_container(args)["env"]}


# ---- command lines --------------------------------------------------------------------------


def test_single_node_leader_runs_trtllm_serve_with_the_yaml(llmapi_workers_args):
    assert serve_argv(MODEL) == [
        "trtllm-serve", "serve", MODEL, "--host", "0.0.0.0", "--port", "8000", "--backend", "pytorch",
        "--extra_llm_api_options", "/etc/trtllm/llm_api.yaml",
    ]  # fmt: skip
    args = llmapi_workers_args()
    assert leader_argv(args, MODEL, worker_env(args)) == serve_argv(MODEL)


def test_trust_remote_code_only_when_asked(llmapi_workers_args):
    assert "--trust_remote_code" not in serve_argv(MODEL)
    assert serve_argv(MODEL, trust_remote_code=True)[-1] == "--trust_remote_code"
    args = llmapi_workers_args(trust_remote_code=True)
    assert "--trust_remote_code" in leader_argv(args, MODEL, worker_env(args))

def test_yaml_cannot_turn_on_trust_remote_code(llmapi_workers_args):
    with pytest.raises(ValidationError, match="trust_remote_code is set in the YAML but not for the model"):
        llmapi_workers_args(llm_api_yaml="tensor_parallel_size: 4\ntrust_remote_code: true\n")


def test_multi_node_leader_launches_every_rank_with_mpirun_and_the_upstream_wrapper(llmapi_workers_args):
    args = llmapi_workers_args(pods=2, gpus=8, pool=H100)
    argv = leader_argv(args, MODEL, worker_env(args))
    assert argv[0] == "mpirun" and "--allow-run-as-root" not in argv
    n = argv.index("-n")
    assert argv[n : n + 3] == ["-n", "16", "trtllm-llmapi-launch"]
    assert argv[n + 3 :] == serve_argv(MODEL)
    options = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--mca"}
    assert options["plm_rsh_agent"] == "ssh" and "StrictHostKeyChecking=yes" in options["plm_rsh_args"]
    forwarded = {argv[i + 1] for i, a in enumerate(argv) if a == "-x"}
    assert {"PATH", "LD_LIBRARY_PATH", "FI_PROVIDER", "HOME"} <= forwarded


# ---- running the leader script --------------------------------------------------------------


def run_leader(script: str, tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    bin_dir, state, secret = tmp_path / "bin", tmp_path / "state", tmp_path / "secret"
    for d in (bin_dir, secret):
        d.mkdir()
    (secret / "id_ed25519").write_text("private\n")
    (secret / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 HOST w\n")
    stubs = {
        "trtllm-serve": 'printf "%s\\n" "$@" > "$STUB_DIR/serve.args"\n',
        "mpirun": 'printf "%s\\n" "$@" > "$STUB_DIR/mpirun.args"\n',
        "getent": "exit 0\n",
        "ssh": "exit 0\n",
        "python3": "exit 0\n",
    }
    for name, body in stubs.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    script = script.replace(STATE_DIR, str(state)).replace(SECRET_MOUNT, str(secret)).replace("mkdir -p /tmp/home /tmp/cache", f"mkdir -p {tmp_path}/home")
    full_env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_DIR": str(bin_dir), **env}
    proc = subprocess.run(["bash", "-c", script], env=full_env, capture_output=True, text=True, timeout=60)
    return proc, bin_dir


def test_leader_script_execs_trtllm_serve_on_the_prepared_model(llmapi_workers_args, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    args = llmapi_workers_args()
    proc, bin_dir = run_leader(leader_script(args, str(model), worker_env(args)), tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    assert (bin_dir / "serve.args").read_text().splitlines() == serve_argv(str(model))[1:]


def test_leader_script_refuses_a_missing_model(llmapi_workers_args, tmp_path):
    args = llmapi_workers_args()
    proc, bin_dir = run_leader(leader_script(args, str(tmp_path / "none"), worker_env(args)), tmp_path, {})
    assert proc.returncode == 1
    assert "config.json missing" in proc.stderr and not (bin_dir / "serve.args").exists()


def test_multi_node_leader_script_writes_the_hostfile_and_runs_mpirun(llmapi_workers_args, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    args = llmapi_workers_args(pods=2, gpus=8, pool=H100)
    env = {"LWS_LEADER_ADDRESS": "llama-workers-0.llama-workers.llm", "LWS_GROUP_SIZE": "2"}
    proc, bin_dir = run_leader(leader_script(args, str(model), worker_env(args)), tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "state" / "hostfile").read_text() == (
        "llama-workers-0.llama-workers.llm slots=8\nllama-workers-0-1.llama-workers.llm slots=8\n"
    )
    assert (tmp_path / "state" / "ssh" / "known_hosts").read_text() == "* ssh-ed25519 HOST w\n"
    assert "trtllm-llmapi-launch" in (bin_dir / "mpirun.args").read_text().splitlines()


# ---- environment ----------------------------------------------------------------------------


def test_aggregated_groups_get_the_fabric_env_and_no_kv_transfer(llmapi_workers_args):
    env = env_of(llmapi_workers_args())
    assert (env["FI_PROVIDER"], env["NCCL_SOCKET_IFNAME"], env["HF_HUB_OFFLINE"]) == ("efa", "eth0", "1")
    assert "TRTLLM_NIXL_KVCACHE_BACKEND" not in env and "UCX_TLS" not in env


def test_efa_prefill_decode_uses_nixl_over_libfabric(llmapi_workers_args):
    env = env_of(llmapi_workers_args(role="prefill", gpus=8, pool=H100, nixl_plugins_dir="/opt/nixl/plugins"))
    assert env["TRTLLM_NIXL_KVCACHE_BACKEND"] == "LIBFABRIC"
    assert (env["FI_PROVIDER"], env["FI_EFA_USE_DEVICE_RDMA"]) == ("efa", "1")
    assert env["NIXL_PLUGINS_DIR"] == "/opt/nixl/plugins"


def test_ib_prefill_decode_puts_ucx_on_the_rdma_device(llmapi_workers_args):
    env = env_of(llmapi_workers_args(role="decode", gpus=8, pool=IB))
    assert env["UCX_TLS"] == "ib,cuda_copy,cuda_ipc,sm,self"
    assert env["TRTLLM_NIXL_KVCACHE_BACKEND"] == "UCX"
    assert env["NCCL_IB_HCA"] == "mlx5" and "UCX_NET_DEVICES" not in env


def test_ucx_backend_is_refused_on_efa(llmapi_workers_args):
    yaml_text = "tensor_parallel_size: 8\ncache_transceiver_config:\n  backend: UCX\n"
    with pytest.raises(ValidationError, match="prefill.llmApi.cacheTransceiverConfig.backend: 'UCX' on pool 'h100': UCX has no EFA transport"):
        llmapi_workers_args(role="prefill", gpus=8, pool=H100, llm_api_yaml=yaml_text)


def test_prefill_decode_groups_need_a_transceiver(llmapi_workers_args):
    with pytest.raises(ValidationError, match="a decode group needs cache_transceiver_config.backend"):
        llmapi_workers_args(role="decode", gpus=8, pool=H100, llm_api_yaml="tensor_parallel_size: 8\n")


def test_group_gpus_must_match_the_parallelism(llmapi_workers_args):
    with pytest.raises(ValidationError, match=r"tensorParallelSize × pipelineParallelSize = 4 × 1 = 4 but the group has podsPerGroup 1 × gpusPerPod 8 = 8"):
        llmapi_workers_args(gpus=8, llm_api_yaml="tensor_parallel_size: 4\n")


def test_autoscaling_needs_the_perf_metrics(llmapi_workers_args):
    with pytest.raises(ValidationError, match="return_perf_metrics: true and enable_iter_perf_stats: true"):
        llmapi_workers_args(autoscaling=True, trtllm_generation="1.3", llm_api_yaml="tensor_parallel_size: 4\n")


# ---- pods, LWS, Service, HPA, PDB -----------------------------------------------------------


def test_leader_probes_health_and_is_scraped_on_prometheus_metrics(llmapi_workers_args):
    # scraped where the endpoint is proven: 1.3 (tests/components/serving/test_capability_rendering.py)
    template = leader_pod_template(llmapi_workers_args(startup_timeout_s=1200, trtllm_generation="1.3"), MODEL, "cm")
    c = template["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 1200
    annotations = template["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == ("8000", "/prometheus/metrics")


def test_leader_mounts_the_yaml_and_the_model_store_read_only(llmapi_workers_args):
    c = leader_container(llmapi_workers_args())
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["llm-api"] == {"name": "llm-api", "mountPath": "/etc/trtllm", "readOnly": True}
    assert mounts["store"]["readOnly"] is True and mounts["dshm"]["mountPath"] == "/dev/shm"
    assert c["resources"]["limits"]["cpu"] == "16" and c["resources"]["limits"]["nvidia.com/gpu"] == "4"


@pytest.mark.parametrize(("role", "pods", "gpus", "pool"), [("workers", 1, 4, A100), ("workers", 2, 8, H100), ("prefill", 1, 8, H100), ("decode", 2, 8, IB)])
def test_rendered_lws_matches_the_crd_schema(llmapi_workers_args, lws_errors, role, pods, gpus, pool):
    args = llmapi_workers_args(role=role, pods=pods, gpus=gpus, pool=pool, placement_key="kubernetes.io/hostname")
    lws = leader_worker_set_manifest("llama-" + role, args, MODEL)
    assert lws_errors(lws) == []
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == pods


def test_multi_node_worker_pods_run_sshd_with_the_secret(llmapi_workers_args):
    args = llmapi_workers_args(pods=2, gpus=8, pool=H100, mpi_ssh_secret="llama-mpi-ssh")
    worker = leader_worker_set_manifest("llama-workers", args, MODEL)["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    (c,) = worker["spec"]["containers"]
    assert c["ports"] == [{"name": "ssh", "containerPort": 2222, "protocol": "TCP"}]
    volumes = {v["name"]: v for v in worker["spec"]["volumes"]}
    assert volumes["mpi-ssh"]["secret"]["secretName"] == "llama-mpi-ssh"
    assert worker["metadata"]["labels"]["app.kubernetes.io/component"] == "mpi-worker"


def test_headless_service_selects_ready_leaders_of_its_set(llmapi_workers_args):
    service = headless_service_manifest("llama-prefill", llmapi_workers_args(role="prefill", gpus=8, pool=H100))
    assert service["metadata"]["name"] == "llama-prefill-leaders"
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is False
    assert service["spec"]["selector"] == {
        "leaderworkerset.sigs.k8s.io/name": "llama-prefill",
        "leaderworkerset.sigs.k8s.io/worker-index": "0",
    }
    assert discovery_url("llama-prefill", "llm") == "dns://llama-prefill-leaders.llm.svc.cluster.local:8000"


def test_hpa_scales_the_set_on_trtllm_serve_metrics(llmapi_workers_args):
    args = llmapi_workers_args(autoscaling=True, trtllm_generation="1.3", groups=2, min_groups=1, max_groups=6, target_kv_cache_utilization=0.7)
    spec = workers_hpa_manifest("llama-workers", args)["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": "llama-workers"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 6)
    targets = {m["pods"]["metric"]["name"]: m["pods"]["target"]["averageValue"] for m in spec["metrics"]}
    assert targets == {LLMAPI_KV_CACHE_UTILIZATION: "700m", LLMAPI_WAITING_REQUESTS: "4"}
    assert workers_hpa_manifest("llama-workers", llmapi_workers_args()) is None


def test_pdb_and_hpa_validate_as_kubernetes_objects(llmapi_workers_args, k8s_errors):
    args = llmapi_workers_args(autoscaling=True, trtllm_generation="1.3", groups=2, max_groups=4)
    for manifest in (workers_hpa_manifest("w", args), workers_pdb_manifest("w", args), headless_service_manifest("w", args)):
        assert k8s_errors(manifest) == []


def test_a_broken_pdb_hpa_or_service_is_reported(llmapi_workers_args, k8s_errors):
    """The twin of the test above: the same check reports each object broken."""
    args = llmapi_workers_args(autoscaling=True, trtllm_generation="1.3", groups=2, max_groups=4)
    assert k8s_errors(broken(workers_hpa_manifest("w", args), "spec/maxReplicas", "four")) == [
        "spec/maxReplicas: 'four' is not of type 'integer'"
    ]
    (pdb_error,) = k8s_errors(broken(workers_pdb_manifest("w", args), "spec/selector", "w"))
    assert pdb_error.startswith("spec/selector: 'w' is not of type 'object'")
    (service_error,) = k8s_errors(broken(headless_service_manifest("w", args), "spec/clusterIp", "None"))
    assert service_error == "spec: Additional properties are not allowed ('clusterIp' was unexpected)"


# ---- the component under mocks --------------------------------------------------------------


@pulumi.runtime.test
def test_component_creates_yaml_lws_service_hpa_pdb(mocks, llmapi_workers_args):
    provider = k8s.Provider("k8s", kubeconfig="{}")
    args = llmapi_workers_args(
        role="decode", gpus=8, pool=H100, autoscaling=True, trtllm_generation="1.3", groups=2, max_groups=3,
        model_dir=pulumi.Output.from_input("/models/models/llama/def"),
    )  # fmt: skip
    workers = LlmApiWorkers("llama-decode", args, pulumi.ResourceOptions(provider=provider))

    def check(_):
        children = {r.name: r for r in mocks.recorded.values() if r.parent_name == "llama-decode"}
        assert sorted(children) == [
            "llama-decode-hpa", "llama-decode-leaders", "llama-decode-leaderworkerset", "llama-decode-llm-api", "llama-decode-pdb",
        ]  # fmt: skip
        assert children["llama-decode-llm-api"].inputs["data"] == {"llm_api.yaml": args.llm_api_yaml}
        lws = children["llama-decode-leaderworkerset"].inputs["spec"]
        script = lws["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["command"][2]
        assert "trtllm-serve serve /models/models/llama/def" in script
        assert workers.discovery_url == "dns://llama-decode-leaders.llm.svc.cluster.local:8000"

    return pulumi.Output.all(workers.leader_worker_set.urn, workers.service.urn, workers.pdb.urn, workers.hpa.urn).apply(check)
