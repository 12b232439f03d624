"""TritonFrontend: rendered objects (pure), the component under mocks, and a real Triton."""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np
import pulumi
import pulumi_kubernetes as k8s
import pytest
import tritonclient.grpc as grpcclient
from pydantic import ValidationError

from components.config.deployment import FrontendConfig
from components.platform.autoscaling_metrics import QUEUE_TIME_MS
from components.serving.labels import REPOSITORY_HASH_ANNOTATION
from components.serving.repository_config_maps import content_hash
from components.serving.triton.frontend import (
    TritonFrontend,
    frontend_command,
    frontend_config_maps,
    frontend_deployment_manifest,
    frontend_endpoint,
    frontend_hpa_manifest,
    frontend_pdb_manifest,
    frontend_service_manifest,
    load_balancer_host,
    with_tokenizer_dir,
)
from components.serving.triton.model_repository import (
    EngineLimits,
    FrontendSettings,
    ModelRepositoryArgs,
    TensorrtLlmSettings,
    TokenizerSettings,
    frontend_repository,
    repository_files,
    standin_orchestrator_repository,
    write_repository,
)
from disaggctl.testing.local_triton import LocalTriton


def deployment_of(args, name="llama-frontend"):
    return frontend_deployment_manifest(name, args, frontend_config_maps(name, args.repository))


def pod_of(args):
    return deployment_of(args)["spec"]["template"]


def container_of(args):
    (container,) = pod_of(args)["spec"]["containers"]
    return container


# ---- Deployment -----------------------------------------------------------------------------


def test_container_runs_tritonserver_on_the_repository(frontend_args):
    c = container_of(frontend_args())
    assert c["image"] == "nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3"
    assert c["command"][0] == "tritonserver"
    assert "--model-repository=/opt/disagg/model-repository" in c["command"]
    assert c["command"][2:5] == ["--http-port=8000", "--grpc-port=8001", "--metrics-port=8002"]
    assert "--exit-timeout-secs=60" in c["command"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}


def test_frontend_requests_cpu_and_memory_but_no_gpu(frontend_args):
    args = frontend_args(config=FrontendConfig(resources={"cpu": "6", "memory": "12Gi"}))
    resources = container_of(args)["resources"]
    assert resources == {"requests": {"cpu": "6", "memory": "12Gi"}, "limits": {"cpu": "6", "memory": "14Gi"}}  # + 2Gi shm


def test_frontend_is_scheduled_on_the_system_pool(frontend_args):
    spec = pod_of(frontend_args())["spec"]
    assert spec["nodeSelector"] == {"disagg.dev/pool": "system"}
    assert spec["tolerations"] == []


def test_probes_use_triton_health_endpoints(frontend_args):
    c = container_of(frontend_args())
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 600


def test_volumes_repository_storage_and_shm(frontend_args):
    args = frontend_args(shm_size="4Gi", mount_path="/mnt/models")
    pod = pod_of(args)["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["store"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "4Gi"}
    repository = volumes["model-repository"]["projected"]
    assert repository["defaultMode"] == 0o444
    files = {s["configMap"]["name"]: [i["path"] for i in s["configMap"]["items"]] for s in repository["sources"][:-1]}
    assert files == {  # Triton's repository layout <model>/config.pbtxt, <model>/1/<files>, one ConfigMap per model
        "llama-frontend-ensemble": ["ensemble/config.pbtxt"],
        "llama-frontend-postprocessing": [
            "postprocessing/1/disagg_tokenizers.py", "postprocessing/1/model.py", "postprocessing/config.pbtxt",
        ],
        "llama-frontend-preprocessing": [
            "preprocessing/1/disagg_tokenizers.py", "preprocessing/1/model.py", "preprocessing/config.pbtxt",
        ],
        "llama-frontend-tensorrt-llm": ["tensorrt_llm/1/model.py", "tensorrt_llm/config.pbtxt"],
        "llama-frontend-tensorrt-llm-bls": ["tensorrt_llm_bls/1/model.py", "tensorrt_llm_bls/config.pbtxt"],
    }
    assert all(  # a ConfigMap key cannot hold '/': the path is the key with '__' for '/'
        i["key"] == i["path"].replace("/", "__") for s in repository["sources"][:-1] for i in s["configMap"]["items"]
    )
    # the ensemble has no files of its own, but Triton needs its version directory: an empty placeholder
    assert repository["sources"][-1] == {
        "downwardAPI": {"items": [{"path": "ensemble/1/.keep", "fieldRef": {"fieldPath": "metadata.namespace"}}]}
    }
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["store"] == {"name": "store", "mountPath": "/mnt/models", "readOnly": True}
    assert mounts["model-repository"]["readOnly"] is True
    assert mounts["dshm"]["mountPath"] == "/dev/shm"


def test_no_storage_without_a_claim(frontend_args):
    pod = pod_of(frontend_args(claim_name=None))["spec"]
    assert "store" not in {v["name"] for v in pod["volumes"]}


def test_pods_spread_across_zones_and_nodes(frontend_args):
    spread = pod_of(frontend_args())["spec"]["topologySpreadConstraints"]
    assert [s["topologyKey"] for s in spread] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    assert all(s["maxSkew"] == 1 and s["whenUnsatisfiable"] == "ScheduleAnyway" for s in spread)
    assert spread[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "frontend"


def test_replicas_start_at_min_and_rollouts_keep_capacity(frontend_args):
    spec = deployment_of(frontend_args(config=FrontendConfig(min_replicas=3, max_replicas=9)))["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"]


def test_repository_hash_annotation_follows_the_files(frontend_args, repo_args):
    args = frontend_args()
    files = repository_files(frontend_repository(args.repository))
    annotation = pod_of(args)["metadata"]["annotations"][REPOSITORY_HASH_ANNOTATION]
    assert annotation == content_hash(files)
    other = frontend_args(repository=repo_args("elsewhere:8001"))
    assert pod_of(other)["metadata"]["annotations"][REPOSITORY_HASH_ANNOTATION] != annotation


def test_tokenizer_on_storage_runs_offline(frontend_args, repo_args):
    env = {e["name"]: e["value"] for e in container_of(frontend_args())["env"]}
    assert (env["HF_HUB_OFFLINE"], env["TRANSFORMERS_OFFLINE"]) == ("1", "1")
    hub = repo_args().model_copy(update={"tokenizer": TokenizerSettings(path="meta-llama/Llama-3.1-8B-Instruct")})
    env = {e["name"]: e["value"] for e in container_of(frontend_args(repository=hub))["env"]}
    assert "HF_HUB_OFFLINE" not in env


def test_pod_template_is_a_valid_pod_template(frontend_args, pod_template_errors):
    assert pod_template_errors(pod_of(frontend_args())) == []


def test_env_is_sorted_for_deterministic_manifests(frontend_args):
    names = [e["name"] for e in container_of(frontend_args())["env"]]
    assert names == sorted(names)


# ---- Service, HPA, PDB ----------------------------------------------------------------------


def test_internal_nlb_annotations(frontend_args):
    service = frontend_service_manifest("llama-frontend", frontend_args())
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    }


def test_public_nlb_when_not_internal(frontend_args):
    auth = ("--http-restricted-api=inference,metadata:x-api-key=$(FRONTEND_API_KEY)",)
    args = frontend_args(
        config=FrontendConfig(internal_load_balancer=False), load_balancer_source_ranges=("203.0.113.0/24",),
        restricted_api_args=auth,
    )  # fmt: skip
    service = frontend_service_manifest("f", args)
    assert service["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]


def test_public_nlb_needs_source_ranges(frontend_args):
    with pytest.raises(ValidationError, match="frontend.internalLoadBalancer: an internet-facing load balancer needs"):
        frontend_args(config=FrontendConfig(internal_load_balancer=False))
    with pytest.raises(ValidationError, match="an internet-facing Triton frontend needs a client key on inference"):
        frontend_args(config=FrontendConfig(internal_load_balancer=False), load_balancer_source_ranges=("203.0.113.0/24",))
    with pytest.raises(ValidationError, match=r"opens the frontend to every address"):
        frontend_args(config=FrontendConfig(internal_load_balancer=False), load_balancer_source_ranges=("0.0.0.0/0",))


def test_cluster_ip_and_non_aws_services_have_no_lb_annotations(frontend_args):
    cluster_ip = frontend_service_manifest("f", frontend_args(config=FrontendConfig(service_type="ClusterIP")))
    assert cluster_ip["spec"]["type"] == "ClusterIP" and "annotations" not in cluster_ip["metadata"]
    assert "annotations" not in frontend_service_manifest("f", frontend_args(aws_load_balancer=False))["metadata"]


def test_service_ports_and_selector(frontend_args):
    args = frontend_args()
    service = frontend_service_manifest("llama-frontend", args)
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8000, "http"),
        ("grpc", 8001, "grpc"),
        ("metrics", 8002, "metrics"),
    ]
    assert service["spec"]["selector"] == pod_of(args)["metadata"]["labels"]


def test_hpa_scales_on_cpu_only_without_custom_metrics(frontend_args):
    hpa = frontend_hpa_manifest("llama-frontend", frontend_args())
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]


def test_hpa_scales_on_cpu_and_queue_time(frontend_args):
    args = frontend_args(config=FrontendConfig(min_replicas=2, max_replicas=10, target_cpu_utilization=65),
                         target_queue_time_ms=40, custom_metrics=True)  # fmt: skip
    hpa = frontend_hpa_manifest("llama-frontend", args)
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-frontend"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    cpu, queue_time = spec["metrics"]
    assert cpu["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 65}}
    assert queue_time["pods"]["metric"]["name"] == QUEUE_TIME_MS
    assert queue_time["pods"]["target"] == {"type": "AverageValue", "averageValue": "40"}


def test_pdb_allows_one_frontend_down(frontend_args):
    args = frontend_args()
    pdb = frontend_pdb_manifest("llama-frontend", args)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == pod_of(args)["metadata"]["labels"]


def test_endpoint_from_load_balancer_or_dns():
    assert frontend_endpoint("a.b.svc.cluster.local") == {
        "grpc": "a.b.svc.cluster.local:8001",
        "http": "a.b.svc.cluster.local:8000",
    }
    assert load_balancer_host({"loadBalancer": {"ingress": [{"hostname": "nlb.amazonaws.com"}]}}) == "nlb.amazonaws.com"
    assert load_balancer_host({"loadBalancer": {"ingress": [{"ip": "10.0.0.5"}]}}) == "10.0.0.5"
    assert load_balancer_host({"loadBalancer": {}}) is None
    assert load_balancer_host(None) is None


# ---- ConfigMaps -----------------------------------------------------------------------------


def test_config_maps_deliver_exactly_the_frontend_repository(repo_args):
    args = repo_args()
    maps = frontend_config_maps("llama-frontend", args)
    delivered = {path: m.data[key] for m in maps for key, path in m.items}
    assert delivered == repository_files(frontend_repository(args))


def test_tokenizer_dir_replaces_the_tokenizer_path(repo_args):
    args = with_tokenizer_dir(repo_args(), "/models/engines/x/y/tokenizer")
    files = repository_files(frontend_repository(args))
    assert 'string_value: "/models/engines/x/y/tokenizer"' in files["preprocessing/config.pbtxt"]
    assert with_tokenizer_dir(repo_args(), None) == repo_args()


# ---- the component under mocks --------------------------------------------------------------


def _create(frontend_args, **overrides):
    provider = k8s.Provider("k8s", kubeconfig="{}")
    return TritonFrontend("llama-frontend", frontend_args(**overrides), pulumi.ResourceOptions(provider=provider))


def settled(frontend: TritonFrontend, check):
    """Run ``check`` once every child is registered (their URNs are known)."""
    children = [frontend.deployment, frontend.service, frontend.hpa, frontend.pdb, *frontend.config_maps]
    return pulumi.Output.all(frontend.endpoint, *[c.urn for c in children]).apply(lambda v: check(v[0]))


def _of_type(mocks, typ):
    return sorted((r for r in mocks.recorded.values() if r.type == typ), key=lambda r: r.name)


@pulumi.runtime.test
def test_component_creates_named_children_with_the_provider(mocks, frontend_args):
    frontend = _create(frontend_args)

    def check(_):
        children = {r.name: r for r in mocks.recorded.values() if r.parent_name == "llama-frontend"}
        assert sorted(children) == [
            "llama-frontend-deployment",
            "llama-frontend-hpa",
            "llama-frontend-pdb",
            "llama-frontend-repository-ensemble",
            "llama-frontend-repository-postprocessing",
            "llama-frontend-repository-preprocessing",
            "llama-frontend-repository-tensorrt-llm",
            "llama-frontend-repository-tensorrt-llm-bls",
            "llama-frontend-service",
        ]
        for child in children.values():
            assert "pulumi:providers:kubernetes::k8s::" in child.provider
        (component,) = [r for r in mocks.recorded.values() if r.name == "llama-frontend"]
        assert component.type == "disagg:serving:TritonFrontend"

    return settled(frontend, check)


@pulumi.runtime.test
def test_component_config_maps_use_the_tokenizer_output(mocks, frontend_args):
    frontend = _create(frontend_args, tokenizer_dir=pulumi.Output.from_input("/models/engines/m/abc/tokenizer"))

    def check(_):
        recorded = {cm.inputs["metadata"]["name"]: cm.inputs for cm in _of_type(mocks, "kubernetes:core/v1:ConfigMap")}
        args = with_tokenizer_dir(frontend_args().repository, "/models/engines/m/abc/tokenizer")
        planned = frontend_config_maps("llama-frontend", args)
        assert {name: cm["data"] for name, cm in recorded.items()} == {m.name: m.data for m in planned}
        assert all(cm["metadata"]["namespace"] == "llm" for cm in recorded.values())
        delivered = {path: recorded[m.name]["data"][key] for m in planned for key, path in m.items}
        assert delivered == repository_files(frontend_repository(args))
        (deployment,) = _of_type(mocks, "kubernetes:apps/v1:Deployment")
        assert deployment.inputs["metadata"]["name"] == "llama-frontend"
        assert deployment.inputs["spec"] == frontend_deployment_manifest(
            "llama-frontend", frontend_args(), frontend_config_maps("llama-frontend", args)
        )["spec"]

    return settled(frontend, check)


@pulumi.runtime.test
def test_component_endpoint_falls_back_to_cluster_dns(mocks, frontend_args):
    frontend = _create(frontend_args)

    def check(endpoint):
        assert endpoint == {
            "grpc": "llama-frontend.llm.svc.cluster.local:8001",
            "http": "llama-frontend.llm.svc.cluster.local:8000",
        }

    return settled(frontend, check)


def test_component_refuses_to_run_without_a_provider(mocks, frontend_args):
    with pytest.raises(ValueError, match="no Kubernetes provider given"):
        TritonFrontend("llama-frontend", frontend_args())


# ---- a real Triton on the ConfigMap-delivered repository -----------------------------------


def _cpu_repository_args(orchestrator_url: str) -> ModelRepositoryArgs:
    return ModelRepositoryArgs(
        limits=EngineLimits(max_batch_size=8, max_input_len=32, max_seq_len=64),
        tokenizer=TokenizerSettings(kind="bytes"),
        tensorrt_llm=TensorrtLlmSettings(engine_dir="/engines/test"),
        frontend=FrontendSettings(
            orchestrator_url=orchestrator_url,
            preprocessing_instance_count=1,
            postprocessing_instance_count=1,
            bls_instance_count=1,
        ),
    )


def materialize(volume: dict, config_maps: dict[str, dict[str, str]], root: Path, namespace: str) -> None:
    """Lay out a projected volume (ConfigMap and downwardAPI items) the way the kubelet does."""
    for source in volume["projected"]["sources"]:
        if "configMap" in source:
            data = config_maps[source["configMap"]["name"]]
            files = {item["path"]: data[item["key"]] for item in source["configMap"]["items"]}
        else:
            assert all(i["fieldRef"] == {"fieldPath": "metadata.namespace"} for i in source["downwardAPI"]["items"])
            files = {item["path"]: namespace for item in source["downwardAPI"]["items"]}
        for path, text in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


def _stream_text(url: str, text: str, max_tokens: int) -> list[str]:
    client = grpcclient.InferenceServerClient(url)
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    inputs = []
    for name, arr, dtype in (
        ("text_input", np.array([[text.encode()]], dtype=np.object_), "BYTES"),
        ("max_tokens", np.array([[max_tokens]], dtype=np.int32), "INT32"),
        ("stream", np.array([[True]], dtype=np.bool_), "BOOL"),
    ):
        inp = grpcclient.InferInput(name, list(arr.shape), dtype)
        inp.set_data_from_numpy(arr)
        inputs.append(inp)
    chunks = []
    try:
        client.async_stream_infer("ensemble", inputs, enable_empty_final_response=True)
        while True:
            result, error = results.get(timeout=20)
            assert error is None, error
            response = result.get_response()
            if response.outputs:
                chunks.append(result.as_numpy("text_output").reshape(-1)[0].decode())
            if response.parameters["triton_final_response"].bool_param:
                return chunks
    finally:
        client.stop_stream()
        client.close()


@pytest.mark.triton
def test_config_map_repository_serves_in_a_real_triton(tmp_path, frontend_args):
    standin = tmp_path / "orchestrator"
    write_repository(standin_orchestrator_repository(_cpu_repository_args("unused:1")), standin)
    with LocalTriton(standin) as orchestrator:
        args = frontend_args(repository=_cpu_repository_args(orchestrator.grpc_url))
        manifest = deployment_of(args)
        (volume,) = [v for v in manifest["spec"]["template"]["spec"]["volumes"] if v["name"] == "model-repository"]
        maps = {m.name: m.data for m in frontend_config_maps("llama-frontend", args.repository)}
        repo = tmp_path / "frontend"
        materialize(volume, maps, repo, "llm")
        written = {str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()}
        expected = set(repository_files(frontend_repository(args.repository)))
        assert written - expected == {"ensemble/1/.keep"}  # version directory of the ensemble
        assert expected <= written
        flags = [f for f in frontend_command(60)[1:] if not f.startswith(("--model-repository", "--http-port",
                                                                           "--grpc-port", "--metrics-port"))]  # fmt: skip
        with LocalTriton(repo, extra_args=flags) as frontend:
            chunks = _stream_text(frontend.grpc_url, "Hello", 7)
    assert "".join(chunks) == "olleHol"
