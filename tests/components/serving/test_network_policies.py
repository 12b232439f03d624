"""NetworkPolicies: default deny, DNS, and the exact flows of each tier (both runtimes)."""

from __future__ import annotations

from components.serving.llmapi.deployment import llmapi_network_tiers
from components.serving.network_policies import network_policy_manifests
from components.serving.triton.deployment import engine_network_tiers
from tests.components.serving.conftest import broken


def by_name(manifests: list[dict]) -> dict[str, dict]:
    return {m["metadata"]["name"]: m["spec"] for m in manifests}


def llmapi(roles=("workers",), **kw) -> dict[str, dict]:
    return by_name(network_policy_manifests("llama", "llm", llmapi_network_tiers("llama", list(roles), ("monitoring",)), **kw))


def test_default_deny_selects_every_pod_of_the_deployment():
    spec = llmapi()["llama-default-deny"]
    assert spec == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/instance": "llama", "app.kubernetes.io/part-of": "disagg-inference"}},
        "policyTypes": ["Ingress", "Egress"],
    }


def test_dns_egress_only_to_kube_dns_and_no_storage_by_default():
    (dns,) = llmapi()["llama-dns-storage-egress"]["egress"]
    assert dns["to"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }]  # fmt: skip
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def test_storage_egress_on_the_lustre_ports_when_asked():
    egress = llmapi(storage_cidrs=("10.0.0.0/16",))["llama-dns-storage-egress"]["egress"]
    assert egress[1] == {
        "ports": [{"protocol": "TCP", "port": 988}, {"protocol": "TCP", "port": 1018, "endPort": 1023}],
        "to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
    }


def test_frontend_open_on_its_serving_port_only():
    spec = llmapi()["llama-frontend"]
    assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8000}]}]  # any source, one port
    assert spec["egress"] == [{
        "ports": [{"protocol": "TCP", "port": 8000}],
        "to": [{"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "llmapi", "app.kubernetes.io/instance": "llama",
            "app.kubernetes.io/component": "router", "app.kubernetes.io/part-of": "disagg-inference"}}}],
    }]  # fmt: skip


def test_router_reachable_only_from_the_frontend_and_monitoring():
    ingress = llmapi()["llama-router"]["ingress"]
    assert ingress[0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "frontend"
    assert ingress[1]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["monitoring"]
    assert len(ingress) == 2


def test_workers_take_the_router_and_their_own_group():
    spec = llmapi()["llama-workers"]
    assert spec["podSelector"] == {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-workers"}}
    router, group, metrics = spec["ingress"]
    assert router["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "router"
    assert router["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert group == {"from": [{"podSelector": {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-workers"}}}]}
    assert spec["egress"] == [group_to(["llama-workers"])]


def group_to(sets: list[str]) -> dict:
    return {"to": [{"podSelector": {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": s}}} for s in sets]}


def test_prefill_and_decode_exchange_kv_caches_with_each_other():
    policies = llmapi(roles=("prefill", "decode"))
    assert policies["llama-prefill"]["egress"] == [group_to(["llama-prefill", "llama-decode"])]
    assert policies["llama-decode"]["egress"] == [group_to(["llama-decode", "llama-prefill"])]
    router_egress = policies["llama-router"]["egress"][0]["to"]
    assert [p["podSelector"]["matchLabels"]["disagg.dev/role"] for p in router_egress] == ["prefill", "decode"]


def test_engine_policies_open_http_and_grpc_on_the_frontend():
    tiers = engine_network_tiers("llama", ["workers"], ("monitoring",))
    policies = by_name(network_policy_manifests("llama", "llm", tiers))
    assert policies["llama-frontend"]["ingress"][0] == {"ports": [{"protocol": "TCP", "port": 8000}, {"protocol": "TCP", "port": 8001}]}
    assert policies["llama-frontend"]["ingress"][1]["ports"] == [{"protocol": "TCP", "port": 8002}]
    assert len(policies["llama-frontend"]["egress"]) == 1  # no internet: tokenizer from the engine build
    with_hf = by_name(network_policy_manifests("llama", "llm", engine_network_tiers("llama", ["workers"], (), True)))
    assert with_hf["llama-frontend"]["egress"][1] == {"ports": [{"protocol": "TCP", "port": 443}]}


def test_every_policy_validates(k8s_errors):
    manifests = network_policy_manifests(
        "llama", "llm", llmapi_network_tiers("llama", ["prefill", "decode"], ("monitoring",)), storage_cidrs=("10.0.0.0/16",)
    )
    manifests += network_policy_manifests("e", "llm", engine_network_tiers("e", ["prefill", "decode"], ("monitoring",)))
    assert [e for m in manifests for e in k8s_errors(m)] == []


def test_a_broken_policy_is_reported(k8s_errors):
    """The twin of test_every_policy_validates: the same check names a wrong type and a misspelt key."""
    (deny, *_) = network_policy_manifests("llama", "llm", llmapi_network_tiers("llama", ["workers"], ()))
    assert k8s_errors(deny) == []
    assert k8s_errors(broken(deny, "spec/policyTypes", "Ingress")) == [
        "spec/policyTypes: 'Ingress' is not of type 'array', 'null'"
    ]
    assert k8s_errors(broken(deny, "spec/ingres", [])) == [
        "spec: Additional properties are not allowed ('ingres' was unexpected)"
    ]
