"""Prefill-decode: frontend -> router -> context stand-in -> generation stand-in, real processes.

The generation stand-in refuses anything without a verifying ``encoded_opaque_state``, so a
stream that arrives proves the router handed the context server's params over. The generation
side is discovered from a ``file://`` list and scaled from one to two servers mid-test.
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.runtime.procs import http, metrics, wait_until

MODEL = "llama"
LABELS = '{engine_type="trtllm",model_name="llama"}'


@pytest.fixture(scope="module")
def chain(cluster):
    ctx = cluster.standin("context", MODEL)
    gen1 = cluster.standin("generation", MODEL)
    gen_file = cluster.endpoints_file("generation.txt", [gen1])
    router = cluster.router("--context", f"static://127.0.0.1:{ctx.port}", "--generation", f"file://{gen_file}",
                            refresh=0.3)
    frontend = cluster.frontend(router.url, MODEL)
    return {"ctx": ctx, "gen1": gen1, "gen_file": gen_file, "router": router, "frontend": frontend}


@pytest.fixture(scope="module")
def client(chain):
    return openai.OpenAI(base_url=chain["frontend"].url + "/v1", api_key="unused", timeout=20, max_retries=0)


def _verified_from(gen_url: str, ctx_url: str) -> float:
    host_port = ctx_url.removeprefix("http://")
    return metrics(gen_url + "/metrics").get(f'standin_generation_verified_total{{ctx_server="{host_port}"}}', 0.0)


def test_streamed_completion_crosses_context_then_generation(chain, client):
    before_ctx = metrics(chain["ctx"].url + "/metrics")[f"standin_context_handoffs_total{LABELS}"]
    before_gen = _verified_from(chain["gen1"].url, chain["ctx"].url)
    chunks = list(client.completions.create(model=MODEL, prompt="prefill", max_tokens=10, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "prefillpre"
    assert metrics(chain["ctx"].url + "/metrics")[f"standin_context_handoffs_total{LABELS}"] == before_ctx + 1
    assert _verified_from(chain["gen1"].url, chain["ctx"].url) == before_gen + 1


def test_streamed_chat_crosses_context_then_generation(chain, client):
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "decode"}],
                                            max_tokens=18, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "<|user|>\ndecode\n<|"


def test_non_streamed_completion(client):
    resp = client.completions.create(model=MODEL, prompt="kv", max_tokens=5)
    assert resp.choices[0].text == "kvkvk" and resp.usage.completion_tokens == 5


def test_single_token_request_still_goes_to_generation_and_frees_the_context_kv(chain, client):
    # Upstream never skips generation for max_tokens=1: the context server holds the KV until
    # a generation server pulls it (issue 20 item 4).
    before = metrics(chain["gen1"].url + "/metrics")[f"trtllm_request_success_total{LABELS}"]
    chunks = list(client.completions.create(model=MODEL, prompt="one", max_tokens=1, stream=True))
    assert [c.choices[0].text for c in chunks if c.choices] == ["o"]
    assert metrics(chain["gen1"].url + "/metrics")[f"trtllm_request_success_total{LABELS}"] == before + 1
    ctx = metrics(chain["ctx"].url + "/metrics")
    assert ctx["standin_kv_held_requests"] == 0 and ctx["standin_kv_held_blocks"] == 0
    assert ctx['standin_kv_released_total{reason="pulled"}'] >= 1


def test_stop_on_the_first_token_finishes_at_the_context_server(client):
    resp = client.completions.create(model=MODEL, prompt="stop", max_tokens=8,
                                     extra_body={"stop_token_ids": [ord("s")]})
    assert resp.choices[0].finish_reason == "stop" and resp.choices[0].text == ""


def test_generation_server_prefills_a_request_without_context_params_itself(chain):
    """Upstream's generation servers are whole trtllm-serve instances: a plain request is served
    locally (what conditional disaggregation relies on), its prompt prefilled there."""
    key = f"standin_prefill_tokens_computed_total{LABELS}"
    before = metrics(chain["gen1"].url + "/metrics")[key]
    status, body = http("POST", chain["gen1"].url + "/v1/completions", {"model": MODEL, "prompt": "direct",
                                                                       "max_tokens": 4})
    assert status == 200 and json.loads(body)["choices"][0]["text"] == "dire"
    assert metrics(chain["gen1"].url + "/metrics")[key] == before + len("direct")


def test_the_router_never_has_a_generation_server_prefill_by_default(chain, client):
    key = f"standin_prefill_tokens_computed_total{LABELS}"
    before = metrics(chain["gen1"].url + "/metrics")[key]
    for _ in range(3):
        client.completions.create(model=MODEL, prompt="routed through context", max_tokens=4)
    assert metrics(chain["gen1"].url + "/metrics")[key] == before


def test_generation_server_refuses_forged_opaque_state(chain):
    ctx_status, ctx_body = http("POST", chain["ctx"].url + "/v1/completions", {
        "model": MODEL, "prompt": "forge", "max_tokens": 4,
        "disaggregated_params": {"request_type": "context_only"}})
    assert ctx_status == 200
    ctx = json.loads(ctx_body)
    params = {**ctx["choices"][0]["disaggregated_params"], "request_type": "generation_only"}
    url = chain["gen1"].url + "/v1/completions"
    ok = http("POST", url, {"model": MODEL, "prompt": ctx["prompt_token_ids"], "max_tokens": 4,
                            "disaggregated_params": params})
    assert ok[0] == 200 and json.loads(ok[1])["choices"][0]["text"] == "forg"
    forged = {**params, "encoded_opaque_state": params["encoded_opaque_state"][:-4] + "0000"}
    status, body = http("POST", url, {"model": MODEL, "prompt": ctx["prompt_token_ids"], "max_tokens": 4,
                                      "disaggregated_params": forged})
    assert status == 400 and "does not verify" in json.loads(body)["message"]
    other_prompt = http("POST", url, {"model": MODEL, "prompt": [1, 2, 3], "max_tokens": 4,
                                      "disaggregated_params": params})
    assert other_prompt[0] == 400 and "different prompt" in json.loads(other_prompt[1])["message"]


def test_context_server_refuses_requests_that_are_not_context_only(chain):
    status, body = http("POST", chain["ctx"].url + "/v1/completions", {"model": MODEL, "prompt": "x"})
    assert status == 400 and "request_type must be 'context_only'" in json.loads(body)["message"]


def test_scaling_generation_from_one_to_two_servers_without_restart(cluster, chain, client):
    gen2 = cluster.standin("generation", MODEL)
    cluster.endpoints_file("generation.txt", [chain["gen1"], gen2])
    router = chain["router"].url + "/metrics"
    wait_until(lambda: metrics(router).get('router_discovered_endpoints{pool="generation",state="healthy"}') == 2,
               timeout=15, what="router discovers the second generation server")
    before = _verified_from(gen2.url, chain["ctx"].url)
    for i in range(6):  # sequential: least-outstanding ties alternate between the two
        resp = client.completions.create(model=MODEL, prompt=f"req{i}", max_tokens=3)
        assert resp.choices[0].text == f"req{i}"[:3]
    assert _verified_from(gen2.url, chain["ctx"].url) - before >= 2
    assert metrics(router)[f'router_endpoint_inflight{{endpoint="{gen2.url}",pool="generation"}}'] == 0


def test_a_dead_generation_server_is_evicted_and_requests_still_succeed(cluster, chain, client):
    gen3 = cluster.standin("generation", MODEL)
    cluster.endpoints_file("generation.txt", [chain["gen1"], gen3])
    router = chain["router"].url + "/metrics"
    wait_until(lambda: metrics(router).get('router_discovered_endpoints{pool="generation",state="healthy"}') == 2,
               timeout=15, what="router discovers gen3")
    gen3.stop()  # still listed in the file: only health checking can take it out
    for i in range(4):
        assert client.completions.create(model=MODEL, prompt=f"ev{i}", max_tokens=3).choices[0].text == f"ev{i}"
    wait_until(lambda: metrics(router).get('router_discovered_endpoints{pool="generation",state="unhealthy"}') == 1,
               timeout=15, what="router marks gen3 unhealthy")
