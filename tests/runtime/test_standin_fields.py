"""Top-level request fields per TensorRT-LLM release: the stand-in refuses what the release's
``CompletionRequest`` / ``ChatCompletionRequest`` lacks (upstream's ``extra="forbid"``), and what
our frontend and router send to workers is accepted by the stand-in of 1.2 (the pinned release).

The field sets and their sources are ``Capabilities.completion_fields`` / ``chat_fields``
(``runtime/capabilities.py``). The stand-in runs in-process (aiohttp TestServer) for the refusal
rules and as real processes behind a real router and frontend for the chain.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer

from runtime import protocol
from runtime.capabilities import CHAT_FIELD_ALIASES, GENERATIONS, capabilities
from runtime.frontend import Frontend, RequestError
from runtime.metrics import parse_text
from runtime.standin import StandIn, make_app
from runtime.tokenizer import ByteTokenizer
from tests.runtime.procs import http, metrics, wait_until

MODEL = "llama"
LABELS = '{engine_type="trtllm",model_name="llama"}'
PINNED = "1.2"
MESSAGES = [{"role": "user", "content": "hi"}]
NEUTRAL = {"model": MODEL, "prompt": [104, 105], "messages": MESSAGES, "max_tokens": 4, "max_completion_tokens": 4,
           "n": 1, "stream": False, "stream_options": None, "disaggregated_params": None}
"""Values the stand-in's own checks accept; every other field is sent as null."""


def _run(role: str, generation: str, check: Callable[[TestClient], Awaitable[None]]) -> None:
    async def go() -> None:
        standin = StandIn(role, MODEL, 0.0, b"s", "127.0.0.1:1", generation)
        async with TestClient(TestServer(make_app(standin))) as client:
            await check(client)
    asyncio.run(asyncio.wait_for(go(), 30))


async def _post(client: TestClient, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.post(path, data=json.dumps(body))
    return resp.status, json.loads(await resp.read())


def _path(chat: bool) -> str:
    return "/v1/chat/completions" if chat else "/v1/completions"


def _minimal(chat: bool) -> dict[str, Any]:
    return {"model": MODEL, "messages": MESSAGES, "max_tokens": 3} if chat else \
        {"model": MODEL, "prompt": "hi", "max_tokens": 3}


# --- the refusal rules, per release ---------------------------------------------------------------

@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_unknown_field_is_refused_in_upstreams_shape(generation, chat):
    async def check(client: TestClient) -> None:
        status, body = await _post(client, _path(chat), {**_minimal(chat), "foo": 1})
        assert status == 400
        assert body == {"object": "error", "type": "BadRequestError", "param": None, "code": 400,
                        "message": f"foo: Extra inputs are not permitted (TensorRT-LLM {generation})"}
        refused = parse_text(await (await client.get("/metrics")).text())[f"standin_refused_total{LABELS}"]
        assert refused == 1
    _run("aggregated", generation, check)


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_every_field_of_the_release_is_accepted(generation, chat):
    fields = capabilities(generation).request_fields(chat)
    body = {f: NEUTRAL.get(f) for f in fields}
    if chat:
        body.pop("max_completion_tokens")  # sent with its alias, max_tokens, below (both: refused)
        body["max_tokens"] = 4

    async def check(client: TestClient) -> None:
        status, resp = await _post(client, _path(chat), body)
        assert status == 200, resp
        assert resp["usage"]["completion_tokens"] == 4
    _run("aggregated", generation, check)


@pytest.mark.parametrize(("generation", "chat", "field", "accepted"), [
    ("1.2", False, "prompt_ignore_length", False),  # first read @319f5114a274, after release/1.2
    ("1.3", False, "prompt_ignore_length", True),
    ("1.2", True, "prompt_ignore_length", False),
    ("1.3", True, "prompt_ignore_length", True),
    ("1.1", True, "prompt_token_ids", False),  # first read @54cf7be08a35
    ("1.2", True, "prompt_token_ids", True),
    ("1.0", False, "lora_request", False),
    ("1.2", False, "lora_request", True),
    ("1.1", True, "cache_salt", False),
    ("1.2", True, "cache_salt", True),
    ("1.3", False, "prompt_token_ids", False),  # never a CompletionRequest field: the prompt carries ids
    ("1.3", True, "functions", False),  # OpenAI fields upstream never had
    ("1.3", True, "parallel_tool_calls", False),
    ("1.3", False, "suffix", True),
    ("1.3", True, "suffix", False),
])
def test_fields_follow_the_release(generation, chat, field, accepted):
    async def check(client: TestClient) -> None:
        status, body = await _post(client, _path(chat), {**_minimal(chat), field: None})
        assert (status == 200) is accepted, body
        if not accepted:
            assert body["message"] == f"{field}: Extra inputs are not permitted (TensorRT-LLM {generation})"
    _run("aggregated", generation, check)


def test_refusals_match_pydantic_with_extra_forbid():
    """The stand-in's emulation against pydantic itself: the release's fields as a model with
    ``extra="forbid"``, ``populate_by_name`` and the ``max_tokens`` alias, as upstream declares them."""
    from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

    class Base(BaseModel):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def model_of(chat: bool) -> type[BaseModel]:
        alias = {name: alias for alias, name in CHAT_FIELD_ALIASES.items()} if chat else {}
        spec: dict[str, Any] = {f: (Any, Field(default=None, validation_alias=alias.get(f)))
                                for f in capabilities(PINNED).request_fields(chat)}
        return create_model("Req", __base__=Base, **spec)

    def pydantic_extra(chat: bool, body: dict[str, Any]) -> list[str]:
        try:
            model_of(chat).model_validate(body)
        except ValidationError as exc:
            return [str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden"]
        return []

    cases = [(False, {"max_completion_tokens": 1}), (True, {"max_tokens": 1, "max_completion_tokens": 2}),
             (True, {"max_completion_tokens": 2}), (True, {"max_tokens": 2}), (False, {"a": 1, "b": 2}),
             (True, {"prompt": [1]}), (False, {"messages": []}), (True, {"z": 0, "cache_salt": "x", "y": 1})]

    async def check(client: TestClient) -> None:
        for chat, extra in cases:
            body = {**_minimal(chat), **extra}
            body.pop("max_tokens", None)
            body.update(extra)
            want = pydantic_extra(chat, body)
            status, resp = await _post(client, _path(chat), body)
            got = [part.split(":")[0] for part in resp["message"].split(" (TensorRT-LLM")[0].split("; ")] \
                if status == 400 else []
            assert got == want, (chat, extra, resp)
    _run("aggregated", PINNED, check)


@pytest.mark.parametrize(("chat", "opts", "accepted"), [
    (True, {}, False), (True, {"include_usage": True}, False), (True, None, True),
    (False, {}, True), (False, {"include_usage": True}, False), (False, None, True),
])
def test_stream_options_without_stream_as_upstreams_validators(chat, opts, accepted):
    async def check(client: TestClient) -> None:
        status, body = await _post(client, _path(chat), {**_minimal(chat), "stream": False, "stream_options": opts})
        assert (status == 200) is accepted, body
        if not accepted:
            assert "stream" in body["message"] and "true" in body["message"]
    _run("aggregated", PINNED, check)


def test_disaggregated_params_fields_still_checked_after_the_top_level():
    async def check(client: TestClient) -> None:
        body = {**_minimal(False), "disaggregated_params": {"request_type": "context_only", "disagg_request_id": 7}}
        status, resp = await _post(client, "/v1/completions", body)
        assert status == 400
        assert resp["message"].startswith("disaggregated_params.disagg_request_id: Extra inputs are not permitted")
    _run("context", PINNED, check)


# --- what our tiers build for workers, checked against the pinned release's fields ---------------

CLIENT_BODIES = [
    (False, {"model": MODEL, "prompt": "hello", "max_tokens": 5}),
    (False, {"model": MODEL, "prompt": [104, 105], "stream": True, "stream_options": {"include_usage": True},
             "temperature": 0.0, "top_p": 1.0, "stop": ["x"], "seed": 1, "n": 1, "user": "u"}),
    (False, {"model": MODEL, "prompt": [[104, 105]], "logprobs": None, "echo": False, "best_of": 1}),
    (True, {"model": MODEL, "messages": MESSAGES, "max_completion_tokens": 4, "stream": True,
            "stream_options": {"include_usage": True}, "tools": [], "tool_choice": None}),
    (True, {"model": MODEL, "messages": MESSAGES, "max_tokens": 4, "functions": None, "function_call": None,
            "parallel_tool_calls": False, "suffix": None, "prompt_logprobs": None, "chat_template": None}),
    (True, {"model": MODEL, "messages": MESSAGES, "stream": False, "stream_options": None}),
]


def _frontend() -> Frontend:
    return Frontend("http://r:8000", MODEL, ByteTokenizer(), 256, 16, 60)


@pytest.mark.parametrize(("chat", "client_body"), CLIENT_BODIES)
def test_bodies_our_tiers_send_have_only_fields_of_the_pinned_release(chat, client_body):
    caps = capabilities(PINNED)
    fields = set(caps.request_fields(chat)) | (set(CHAT_FIELD_ALIASES) if chat else set())
    fe = _frontend()
    sent = fe.prepare_chat(client_body) if chat else fe.prepare_completion(client_body)
    ctx = protocol.context_request(sent, 1, caps.disagg_request_id)
    ctx_resp = {"choices": [{"finish_reason": "length", "disaggregated_params": {
        "request_type": "context_only", "first_gen_tokens": [1], "ctx_request_id": 9, "encoded_opaque_state": "s",
        "draft_tokens": None}}], "prompt_token_ids": [1, 2]}
    gen = protocol.generation_request(sent, ctx_resp, 1, chat, caps.disagg_request_id)
    for body in (sent, ctx, gen):
        assert set(body) <= fields, sorted(set(body) - fields)
        if chat:
            assert not (set(CHAT_FIELD_ALIASES) & set(body) and set(CHAT_FIELD_ALIASES.values()) & set(body))
        if not body.get("stream"):
            assert not body.get("stream_options") and (not chat or body.get("stream_options") is None)


def test_frontend_refuses_stream_options_without_stream_before_any_work():
    fe = _frontend()
    for chat in (False, True):
        body = {**_minimal(chat), "stream": False, "stream_options": {"include_usage": True}}
        with pytest.raises(RequestError, match="stream_options can only be set if stream is true") as err:
            fe.prepare_chat(body) if chat else fe.prepare_completion(body)
        assert err.value.status == 400 and err.value.param == "stream_options"


# --- the chain: frontend -> router -> stand-ins of the pinned release ----------------------------

@pytest.fixture(scope="module")
def chains(cluster):
    pin = ("--trtllm-version", PINNED)
    worker = cluster.standin("aggregated", MODEL, extra=pin)
    agg_router = cluster.router("--workers", f"static://127.0.0.1:{worker.port}", *pin)
    ctx = cluster.standin("context", MODEL, extra=pin)
    gen = cluster.standin("generation", MODEL, extra=pin)
    dis_router = cluster.router("--context", f"static://127.0.0.1:{ctx.port}",
                                "--generation", f"static://127.0.0.1:{gen.port}", *pin)
    return {"aggregated": (cluster.frontend(agg_router.url, MODEL), [worker]),
            "disaggregated": (cluster.frontend(dis_router.url, MODEL), [ctx, gen])}


def _refused(workers) -> float:
    return sum(metrics(w.url + "/metrics")[f"standin_refused_total{LABELS}"] for w in workers)


@pytest.mark.parametrize("mode", ["aggregated", "disaggregated"])
def test_what_the_chain_sends_is_accepted_by_the_pinned_release(chains, mode):
    frontend, workers = chains[mode]
    client = openai.OpenAI(base_url=frontend.url + "/v1", api_key="unused", timeout=20, max_retries=0)
    before = _refused(workers)
    assert client.completions.create(model=MODEL, prompt="abc", max_tokens=4).choices[0].text == "abca"
    assert client.completions.create(model=MODEL, prompt=[104, 105], max_tokens=3).choices[0].text == "hih"
    chunks = list(client.completions.create(model=MODEL, prompt="kv", max_tokens=3, stream=True,
                                            stream_options={"include_usage": True}, temperature=0, seed=1))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "kvk" and chunks[-1].usage is not None
    chat = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
    assert chat.choices[0].message.content == "<|use"
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_completion_tokens=5, stream=True,
                                            stream_options={"include_usage": True}, top_p=1.0)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "<|use"
    # neutral values of parameters this tier refuses otherwise: dropped, not forwarded (1.2 lacks them)
    status, raw = http("POST", frontend.url + "/v1/chat/completions",
                       {"model": MODEL, "messages": MESSAGES, "max_tokens": 2, "parallel_tool_calls": False,
                        "functions": None, "suffix": None, "tools": [], "logprobs": False})
    assert status == 200, raw
    status, raw = http("POST", frontend.url + "/v2/models/llama/generate",
                       {"text_input": "ab", "parameters": {"max_tokens": 2, "top_k": 1}})
    assert status == 200 and json.loads(raw)["text_output"] == "ab"
    assert _refused(workers) == before  # not one request refused by a worker
    # the check is live: a field 1.2 lacks reaches the worker and comes back as its 400
    status, raw = http("POST", frontend.url + "/v1/completions", {"model": MODEL, "prompt": "x", "max_tokens": 1,
                                                                  "prompt_ignore_length": 0})
    assert status == 400
    assert "prompt_ignore_length: Extra inputs are not permitted" in json.loads(raw)["error"]["message"]
    assert _refused(workers) == before + 1


def test_stream_options_without_stream_holds_no_context_kv(chains):
    frontend, (ctx, _gen) = chains["disaggregated"]
    status, raw = http("POST", frontend.url + "/v1/completions",
                       {"model": MODEL, "prompt": "leak", "max_tokens": 4, "stream": False,
                        "stream_options": {"include_usage": True}})
    assert status == 400 and "stream_options" in json.loads(raw)["error"]["message"]
    wait_until(lambda: metrics(ctx.url + "/metrics")["standin_kv_held_requests"] == 0, 2, "no KV held")
