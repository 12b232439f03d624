"""The CPU frontend tier: OpenAI and KServe v2 HTTP in front of the router.

``python -m runtime.frontend --host 0.0.0.0 --port 8000 --router http://<router svc>:8000
--served-model-name <name> --tokenizer <model dir | bytes> --max-seq-len N --default-max-tokens N``

The frontend tokenizes (and applies the chat template), so workers receive token ids:
completions as a token-id ``prompt``, chat as ``prompt_token_ids`` (upstream
``ChatCompletionRequest.prompt_token_ids``, ``openai_protocol.py`` @0076e9390e1e). It fills in
``max_tokens`` (default ``--default-max-tokens``, capped at ``--max-seq-len`` minus the prompt) and
refuses requests that cannot fit. OpenAI SSE streams from the router are relayed byte for byte
(``runtime/upstream.py``); only the KServe ``generate_stream`` route decodes each chunk, to re-frame
it as ``{"model_name", "model_version", "text_output"}``
(triton-inference-server/server ``docs/protocol/extension_generate.md`` @0bd93bc80166).
Errors use the OpenAI error object on ``/v1`` and ``{"error": msg}`` on ``/v2``.

Hostile input (issue 21) is refused before any work: admission (``--max-inflight``, 429 with
``Retry-After``), per-route body limits and read timeouts, JSON depth, strict types (``stream``
is a boolean), token-id prompts checked against ``--max-seq-len`` and the vocabulary, and the
parameters this tier cannot honour (:data:`UNSUPPORTED`: tools, logprobs, ...) refused with 400
instead of silently dropped (their empty values are dropped: upstream's request models forbid
fields they lack, :func:`upstream_body`). Upstream 5xx text and internal addresses never reach a
client: the client gets a request id, the log gets the detail. ``--router`` takes one or more URLs; a
refused connection is retried on the next one (another router replica).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from . import protocol
from .limits import Admission, RejectedError, openai_errors, parse_json, read_body, request_id
from .metrics import Registry
from .serve import BODY_TIMEOUT_S, Lifecycle, add_serving_flags, check_serving_flags, run
from .tokenizer import Tokenizer, load_tokenizer
from .upstream import ConnectionPool, Timeouts, Upstream, UpstreamError, UpstreamTimeoutError

log = logging.getLogger("runtime.frontend")
TTFT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MODEL_VERSION = "1"
KSERVE_PARAMETERS = frozenset({
    "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stop_token_ids", "ignore_eos",
    "min_tokens", "frequency_penalty", "presence_penalty", "repetition_penalty", "length_penalty",
    "skip_special_tokens", "include_stop_str_in_output", "logprobs", "n", "best_of", "use_beam_search",
})
"""generate parameters passed to ``/v1/completions`` (upstream ``CompletionRequest`` fields)."""
UNSUPPORTED = {
    "tools": "tool calling is not supported by this deployment (the chat template is applied without tools)",
    "tool_choice": "tool calling is not supported by this deployment",
    "functions": "function calling is not supported by this deployment",
    "function_call": "function calling is not supported by this deployment",
    "parallel_tool_calls": "tool calling is not supported by this deployment",
    "logprobs": "logprobs are not supported by this deployment",
    "top_logprobs": "logprobs are not supported by this deployment",
    "prompt_logprobs": "logprobs are not supported by this deployment",
    "logit_bias": "logit_bias is not supported by this deployment",
    "echo": "echo is not supported by this deployment",
    "suffix": "suffix is not supported by this deployment",
    "response_format": "response_format other than text is not supported by this deployment",
    "best_of": "best_of is not supported by this deployment",
    "use_beam_search": "beam search is not supported by this deployment",
    "chat_template": "a request-supplied chat template is not supported (the model's template applies)",
}
"""Parameters refused with 400 when set to anything but their neutral value (:func:`check_params`)."""
_NEUTRAL: tuple[Any, ...] = (None, False, 0, [], {}, {"type": "text"})


class RequestError(Exception):
    def __init__(self, message: str, status: int = 400, err_type: str = "invalid_request_error",
                 param: str | None = None, code: Any = None, retry_after: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.err_type = err_type
        self.param = param
        self.code = code if code is not None else status


def resolve_max_tokens(requested: Any, prompt_len: int, max_seq_len: int, default_max_tokens: int) -> int:
    """``max_tokens`` to send: the request's, or the default capped at what the sequence leaves."""
    room = max_seq_len - prompt_len
    if room < 1:
        raise RequestError(f"the prompt has {prompt_len} tokens, which leaves no room for output within "
                           f"max_seq_len {max_seq_len}: shorten the prompt", param="messages")
    if requested is None:
        return min(default_max_tokens, room)
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise RequestError(f"max_tokens must be a positive integer, got {str(requested)[:40]!r}", param="max_tokens")
    if requested > room:
        raise RequestError(f"max_tokens {requested} + prompt {prompt_len} tokens exceeds max_seq_len "
                           f"{max_seq_len}: ask for at most {room} tokens", param="max_tokens")
    return requested


def check_params(body: dict[str, Any]) -> None:
    """400 for an unsupported parameter, or a wrongly typed one this tier reads."""
    for key, why in UNSUPPORTED.items():
        value = body.get(key)
        if key == "best_of" and value == 1:
            continue
        if not any(value is n or (type(value) is type(n) and value == n) for n in _NEUTRAL):
            raise RequestError(f"{key}: {why}; remove it from the request", param=key)
    if "stream" in body and not isinstance(body["stream"], bool) and body["stream"] is not None:
        raise RequestError(f"stream must be a boolean, got {type(body['stream']).__name__}", param="stream")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise RequestError("stream_options must be an object", param="stream_options")
    n = body.get("n", 1)
    if n is not None and (type(n) is not int or n != 1):
        raise RequestError(f"n must be 1 (one choice per request), got {str(n)[:20]}", param="n")


def upstream_body(body: dict[str, Any]) -> dict[str, Any]:
    """The client's body as workers get it, after :func:`check_params`: :data:`UNSUPPORTED` keys with
    an empty value (null, false, 0, [], {}, text format, ``best_of: 1``) are dropped, since upstream's
    request models forbid extra fields and several (``functions``, ``function_call``,
    ``parallel_tool_calls``, ``prompt_logprobs``, chat ``suffix``) are no field of any release
    (``runtime/capabilities.py`` ``chat_fields``); a non-streamed request's ``stream_options`` is
    refused when set (upstream's ``validate_stream_options``: the context phase would accept it and
    the generation phase refuse it, after the context server took the KV) and dropped when empty."""
    out = {k: v for k, v in body.items()
           if not (k in UNSUPPORTED and (_empty(v) or (k == "best_of" and v == 1 and type(v) is int)))}
    if not out.get("stream"):
        if out.get("stream_options"):
            raise RequestError("stream_options can only be set if stream is true", param="stream_options")
        out.pop("stream_options", None)
    return out


def _empty(value: Any) -> bool:
    return value is None or value is False or (type(value) is int and value == 0) or \
        (type(value) in (list, dict) and not value) or value == {"type": "text"}


def check_ids(ids: list[Any], vocab_size: int, max_seq_len: int) -> list[int]:
    """Token ids as given, or 400: integers within the vocabulary, fewer than ``max_seq_len``."""
    if len(ids) >= max_seq_len:
        raise RequestError(f"prompt has {len(ids)} token ids; max_seq_len {max_seq_len} leaves room for at most "
                           f"{max_seq_len - 1}", param="prompt")
    for i in ids:
        if type(i) is not int or not 0 <= i < vocab_size:
            raise RequestError(f"token id {str(i)[:24]} is not an integer in [0, {vocab_size}) (the vocabulary)",
                               param="prompt")
    return ids


def completion_prompt_ids(prompt: Any, tokenizer: Tokenizer, vocab_size: int = 1 << 31,
                          max_seq_len: int = 1 << 31) -> list[int]:
    """Token ids of a completions ``prompt`` (one string or one token-id list)."""
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise RequestError("prompt must not be empty", param="prompt")
        try:
            return tokenizer.encode(prompt)
        except UnicodeError:
            raise RequestError("prompt is not valid Unicode text (lone surrogate?)", param="prompt") from None
    if isinstance(prompt, list) and prompt and all(isinstance(i, int) and not isinstance(i, bool) for i in prompt):
        return check_ids(prompt, vocab_size, max_seq_len)
    raise RequestError("prompt must be one non-empty string or one list of token ids (batched prompts are "
                       "not supported: send one request per prompt)", param="prompt")


def _vocab_size(tok: Tokenizer) -> int:
    """The tokenizer's vocabulary size (256 for ``bytes``)."""
    inner = getattr(tok, "_tok", None)
    if inner is not None:
        return len(inner)
    return 256


class Frontend:
    def __init__(self, router_url: str, model: str, tokenizer: Tokenizer, max_seq_len: int,
                 default_max_tokens: int, timeouts: Timeouts | float | None = None,
                 admission: Admission | None = None, lifecycle: Lifecycle | None = None,
                 vocab_size: int | None = None, max_body_bytes: int | None = None,
                 body_timeout: float = BODY_TIMEOUT_S) -> None:
        self.routers = [u.strip().rstrip("/") for u in router_url.split(",") if u.strip()]
        self.router = self.routers[0]
        self._next_router = 0
        self.model = model
        self.tok = tokenizer
        self.max_seq_len = max_seq_len
        self.default_max_tokens = default_max_tokens
        self.timeouts = timeouts if isinstance(timeouts, Timeouts) else Timeouts(total=timeouts or Timeouts().total)
        self.admission = admission or Admission(1024)
        self.lifecycle = lifecycle or Lifecycle()
        self.vocab_size = vocab_size or _vocab_size(tokenizer)
        # A token-id prompt of max_seq_len ids, ~12 bytes each, plus room for text and parameters.
        self.max_body_bytes = max_body_bytes or max(1 << 20, 12 * max_seq_len + (256 << 10))
        self.body_timeout = body_timeout
        self.conns = ConnectionPool()
        self.session: aiohttp.ClientSession | None = None
        reg = self.registry = Registry()
        self.m_inflight = reg.gauge("frontend_requests_in_flight", "Requests being served")
        self.m_requests = reg.counter("frontend_requests_total", "Requests answered, by route and status code")
        self.m_prompt = reg.counter("frontend_prompt_tokens_total", "Prompt tokens after tokenization")
        self.m_output = reg.counter("frontend_output_tokens_total",
                                    "Output tokens: usage of full responses, one per streamed content chunk")
        self.m_ttft = reg.histogram("frontend_time_to_first_token_seconds",
                                    "Request received to first streamed bytes (full responses: to the response)",
                                    TTFT_BUCKETS, (("model_name", model),))
        self.m_inflight.set(0)

    async def start(self, app: web.Application) -> AsyncIterator[None]:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))  # readiness checks only
        yield
        await self.session.close()
        self.conns.close()

    # --- helpers -------------------------------------------------------------------------
    def _error(self, exc: RequestError) -> web.Response:
        body = protocol.openai_error(str(exc), exc.err_type, exc.code, exc.param)
        return web.json_response(body, status=exc.status, headers={"Retry-After": "1"} if exc.retry_after else None)

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            return await parse_json(await read_body(request, self.max_body_bytes, self.body_timeout))
        except RejectedError as exc:
            raise RequestError(str(exc), exc.status, exc.err_type) from None

    def _check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model is not None and model != self.model:
            raise RequestError(f"The model `{str(model)[:80]}` does not exist; this endpoint serves `{self.model}`",
                               404, "invalid_request_error", "model", "model_not_found")

    async def _open(self, path: str, body: dict[str, Any], stream: bool, rid: str, prompt_tokens: int) -> Upstream:
        """The router's answer (status line and headers): a refused connection goes to the next
        router URL; errors are sanitized (the log keeps the detail, with the request id)."""
        try:
            raw = protocol.dumps(body)
        except UnicodeError:
            raise RequestError("request contains text that is not valid Unicode (lone surrogate?)") from None
        headers = {"X-Request-Id": rid, "X-Prompt-Tokens": str(prompt_tokens)}
        last: Exception | None = None
        for _ in range(len(self.routers) + 1):
            url = self.routers[self._next_router % len(self.routers)]
            try:
                up = await Upstream.open(self.conns, url, path, raw, self.timeouts, stream, headers)
            except (OSError, asyncio.TimeoutError) as exc:
                last = exc
                self._next_router += 1  # the next attempt (and request) tries another replica
                continue
            except UpstreamTimeoutError as exc:
                log.warning("request %s: router %s: %s", rid, url, exc)
                raise RequestError(f"the model server timed out (request id {rid})", 504, "timeout") from None
            except UpstreamError as exc:
                log.warning("request %s: router %s: %s", rid, url, exc)
                raise RequestError(f"the model server failed (request id {rid})", 502, "upstream_error") from None
            if up.status != 200:
                raise self._upstream_error(up.status, await up.read(), rid, up.retry_after)
            return up
        log.warning("request %s: no router accepted the connection: %s", rid, last)
        raise RequestError(f"no model server available; retry shortly (request id {rid})", 503,
                           "service_unavailable", retry_after=True)

    # --- OpenAI ------------------------------------------------------------------------------
    def prepare_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        check_params(body)
        ids = completion_prompt_ids(body.get("prompt"), self.tok, self.vocab_size, self.max_seq_len)
        out = upstream_body(body)
        out["model"] = self.model
        out["prompt"] = ids
        out["max_tokens"] = resolve_max_tokens(body.get("max_tokens"), len(ids), self.max_seq_len,
                                               self.default_max_tokens)
        self.m_prompt.inc(len(ids))
        return out

    def prepare_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        check_params(body)
        if body.get("prompt_token_ids") is not None:
            raise RequestError("prompt_token_ids is set by this tier; send messages", param="prompt_token_ids")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise RequestError("messages must be a non-empty list of message objects", param="messages")
        try:
            ids = self.tok.chat_ids(messages, bool(body.get("add_generation_prompt", True)))
        except (ValueError, TypeError, UnicodeError, AttributeError) as exc:
            raise RequestError(f"messages: {str(exc)[:200]}", param="messages") from None
        out = upstream_body(body)
        requested = out.pop("max_completion_tokens", None)
        if requested is None:
            requested = body.get("max_tokens")
        out["model"] = self.model
        out["prompt_token_ids"] = ids
        out["max_tokens"] = resolve_max_tokens(requested, len(ids), self.max_seq_len, self.default_max_tokens)
        self.m_prompt.inc(len(ids))
        return out

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._openai(request, "/v1/completions", self.prepare_completion, chat=False)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._openai(request, "/v1/chat/completions", self.prepare_chat, chat=True)

    async def _openai(self, request: web.Request, path: str, prepare: Any, chat: bool) -> web.StreamResponse:
        t0 = time.monotonic()
        rid = request_id(request)
        status = 500
        try:
            await self.admission.acquire()
        except RejectedError as exc:
            self.m_requests.inc(1, (("code", "429"), ("route", path)))
            return web.json_response(protocol.openai_error(str(exc), exc.err_type, exc.status), status=exc.status,
                                     headers=exc.headers)
        self.m_inflight.inc()
        try:
            body = prepare(await self._json(request))
            tokens = len(body.get("prompt_token_ids") or body.get("prompt") or ())
            if body.get("stream"):
                resp = await self._openai_stream(request, path, body, chat, t0, rid, tokens)
                status = resp.status
                return resp
            up = await self._open(path, body, False, rid, tokens)
            status = up.status
            try:
                raw = await up.read()
            except UpstreamError as exc:
                log.warning("request %s: %s", rid, exc)
                kind = ("the model server timed out", 504, "timeout") if isinstance(exc, UpstreamTimeoutError) else \
                    ("the model server failed", 502, "upstream_error")
                raise RequestError(f"{kind[0]} (request id {rid})", kind[1], kind[2]) from None
            self.m_ttft.observe(time.monotonic() - t0)
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.m_output.inc(json.loads(raw)["usage"]["completion_tokens"])
            return web.Response(body=raw, content_type=protocol.JSON_CONTENT_TYPE)
        except RequestError as exc:
            status = exc.status
            return self._error(exc)
        finally:
            self.admission.release()
            self.m_inflight.dec()
            self.m_requests.inc(1, (("code", str(status)), ("route", path)))

    def _upstream_error(self, status: int, raw: bytes, rid: str, retry_after: str | None = None) -> RequestError:
        """4xx messages (about the request) pass, trimmed; 5xx become a request id (logged)."""
        message = protocol.error_message(raw)
        if 400 <= status < 500:
            return RequestError(message[:500], status, "rate_limit_exceeded" if status == 429 else "invalid_request_error",
                                retry_after=status == 429)
        log.warning("request %s: upstream %d: %s", rid, status, message[:300])
        if status == 503:
            return RequestError(f"no model server available; retry shortly (request id {rid})", 503,
                                "service_unavailable", retry_after=True)
        if status == 504:
            return RequestError(f"the model server timed out (request id {rid})", 504, "timeout")
        return RequestError(f"the model server failed (request id {rid})", 502, "upstream_error")

    async def _openai_stream(self, request: web.Request, path: str, body: dict[str, Any], chat: bool,
                             t0: float, rid: str = "", tokens: int = 0) -> web.StreamResponse:
        up = await self._open(path, body, True, rid, tokens)
        counter = _StreamCounter(t0, self.m_ttft, chat)
        try:
            return await up.relay(request, counter)
        finally:
            self.m_output.inc(counter.tokens)

    async def models(self, request: web.Request) -> web.Response:
        card = {"id": self.model, "object": "model", "created": 0, "owned_by": "tensorrt_llm"}
        return web.json_response({"object": "list", "data": [card]})

    # --- KServe v2 -----------------------------------------------------------------------------
    def _v2_model(self, request: web.Request) -> str:
        name = request.match_info["model"]
        if name != self.model:
            raise web.HTTPNotFound(text=json.dumps({"error": f"unknown model '{name[:80]}'; this endpoint "
                                                    f"serves '{self.model}'"}), content_type=protocol.JSON_CONTENT_TYPE)
        version = request.match_info.get("version")
        if version not in (None, MODEL_VERSION):
            raise web.HTTPNotFound(text=json.dumps({"error": f"unknown version '{version[:20]}' of model "
                                                    f"'{name}'; available: {MODEL_VERSION}"}),
                                   content_type=protocol.JSON_CONTENT_TYPE)
        return name

    async def _router_ready(self) -> bool:
        assert self.session is not None
        try:
            for url in self.routers:
                async with self.session.get(url + "/health") as r:
                    if r.status == 200:
                        return True
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            pass
        return False

    async def v2_live(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def v2_ready(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if await self._router_ready() else 503)

    async def v2_model_ready(self, request: web.Request) -> web.Response:
        self._v2_model(request)
        return web.Response(status=200 if await self._router_ready() else 503)

    async def v2_metadata(self, request: web.Request) -> web.Response:
        name = self._v2_model(request)
        return web.json_response({
            "name": name, "versions": [MODEL_VERSION], "platform": "tensorrt_llm",
            "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1]}],
            "outputs": [{"name": "text_output", "datatype": "BYTES", "shape": [-1]}],
        })

    def generate_to_completion(self, body: dict[str, Any], stream: bool) -> dict[str, Any]:
        """A KServe generate request as a completions request (parameters, then top-level keys)."""
        text = body.get("text_input")
        if not isinstance(text, str) or not text:
            raise RequestError("text_input must be a non-empty string", param="text_input")
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise RequestError("parameters must be an object", param="parameters")
        merged = {k: v for k, v in body.items() if k not in ("text_input", "parameters")}
        merged.update(params)
        merged.pop("stream", None)
        unknown = sorted(set(merged) - KSERVE_PARAMETERS)
        if unknown:
            raise RequestError(f"unsupported generate parameter(s) {', '.join(unknown)[:200]}; supported: "
                               f"{', '.join(sorted(KSERVE_PARAMETERS))}", param=unknown[0])
        return self.prepare_completion({**merged, "prompt": text, "stream": stream})

    async def v2_generate(self, request: web.Request) -> web.StreamResponse:
        return await self._v2(request, stream=False)

    async def v2_generate_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._v2(request, stream=True)

    async def _v2(self, request: web.Request, stream: bool) -> web.StreamResponse:
        t0 = time.monotonic()
        rid = request_id(request)
        route = "/v2/generate_stream" if stream else "/v2/generate"
        status = 500
        try:
            await self.admission.acquire()
        except RejectedError as exc:
            self.m_requests.inc(1, (("code", "429"), ("route", route)))
            return web.json_response({"error": str(exc)}, status=exc.status, headers=exc.headers)
        self.m_inflight.inc()
        try:
            name = self._v2_model(request)
            body = self.generate_to_completion(await self._json(request), stream)
            up = await self._open("/v1/completions", body, stream, rid, len(body["prompt"]))
            status = up.status
            head = {"model_name": name, "model_version": MODEL_VERSION}
            if not stream:
                try:
                    resp = json.loads(await up.read())
                except (UpstreamError, ValueError) as exc:
                    log.warning("request %s: %s", rid, exc)
                    raise RequestError(f"the model server failed (request id {rid})", 502, "upstream_error") from None
                self.m_ttft.observe(time.monotonic() - t0)
                self.m_output.inc(resp.get("usage", {}).get("completion_tokens", 0))
                return web.json_response({**head, "text_output": resp["choices"][0]["text"]})
            return await self._v2_stream(request, up, head, t0, rid)
        except RequestError as exc:
            status = exc.status
            return web.json_response({"error": str(exc)}, status=exc.status,
                                     headers={"Retry-After": "1"} if exc.retry_after else None)
        finally:
            self.admission.release()
            self.m_inflight.dec()
            self.m_requests.inc(1, (("code", str(status)), ("route", route)))

    async def _v2_stream(self, request: web.Request, up: Upstream, head: dict[str, Any], t0: float,
                         rid: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={**protocol.SSE_HEADERS, "Content-Type": "text/event-stream; charset=utf-8"})
        parser = protocol.SSEParser()
        first = True
        tokens = 0
        try:
            await resp.prepare(request)
            async for data in up.iter_body():
                out = []
                for payload in parser.feed(data):
                    if payload == b"[DONE]":
                        continue
                    chunk = json.loads(payload)
                    if "error" in chunk or chunk.get("object") == "error":
                        log.warning("request %s: stream error event: %s", rid, protocol.error_message(payload)[:300])
                        out.append(protocol.sse({"error": f"the model server failed mid-stream (request id {rid})"}))
                        continue
                    for choice in chunk.get("choices", ()):
                        tokens += 1
                        item = {**head, "text_output": choice.get("text", "")}
                        if choice.get("finish_reason"):
                            item["finish_reason"] = choice["finish_reason"]
                        out.append(protocol.sse(item))
                if out:
                    if first:
                        self.m_ttft.observe(time.monotonic() - t0)
                        first = False
                    await resp.write(b"".join(out))
        except UpstreamError as exc:
            log.warning("request %s: %s", rid, exc)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await resp.write(protocol.sse({"error": f"the model server failed mid-stream (request id {rid})"}))
        finally:
            up.close()
            self.m_output.inc(tokens)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp

    # --- status ------------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        """200 while serving, 503 once draining (readiness off before the listener closes)."""
        return web.Response(status=503 if self.lifecycle.draining else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.registry.render(), headers={"Content-Type": self.registry.content_type})


class _StreamCounter:
    """Counts content chunks and records time to first bytes; a substring count per read."""

    __slots__ = ("t0", "hist", "tokens", "first", "skip")

    def __init__(self, t0: float, hist: Any, chat: bool) -> None:
        self.t0 = t0
        self.hist = hist
        self.tokens = 0
        self.first = True
        self.skip = 1 if chat else 0  # the chat role chunk carries no token

    def __call__(self, data: bytes) -> None:
        if self.first:
            self.hist.observe(time.monotonic() - self.t0)
            self.first = False
        n = data.count(b'"finish_reason"')
        if self.skip and n:
            used = min(self.skip, n)
            self.skip -= used
            n -= used
        self.tokens += n


@web.middleware
async def _routes_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own 405 and 404 (no route) as OpenAI-shaped bodies naming the method or path; the
    rest is :func:`runtime.limits.openai_errors`'s."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return web.json_response(protocol.openai_error(f"method {request.method} not allowed on {request.path}",
                                                       code=405), status=405)
    except web.HTTPNotFound as exc:
        if exc.content_type == protocol.JSON_CONTENT_TYPE:
            raise
        return web.json_response(protocol.openai_error(f"no route {request.path[:100]}", code=404), status=404)


AUTH_EXEMPT_PATHS = frozenset({"/health", "/metrics"})
"""Paths served without the API key: the kubelet's probes and Prometheus scrape the pod directly
(``/metrics`` carries counters and gauges, never request content)."""


def api_key_middleware(key: str, header: str) -> Any:
    """Refuse requests without ``key`` in ``header`` (401, OpenAI error shape), except
    :data:`AUTH_EXEMPT_PATHS`. ``header: authorization`` takes ``Bearer <key>`` (what OpenAI
    clients send). The comparison is constant-time (hmac.compare_digest)."""
    expected = key.encode()
    bearer = header.lower() == "authorization"

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in AUTH_EXEMPT_PATHS:
            return await handler(request)
        given = request.headers.get(header, "")
        if bearer:
            scheme, _, given = given.partition(" ")
            given = given.strip() if scheme.lower() == "bearer" else ""
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
            body = protocol.openai_error(f"missing or invalid API key in header {header!r}",
                                         "authentication_error", code=401)
            return web.json_response(body, status=401)
        return await handler(request)

    return check


def make_app(frontend: Frontend, api_key: str | None = None, api_key_header: str = "x-api-key") -> web.Application:
    middlewares: list[Any] = [openai_errors(log), _routes_as_json]
    if api_key is not None:
        middlewares.insert(0, api_key_middleware(api_key, api_key_header))
    app = web.Application(client_max_size=64 << 20, middlewares=middlewares)
    app.cleanup_ctx.append(frontend.start)
    r = app.router
    r.add_get("/health", frontend.health)
    r.add_get("/metrics", frontend.metrics)
    r.add_get("/v1/models", frontend.models)
    r.add_post("/v1/completions", frontend.completions)
    r.add_post("/v1/chat/completions", frontend.chat)
    r.add_get("/v2/health/live", frontend.v2_live)
    r.add_get("/v2/health/ready", frontend.v2_ready)
    for base in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        r.add_get(base, frontend.v2_metadata)
        r.add_get(base + "/ready", frontend.v2_model_ready)
        r.add_post(base + "/generate", frontend.v2_generate)
        r.add_post(base + "/generate_stream", frontend.v2_generate_stream)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m runtime.frontend", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--router", required=True,
                   help="http://<router service>:<port>[,http://...]: a refused connection tries the next")
    p.add_argument("--served-model-name", required=True)
    p.add_argument("--tokenizer", required=True, help="a model directory (needs transformers) or 'bytes'")
    p.add_argument("--max-seq-len", type=int, required=True)
    p.add_argument("--default-max-tokens", type=int, default=256)
    p.add_argument("--vocab-size", type=int, help="token ids must be below this (default: the tokenizer's)")
    p.add_argument("--max-body-bytes", type=int, help="request body limit (default: from --max-seq-len)")
    add_serving_flags(p, max_inflight=1024)
    p.add_argument("--api-key-env", help="require the API key held by this environment variable")
    p.add_argument("--api-key-file", help="require the API key held in this file (a mounted Secret)")
    p.add_argument("--api-key-header", default="x-api-key",
                   help="header carrying the API key ('authorization' takes 'Bearer <key>')")
    return p.parse_args(argv)


def read_api_key(env_var: str | None, path: str | None = None) -> str | None:
    """The key named by ``--api-key-file`` or ``--api-key-env``; exits when it is missing or empty
    (fail closed: a frontend told to require a key never serves without one)."""
    if path is not None:
        try:
            key = open(path, encoding="utf-8").read()  # noqa: SIM115 - read once at start
        except OSError as exc:
            raise SystemExit(f"runtime.frontend: --api-key-file {path}: cannot read it ({exc.strerror}); "
                             "mount the Secret holding the key there (refusing to serve without it)") from None
        if not key.strip():
            raise SystemExit(f"runtime.frontend: --api-key-file {path}: the file is empty (refusing to serve)")
        return key.strip()
    if env_var is None:
        return None
    key = os.environ.get(env_var, "")
    if not key.strip():
        raise SystemExit(f"runtime.frontend: --api-key-env {env_var}: the variable is unset or empty; "
                         "set it from the Secret holding the key (refusing to serve without it)")
    return key.strip()


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    timeouts = check_serving_flags("runtime.frontend", a)
    api_key = read_api_key(a.api_key_env, a.api_key_file)
    if a.max_seq_len < 2 or a.default_max_tokens < 1:
        raise SystemExit(f"runtime.frontend: --max-seq-len {a.max_seq_len} must be >= 2 and "
                         f"--default-max-tokens {a.default_max_tokens} >= 1")
    for url in a.router.split(","):
        if not url.strip().startswith("http://"):
            raise SystemExit(f"runtime.frontend: --router {url[:80]!r}: expected http://host:port")
    lifecycle = Lifecycle()
    frontend = Frontend(a.router, a.served_model_name, load_tokenizer(a.tokenizer), a.max_seq_len,
                        a.default_max_tokens, timeouts, Admission(a.max_inflight, a.max_queue, a.queue_timeout),
                        lifecycle, a.vocab_size, a.max_body_bytes, a.body_timeout)
    run(make_app(frontend, api_key, a.api_key_header), a.host, a.port, a.shutdown_timeout, lifecycle, a.drain_delay,
        a.header_timeout)


if __name__ == "__main__":
    main()
