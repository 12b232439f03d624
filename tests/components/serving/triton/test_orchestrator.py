"""TritonOrchestrator: leader container and pod template, MPI layout, leader Service, component.

The leader script is also *run* (bash) with stand-ins for ssh-keygen, getent, python3 and
mpirun on PATH, and its state directory moved to a temporary one: the hostfile it writes and
the mpirun command it execs are checked, as are its failure paths.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from components.serving.group_layout import GroupLayout
from components.serving.mpi_ssh import SECRET_MOUNT
from components.serving.pods import STATE_DIR
from components.serving.triton.orchestrator import (
    TritonOrchestrator,
    executor_rank_server_args,
    leader_pod_template,
    leader_script,
    mpirun_argv,
    orchestrator_config_maps,
    orchestrator_server_args,
    orchestrator_service_manifest,
    orchestrator_url,
)


def template_of(args):
    return leader_pod_template(args, orchestrator_config_maps("llama-orchestrator", args.repository, args.layout),
                               "/models/engines/m/h")  # fmt: skip


def container_of(args):
    (container,) = template_of(args)["spec"]["containers"]
    return container


def env_of(args) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container_of(args)["env"]}


def script_of(args) -> str:
    command = container_of(args)["command"]
    assert command[:2] == ["/bin/bash", "-c"]
    return command[2]


def tensorrt_llm_config(args) -> mc.ModelConfig:
    (cm,) = orchestrator_config_maps("llama-orchestrator", args.repository, args.layout)
    return text_format.Parse(cm.data["tensorrt_llm__config.pbtxt"], mc.ModelConfig())


# ---- leader container -----------------------------------------------------------------------


def test_leader_runs_triton_in_orchestrator_mode(orchestrator_args):
    env = env_of(orchestrator_args())
    assert env["TRTLLM_ORCHESTRATOR"] == "1"
    assert env["TRTLLM_ORCHESTRATOR_SPAWN_PROCESSES"] == "1"
    assert env["ENGINE_DIR"] == "/models/engines/m/h"
    assert "TRTLLM_USE_UCX_KVCACHE" not in env


def test_leader_requests_its_gpus_and_fabric_share(orchestrator_args):
    resources = container_of(orchestrator_args(pods=1, gpus=8))["resources"]
    assert resources["requests"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32"}
    assert resources["limits"] == {"cpu": "8", "memory": "96Gi", "nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32"}
    assert container_of(orchestrator_args())["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["IPC_LOCK"]}


def test_leader_probes_wait_for_the_engine_load(orchestrator_args):
    c = container_of(orchestrator_args(startup_timeout_s=1200))
    assert c["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 1200
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_leader_volumes(orchestrator_args):
    args = orchestrator_args(shm_size="32Gi", mount_path="/mnt/store")
    spec = template_of(args)["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
    assert volumes["store"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert volumes["model-repository"]["projected"]["sources"][0]["configMap"]["name"] == "llama-orchestrator-tensorrt-llm"
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["store"] == {"name": "store", "mountPath": "/mnt/store", "readOnly": True}
    assert mounts["model-repository"]["mountPath"] == "/opt/disagg/model-repository"


def test_leader_is_scheduled_on_the_gpu_pool(orchestrator_args):
    spec = template_of(orchestrator_args())["spec"]
    assert spec["nodeSelector"] == {"disagg.dev/pool": "h100"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["enableServiceLinks"] is False


def test_leader_labels_select_it_as_orchestrator(orchestrator_args):
    labels = template_of(orchestrator_args(role="prefill"))["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "orchestrator"
    assert labels["disagg.dev/role"] == "prefill"


def test_kv_cache_transfer_for_prefill_decode(orchestrator_args):
    assert env_of(orchestrator_args(kv_cache_transfer=True))["TRTLLM_USE_UCX_KVCACHE"] == "1"


def test_leader_template_is_a_valid_pod_template(orchestrator_args, pod_template_errors):
    assert pod_template_errors(template_of(orchestrator_args())) == []
    assert pod_template_errors(template_of(orchestrator_args(pods=2))) == []


# ---- process layout -------------------------------------------------------------------------


def test_single_node_mpirun_starts_only_the_orchestrator():
    argv = mpirun_argv(GroupLayout(1, 4), ["B", "A"], 60)
    assert argv[:3] == ["mpirun", "--hostfile", f"{STATE_DIR}/hostfile"]
    assert "--allow-run-as-root" not in argv
    assert ":" not in argv and "plm_rsh_args" not in argv
    n = argv.index("-n")
    assert argv[n : n + 3] == ["-n", "1", "tritonserver"]
    assert argv[n + 2 :] == orchestrator_server_args(GroupLayout(1, 4), 60)
    exported = [argv[i + 1] for i, a in enumerate(argv) if a == "-x"]
    assert exported == ["PATH", "LD_LIBRARY_PATH", "A", "B"]


def test_multi_node_mpirun_starts_every_rank_over_ssh():
    layout = GroupLayout(2, 8)
    argv = mpirun_argv(layout, [], 60)
    colon = argv.index(":")
    assert argv[colon + 1 : colon + 3] == ["-n", "16"]
    assert argv[colon + 3 :] == executor_rank_server_args()
    options = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--mca"}
    assert options["plm_rsh_args"].startswith("-p 2222 -i /var/run/disagg/ssh/id_ed25519 ")
    assert "StrictHostKeyChecking=yes -o UserKnownHostsFile=/var/run/disagg/ssh/known_hosts" in options["plm_rsh_args"]
    assert options["plm_rsh_no_tree_spawn"] == "1"
    assert (options["btl_tcp_if_include"], options["oob_tcp_if_include"]) == ("eth0", "eth0")
    assert argv[argv.index("--map-by") + 1] == "slot"


def test_orchestrator_keeps_gpu_memory_for_the_executors():
    args = orchestrator_server_args(GroupLayout(1, 4), 60)
    assert [a for a in args if a.startswith("--cuda-memory-pool-byte-size")] == [
        f"--cuda-memory-pool-byte-size={i}:0" for i in range(4)
    ]
    assert "--pinned-memory-pool-byte-size=0" in args
    assert "--http-port=8000" in args and "--grpc-port=8001" in args and "--metrics-port=8002" in args


def test_executor_ranks_serve_nothing_but_the_model():
    args = executor_rank_server_args()
    assert {"--model-control-mode=explicit", "--load-model=tensorrt_llm", "--allow-http=false",
            "--allow-grpc=false", "--allow-metrics=false"} <= set(args)  # fmt: skip


def test_participant_ids_only_for_multi_node(orchestrator_args):
    single = {k: v.string_value for k, v in tensorrt_llm_config(orchestrator_args(pods=1)).parameters.items()}
    assert "participant_ids" not in single
    multi = {k: v.string_value for k, v in tensorrt_llm_config(orchestrator_args(pods=2)).parameters.items()}
    assert multi["participant_ids"] == ",".join(str(i) for i in range(1, 17))
    assert multi["gpt_model_path"] == "/models/engines/m/h"
    assert env_of(orchestrator_args(pods=2))["TRTLLM_ORCHESTRATOR_SPAWN_PROCESSES"] == "0"


def test_multi_node_leader_mounts_the_ssh_secret_and_serves_no_key(orchestrator_args):
    multi = container_of(orchestrator_args(pods=2, mpi_ssh_secret="llama-mpi-ssh"))
    assert {p["name"]: p["containerPort"] for p in multi["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert {"name": "mpi-ssh", "mountPath": "/etc/disagg/mpi-ssh", "readOnly": True} in multi["volumeMounts"]
    volumes = {v["name"]: v for v in template_of(orchestrator_args(pods=2, mpi_ssh_secret="llama-mpi-ssh"))["spec"]["volumes"]}
    assert volumes["mpi-ssh"]["secret"] == {"secretName": "llama-mpi-ssh", "defaultMode": 0o440}
    assert "mpi-ssh" not in {m["name"] for m in container_of(orchestrator_args(pods=1))["volumeMounts"]}


# ---- Service --------------------------------------------------------------------------------


def test_service_selects_only_group_leaders(orchestrator_args):
    service = orchestrator_service_manifest("llama-orchestrator", orchestrator_args(role="decode"))
    selector = service["spec"]["selector"]
    assert selector["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
    assert selector["app.kubernetes.io/component"] == "orchestrator"
    assert selector["disagg.dev/role"] == "decode"
    assert service["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("http", 8000), ("grpc", 8001), ("metrics", 8002)]
    leader_labels = template_of(orchestrator_args(role="decode"))["metadata"]["labels"]
    assert {k: v for k, v in selector.items() if k in leader_labels} == leader_labels


def test_url_is_the_services_grpc_address():
    assert orchestrator_url("llama-orchestrator", "llm") == "llama-orchestrator.llm.svc.cluster.local:8001"


# ---- running the leader script --------------------------------------------------------------


STUBS = {
    "ssh-keygen": 'echo "ssh-keygen $*" >> "$STUB_LOG"\nwhile [ $# -gt 0 ]; do [ "$1" = -f ] && f=$2; shift; done\n'
    'echo private > "$f"; echo "ssh-ed25519 AAAA leader" > "$f.pub"\n',
    "ssh": "exit 0\n",
    "getent": 'echo "getent $*" >> "$STUB_LOG"\n',
    "python3": 'echo "python3 $*" >> "$STUB_LOG"\nif [ "$1" = -m ]; then exec sleep 30; fi\n'
    'case " $REACHABLE " in *" $3 "*) exit 0;; esac\nexit 1\n',
    "mpirun": 'printf "%s\\n" "$@" > "$STUB_DIR/mpirun.args"\ncp "$STATE/hostfile" "$STUB_DIR/hostfile"\n',
}


def run_script(script: str, tmp_path: Path, env: dict[str, str], stubs=STUBS) -> tuple[subprocess.CompletedProcess, Path]:
    stub_dir, state = tmp_path / "bin", tmp_path / "state"
    stub_dir.mkdir()
    for name, body in stubs.items():
        path = stub_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    full_env = {
        "PATH": f"{stub_dir}:{os.environ['PATH']}",
        "STUB_DIR": str(stub_dir),
        "STUB_LOG": str(stub_dir / "log"),
        "STATE": str(state),
        **env,
    }
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_ed25519").write_text("private\n")
    (secret / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 HOST worker\n")
    script = script.replace(STATE_DIR, str(state)).replace(SECRET_MOUNT, str(secret))
    proc = subprocess.run(["bash", "-c", script], env=full_env, capture_output=True, text=True, timeout=60)
    return proc, stub_dir


@pytest.fixture
def engine(tmp_path) -> Path:
    engine = tmp_path / "engine"
    engine.mkdir()
    (engine / "config.json").write_text("{}")
    return engine


def test_single_node_script_writes_the_hostfile_and_execs_mpirun(orchestrator_args, tmp_path, engine):
    args = orchestrator_args(pods=1, gpus=4)
    proc, stubs = run_script(script_of(args), tmp_path, {"ENGINE_DIR": str(engine)})
    assert proc.returncode == 0, proc.stderr
    assert (stubs / "hostfile").read_text() == "localhost slots=5\n"
    expected = mpirun_argv(args.layout, list(env_of(args)), 60)
    state = str(tmp_path / "state")
    assert (stubs / "mpirun.args").read_text().splitlines() == [a.replace(STATE_DIR, state) for a in expected[1:]]


def test_multi_node_script_waits_for_workers_and_lists_them(orchestrator_args, tmp_path, engine):
    args = orchestrator_args(pods=3, gpus=8)
    env = {
        "ENGINE_DIR": str(engine),
        "LWS_LEADER_ADDRESS": "llama-workers-1.llama-workers.llm",
        "LWS_GROUP_SIZE": "3",
        "REACHABLE": "llama-workers-1-1.llama-workers.llm llama-workers-1-2.llama-workers.llm",
    }
    proc, stubs = run_script(script_of(args), tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert (stubs / "hostfile").read_text() == (
        "llama-workers-1.llama-workers.llm slots=9\n"
        "llama-workers-1-1.llama-workers.llm slots=8\n"
        "llama-workers-1-2.llama-workers.llm slots=8\n"
    )
    state = tmp_path / "state"
    assert (state / "ssh" / "known_hosts").read_text() == "* ssh-ed25519 HOST worker\n"
    assert (state / "ssh" / "id_ed25519").read_text() == "private\n"
    assert stat.S_IMODE((state / "ssh" / "id_ed25519").stat().st_mode) == 0o600
    log = (stubs / "log").read_text()
    assert "http.server" not in log
    assert "getent hosts llama-workers-1-2.llama-workers.llm" in log
    argv = (stubs / "mpirun.args").read_text().splitlines()
    assert argv[argv.index(":") + 2] == "24"
    assert "worker llama-workers-1-2.llama-workers.llm is up" in proc.stderr


def test_script_refuses_a_missing_engine(orchestrator_args, tmp_path):
    proc, stubs = run_script(script_of(orchestrator_args()), tmp_path, {"ENGINE_DIR": str(tmp_path / "nothing")})
    assert proc.returncode == 1
    assert "no TensorRT-LLM engine in" in proc.stderr
    assert not (stubs / "mpirun.args").exists()


def test_script_refuses_a_group_of_another_size(orchestrator_args, tmp_path, engine):
    env = {"ENGINE_DIR": str(engine), "LWS_LEADER_ADDRESS": "a-0.a.ns", "LWS_GROUP_SIZE": "4"}
    proc, _ = run_script(script_of(orchestrator_args(pods=2)), tmp_path, env)
    assert proc.returncode == 1
    assert "LWS_GROUP_SIZE is 4, this template was rendered for 2 pods" in proc.stderr


def test_script_gives_up_on_an_unreachable_worker(orchestrator_args, tmp_path, engine):
    layout = GroupLayout(2, 8)
    script = leader_script(layout, mpirun_argv(layout, [], 60), worker_wait_s=1)
    env = {"ENGINE_DIR": str(engine), "LWS_LEADER_ADDRESS": "a-0.a.ns", "LWS_GROUP_SIZE": "2", "REACHABLE": ""}
    proc, stubs = run_script(script, tmp_path, env)
    assert proc.returncode == 1
    assert "worker a-0-1.a.ns did not resolve or accept SSH on port 2222 within 1s" in proc.stderr
    assert not (stubs / "mpirun.args").exists()


def test_script_names_missing_ssh_tools(orchestrator_args, tmp_path, engine):
    env = {"ENGINE_DIR": str(engine), "LWS_LEADER_ADDRESS": "a-0.a.ns", "LWS_GROUP_SIZE": "2"}
    script = script_of(orchestrator_args(pods=2))
    assert "for tool in ssh getent python3; do" in script
    proc, _ = run_script(script.replace("for tool in ssh ", "for tool in no-such-ssh "), tmp_path, env)
    assert proc.returncode == 1
    assert "no-such-ssh is missing from the image" in proc.stderr


# ---- the component under mocks --------------------------------------------------------------


@pulumi.runtime.test
def test_component_renders_the_engine_output(mocks, orchestrator_args):
    provider = k8s.Provider("k8s", kubeconfig="{}")
    args = orchestrator_args(engine_dir=pulumi.Output.from_input("/models/engines/m/abc"))
    orchestrator = TritonOrchestrator("llama-orchestrator", args, pulumi.ResourceOptions(provider=provider))

    def check(values):
        template = values[0]
        children = {r.name: r for r in mocks.recorded.values() if r.parent_name == "llama-orchestrator"}
        assert sorted(children) == ["llama-orchestrator-repository-tensorrt-llm", "llama-orchestrator-service"]
        assert all("pulumi:providers:kubernetes::k8s::" in c.provider for c in children.values())
        data = children["llama-orchestrator-repository-tensorrt-llm"].inputs["data"]
        assert 'string_value: "/models/engines/m/abc"' in data["tensorrt_llm__config.pbtxt"]
        env = {e["name"]: e["value"] for e in template["spec"]["containers"][0]["env"]}
        assert env["ENGINE_DIR"] == "/models/engines/m/abc"
        assert children["llama-orchestrator-service"].inputs["metadata"]["name"] == "llama-orchestrator"
        assert orchestrator.url == "llama-orchestrator.llm.svc.cluster.local:8001"
        assert orchestrator.repository_volume == template["spec"]["volumes"][0]

    urns = [c.urn for c in orchestrator.config_maps] + [orchestrator.service.urn]
    return pulumi.Output.all(orchestrator.leader_template, *urns).apply(check)
