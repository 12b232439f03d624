import json

import pytest

from disaggctl.verify.endpoints import (
    FABRIC_KEY,
    FRONTEND_ENDPOINT_KEY,
    FRONTEND_ENDPOINTS_KEY,
    ORCHESTRATOR_ENDPOINT_KEY,
    ORCHESTRATOR_ENDPOINTS_KEY,
    STACK_OUTPUT_KEYS,
    EndpointError,
    Url,
    endpoints_from_outputs,
    parse_url,
    resolve_endpoints,
)


def test_key_names_are_the_documented_ones():
    assert (FRONTEND_ENDPOINT_KEY, ORCHESTRATOR_ENDPOINT_KEY) == ("frontendEndpoint", "orchestratorEndpoint")
    assert (FRONTEND_ENDPOINTS_KEY, ORCHESTRATOR_ENDPOINTS_KEY) == ("frontendEndpoints", "orchestratorEndpoints")
    assert set(STACK_OUTPUT_KEYS) == {
        "frontendEndpoint", "orchestratorEndpoint", "frontendEndpoints", "orchestratorEndpoints", "fabric"
    }


@pytest.mark.parametrize(
    "text,expected",
    [
        ("frontend.ns.svc:8001", Url("grpc", "frontend.ns.svc:8001")),
        ("grpc://10.0.0.1:8001", Url("grpc", "10.0.0.1:8001")),
        ("http://frontend:8000/", Url("http", "frontend:8000")),
    ],
)
def test_parse_url(text, expected):
    assert parse_url(text) == expected


@pytest.mark.parametrize("text", ["frontend", "frontend:http", "https://x:443", "x:0", "x:8000/v2"])
def test_parse_url_rejects(text):
    with pytest.raises(EndpointError, match="--frontend-url"):
        parse_url(text, what="--frontend-url")


def test_single_keys_with_both_protocols():
    ep = endpoints_from_outputs(
        {
            FRONTEND_ENDPOINT_KEY: {"grpc": "fe:8001", "http": "fe:8000"},
            ORCHESTRATOR_ENDPOINT_KEY: "orch:8001",
            FABRIC_KEY: "efa",
        }
    )
    assert ep.frontend_grpc == Url("grpc", "fe:8001")
    assert ep.frontend_http == Url("http", "fe:8000")
    assert ep.orchestrator == Url("grpc", "orch:8001")
    assert ep.fabric == "efa"


def test_plural_maps_need_a_deployment_when_several():
    outputs = {
        FRONTEND_ENDPOINTS_KEY: {"a": "fa:8001", "b": "fb:8001"},
        ORCHESTRATOR_ENDPOINTS_KEY: {"a": "oa:8001", "b": "ob:8001"},
    }
    with pytest.raises(EndpointError, match="pass --deployment NAME"):
        endpoints_from_outputs(outputs)
    ep = endpoints_from_outputs(outputs, deployment="b")
    assert (ep.frontend_grpc.address, ep.orchestrator.address) == ("fb:8001", "ob:8001")
    with pytest.raises(EndpointError, match="deployment 'c' is not in stack output frontendEndpoints"):
        endpoints_from_outputs(outputs, deployment="c")


def test_plural_map_with_one_deployment_needs_no_flag():
    ep = endpoints_from_outputs({FRONTEND_ENDPOINTS_KEY: {"llama": "http://fe:8000"}})
    assert ep.frontend_http == Url("http", "fe:8000") and ep.frontend_grpc is None


def test_missing_frontend_key_names_the_keys():
    with pytest.raises(EndpointError, match="no frontendEndpoint or frontendEndpoints"):
        endpoints_from_outputs({"kubeconfig": "[secret]"})


def test_flags_override_stack_outputs(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({FRONTEND_ENDPOINT_KEY: "fe:8001", ORCHESTRATOR_ENDPOINT_KEY: "orch:8001"}))
    ep = resolve_endpoints(stack_outputs=path, orchestrator_url="127.0.0.1:9001")
    assert ep.frontend_grpc == Url("grpc", "fe:8001")
    assert ep.orchestrator == Url("grpc", "127.0.0.1:9001")
    assert ep.source == str(path)


def test_http_only_frontend_is_refused_for_streaming():
    with pytest.raises(EndpointError, match="no gRPC endpoint for the frontend"):
        resolve_endpoints(frontend_url="http://fe:8000")


@pytest.mark.parametrize("content,match", [("not json", "not JSON"), ("[1, 2]", "JSON object")])
def test_unreadable_stack_outputs(tmp_path, content, match):
    path = tmp_path / "outputs.json"
    path.write_text(content)
    with pytest.raises(EndpointError, match=match):
        resolve_endpoints(stack_outputs=path)


def test_missing_stack_outputs_file_says_how_to_make_it(tmp_path):
    with pytest.raises(EndpointError, match="pulumi stack output --json"):
        resolve_endpoints(stack_outputs=tmp_path / "absent.json")
