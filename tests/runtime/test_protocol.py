"""The disaggregated handoff and SSE helpers (runtime/protocol.py), without processes."""

from __future__ import annotations

import json

import pytest

from runtime import protocol

CTX_RESPONSE = {
    "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "text": "h", "finish_reason": "length", "disaggregated_params": {
        "request_type": "context_only", "first_gen_tokens": [104], "ctx_request_id": 7,
        "encoded_opaque_state": "abc.def", "draft_tokens": None, "disagg_request_id": 99}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    "prompt_token_ids": [104, 101, 108, 108, 111],
}


def test_context_request_is_context_only_and_not_streamed():
    body = {"model": "m", "prompt": "hello", "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": 5}
    ctx = protocol.context_request(body, 99)
    assert ctx["disaggregated_params"] == {"request_type": "context_only", "disagg_request_id": 99}
    assert ctx["stream"] is False
    assert "stream_options" not in ctx
    assert ctx["max_tokens"] == 5  # upstream keeps the request's max_tokens
    assert body["stream"] is True  # the original is untouched


def test_generation_request_switches_params_and_replaces_prompt_with_ids():
    body = {"model": "m", "prompt": "hello", "stream": True, "max_tokens": 5}
    gen = protocol.generation_request(body, CTX_RESPONSE, 99, chat=False)
    assert gen["prompt"] == [104, 101, 108, 108, 111]
    assert gen["stream"] is True
    assert gen["disaggregated_params"]["request_type"] == "generation_only"
    assert gen["disaggregated_params"]["ctx_request_id"] == 7
    assert gen["disaggregated_params"]["encoded_opaque_state"] == "abc.def"
    assert gen["disaggregated_params"]["first_gen_tokens"] == [104]
    assert CTX_RESPONSE["choices"][0]["disaggregated_params"]["request_type"] == "context_only"


def test_generation_request_for_chat_sets_prompt_token_ids():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    gen = protocol.generation_request(body, CTX_RESPONSE, 99, chat=True)
    assert gen["prompt_token_ids"] == [104, 101, 108, 108, 111]
    assert gen["messages"] == body["messages"]


@pytest.mark.parametrize(("finish", "expected"), [
    ("length", True), ("not_finished", True), ("stop", False), (None, False)])
def test_needs_generation_only_skips_a_finished_context_phase_like_upstream(finish, expected):
    resp = {"choices": [{**CTX_RESPONSE["choices"][0], "finish_reason": finish}]}
    assert protocol.needs_generation(resp) is expected


def test_verify_context_response_names_the_missing_field():
    bad = json.loads(json.dumps(CTX_RESPONSE))
    bad["choices"][0]["disaggregated_params"]["ctx_request_id"] = None
    with pytest.raises(ValueError, match="ctx_request_id is None"):
        protocol.verify_context_response(bad)
    with pytest.raises(ValueError, match="did not return disaggregated params"):
        protocol.verify_context_response({"choices": [{"text": "x"}]})


def test_finished_response_drops_handoff_params_and_streams_as_sse():
    done = protocol.finished_response(CTX_RESPONSE)
    assert "disaggregated_params" not in done["choices"][0]
    chunks = list(protocol.iter_chunks(protocol.response_as_stream(done, chat=False, include_usage=True)))
    assert [c["choices"][0]["text"] for c in chunks[:1]] == ["h"]
    assert chunks[-1]["usage"]["completion_tokens"] == 1
    assert protocol.response_as_stream(done, chat=False, include_usage=False).endswith(b"data: [DONE]\n\n")


def test_sse_parser_reassembles_events_split_across_reads():
    parser = protocol.SSEParser()
    stream = protocol.sse({"a": 1}) + protocol.sse({"b": "x y"}) + protocol.DONE
    out = []
    for i in range(0, len(stream), 7):
        out += parser.feed(stream[i:i + 7])
    assert out == [b'{"a":1}', b'{"b":"x y"}', b"[DONE]"]


def test_error_message_reads_both_error_shapes():
    assert protocol.error_message(protocol.dumps(protocol.upstream_error("bad prompt"))) == "bad prompt"
    assert protocol.error_message(protocol.dumps(protocol.openai_error("no model", code=404))) == "no model"
    assert protocol.error_message(b"plain") == "plain"
