"""The OpenAI-compatible wire protocol of ``trtllm-serve``, as the runtime tiers speak it.

Mirrors (read, not copied) NVIDIA/TensorRT-LLM:
- ``tensorrt_llm/serve/openai_protocol.py`` @0076e9390e1e: ``CompletionRequest.prompt`` is a string
  or token ids, ``ChatCompletionRequest.prompt_token_ids``, ``DisaggregatedParams`` (request_type
  ``context_only``/``generation_only``, first_gen_tokens, ctx_request_id, encoded_opaque_state,
  draft_tokens, disagg_request_id), ``CompletionResponse.prompt_token_ids``, choice-level
  ``disaggregated_params``, stream chunk objects ``text_completion`` / ``chat.completion.chunk``,
  ``UsageInfo`` and the flat ``ErrorResponse`` {object: "error", message, type, param, code}.
- ``tensorrt_llm/serve/openai_server.py`` @e7f7345e31e5: SSE framing ``data: <json>\\n\\n`` and a
  final ``data: [DONE]\\n\\n``.
- ``tensorrt_llm/serve/openai_disagg_service.py`` @319f5114a274: the context-first handoff
  (``_get_ctx_request``: same request with ``disaggregated_params={request_type: context_only,
  disagg_request_id}``, ``stream: false``, no ``stream_options``; ``_get_gen_request``: the
  context choice's ``disaggregated_params`` switched to ``generation_only``, the prompt replaced
  by the context response's ``prompt_token_ids``; ``_need_gen``: generation is skipped only when
  the context finish_reason is neither ``length`` nor ``not_finished``), same on @00bb903d965f.

``disagg_request_id`` is sent only where the release's ``DisaggregatedParams`` has it
(``runtime/capabilities.py``): the model forbids unknown fields. Generation is never skipped on
any other ground: a context_only request that did not finish holds its KV blocks until a
generation server pulls them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

CONTEXT_ONLY = "context_only"
GENERATION_ONLY = "generation_only"
DONE = b"data: [DONE]\n\n"
SSE_CONTENT_TYPE = "text/event-stream"
JSON_CONTENT_TYPE = "application/json"
SSE_HEADERS = {"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes (the encoding every tier uses on the wire)."""
    return _dumps(obj).encode()


def sse(obj: Any) -> bytes:
    """One SSE event carrying ``obj`` as JSON."""
    return b"data: " + dumps(obj) + b"\n\n"


def upstream_error(message: str, err_type: str = "BadRequestError", code: int = 400) -> dict[str, Any]:
    """``trtllm-serve``'s flat ``ErrorResponse`` body."""
    return {"object": "error", "message": message, "type": err_type, "param": None, "code": code}


def openai_error(message: str, err_type: str = "invalid_request_error", code: int = 400,
                 param: str | None = None) -> dict[str, Any]:
    """The OpenAI API error object (what the ``openai`` client raises from)."""
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def error_message(body: bytes) -> str:
    """The human message of an error body in either shape (or the raw text)."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:500]
    if isinstance(obj, dict):
        if isinstance(obj.get("error"), dict):
            return str(obj["error"].get("message", obj["error"]))
        if "message" in obj:
            return str(obj["message"])
        if "error" in obj:
            return str(obj["error"])
    return str(obj)[:500]


class SSEParser:
    """Incremental SSE splitter: feed bytes, get the ``data:`` payloads of complete events."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data
        events = buf.split(b"\n\n")
        self._buf = events.pop()
        out = []
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    out.append(line[5:].strip())
        return out


def iter_chunks(stream_body: bytes) -> Iterator[Any]:
    """Parsed JSON of every event in a complete SSE body, ``[DONE]`` excluded (tests)."""
    for payload in SSEParser().feed(stream_body + b"\n\n"):
        if payload != b"[DONE]":
            yield json.loads(payload)


# --- disaggregated handoff (context-first, as upstream's OpenAIDisaggregatedService) -----------

def context_request(body: dict[str, Any], disagg_request_id: int, send_id: bool = True) -> dict[str, Any]:
    """The request a context server gets: same body, context_only, not streamed."""
    ctx = dict(body)
    params: dict[str, Any] = {"request_type": CONTEXT_ONLY}
    if send_id:
        params["disagg_request_id"] = disagg_request_id
    ctx["disaggregated_params"] = params
    ctx["stream"] = False
    ctx.pop("stream_options", None)
    return ctx


def verify_context_response(resp: dict[str, Any], require_id: bool = True) -> dict[str, Any]:
    """The context choice's disaggregated_params, or ValueError naming what is missing."""
    choices = resp.get("choices") or []
    if len(choices) != 1:
        raise ValueError(f"Context server returned {len(choices)} choices, expecting 1.")
    params = choices[0].get("disaggregated_params")
    if not isinstance(params, dict):
        raise ValueError("Context server did not return disaggregated params")
    for key in ("ctx_request_id", "disagg_request_id") if require_id else ("ctx_request_id",):
        if params.get(key) is None:
            raise ValueError(f"Invalid disaggregated params in context phase response: {key} is None")
    return params


def needs_generation(ctx_resp: dict[str, Any]) -> bool:
    """Whether the generation server must continue: upstream's ``_need_gen`` (module docstring)."""
    return ctx_resp["choices"][0].get("finish_reason") in ("length", "not_finished")


def generation_request(body: dict[str, Any], ctx_resp: dict[str, Any], disagg_request_id: int,
                       chat: bool, send_id: bool = True) -> dict[str, Any]:
    """The request a generation server gets: the context params as generation_only + prompt ids."""
    gen = dict(body)
    params = dict(verify_context_response(ctx_resp, send_id))
    params["request_type"] = GENERATION_ONLY
    if send_id:
        params["disagg_request_id"] = disagg_request_id
    else:
        params.pop("disagg_request_id", None)
    gen["disaggregated_params"] = params
    if chat:
        gen["prompt_token_ids"] = ctx_resp.get("prompt_token_ids")
    else:
        gen["prompt"] = ctx_resp.get("prompt_token_ids")
    return gen


def finished_response(ctx_resp: dict[str, Any]) -> dict[str, Any]:
    """A context response that finished the request, without its handoff params (as upstream)."""
    resp = dict(ctx_resp)
    resp["choices"] = [{k: v for k, v in c.items() if k != "disaggregated_params"}
                       for c in ctx_resp.get("choices", [])]
    return resp


def response_as_stream(resp: dict[str, Any], chat: bool, include_usage: bool) -> bytes:
    """A complete (non-streamed) response re-framed as the SSE stream a client asked for."""
    out = []
    base = {"id": resp.get("id"), "created": resp.get("created"), "model": resp.get("model")}
    for choice in resp.get("choices", []):
        if chat:
            content = (choice.get("message") or {}).get("content") or ""
            out.append(sse({**base, "object": "chat.completion.chunk", "choices": [
                {"index": choice.get("index", 0), "delta": {"role": "assistant", "content": content},
                 "finish_reason": choice.get("finish_reason")}]}))
        else:
            out.append(sse({**base, "object": "text_completion", "choices": [
                {"index": choice.get("index", 0), "text": choice.get("text", ""),
                 "finish_reason": choice.get("finish_reason")}]}))
    if include_usage and resp.get("usage"):
        obj = "chat.completion.chunk" if chat else "text_completion"
        out.append(sse({**base, "object": obj, "choices": [], "usage": resp["usage"]}))
    out.append(DONE)
    return b"".join(out)
