"""frontend -> router -> aggregated stand-in, as real processes, driven by the ``openai`` client
and by KServe v2 generate / generate_stream."""

from __future__ import annotations

import json

import openai
import pytest

from runtime.protocol import iter_chunks
from tests.runtime.procs import http, metrics

MODEL = "llama"


@pytest.fixture(scope="module")
def chain(cluster):
    worker = cluster.standin("aggregated", MODEL)
    router = cluster.router("--workers", f"static://127.0.0.1:{worker.port}")
    frontend = cluster.frontend(router.url, MODEL, max_seq_len=256, default_max_tokens=16)
    return {"worker": worker, "router": router, "frontend": frontend}


@pytest.fixture(scope="module")
def client(chain):
    return openai.OpenAI(base_url=chain["frontend"].url + "/v1", api_key="unused", timeout=20, max_retries=0)


def test_models_lists_the_served_name(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_streamed_completion_echoes_the_prompt_token_by_token(client):
    stream = client.completions.create(model=MODEL, prompt="disagg", max_tokens=9, stream=True,
                                       stream_options={"include_usage": True})
    chunks = list(stream)
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert texts == list("disaggdis")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 9 and chunks[-1].usage.prompt_tokens == 6


def test_streamed_chat_applies_the_template_in_the_frontend(chain, client):
    key = 'standin_pretokenized_requests_total{engine_type="trtllm",model_name="llama"}'
    before = metrics(chain["worker"].url + "/metrics")[key]
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=14, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "<|user|>\nhi\n<|"  # the stand-in echoes the templated prompt ids it received
    assert metrics(chain["worker"].url + "/metrics")[key] == before + 1  # ids, not messages, reached it


def test_non_streamed_completion_with_default_max_tokens(client):
    resp = client.completions.create(model=MODEL, prompt="abc")
    assert resp.choices[0].text == "abcabcabcabcabca"  # --default-max-tokens 16
    assert resp.usage.completion_tokens == 16


def test_token_id_prompt_passes_through(client):
    resp = client.completions.create(model=MODEL, prompt=[72, 73], max_tokens=3)
    assert resp.choices[0].text == "HIH"


def test_kserve_generate(chain):
    url = chain["frontend"].url + f"/v2/models/{MODEL}/generate"
    status, body = http("POST", url, {"text_input": "kv", "parameters": {"max_tokens": 5}})
    assert status == 200
    assert json.loads(body) == {"model_name": MODEL, "model_version": "1", "text_output": "kvkvk"}


def test_kserve_generate_stream(chain):
    url = chain["frontend"].url + f"/v2/models/{MODEL}/versions/1/generate_stream"
    status, body = http("POST", url, {"text_input": "ab", "max_tokens": 3})
    assert status == 200
    chunks = list(iter_chunks(body))
    assert [c["text_output"] for c in chunks] == ["a", "b", "a"]
    assert chunks[0]["model_name"] == MODEL and chunks[-1]["finish_reason"] == "length"


def test_kserve_health_and_metadata(chain):
    fe = chain["frontend"].url
    assert http("GET", fe + "/v2/health/live")[0] == 200
    assert http("GET", fe + "/v2/health/ready")[0] == 200
    assert http("GET", fe + f"/v2/models/{MODEL}/ready")[0] == 200
    status, body = http("GET", fe + f"/v2/models/{MODEL}")
    assert status == 200 and json.loads(body)["outputs"][0]["name"] == "text_output"
    status, body = http("GET", fe + "/v2/models/other")
    assert status == 404 and "unknown model 'other'" in json.loads(body)["error"]


def test_bad_json_is_400_with_the_openai_error_shape(chain):
    status, body = http("POST", chain["frontend"].url + "/v1/completions", raw=b"{not json")
    assert status == 400
    err = json.loads(body)["error"]
    assert err["type"] == "invalid_request_error" and err["message"].startswith("Invalid JSON body")


def test_openai_client_raises_bad_request_for_too_many_tokens(client):
    with pytest.raises(openai.BadRequestError, match="ask for at most 253 tokens"):
        client.completions.create(model=MODEL, prompt="abc", max_tokens=1000)


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-4", prompt="abc")


def test_kserve_generate_bad_parameter_is_400(chain):
    url = chain["frontend"].url + f"/v2/models/{MODEL}/generate"
    status, body = http("POST", url, {"text_input": "kv", "parameters": {"beam_width": 2}})
    assert status == 400 and "unsupported generate parameter(s) beam_width" in json.loads(body)["error"]


def test_tiers_count_what_they_served(chain, client):
    client.completions.create(model=MODEL, prompt="xyz", max_tokens=4, stream=True).close()
    fe = metrics(chain["frontend"].url + "/metrics")
    assert fe['frontend_requests_total{code="200",route="/v1/completions"}'] >= 3
    assert fe["frontend_output_tokens_total"] >= 9 + 16 + 3
    assert fe['frontend_time_to_first_token_seconds_count{model_name="llama"}'] >= 5
    router = metrics(chain["router"].url + "/metrics")
    ep = f'router_endpoint_inflight{{endpoint="{chain["worker"].url}",pool="workers"}}'
    assert router[ep] == 0
    assert router['router_discovered_endpoints{pool="workers",state="healthy"}'] == 1
    worker = metrics(chain["worker"].url + "/prometheus/metrics")
    assert worker['trtllm_request_success_total{engine_type="trtllm",model_name="llama"}'] >= 5
    assert worker['trtllm_num_requests_running{engine_type="trtllm",model_name="llama"}'] == 0


def test_no_worker_is_503(cluster, tmp_path):
    empty = tmp_path / "none.txt"
    empty.write_text("")
    router = cluster.router("--workers", f"file://{empty}")
    assert http("GET", router.url + "/health")[0] == 503
    frontend = cluster.frontend(router.url, MODEL)
    status, body = http("POST", frontend.url + "/v1/completions", {"model": MODEL, "prompt": "x"})
    assert status == 503
    message = json.loads(body)["error"]["message"]
    assert "no model server available" in message and "127.0.0.1" not in message


def test_unreachable_router_is_503(cluster):
    from tests.runtime.procs import free_port

    frontend = cluster.frontend(f"http://127.0.0.1:{free_port()}", MODEL)
    client = openai.OpenAI(base_url=frontend.url + "/v1", api_key="unused", timeout=10, max_retries=0)
    with pytest.raises(openai.InternalServerError, match="no model server available") as err:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 503


def test_streamed_request_with_no_worker_is_503(cluster, tmp_path):
    empty = tmp_path / "none.txt"
    empty.write_text("")
    router = cluster.router("--workers", f"file://{empty}")
    frontend = cluster.frontend(router.url, MODEL)
    client = openai.OpenAI(base_url=frontend.url + "/v1", api_key="unused", timeout=10, max_retries=0)
    with pytest.raises(openai.APIStatusError, match="no model server available") as err:
        client.completions.create(model=MODEL, prompt="x", stream=True)
    assert err.value.status_code == 503


def test_client_leaving_mid_stream_releases_every_tier(cluster):
    import socket
    import time

    from tests.runtime.procs import wait_until

    worker = cluster.standin("aggregated", MODEL, tps=20)  # 200 tokens take 10 s
    router = cluster.router("--workers", f"static://127.0.0.1:{worker.port}")
    frontend = cluster.frontend(router.url, MODEL)
    body = json.dumps({"model": MODEL, "prompt": "slow", "max_tokens": 200, "stream": True}).encode()
    sock = socket.create_connection(("127.0.0.1", frontend.port), timeout=10)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%b" % (len(body), body))
    got = b""
    while got.count(b"data: ") < 3:
        got += sock.recv(65536)
    running = 'trtllm_num_requests_running{engine_type="trtllm",model_name="llama"}'
    assert metrics(worker.url + "/metrics")[running] == 1
    sock.close()
    t0 = time.monotonic()
    wait_until(lambda: metrics(frontend.url + "/metrics")["frontend_requests_in_flight"] == 0, 8, "frontend idle")
    ep = f'router_endpoint_inflight{{endpoint="{worker.url}",pool="workers"}}'
    wait_until(lambda: metrics(router.url + "/metrics")[ep] == 0, 8, "router idle")
    wait_until(lambda: metrics(worker.url + "/metrics")[running] == 0, 8, "worker idle")
    assert time.monotonic() - t0 < 8  # well before the 10 s the generation would have taken


@pytest.mark.parametrize("stream", [False, True])
def test_request_errors_reach_the_client_as_openai_errors(chain, stream):
    client = openai.OpenAI(base_url=chain["frontend"].url + "/v1", api_key="unused", timeout=20, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="max_tokens must be a positive integer") as err:
        client.completions.create(model=MODEL, prompt="abc", max_tokens=2, stream=stream,
                                  extra_body={"max_tokens": 2.5})
    assert err.value.status_code == 400


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_chain_streams_on_either_event_loop(loop):
    from tests.runtime.procs import Cluster

    if loop == "uvloop":
        pytest.importorskip("uvloop")
    chain = Cluster(env={"RUNTIME_EVENT_LOOP": loop})
    try:
        worker = chain.standin("aggregated", MODEL)
        router = chain.router("--workers", f"static://127.0.0.1:{worker.port}")
        frontend = chain.frontend(router.url, MODEL)
        client = openai.OpenAI(base_url=frontend.url + "/v1", api_key="unused", timeout=20, max_retries=0)
        chunks = list(client.completions.create(model=MODEL, prompt="loop", max_tokens=6, stream=True))
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "looplo"
    finally:
        chain.close()
