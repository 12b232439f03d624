"""The bad-input corpus of issue 24 (a newcomer's first hour): every case it lists is refused or
warned with the key, the value and the fix, in one line, and never as a traceback; the good stack it
lists is accepted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, load_stack_config
from components.config.validation import stack_warnings
from disaggctl.__main__ import main as disaggctl_main

from .conftest import PROJECT_DIR

D0 = "disagg:deployments[0]"
POOL0 = "disagg:cluster.eks.gpuNodePools[0]"


def put(raw: dict[str, str], key: str, value: Any) -> None:
    raw[f"disagg:{key}"] = json.dumps(value)


def section(raw: dict[str, str], key: str, default: Any = None) -> Any:
    value = raw.get(f"disagg:{key}")
    return json.loads(value) if value is not None else default


def deployment(change: Callable[[dict[str, Any]], Any], index: int = 0) -> Callable[[dict[str, str]], None]:
    def apply(raw: dict[str, str]) -> None:
        deployments = section(raw, "deployments")
        change(deployments[index])
        put(raw, "deployments", deployments)

    return apply


def eks(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, str]], None]:
    def apply(raw: dict[str, str]) -> None:
        cluster = section(raw, "cluster")
        change(cluster["eks"])
        put(raw, "cluster", cluster)

    return apply


def platform(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, str]], None]:
    def apply(raw: dict[str, str]) -> None:
        value = section(raw, "platform", {})
        change(value)
        put(raw, "platform", value)

    return apply


def model(**values: Any) -> Callable[[dict[str, str]], None]:
    def apply(raw: dict[str, str]) -> None:
        models = section(raw, "models")
        models["llama-8b"].update(values)
        put(raw, "models", models)

    return apply


# (id, stack, mutation, the one problem line)
REFUSED: list[tuple[str, str, Callable[[dict[str, str]], Any], str]] = [
    # -- "Tracebacks"
    (
        "groups written as a word",
        "dev",
        deployment(lambda d: d["workers"].update(groups="two")),
        f"{D0}.workers.groups: Input should be a valid integer, unable to parse string as an integer "
        '(got "two"): fix the value',
    ),
    (
        "unknown instance type gets the closest one",
        "dev",
        eks(lambda e: e["gpuNodePools"][0].update(instanceType="p4d.48xlarge")),
        f"{POOL0}.instanceType: instance type 'p4d.48xlarge' is not a GPU instance type this project knows: "
        "did you mean 'p4d.24xlarge'? (or add it to components/config/instance_types.py)",
    ),
    (
        "decode minGroups 0 with autoscaling",
        "prod",
        deployment(lambda d: d["decode"].update(minGroups=0)),
        f"{D0}.decode: minGroups is 0 but autoscaling is enabled, and no request reaches a role scaled to 0 "
        "groups (nothing would scale it up again): set minGroups: 1 or more",
    ),
    # -- "Accepted but wrong"
    (
        "S3 bucket name",
        "dev",
        eks(lambda e: e.update(storage={"kind": "s3-mountpoint", "bucketName": "My_Bucket!!"})),
        "disagg:cluster.eks.storage.bucketName: bucketName 'My_Bucket!!' is not an S3 bucket name: use 3-63 "
        "lowercase letters, digits and '-', starting and ending with a letter or digit",
    ),
    (
        "chart repository over plain http",
        "dev",
        platform(lambda p: p.update(keda={"chart": {"chart": "keda", "repository": "http://kedacore.github.io/charts", "version": "2.20.2"}})),
        "disagg:platform.keda.chart.repository: chart repository 'http://kedacore.github.io/charts' is plain "
        "http: charts (and the cluster-admin code in them) would be fetched unauthenticated and could be "
        "swapped in transit: use https://kedacore.github.io/charts or an oci:// registry",
    ),
    (
        "pool label overriding kubernetes.io/hostname",
        "dev",
        eks(lambda e: e["gpuNodePools"][0].update(labels={"kubernetes.io/hostname": "gpu-0"})),
        f"{POOL0}.labels.kubernetes.io/hostname: 'kubernetes.io/hostname' is in the kubernetes.io namespace, "
        "which Kubernetes sets itself (overriding it misplaces pods or keeps the node from registering): "
        "use a prefix of your own, e.g. example.com/team",
    ),
    (
        "pool label overriding the control-plane role",
        "dev",
        eks(lambda e: e["gpuNodePools"][0].update(labels={"node-role.kubernetes.io/control-plane": ""})),
        f"{POOL0}.labels.node-role.kubernetes.io/control-plane: 'node-role.kubernetes.io/control-plane' is in "
        "the kubernetes.io namespace, which Kubernetes sets itself (overriding it misplaces pods or keeps the "
        "node from registering): use a prefix of your own, e.g. example.com/team",
    ),
    (
        "shmSize beyond the node's memory",
        "dev",
        deployment(lambda d: d["workers"].update(shmSize="2000Gi")),
        f"{D0}.workers.shmSize: '2000Gi' is more than the 1152 GiB of memory of a p4d.24xlarge node: lower "
        "it (the default 64Gi suits trtllm-serve)",
    ),
    (
        "private endpoint off with the public one restricted: nodes cannot join",
        "dev",
        eks(lambda e: e.update(endpointPrivateAccess=False)),
        "disagg:cluster.eks.endpointPrivateAccess: false leaves the nodes only the public endpoint, which they "
        "reach from the NAT gateways' Elastic IPs (allocated by this stack, so not in publicAccessCidrs "
        "DEPLOYER-CIDR): the nodes could not join: set endpointPrivateAccess: true",
    ),
    (
        "groups 0 without autoscaling",
        "dev",
        deployment(lambda d: d["workers"].update(groups=0)),
        f"{D0}.workers: groups is 0 and autoscaling is off, so no worker ever runs and every request fails: "
        "set groups: 1 or more (or remove the deployment)",
    ),
    (
        "a 1 MB tokenizer string",
        "dev",
        deployment(lambda d: d["frontend"].update(tokenizer="a" * 1_000_000)),
        f"{D0}.frontend.tokenizer: tokenizer '{'a' * 60}…(1000000 chars)' (1000000 characters) is not a "
        "Hugging Face repository id (org/name) or a path of at most 1024 characters without spaces: give the "
        "repository id (e.g. meta-llama/Llama-3.1-8B-Instruct) or the tokenizer's path on the shared "
        "storage, or leave it out (the model's own)",
    ),
    (
        "basic-auth credentials in prometheusUrl (never echoed)",
        "prod",
        platform(lambda p: p["keda"].update(prometheusUrl="http://scaler:s3cr3t@prom.monitoring.svc:9090")),
        "disagg:platform.keda.prometheusUrl: prometheusUrl 'http://…@prom.monitoring.svc:9090' carries "
        "credentials (user:password@), which would be written in plain text into every ScaledObject and the "
        "adapter's arguments: remove them and let the scalers query an in-cluster Prometheus "
        "(NetworkPolicies restrict who reaches it)",
    ),
    # -- "Misleading messages"
    (
        "missing transceiver on EFA suggests NIXL",
        "prod",
        deployment(lambda d: d["prefill"]["llmApi"].pop("cacheTransceiverConfig")),
        f"{D0}.prefill.llmApi.cacheTransceiverConfig: missing; prefill-decode moves KV cache through a cache "
        "transceiver: set cacheTransceiverConfig: {backend: NIXL} (UCX has no EFA transport) on both sides",
    ),
    (
        "aws:region and eks.region differ",
        "dev",
        lambda raw: raw.update({"aws:region": "us-east-1"}),
        "aws:region: 'us-east-1' differs from disagg:cluster.eks.region 'us-west-2' (the cluster is built in "
        "eks.region, anything on the default provider would land in aws:region): set aws:region: us-west-2",
    ),
    # -- enumerations get did-you-mean
    (
        "mistyped region",
        "dev",
        eks(lambda e: e.update(region="us-wset-2")),
        "disagg:cluster.eks.region: 'us-wset-2' is not an AWS region with EKS "
        "(https://docs.aws.amazon.com/general/latest/gr/eks.html): did you mean 'us-west-2'?",
    ),
    (
        "mistyped zone",
        "dev",
        eks(lambda e: e.update(availabilityZones=["us-west-2a", "us-west-2b", "us-wset-2c"])),
        "disagg:cluster.eks.availabilityZones[2]: 'us-wset-2c' is not an availability zone name (region + "
        "letter a-f): did you mean 'us-west-2c'?",
    ),
    (
        "mistyped model",
        "dev",
        model(model="llama-3.1-8b-instruc"),
        "disagg:models.llama-8b.model: model 'llama-3.1-8b-instruc' is not in the catalog: did you mean "
        "'llama-3.1-8b-instruct'? (or add it to engines/catalog.py)",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_each_case_is_refused_in_one_line(stack, mutate, expected, dev_config, prod_config) -> None:
    raw = (dev_config if stack == "dev" else prod_config).raw
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(raw)
    assert caught.value.problems == [expected]
    assert "s3cr3t" not in str(caught.value)


def test_dev_as_four_tp1_groups_on_one_p4d_is_accepted(dev_config) -> None:
    """4 one-GPU pods on a p4d.24xlarge ask 4 × 1 of its 4 EFA interfaces: they fit."""
    deployment(lambda d: (d["workers"].update(groups=4, gpusPerPod=1), d["workers"]["llmApi"].update(tensorParallelSize=1)))(dev_config.raw)
    config = load_stack_config(dev_config.raw)
    assert config.deployments[0].workers is not None
    assert (config.deployments[0].workers.groups, config.deployments[0].workers.gpus_per_pod) == (4, 1)


def test_eight_tp1_groups_on_one_p4d_are_still_refused(dev_config) -> None:
    """8 one-GPU pods would ask 8 interfaces of a node that has 4: the rule still bites."""
    deployment(lambda d: (
        d["workers"].update(groups=8, gpusPerPod=1),
        d["workers"]["llmApi"].update(tensorParallelSize=1),
        d.pop("workload"),
    ))(dev_config.raw)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(dev_config.raw)
    assert caught.value.problems == [
        f"{D0}.workers.gpusPerPod: 8 pods of 1 GPUs on one p4d.24xlarge node ask for 8 × 1 EFA interfaces, "
        "but the node has 4 (AWS EFA device plugin advertises one per interface): raise gpusPerPod so fewer "
        "pods share a node"
    ]


def test_fp8_on_a100_is_reported_once_and_fp8_is_never_suggested(prod_config) -> None:
    """prod's FP8 prefill/decode deployment moved to A100 (p4de): the precision is one line, and no
    message offers fp8 weights or an fp8 KV cache as a fix."""
    eks(lambda e: e["gpuNodePools"][1].update(instanceType="p4de.24xlarge"))(prod_config.raw)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(prod_config.raw)
    precision = [p for p in caught.value.problems if p.startswith("disagg:models.llama-70b-fp8.quantization")]
    assert precision == [
        "disagg:models.llama-70b-fp8.quantization: 'fp8' weights need Ada/Hopper (sm89+), not ampere (sm80): "
        "use quantization none or a pool with newer GPUs"
    ]
    fixes = [p.rpartition(": ")[2] for p in caught.value.problems]
    assert not [f for f in fixes if "quantization fp8" in f or "dtype fp8" in f]


def test_fp8_kv_cache_is_offered_where_the_gpu_runs_it() -> None:
    from engines.catalog import MODELS
    from engines.llm_api import LlmApiOptions
    from engines.llm_api_checks import check_memory

    options = LlmApiOptions.model_validate({"maxSeqLen": 131072, "kvCacheConfig": {"freeGpuMemoryFraction": 0.05}})
    model_8b = MODELS["llama-3.1-8b-instruct"]
    (hopper,) = check_memory(options, model_8b, "none", 40, "hopper")
    (ampere,) = check_memory(options, model_8b, "none", 40, "ampere")
    assert "use kvCacheConfig.dtype fp8" in hopper
    assert "fp8" not in ampere.rpartition(": ")[2]


def test_keda_without_prometheus_url_queries_the_platforms_prometheus(dev_config) -> None:
    """The issue's "KEDA enabled with no prometheusUrl": it now queries the Prometheus the platform
    installs (platform.monitoring; refused when monitoring is off), so nothing is left to warn about."""
    platform(lambda p: p.update(keda={"enabled": True}))(dev_config.raw)
    config = load_stack_config(dev_config.raw)
    assert config.platform.keda_prometheus_url() == config.platform.monitoring.prometheus_url()
    assert stack_warnings(config) == []


def test_a_slash_20_vpc_is_warned_about_its_gpu_subnets(dev_config) -> None:
    eks(lambda e: e.update(vpcCidr="10.40.0.0/20"))(dev_config.raw)
    config = load_stack_config(dev_config.raw)
    assert stack_warnings(config) == [
        "disagg:cluster.eks.vpcCidr: '10.40.0.0/20' leaves each zone a /26 GPU subnet (59 addresses), while "
        "the VPC CNI keeps a spare network interface's addresses warm on every node (WARM_ENI_TARGET=1, up "
        "to 50 on p4d/p5), so a few GPU nodes exhaust it and pods stay Pending: use a /16 (or a /18 at most)"
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_have_no_stack_warning(stack: str, dev_config, prod_config) -> None:
    raw = (dev_config if stack == "dev" else prod_config).raw
    assert stack_warnings(load_stack_config(raw)) == []


# -- the commands: validation first, one line, no traceback ----------------------------------------------


def bad_project(tmp_path: Path, change: Callable[[dict[str, Any]], Any]) -> Path:
    """A project directory with dev's stack file, changed (the program is never reached)."""
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    doc = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    change(doc["config"])
    (tmp_path / "Pulumi.bad.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


GROUPS_TWO = f"{D0}.workers.groups: Input should be a valid integer, unable to parse string as an integer (got \"two\"): fix the value"


def test_synth_refuses_before_the_forecast_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = bad_project(tmp_path, lambda c: c["disagg:deployments"][0]["workers"].update(groups="two"))
    code = disaggctl_main(["synth", "--stack", "bad", "--project", str(project), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.splitlines()[-1] == f"  - {GROUPS_TWO}"


def test_plan_refuses_an_invalid_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = bad_project(tmp_path, lambda c: c["disagg:deployments"][0]["workers"].update(groups="two"))
    code = disaggctl_main(["plan", "--stack", "bad", "--deployment", "llama-8b", "--project", str(project)])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [f"plan: {GROUPS_TWO}"]


def test_a_missing_prediction_names_the_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def drop_prediction(config: dict[str, Any]) -> None:
        config["disagg:deployments"][0]["workload"].pop("prediction")

    project = bad_project(tmp_path, drop_prediction)
    code = disaggctl_main(["synth", "--stack", "bad", "--project", str(project), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "python -m disaggctl plan --stack bad --deployment llama-8b" in err
    assert "<stack>" not in err


NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def test_the_docs_count_prods_capacity_warnings_as_the_loader_does(prod_config) -> None:
    """README and docs/capacity.md say how many capacity warnings prod prints before its Capacity
    Block starts (the test clock) and after; the loader's report agrees (the README said four)."""
    import re
    from datetime import datetime, timezone

    config = load_stack_config(prod_config.raw)
    before = len(config.capacity_report().warnings)
    after = len(config.capacity_report(now=datetime(2026, 12, 15, tzinfo=timezone.utc)).warnings)
    readme = (PROJECT_DIR / "README.md").read_text()
    docs = (PROJECT_DIR / "docs" / "capacity.md").read_text()
    said = re.search(r"prints (\w+) capacity warnings \((\w+) once its Capacity\s+Block has\s+started", readme)
    assert said is not None and (NUMBERS[said[1]], NUMBERS[said[2]]) == (before, after)
    said = re.search(r"warns (\w+) times before its Capacity\s+Block starts and (\w+) after", docs)
    assert said is not None and (NUMBERS[said[1]], {"once": 1, "twice": 2}[said[2]]) == (before, after)
