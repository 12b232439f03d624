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


# --- malformed context responses: each refused with the reason ---------------------------------


@pytest.mark.parametrize(
    ("choices", "reason"),
    [
        ([], "Context server returned 0 choices, expecting 1."),
        (None, "Context server returned 0 choices, expecting 1."),
        ([CTX_RESPONSE["choices"][0]] * 2, "Context server returned 2 choices, expecting 1."),
        ([{"text": "x", "disaggregated_params": "abc"}], "Context server did not return disaggregated params"),
    ],
)
def test_a_context_response_without_exactly_one_choice_with_params_is_refused(choices, reason):
    with pytest.raises(ValueError) as caught:
        protocol.verify_context_response({"id": "c", "choices": choices})
    assert str(caught.value) == reason


def test_context_params_without_the_request_ids_are_refused():
    for key in ("ctx_request_id", "disagg_request_id"):
        bad = json.loads(json.dumps(CTX_RESPONSE))
        del bad["choices"][0]["disaggregated_params"][key]
        with pytest.raises(ValueError) as caught:
            protocol.verify_context_response(bad)
        assert str(caught.value) == f"Invalid disaggregated params in context phase response: {key} is None"
    assert protocol.verify_context_response(CTX_RESPONSE) is CTX_RESPONSE["choices"][0]["disaggregated_params"]


def test_generation_request_refuses_a_malformed_context_response():
    with pytest.raises(ValueError, match="returned 2 choices"):
        protocol.generation_request({"prompt": "x"}, {"choices": CTX_RESPONSE["choices"] * 2}, 1, chat=False)


def test_generation_request_carries_the_routers_request_id():
    gen = protocol.generation_request({"prompt": "x"}, CTX_RESPONSE, 5, chat=False)
    assert gen["disaggregated_params"] == {**CTX_RESPONSE["choices"][0]["disaggregated_params"],
                                           "request_type": "generation_only", "disagg_request_id": 5}
    assert "prompt_token_ids" not in gen


# --- error bodies and SSE framing ------------------------------------------------------------


def test_error_bodies_have_the_upstream_and_openai_shapes():
    assert protocol.upstream_error("bad") == {"object": "error", "message": "bad", "type": "BadRequestError",
                                              "param": None, "code": 400}
    assert protocol.openai_error("bad body") == {  # what a malformed request gets: 400
        "error": {"message": "bad body", "type": "invalid_request_error", "param": None, "code": 400}}
    assert protocol.openai_error("gone", "service_unavailable", 503, "model") == {
        "error": {"message": "gone", "type": "service_unavailable", "param": "model", "code": 503}}


def test_error_message_of_other_shapes():
    assert protocol.error_message(b'{"error": "flat"}') == "flat"
    assert protocol.error_message(b'{"error": {"code": 1}}') == "{'code': 1}"
    assert protocol.error_message(b"[1, 2]") == "[1, 2]"
    assert protocol.error_message(b"x" * 600) == "x" * 500
    assert protocol.error_message(b'"' + b"y" * 600 + b'"') == "y" * 500
    assert protocol.error_message(b"\xff") == "\ufffd"


def test_sse_framing_and_compact_json():
    assert protocol.sse({"a": [1, "é"]}) == 'data: {"a":[1,"é"]}\n\n'.encode()
    assert protocol.dumps({"k": None}) == b'{"k":null}'


def test_sse_parser_keeps_only_data_lines_and_waits_for_the_blank_line():
    parser = protocol.SSEParser()
    assert parser.feed(b": comment\nevent: x\ndata: {\"a\":1}\n") == []
    assert parser.feed(b"\ndata:  2 \n\n") == [b'{"a":1}', b"2"]
    assert parser.feed(b"data:7\n\n") == [b"7"]  # the space after the colon is optional (SSE)
    assert list(protocol.iter_chunks(protocol.sse({"n": 1}) + protocol.DONE)) == [{"n": 1}]


def test_a_finished_chat_response_streams_as_one_chunk_then_usage():
    done = {"id": "c", "created": 2, "model": "m", "usage": {"total_tokens": 3},
            "choices": [{"index": 1, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    stream = protocol.response_as_stream(done, chat=True, include_usage=True)
    assert list(protocol.iter_chunks(stream)) == [
        {"id": "c", "created": 2, "model": "m", "object": "chat.completion.chunk",
         "choices": [{"index": 1, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]},
        {"id": "c", "created": 2, "model": "m", "object": "chat.completion.chunk", "choices": [],
         "usage": {"total_tokens": 3}},
    ]
    assert stream.endswith(protocol.DONE)
    no_usage = protocol.response_as_stream({**done, "usage": None}, chat=False, include_usage=True)
    assert [c["object"] for c in protocol.iter_chunks(no_usage)] == ["text_completion"]
    assert list(protocol.iter_chunks(protocol.response_as_stream(done, chat=False, include_usage=False)))[0][
        "choices"] == [{"index": 1, "text": "", "finish_reason": "stop"}]


def test_finished_response_keeps_everything_but_the_handoff_params():
    done = protocol.finished_response(CTX_RESPONSE)
    assert done["choices"] == [{"index": 0, "text": "h", "finish_reason": "length"}]
    assert {k: v for k, v in done.items() if k != "choices"} == {k: v for k, v in CTX_RESPONSE.items() if k != "choices"}
    assert "disaggregated_params" in CTX_RESPONSE["choices"][0]


def test_a_choice_without_an_index_streams_as_index_0():
    for chat, body in ((True, {"message": {"content": "x"}}), (False, {"text": "x"})):
        (chunk,) = protocol.iter_chunks(protocol.response_as_stream({"choices": [body]}, chat, include_usage=False))
        assert chunk["choices"][0]["index"] == 0 and chunk["id"] is None


# --- releases whose DisaggregatedParams has no disagg_request_id, and the remaining rules --------


def test_without_request_ids_neither_request_carries_one():
    ctx = protocol.context_request({"prompt": "x"}, 99, send_id=False)
    assert ctx["disaggregated_params"] == {"request_type": "context_only"}
    gen = protocol.generation_request({"prompt": "x"}, CTX_RESPONSE, 5, chat=False, send_id=False)
    params = {k: v for k, v in CTX_RESPONSE["choices"][0]["disaggregated_params"].items() if k != "disagg_request_id"}
    assert gen["disaggregated_params"] == {**params, "request_type": "generation_only"}


def test_without_request_ids_a_context_response_needs_only_ctx_request_id():
    bare = json.loads(json.dumps(CTX_RESPONSE))
    del bare["choices"][0]["disaggregated_params"]["disagg_request_id"]
    assert protocol.verify_context_response(bare, require_id=False) == bare["choices"][0]["disaggregated_params"]
    del bare["choices"][0]["disaggregated_params"]["ctx_request_id"]
    with pytest.raises(ValueError) as caught:
        protocol.verify_context_response(bare, require_id=False)
    assert str(caught.value) == "Invalid disaggregated params in context phase response: ctx_request_id is None"


def test_needs_generation_reads_the_first_choice_like_upstream():
    first, second = ({**CTX_RESPONSE["choices"][0], "finish_reason": r} for r in ("length", "stop"))
    assert protocol.needs_generation({"choices": [first, second]}) is True
    assert protocol.needs_generation({"choices": [second, first]}) is False


def test_usage_is_streamed_only_when_asked_for():
    done = protocol.finished_response(CTX_RESPONSE)
    assert protocol.response_as_stream(done, chat=False, include_usage=False) == (
        b'data: {"id":"cmpl-1","created":1,"model":"m","object":"text_completion",'
        b'"choices":[{"index":0,"text":"h","finish_reason":"length"}]}\n\n' + protocol.DONE
    )
