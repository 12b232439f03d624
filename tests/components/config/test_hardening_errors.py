"""Hardening: each category of malformed stack file is refused up front, with its exact message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.config import ConfigError, load_stack_config
from components.config.errors import MAX_PROBLEM_CHARS

TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def put(raw: dict[str, str], key: str, value: Any) -> None:
    raw[f"disagg:{key}"] = value if isinstance(value, str) else json.dumps(value)


def deployment(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, str]], None]:
    def apply(raw: dict[str, str]) -> None:
        deployments = json.loads(raw["disagg:deployments"])
        change(deployments[0])
        put(raw, "deployments", deployments)

    return apply


def eks(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, str]], None]:
    def apply(raw: dict[str, str]) -> None:
        cluster = json.loads(raw["disagg:cluster"])
        change(cluster["eks"])
        put(raw, "cluster", cluster)

    return apply


def unknown_region(e: dict[str, Any]) -> None:
    e.update(region="us-west-9", availabilityZones=["us-west-9a", "us-west-9b"])
    e["gpuNodePools"][0]["availabilityZone"] = "us-west-9a"


CASES: list[tuple[str, Callable[[dict[str, str]], Any], str]] = [
    (
        "namespace prefix typo",
        lambda raw: raw.update({"disag:namespace": "x"}),
        "disag:namespace: unknown namespace 'disag': did you mean 'disagg:namespace'? (keys of this project read disagg:<key>)",
    ),
    (
        "namespace prefix case",
        lambda raw: raw.update({"Disagg:namespace": "x"}),
        "Disagg:namespace: unknown namespace 'Disagg': did you mean 'disagg:namespace'? (keys of this project read disagg:<key>)",
    ),
    (
        "deployment name starting with a digit",
        deployment(lambda d: d.update(name="8b-llama")),
        "disagg:deployments[0].name: '8b-llama' names Services, which must start with a letter (DNS-1035 label): rename it, e.g. m-8b-llama",
    ),
    (
        "serving namespace kube-system",
        lambda raw: put(raw, "namespace", "kube-system"),
        "disagg:namespace: 'kube-system' is reserved (Kubernetes' own namespaces, 'default', lws-system and disagg:platform.namespace 'gpu-platform'): serve models in a namespace of their own, e.g. llm-serving",
    ),
    (
        "serving namespace = platform namespace",
        lambda raw: put(raw, "namespace", "gpu-platform"),
        "disagg:namespace: 'gpu-platform' is reserved (Kubernetes' own namespaces, 'default', lws-system and disagg:platform.namespace 'gpu-platform'): serve models in a namespace of their own, e.g. llm-serving",
    ),
    (
        "cpu is not a quantity",
        deployment(lambda d: d["frontend"].update(resources={"cpu": "eight", "memory": "16Gi"})),
        "disagg:deployments[0].frontend.resources.cpu: 'eight' is not a Kubernetes quantity (e.g. 8 or 500m): fix it",
    ),
    (
        "memory in millibytes",
        deployment(lambda d: d["orchestrator"].update(resources={"cpu": "8", "memory": "16m"})),
        "disagg:deployments[0].orchestrator.resources.memory: '16m' is less than 1Mi (a lowercase 'm' means thousandths of a byte): use Mi or Gi",
    ),
    (
        "image with an empty tag",
        lambda raw: put(raw, "images", {"tritonTrtllm": "nvcr.io/nvidia/tritonserver:"}),
        "disagg:images.tritonTrtllm: 'nvcr.io/nvidia/tritonserver:' has an empty tag (letters, digits, '_', '.', '-', at most 128): fix it",
    ),
    (
        "image with a malformed digest",
        lambda raw: put(raw, "images", {"tritonTrtllm": "nvcr.io/nvidia/tritonserver@sha256:abc"}),
        "disagg:images.tritonTrtllm: 'nvcr.io/nvidia/tritonserver@sha256:abc' has a malformed digest (sha256: and 64 lowercase hex digits): copy it again",
    ),
    (
        "image with a mutable tag",
        lambda raw: put(raw, "images", {"tritonTrtllm": "nvcr.io/nvidia/tritonserver:main"}),
        "disagg:images.tritonTrtllm: tag 'main' of 'nvcr.io/nvidia/tritonserver:main' moves (a branch or channel, not a release): pin a release tag or @sha256 digest, or set disagg:platform.security.allowMutableImageTags: true",
    ),
    (
        "public VPC range",
        eks(lambda e: e.update(vpcCidr="8.8.0.0/16")),
        "disagg:cluster.eks.vpcCidr: '8.8.0.0/16' is a public range (its hosts would shadow real internet addresses): use a private range (RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
    ),
    (
        "API open to the internet",
        eks(lambda e: e.update(publicAccessCidrs=["0.0.0.0/0"])),
        "disagg:cluster.eks.publicAccessCidrs[0]: '0.0.0.0/0' opens the endpoint to the whole internet: list the client networks instead",
    ),
    (
        "documentation range in the API's access list",
        eks(lambda e: e.update(publicAccessCidrs=["203.0.113.0/24"])),
        "disagg:cluster.eks.publicAccessCidrs[0]: '203.0.113.0/24' is a documentation range (RFC 5737), which "
        "no client has: put the egress CIDRs of the clients (or of the machine running pulumi up) here",
    ),
    (
        "documentation range inside a frontend's access list",
        lambda raw: raw.__setitem__("disagg:platform", '{"security": {"publicFrontends": {"llama-8b": '
                                    '{"sourceRanges": ["192.0.2.16/28"], "auth": {"key": {"secretName": "k"}}}}}}'),
        "disagg:platform.security.publicFrontends.llama-8b.sourceRanges: sourceRanges: '192.0.2.16/28' is a "
        "documentation range (RFC 5737), which no client has: put the egress CIDRs of the clients (or of the "
        "machine running pulumi up) here",
    ),
    (
        "publicAccessCidrs entry is not a CIDR",
        eks(lambda e: e.update(publicAccessCidrs=["office"])),
        "disagg:cluster.eks.publicAccessCidrs[0]: 'office' is not an IPv4 CIDR such as 52.94.0.0/22 (address bits beyond the prefix must be 0): fix it",
    ),
    (
        "VPC too small for its subnets",
        eks(lambda e: (e.update(vpcCidr="10.40.0.0/20"), e["gpuNodePools"][0].update(maxSize=10))),
        "disagg:cluster.eks.vpcCidr: '10.40.0.0/20' is too small: the GPU subnet of us-west-2b (10.40.12.64/26, 59 usable addresses) cannot hold the 170 addresses its pools need at maxSize: use a larger VPC (e.g. a /16) or lower the pools' maxSize",
    ),
    (
        "a /16 VPC still too small for the pools' GPU subnet",
        eks(lambda e: (e.update(vpcCidr="10.40.0.0/16"), e["gpuNodePools"][0].update(maxSize=120))),
        "disagg:cluster.eks.vpcCidr: '10.40.0.0/16' is too small: the GPU subnet of us-west-2b (10.40.196.0/22, 1019 usable addresses) cannot hold the 2040 addresses its pools need at maxSize: a /16 is the largest VPC this layout takes: lower the pools' maxSize, or move pools to another availability zone (each zone has its own GPU subnet)",
    ),
    (
        "unknown region",
        eks(unknown_region),
        "disagg:cluster.eks.region: 'us-west-9' is not an AWS region with EKS (https://docs.aws.amazon.com/general/latest/gr/eks.html): did you mean 'us-west-2'?",
    ),
    (
        "Local Zone",
        eks(lambda e: e.update(availabilityZones=["us-west-2a", "us-west-2b", "us-west-2-lax-1a"])),
        "disagg:cluster.eks.availabilityZones[2]: 'us-west-2-lax-1a' is a Local Zone or Wavelength Zone, where EKS managed node groups cannot run (EKS User Guide, 'Create a managed node group'): use a regular zone such as us-west-2a",
    ),
    (
        "unknown Kubernetes version",
        eks(lambda e: e.update(kubernetesVersion="1.19")),
        "disagg:cluster.eks.kubernetesVersion: '1.19' is not a Kubernetes version EKS offers (1.29, 1.30, 1.31, 1.32, 1.33, 1.34, 1.35): pick one of them",
    ),
    (
        "system instance type the AMI cannot boot",
        eks(lambda e: e["systemNodeGroup"].update(instanceType="m7g.2xlarge")),
        "disagg:cluster.eks.systemNodeGroup.instanceType: 'm7g.2xlarge' is not an x86_64 general purpose, compute or memory instance type this project knows (the system group runs AL2023_x86_64_STANDARD): use e.g. m7i.2xlarge",
    ),
    (
        "groups in the billions",
        deployment(lambda d: d["workers"].update(groups=2_000_000_000)),  # 2-GPU pods, 4 per node
        "disagg:deployments[0].workers: at their largest (groups or maxGroups) the worker groups on pool 'a100' need 500000000 nodes, but its maxSize is 2: lower groups/maxGroups or raise the pool's maxSize (at most 450)",
    ),
    (
        "frontend replicas in the billions",
        deployment(lambda d: d["frontend"].update(maxReplicas=3_000_000_000)),
        "disagg:deployments[0].frontend.maxReplicas: 3000000000 frontends cannot fit the system node group (maxSize 4 × 110 pods per node): lower maxReplicas or raise systemNodeGroup.maxSize",
    ),
    (
        "node group beyond the EKS quota",
        eks(lambda e: e["systemNodeGroup"].update(maxSize=100_000)),
        "disagg:cluster.eks.systemNodeGroup.maxSize: 100000 nodes exceed EKS's 450 nodes per managed node group: lower it, or split the pool",
    ),
    (
        "FSx size beyond the quota",
        eks(lambda e: e["storage"].update(sizeGib=2400 * 100_000)),
        "disagg:cluster.eks.storage.sizeGib: 240000000 GiB exceeds the FSx for Lustre storage quota (100800 GiB): lower it",
    ),
    (
        "token pasted as the Secret name",
        lambda raw: put(raw, "hfTokenSecret", TOKEN),
        "disagg:hfTokenSecret: the value looks like a token or password (value hidden), but this key takes the NAME of a Kubernetes Secret holding it: rotate the credential (it is in the stack file now), create the Secret: kubectl -n llm-dev create secret generic hf-token --from-literal=HF_TOKEN=<token>, and set hfTokenSecret: hf-token",
    ),
    (
        "Secret name that is not a Kubernetes name",
        lambda raw: put(raw, "hfTokenSecret", "HF Token"),
        "disagg:hfTokenSecret: 'HF Token' is not a Kubernetes Secret name (lowercase letters, digits, '-' and '.', at most 253 characters, starting and ending with a letter or digit): rename it",
    ),
    (
        "no shared storage (raised by ModelStore after the cluster was declared)",
        eks(lambda e: e["storage"].update(kind="none")),
        "disagg:cluster.eks.storage.kind: 'none' leaves engines and weights without the ReadWriteMany volume every stack mounts: use fsx-lustre or s3-mountpoint",
    ),
    (
        "zone listed twice (raised by AwsNetwork after resources were declared)",
        eks(lambda e: e.update(availabilityZones=["us-west-2a", "us-west-2b", "us-west-2b"])),
        "disagg:cluster.eks.availabilityZones: 'us-west-2b' is listed twice (each zone gets its own subnets): remove the duplicate",
    ),
    (
        "missing kubeconfig file (raised by ExistingCluster after it was registered)",
        lambda raw: put(raw, "cluster", existing_cluster("/nonexistent/kubeconfig")),
        "disagg:cluster.existing.kubeconfig: '/nonexistent/kubeconfig' is neither kubeconfig text nor an existing file: fix the path, or set the key to the kubeconfig content itself (as a secret)",
    ),
    (
        "internet-facing frontend without opt-in",
        deployment(lambda d: d["frontend"].update(internalLoadBalancer=False)),
        "disagg:deployments[0].frontend.internalLoadBalancer: false makes the frontend internet-facing, which needs an explicit opt-in: add disagg:platform.security.publicFrontends.llama-8b with sourceRanges and auth, or keep internalLoadBalancer: true",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_category_is_refused_with_its_message(dev_config, mutate, expected) -> None:
    mutate(dev_config.raw)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(dev_config.raw)
    assert caught.value.problems == [expected]


def test_the_token_itself_is_never_echoed(dev_config) -> None:
    put(dev_config.raw, "hfTokenSecret", TOKEN)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(dev_config.raw)
    assert TOKEN not in str(caught.value)


def test_a_huge_value_is_truncated_in_the_message(dev_config) -> None:
    put(dev_config.raw, "namespace", "x" * 100_000)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(dev_config.raw)
    (problem,) = caught.value.problems
    assert problem.startswith("disagg:namespace: namespace 'xxxxxxxx")
    assert "…(100000 chars)'" in problem
    assert len(problem) <= MAX_PROBLEM_CHARS


def test_mutable_tags_pass_when_explicitly_allowed(dev_config) -> None:
    put(dev_config.raw, "images", {"tritonTrtllm": "nvcr.io/nvidia/tritonserver:main"})
    put(dev_config.raw, "platform", {"security": {"allowMutableImageTags": True}})
    assert load_stack_config(dev_config.raw).images.triton_trtllm.endswith(":main")


def test_an_internet_facing_frontend_with_opt_in_loads(dev_config) -> None:
    deployment(lambda d: d["frontend"].update(internalLoadBalancer=False))(dev_config.raw)
    public = {"llama-8b": {"sourceRanges": ["100.20.0.0/24"], "auth": {"key": {"secretName": "llama-api-key"}}}}
    put(dev_config.raw, "platform", {"security": {"publicFrontends": public}})
    config = load_stack_config(dev_config.raw)
    opt_in = config.platform.security.public_frontends["llama-8b"]
    assert (opt_in.source_ranges, opt_in.auth.header, opt_in.auth.key.secret_name) == (
        ["100.20.0.0/24"], "x-api-key", "llama-api-key",
    )


def test_a_public_frontend_needs_auth_and_real_source_ranges(dev_config) -> None:
    public = {"llama-8b": {"sourceRanges": ["0.0.0.0/0"]}}
    put(dev_config.raw, "platform", {"security": {"publicFrontends": public}})
    with pytest.raises(ConfigError) as caught:
        load_stack_config(dev_config.raw)
    assert caught.value.problems == [
        "disagg:platform.security.publicFrontends.llama-8b.sourceRanges: sourceRanges: '0.0.0.0/0' opens the "
        "endpoint to the whole internet: list the client networks instead",
        "disagg:platform.security.publicFrontends.llama-8b.auth: required but missing: add it",
    ]


def test_a_plaintext_kubeconfig_is_refused_with_the_secret_command(dev_config) -> None:
    kubeconfig = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {token: plaintext-token-0123456789abcdef}\n"
    put(dev_config.raw, "cluster", existing_cluster(kubeconfig))
    with pytest.raises(ConfigError) as caught:
        load_stack_config(dev_config.raw)
    assert "disagg:cluster.existing.kubeconfig: the kubeconfig is in the stack file in plain text (value hidden): " \
        "remove it, rotate its credentials, and store it encrypted: pulumi config set --secret --path " \
        "'cluster.existing.kubeconfig' \"$(cat kubeconfig)\"" in caught.value.problems
    assert "plaintext-token" not in str(caught.value)
    # the same text as a Pulumi secret is accepted
    config = load_stack_config(dev_config.raw, secret_keys=["disagg:cluster"])
    assert config.cluster.existing is not None


def existing_cluster(kubeconfig: str) -> dict[str, Any]:
    return {
        "name": "onprem", "provider": "existing",
        "existing": {
            "kubeconfig": kubeconfig, "fabric": "infiniband", "storageClass": "weka-rwx",
            "gpuPools": [{"name": "a100", "gpusPerNode": 8, "gpuMemoryGib": 40, "gpuArch": "ampere",
                          "nodeSelector": {"nvidia.com/gpu.product": "A100"}}],
        },
    }  # fmt: skip
