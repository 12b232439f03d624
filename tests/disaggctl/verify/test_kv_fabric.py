"""The KV-transfer fabric check: nixlbench manifests per fabric, and its output parsed.

tests/verify/data/nixlbench_libfabric_efa.log is written in nixlbench's own format (NIXL tag
0.9.0, commit 2d475e4ae5bf: src/utils/utils.cpp printConfig/printStatsHeader/printStats, src/
worker/nixl/nixl_worker.cpp "Init nixl worker ..."), both pods' logs as `kubectl logs --prefix`
prints them; the bandwidth figures are plausible for one H100 with 8 EFA interfaces, not measured.
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from disaggctl.verify.cli import main
from disaggctl.verify.kv_fabric import (
    KvFabricCheckSpec,
    kv_block_bytes,
    kv_fabric_problems,
    load_stack,
    nixlbench_argv,
    parse_nixlbench_log,
    render_kv_fabric_check,
    spec_for_deployment,
)

DATA = Path(__file__).parent / "data"
LOG = (DATA / "nixlbench_libfabric_efa.log").read_text()
PROJECT = Path(__file__).resolve().parents[3]
BLOCK = 5242880


def validate(obj: dict) -> list[str]:
    try:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as err:
        return [str(err.message)]
    return []


def test_kv_block_of_llama_70b_on_two_ranks() -> None:
    # 80 layers x 8 KV heads x 128 dims x K and V x 32 tokens x bf16, split over tp 2
    assert kv_block_bytes(80, 8, 128, 32, 2, 2) == BLOCK == 5 * 2**20
    assert kv_block_bytes(80, 8, 128, 32, 1, 1) == BLOCK  # fp8 on one rank


def test_the_realistic_log_parses() -> None:
    result = parse_nixlbench_log(LOG)
    assert result.backend == "LIBFABRIC"
    assert (result.options["initiator_seg_type"], result.options["target_seg_type"], result.options["op_type"]) == (
        "VRAM", "VRAM", "READ",
    )
    assert result.options["ETCD Endpoint"] == "http://kv-fabric-check-etcd.llm-prod.svc.cluster.local:2379"
    assert [r.batch for r in result.rows] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert {r.block_bytes for r in result.rows} == {BLOCK}
    assert result.rows[0].bandwidth_gbps == 21.402917 and result.rows[0].avg_latency_us == 245.0
    assert result.peak_gbps == 45.611958
    assert result.workers == {0: ("initiator", "kv-fabric-check-0-7hq2x"), 1: ("target", "kv-fabric-check-1-m4c9d")}
    assert len(set(result.nodes.values())) == 2 and result.complete
    assert kv_fabric_problems(result, expect_backend="LIBFABRIC", min_bandwidth_gbps=40, block_bytes=BLOCK) == []


def test_a_slow_or_wrong_backend_run_fails_with_one_line_each() -> None:
    result = parse_nixlbench_log(LOG)
    assert kv_fabric_problems(result, expect_backend="UCX", min_bandwidth_gbps=50) == [
        "nixlbench ran backend LIBFABRIC, but the workers use UCX",
        "peak KV-transfer bandwidth 45.61 GB/s is below 50 GB/s",
    ]


def test_a_missing_plugin_run_fails() -> None:
    """What a worker image without the LIBFABRIC plugin gives: backend creation fails, no rows."""
    lines = [line for line in LOG.splitlines() if "Block Size" not in line and not line.split("] ", 1)[1][:1].isdigit()]
    text = "\n".join(lines).replace(
        "Init nixl worker, dev all rank 0, type initiator, hostname kv-fabric-check-0-7hq2x",
        "NIXL: Failed to create backend (Error code: -9)",
    ).replace("exited with status 0", "exited with status 1")
    problems = kv_fabric_problems(parse_nixlbench_log(text), expect_backend="LIBFABRIC")
    assert problems == [
        "nixlbench reported: NIXL: Failed to create backend (Error code: -9)",
        "no transfer result rows: the run did not finish",
        "nixlbench exited with status 1",
    ]


def test_two_pods_on_one_node_measure_nothing_between_nodes() -> None:
    text = LOG.replace("ip-10-60-14-7.us-east-2.compute.internal", "ip-10-60-12-41.us-east-2.compute.internal")
    assert kv_fabric_problems(parse_nixlbench_log(text), expect_backend="LIBFABRIC") == [
        "both pods ran on node ip-10-60-12-41.us-east-2.compute.internal: no inter-node transfer was measured"
    ]


def test_rows_of_more_than_two_processes_carry_the_aggregate() -> None:
    row = (
        f"{'5242880':<20}{'4':<15}{'40.125000':<15}{'80.250000':<25}{'80.250000':<20}"
        f"{'130.7':<15}{'16.9':<15}{'23.7':<15}{'2.3':<15}{'3.7':<15}{'522.6':<15}{'564.4':<15}"
    )
    (parsed,) = parse_nixlbench_log(row).rows
    assert (parsed.batch, parsed.bandwidth_gbps, parsed.aggregate_gbps, parsed.avg_latency_us, parsed.p99_transfer_us) == (
        4, 40.125, 80.25, 130.7, 564.4,
    )


def efa_spec(**kw) -> KvFabricCheckSpec:
    return KvFabricCheckSpec(image="reg/disagg/kv-fabric-check:1.2.1-efa", fabric="efa", efa_interfaces=8, **kw)


def test_manifests_put_two_gpu_pods_on_two_nodes_with_the_workers_backend() -> None:
    service, etcd, job = render_kv_fabric_check(efa_spec(namespace="llm-prod"))
    assert [validate(o) for o in (service, etcd, job)] == [[], [], []]
    assert (job["spec"]["completionMode"], job["spec"]["completions"], job["spec"]["parallelism"]) == ("Indexed", 2, 2)
    pod = job["spec"]["template"]["spec"]
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1", "vpc.amazonaws.com/efa": "8"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
    script = container["command"][2]
    assert "--backend LIBFABRIC --initiator_seg_type VRAM --target_seg_type VRAM" in script
    assert "http://kv-fabric-check-etcd.llm-prod.svc.cluster.local:2379" in script
    assert etcd["spec"]["containers"][0]["image"] == "quay.io/coreos/etcd:v3.5.18"


def test_kv_sized_batches_fit_the_buffer_nixlbench_checks() -> None:
    spec = efa_spec(block_bytes=BLOCK, max_blocks=125)
    argv = nixlbench_argv(spec, "http://etcd:2379")
    value = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("--")}
    assert (value["--start_block_size"], value["--max_block_size"], value["--max_batch_size"]) == (str(BLOCK), str(BLOCK), "128")
    # nixlbench refuses max_block_size x max_batch_size > total_buffer_size (utils.cpp loadFromFlags)
    assert int(value["--total_buffer_size"]) >= BLOCK * 128


def test_ucx_on_infiniband_and_refused_on_efa() -> None:
    ib = KvFabricCheckSpec(image="i:1", fabric="infiniband", rdma_resource="rdma/ib")
    pod = render_kv_fabric_check(ib)[2]["spec"]["template"]["spec"]
    assert "--backend UCX" in pod["containers"][0]["command"][2]
    assert {"name": "UCX_TLS", "value": "ib,cuda_copy,cuda_ipc,sm,self"} in pod["containers"][0]["env"]
    with pytest.raises(ValidationError, match="UCX has no EFA transport"):
        efa_spec(backend="UCX")


def test_prod_deployment_gives_its_context_side_s_path() -> None:
    config = load_stack(PROJECT, "prod")
    spec = spec_for_deployment(config, "llama-70b", "reg/kv:1")
    # p5.48xlarge (32 EFA, 8 GPUs), prefill pods of 2 GPUs: 8 EFA; Llama-3.1-70B bf16 tp 2, 32-token blocks
    assert (spec.fabric, spec.nixl_backend, spec.gpus_per_pod, spec.efa_interfaces) == ("efa", "LIBFABRIC", 2, 8)
    assert spec.block_bytes == BLOCK and spec.max_blocks == 16384 // 32
    fp8 = spec_for_deployment(config, "llama-70b-pd", "reg/kv:1")
    assert fp8.block_bytes == kv_block_bytes(80, 8, 128, 32, 1, 1)
    with pytest.raises(ValueError, match="deployment 'llama-8b-engine' is not prefill-decode"):
        spec_for_deployment(config, "llama-8b-engine", "reg/kv:1")


def test_cli_renders_and_parses(tmp_path, capsys) -> None:
    assert main(["fabric-check", "kv-render", "--image", "reg/kv:1", "--stack", "prod", "--deployment", "llama-70b",
                 "--project", str(PROJECT)]) == 0  # fmt: skip
    kinds = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds == ["Service", "Pod", "Job"]
    log = tmp_path / "kv.log"
    log.write_text(LOG)
    assert main(["fabric-check", "kv-parse", str(log), "--min-bw", "40", "--block-bytes", str(BLOCK)]) == 0
    assert "fabric-check: PASS (KV transfer over LIBFABRIC, peak 45.61 GB/s)" in capsys.readouterr().out
    assert main(["fabric-check", "kv-parse", str(log), "--expect-backend", "UCX"]) == 1
    assert "fabric-check: FAIL: nixlbench ran backend LIBFABRIC, but the workers use UCX" in capsys.readouterr().err
