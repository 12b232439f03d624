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
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import ClientSession, web

from . import protocol
from .metrics import Registry
from .serve import SHUTDOWN_TIMEOUT_S, client_session, run
from .tokenizer import Tokenizer, load_tokenizer
from .upstream import Upstream, UpstreamError

log = logging.getLogger("runtime.frontend")
TTFT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MODEL_VERSION = "1"
KSERVE_PARAMETERS = frozenset({
    "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stop_token_ids", "ignore_eos",
    "min_tokens", "frequency_penalty", "presence_penalty", "repetition_penalty", "length_penalty",
    "skip_special_tokens", "include_stop_str_in_output", "logprobs", "n", "best_of", "use_beam_search",
})
"""generate parameters passed to ``/v1/completions`` (upstream ``CompletionRequest`` fields)."""


class RequestError(Exception):
    def __init__(self, message: str, status: int = 400, err_type: str = "invalid_request_error",
                 param: str | None = None, code: Any = None) -> None:
        super().__init__(message)
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


def completion_prompt_ids(prompt: Any, tokenizer: Tokenizer) -> list[int]:
    """Token ids of a completions ``prompt`` (one string or one token-id list)."""
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise RequestError("prompt must not be empty", param="prompt")
        return tokenizer.encode(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(i, int) and not isinstance(i, bool) for i in prompt):
        return prompt
    raise RequestError("prompt must be one non-empty string or one list of token ids (batched prompts are "
                       "not supported: send one request per prompt)", param="prompt")


class Frontend:
    def __init__(self, router_url: str, model: str, tokenizer: Tokenizer, max_seq_len: int,
                 default_max_tokens: int, request_timeout: float) -> None:
        self.router = router_url.rstrip("/")
        self.model = model
        self.tok = tokenizer
        self.max_seq_len = max_seq_len
        self.default_max_tokens = default_max_tokens
        self.request_timeout = request_timeout
        self.session: ClientSession | None = None
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
        self.session = client_session(self.request_timeout)
        yield
        await self.session.close()

    # --- helpers -------------------------------------------------------------------------
    def _error(self, exc: RequestError) -> web.Response:
        body = protocol.openai_error(str(exc), exc.err_type, exc.code, exc.param)
        return web.json_response(body, status=exc.status)

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            raise RequestError(f"Invalid JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise RequestError("request body must be a JSON object")
        return body

    def _check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model is not None and model != self.model:
            raise RequestError(f"The model `{str(model)[:80]}` does not exist; this endpoint serves `{self.model}`",
                               404, "invalid_request_error", "model", "model_not_found")

    async def _post(self, path: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
        assert self.session is not None
        try:
            return await self.session.post(self.router + path, data=protocol.dumps(body),
                                           headers={"Content-Type": protocol.JSON_CONTENT_TYPE})
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise RequestError(f"no upstream: router {self.router} is unreachable ({exc})", 503,
                               "service_unavailable") from None

    # --- OpenAI ------------------------------------------------------------------------------
    def prepare_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        ids = completion_prompt_ids(body.get("prompt"), self.tok)
        out = dict(body)
        out["model"] = self.model
        out["prompt"] = ids
        out["max_tokens"] = resolve_max_tokens(body.get("max_tokens"), len(ids), self.max_seq_len,
                                               self.default_max_tokens)
        self.m_prompt.inc(len(ids))
        return out

    def prepare_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise RequestError("messages must be a non-empty list of message objects", param="messages")
        try:
            ids = self.tok.chat_ids(messages, bool(body.get("add_generation_prompt", True)))
        except (ValueError, TypeError) as exc:
            raise RequestError(f"messages: {exc}", param="messages") from None
        out = dict(body)
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
        self.m_inflight.inc()
        status = 500
        try:
            body = prepare(await self._json(request))
            if body.get("stream"):
                resp = await self._openai_stream(request, path, body, chat, t0)
                status = resp.status
                return resp
            up = await self._post(path, body)
            try:
                status = up.status
                if status != 200:
                    return self._upstream_error(status, await up.read())
                raw = await up.read()
            finally:
                up.release()
            self.m_ttft.observe(time.monotonic() - t0)
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.m_output.inc(json.loads(raw)["usage"]["completion_tokens"])
            return web.Response(body=raw, content_type=protocol.JSON_CONTENT_TYPE)
        except RequestError as exc:
            status = exc.status
            return self._error(exc)
        finally:
            self.m_inflight.dec()
            self.m_requests.inc(1, (("code", str(status)), ("route", path)))

    def _upstream_error(self, status: int, raw: bytes) -> web.Response:
        err_type = "service_unavailable" if status == 503 else "upstream_error"
        return self._error(RequestError(protocol.error_message(raw), status, err_type))

    async def _openai_stream(self, request: web.Request, path: str, body: dict[str, Any], chat: bool,
                             t0: float) -> web.StreamResponse:
        try:
            up = await Upstream.open(self.router, path, protocol.dumps(body))
        except (OSError, TimeoutError) as exc:
            raise RequestError(f"no upstream: router {self.router} is unreachable ({exc})", 503,
                               "service_unavailable") from None
        except UpstreamError as exc:
            raise RequestError(f"router {self.router}: {exc}", 502, "upstream_error") from None
        if up.status != 200:
            raw = await up.read()
            raise RequestError(protocol.error_message(raw), up.status,
                               "service_unavailable" if up.status == 503 else "upstream_error")
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
            async with self.session.get(self.router + "/health", timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
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
        route = "/v2/generate_stream" if stream else "/v2/generate"
        status = 500
        self.m_inflight.inc()
        try:
            name = self._v2_model(request)
            body = self.generate_to_completion(await self._json(request), stream)
            up = await self._post("/v1/completions", body)
            try:
                status = up.status
                if status != 200:
                    return web.json_response({"error": protocol.error_message(await up.read())}, status=status)
                head = {"model_name": name, "model_version": MODEL_VERSION}
                if not stream:
                    resp = json.loads(await up.read())
                    self.m_ttft.observe(time.monotonic() - t0)
                    self.m_output.inc(resp.get("usage", {}).get("completion_tokens", 0))
                    return web.json_response({**head, "text_output": resp["choices"][0]["text"]})
                return await self._v2_stream(request, up, head, t0)
            finally:
                up.release()
        except RequestError as exc:
            status = exc.status
            return web.json_response({"error": str(exc)}, status=exc.status)
        finally:
            self.m_inflight.dec()
            self.m_requests.inc(1, (("code", str(status)), ("route", route)))

    async def _v2_stream(self, request: web.Request, up: aiohttp.ClientResponse, head: dict[str, Any],
                         t0: float) -> web.StreamResponse:
        resp = web.StreamResponse(headers={**protocol.SSE_HEADERS, "Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        parser = protocol.SSEParser()
        first = True
        tokens = 0
        async for data in up.content.iter_any():
            out = []
            for payload in parser.feed(data):
                if payload == b"[DONE]":
                    continue
                chunk = json.loads(payload)
                if "error" in chunk or chunk.get("object") == "error":
                    out.append(protocol.sse({"error": protocol.error_message(payload)}))
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
        self.m_output.inc(tokens)
        await resp.write_eof()
        return resp

    # --- status ------------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

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
async def _json_404(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return web.json_response(protocol.openai_error(f"method {request.method} not allowed on {request.path}",
                                                       code=405), status=405)
    except web.HTTPNotFound as exc:
        if exc.content_type == protocol.JSON_CONTENT_TYPE:
            raise
        return web.json_response(protocol.openai_error(f"no route {request.path}", code=404), status=404)


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
        if not hmac.compare_digest(given.encode(), expected):
            body = protocol.openai_error(f"missing or invalid API key in header {header!r}",
                                         "authentication_error", code=401)
            return web.json_response(body, status=401)
        return await handler(request)

    return check


def make_app(frontend: Frontend, api_key: str | None = None, api_key_header: str = "x-api-key") -> web.Application:
    middlewares: list[Any] = [_json_404]
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
    p.add_argument("--router", required=True, help="http://<router service>:<port>")
    p.add_argument("--served-model-name", required=True)
    p.add_argument("--tokenizer", required=True, help="a model directory (needs transformers) or 'bytes'")
    p.add_argument("--max-seq-len", type=int, required=True)
    p.add_argument("--default-max-tokens", type=int, default=256)
    p.add_argument("--request-timeout", type=float, default=3600.0, help="seconds per upstream request")
    p.add_argument("--shutdown-timeout", type=float, default=SHUTDOWN_TIMEOUT_S,
                   help="on SIGTERM, stop accepting and give streams in flight this long to finish")
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
    if a.shutdown_timeout <= 0:  # aiohttp reads 0 as "wait forever"
        raise SystemExit(f"runtime.frontend: --shutdown-timeout {a.shutdown_timeout}: must be > 0")
    api_key = read_api_key(a.api_key_env, a.api_key_file)
    if a.max_seq_len < 2 or a.default_max_tokens < 1:
        raise SystemExit(f"runtime.frontend: --max-seq-len {a.max_seq_len} must be >= 2 and "
                         f"--default-max-tokens {a.default_max_tokens} >= 1")
    if not a.router.startswith(("http://", "https://")):
        raise SystemExit(f"runtime.frontend: --router {a.router[:80]!r}: expected http://host:port")
    frontend = Frontend(a.router, a.served_model_name, load_tokenizer(a.tokenizer), a.max_seq_len,
                        a.default_max_tokens, a.request_timeout)
    run(make_app(frontend, api_key, a.api_key_header), a.host, a.port, a.shutdown_timeout)


if __name__ == "__main__":
    main()
