"""A CPU stand-in for ``trtllm-serve``: same routes, fields, streaming and metric names.

``python -m runtime.standin --host 127.0.0.1 --port P --role aggregated|context|generation``

Output is deterministic: completion token k is prompt token ``k mod len(prompt)`` (an echo),
detokenized as bytes, so tests can predict every character. Roles follow upstream's
disaggregated serving (``tensorrt_llm/serve/openai_server.py`` @e7f7345e31e5,
``openai_protocol.py`` @0076e9390e1e): a context server takes only ``context_only`` requests and
answers with the first token, ``prompt_token_ids`` and ``disaggregated_params``; a generation
server takes only ``generation_only`` requests whose ``encoded_opaque_state`` verifies. The
opaque state stands in for the KV-cache handle: an HMAC (key ``--secret`` / ``STANDIN_SECRET``)
over the issuing server, the request ids, the prompt and the first tokens, so a test proves the
generation server received what a context server produced for this very prompt.

Metrics (``/prometheus/metrics`` and ``/metrics``) use upstream's names
(``tensorrt_llm/metrics/collector.py`` @050f80def8df, labels ``model_name``, ``engine_type``) plus
``standin_*`` counters of the handoff.

It speaks the protocol of ``--trtllm-version`` (``runtime/capabilities.py``): a top-level request
field the release's ``CompletionRequest`` / ``ChatCompletionRequest`` lacks, and an unknown
``disaggregated_params`` field, is refused with 400 and pydantic's wording, as upstream's models
(``OpenAIBaseModel``, ``extra="forbid"``) do; so is ``stream_options`` without ``stream``
(upstream's ``validate_stream_options``). The field sets and their sources are
``Capabilities.completion_fields`` / ``chat_fields``. KV retention is modelled as upstream: a
context_only request that did not finish holds ``ceil(prompt / KV_BLOCK_TOKENS)`` blocks until a generation server pulls them
(the generation stand-in calls ``POST /standin/kv/pull`` on the issuing context server, standing
in for the NIXL/UCX transfer) or, where the release has ``kv_transfer_timeout_ms``, until
``--kv-transfer-timeout-ms`` passes; ``standin_kv_held_requests`` / ``standin_kv_held_blocks``
show what is held, so tests see leaks. ``POST /standin/fault`` makes the next requests fail or
stall (fault injection for tests).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import time
import uuid
from typing import Any

from aiohttp import web

from . import protocol
from .capabilities import CHAT_FIELD_ALIASES, GENERATIONS, capabilities
from .kv_cache_model import BlockCache
from .kv_routing import TOKENS_PER_BLOCK
from .metrics import Registry
from .serve import run
from .tokenizer import ByteTokenizer

ROLES = ("aggregated", "context", "generation")
DEFAULT_MAX_TOKENS = 32
KV_SLOTS = 64
KV_BLOCK_TOKENS = 32
DISAGG_FIELDS = ("request_type", "first_gen_tokens", "ctx_request_id", "encoded_opaque_state", "draft_tokens")
"""``DisaggregatedParams`` fields every accepted release has; ``disagg_request_id`` per the table."""
WORKER_ERROR = "CUDA error: an illegal memory access was encountered (worker 10.1.2.3:8001)"
"""The text an injected 5xx carries: worker text that must never reach a client."""
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
"""Upstream's default ``time_to_first_token_buckets``."""


class BadRequestError(Exception):
    pass


def token_text(tok: int) -> str:
    """The stand-in's detokenization of one token (a byte, as latin-1)."""
    return chr(tok & 0xFF)


def echo_tokens(prompt_ids: list[int], start: int, count: int) -> list[int]:
    """Completion tokens ``start .. start+count-1`` of the echo model."""
    n = len(prompt_ids)
    return [prompt_ids[k % n] for k in range(start, start + count)]


def _prompt_digest(ids: list[int]) -> str:
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:32]


def sign_state(secret: bytes, payload: dict[str, Any]) -> str:
    raw = base64.urlsafe_b64encode(protocol.dumps(payload)).decode()
    mac = hmac.new(secret, raw.encode(), hashlib.sha256).hexdigest()
    return f"{raw}.{mac}"


def verify_state(secret: bytes, token: str | None) -> dict[str, Any]:
    """The payload of a state this family of stand-ins signed, or BadRequestError."""
    if not token or "." not in token:
        raise BadRequestError("encoded_opaque_state is missing or malformed")
    raw, _, mac = token.rpartition(".")
    want = hmac.new(secret, raw.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, want):
        raise BadRequestError("encoded_opaque_state does not verify (not issued by a context server of this deployment)")
    return json.loads(base64.urlsafe_b64decode(raw))


class StandIn:
    def __init__(self, role: str, model: str, tokens_per_second: float, secret: bytes, server_id: str,
                 generation: str = "1.2", kv_transfer_timeout_ms: int = 60000,
                 cache: BlockCache | None = None, prefill_tokens_per_second: float = 0.0) -> None:
        self.role = role
        self.cache = cache
        """Reusable KV blocks (``--kv-cache-blocks``); None: no reuse is modelled."""
        self.prefill_tps = prefill_tokens_per_second
        self._prefill_lock = asyncio.Lock()
        """One prefill at a time, as one GPU group runs one context batch at a time."""
        self.caps = capabilities(generation)
        self.disagg_fields = DISAGG_FIELDS + (("disagg_request_id",) if self.caps.disagg_request_id else ())
        self.kv_timeout = kv_transfer_timeout_ms / 1000 if self.caps.kv_transfer_timeout_ms else None
        self.held: dict[int, tuple[int, asyncio.TimerHandle | None]] = {}
        self.fault: dict[str, Any] = {}
        self.session: Any = None
        self.model = model
        self.tps = tokens_per_second
        self.secret = secret
        self.server_id = server_id
        self.tok = ByteTokenizer()
        self.ctx_ids = itertools.count(int.from_bytes(os.urandom(3), "big") << 16)
        labels = (("engine_type", "trtllm"), ("model_name", model))
        self.labels = labels
        reg = self.registry = Registry()
        self.running = reg.gauge("trtllm_num_requests_running", "Number of active requests")
        self.waiting = reg.gauge("trtllm_num_requests_waiting", "Number of queued requests")
        self.kv_util = reg.gauge("trtllm_kv_cache_utilization", "KV cache utilization")
        self.ttft = reg.histogram("trtllm_time_to_first_token_seconds",
                                  "Histogram of time to first token in seconds.", TTFT_BUCKETS, labels)
        self.success = reg.counter("trtllm_request_success_total", "Count of successfully processed requests.")
        self.prompt_tokens = reg.counter("trtllm_prompt_tokens_total", "Cumulative number of prompt (input) tokens processed.")
        self.gen_tokens = reg.counter("trtllm_generation_tokens_total", "Cumulative number of generation (output) tokens produced.")
        self.handoffs_out = reg.counter("standin_context_handoffs_total", "context_only requests answered with disaggregated_params")
        self.handoffs_in = reg.counter("standin_generation_verified_total",
                                       "generation_only requests whose opaque state verified, by issuing context server")
        self.refused = reg.counter("standin_refused_total", "requests refused (bad request or wrong role)")
        self.pretokenized = reg.counter("standin_pretokenized_requests_total",
                                        "requests whose prompt arrived as token ids (prompt_token_ids or an id list)")
        self.held_requests = reg.gauge("standin_kv_held_requests", "context_only requests whose KV blocks are held")
        self.held_blocks = reg.gauge("standin_kv_held_blocks", "KV blocks held for generation servers to pull")
        self.released = reg.counter("standin_kv_released_total", "Held KV released, by reason (pulled, timeout)")
        self.cancelled = reg.counter("standin_cancelled_total", "Requests whose client left before the end")
        self.faults = reg.counter("standin_faults_injected_total", "Requests failed or stalled on purpose")
        self.prefill_computed = reg.counter("standin_prefill_tokens_computed_total",
                                            "prompt tokens prefilled (not found in the reusable KV cache)")
        self.prefill_reused = reg.counter("standin_prefill_tokens_reused_total",
                                          "prompt tokens whose KV blocks were reused from the cache")
        for g in (self.running, self.waiting, self.kv_util):
            g.set(0, labels)
        for c in (self.success, self.refused, self.pretokenized, self.handoffs_out, self.cancelled,
                  self.prefill_computed, self.prefill_reused):
            c.inc(0, labels)
        self.held_requests.set(0)
        self.held_blocks.set(0)
        for reason in ("pulled", "timeout"):
            self.released.inc(0, (("reason", reason),))

    # --- KV retention ----------------------------------------------------------------------
    def hold(self, ctx_id: int, prompt_len: int) -> None:
        blocks = -(-prompt_len // KV_BLOCK_TOKENS)
        timer = None
        if self.kv_timeout is not None:
            timer = asyncio.get_running_loop().call_later(self.kv_timeout, self.release, ctx_id, "timeout")
        self.held[ctx_id] = (blocks, timer)
        self.held_requests.inc(1)
        self.held_blocks.inc(blocks)

    def release(self, ctx_id: int, reason: str) -> bool:
        entry = self.held.pop(ctx_id, None)
        if entry is None:
            return False
        blocks, timer = entry
        if timer is not None:
            timer.cancel()
        self.held_requests.dec(1)
        self.held_blocks.dec(blocks)
        self.released.inc(1, (("reason", reason),))
        return True

    async def kv_pull(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        ok = self.release(int(body.get("ctx_request_id", -1)), "pulled")
        return web.json_response({"pulled": ok}, status=200 if ok else 404)

    async def pull_from(self, server: str, ctx_id: int) -> bool:
        """The transfer a generation server makes from the context server that holds the KV."""
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            async with self.session.post(f"http://{server}/standin/kv/pull", json={"ctx_request_id": ctx_id}) as r:
                return r.status == 200
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return False

    async def set_fault(self, request: web.Request) -> web.Response:
        """``{"status": 500|null, "delay_s": s, "count": n}``: the next n requests wait delay_s, then
        fail with status (when given)."""
        self.fault = dict(json.loads(await request.read()))
        return web.json_response(self.fault)

    async def _inject(self) -> web.Response | None:
        f = self.fault
        if not f or f.get("count", 0) <= 0:
            return None
        f["count"] -= 1
        self.faults.inc(1)
        if f.get("delay_s"):
            await asyncio.sleep(float(f["delay_s"]))
        if f.get("status"):
            return web.json_response(protocol.upstream_error(WORKER_ERROR, "InternalServerError", f["status"]),
                                     status=int(f["status"]))
        return None

    # --- request parsing -------------------------------------------------------------------
    def prompt_ids(self, body: dict[str, Any], chat: bool) -> list[int]:
        ids: Any
        if chat:
            ids = body.get("prompt_token_ids")
            if ids is None:
                messages = body.get("messages")
                if not isinstance(messages, list) or not messages:
                    raise BadRequestError("messages must be a non-empty list")
                ids = self.tok.chat_ids(messages, bool(body.get("add_generation_prompt", True)))
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
                prompt = prompt[0]
            ids = self.tok.encode(prompt) if isinstance(prompt, str) else prompt
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
            raise BadRequestError("prompt must be a non-empty string or a non-empty list of token ids")
        if (body.get("prompt_token_ids") if chat else body.get("prompt")) is ids:
            self.pretokenized.inc(1, self.labels)
        return [int(i) for i in ids]

    def check_fields(self, body: dict[str, Any], chat: bool) -> None:
        """Upstream's request-model validation that does not depend on values: ``extra="forbid"``
        over the release's fields (the alias ``max_tokens`` and its field name both sent: the name
        is the extra one, as pydantic with ``populate_by_name``), then ``validate_stream_options``
        (chat: ``stream_options`` not None; completions: truthy; without ``stream``)."""
        known = set(self.caps.request_fields(chat))
        aliases = CHAT_FIELD_ALIASES if chat else {}
        shadowed = {name for alias, name in aliases.items() if alias in body}
        extra = [k for k in body if (k not in known and k not in aliases) or k in shadowed]
        if extra:
            raise BadRequestError("; ".join(f"{k[:100]}: Extra inputs are not permitted" for k in extra[:5])
                                  + f" (TensorRT-LLM {self.caps.generation})")
        opts = body.get("stream_options")
        if (opts is not None if chat else bool(opts)) and not body.get("stream"):
            raise BadRequestError("stream_options can only be set if stream is true" if chat else
                                  "Stream options can only be defined when stream is true.")

    def check_role(self, dp: Any, ids: list[int]) -> tuple[str, dict[str, Any] | None]:
        rtype = dp.get("request_type") if isinstance(dp, dict) else None
        if self.role == "aggregated":
            if dp is not None:
                raise BadRequestError("disaggregated_params sent to an aggregated server")
            return "aggregated", None
        extra = sorted(set(dp) - set(self.disagg_fields)) if isinstance(dp, dict) else []
        if extra:
            raise BadRequestError(f"disaggregated_params.{extra[0]}: Extra inputs are not permitted "
                                  f"(TensorRT-LLM {self.caps.generation})")
        if self.role == "generation" and dp is None:
            # upstream's generation servers are full trtllm-serve instances: a request without
            # disaggregated_params is served locally (conditional disaggregation sends these)
            return "aggregated", None
        if self.role == "context":
            if rtype != protocol.CONTEXT_ONLY:
                raise BadRequestError(f"this is a context server: disaggregated_params.request_type must be "
                                 f"'context_only', got {rtype!r}")
            return protocol.CONTEXT_ONLY, None
        if rtype != protocol.GENERATION_ONLY:
            raise BadRequestError(f"this is a generation server: disaggregated_params.request_type must be "
                             f"'generation_only', got {rtype!r}")
        state = verify_state(self.secret, dp.get("encoded_opaque_state"))
        if state.get("prompt") != _prompt_digest(ids):
            raise BadRequestError("encoded_opaque_state was issued for a different prompt")
        if state.get("ctx_request_id") != dp.get("ctx_request_id") or state.get("first") != dp.get("first_gen_tokens"):
            raise BadRequestError("ctx_request_id / first_gen_tokens do not match encoded_opaque_state")
        return protocol.GENERATION_ONLY, state

    # --- handlers -------------------------------------------------------------------------
    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, chat=False)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, chat=True)

    async def handle(self, request: web.Request, chat: bool) -> web.StreamResponse:
        try:
            return await self._handle(request, chat)
        except asyncio.CancelledError:
            self.cancelled.inc(1, self.labels)
            raise
        except ConnectionError:  # the client left while we wrote: as upstream, abort quietly
            self.cancelled.inc(1, self.labels)
            raise asyncio.CancelledError from None

    async def _handle(self, request: web.Request, chat: bool) -> web.StreamResponse:
        t0 = time.monotonic()
        injected = await self._inject()
        if injected is not None:
            return injected
        try:
            try:
                body = json.loads(await request.read())
            except ValueError as exc:
                raise BadRequestError(f"Invalid JSON body: {exc}") from exc
            if not isinstance(body, dict):
                raise BadRequestError("request body must be a JSON object")
            self.check_fields(body, chat)
            ids = self.prompt_ids(body, chat)
            max_tokens = body.get("max_completion_tokens") if chat else None
            if max_tokens is None:
                max_tokens = body.get("max_tokens")
            if max_tokens is None:
                max_tokens = DEFAULT_MAX_TOKENS
            if not isinstance(max_tokens, int) or max_tokens < 1:
                raise BadRequestError(f"max_tokens must be a positive integer, got {max_tokens!r}")
            if body.get("n", 1) != 1:
                raise BadRequestError("n > 1 is not supported by the stand-in")
            kind, state = self.check_role(body.get("disaggregated_params"), ids)
        except BadRequestError as exc:
            self.refused.inc(1, self.labels)
            return web.json_response(protocol.upstream_error(str(exc)), status=400)

        stop_ids = set(body.get("stop_token_ids") or ())
        self.running.inc(1, self.labels)
        self._kv()
        self.prompt_tokens.inc(len(ids), self.labels)
        try:
            if kind != protocol.GENERATION_ONLY:
                await self.prefill(ids)
            if kind == protocol.CONTEXT_ONLY:
                return self.context_response(body, ids, chat, stop_ids, t0)
            first = None
            if state is not None:
                if not await self.pull_from(str(state.get("server")), int(state["ctx_request_id"])):
                    return web.json_response(protocol.upstream_error(
                        f"KV cache transfer failed: context request {state['ctx_request_id']} is not held by "
                        f"{state.get('server')}", "InternalServerError", 500), status=500)
                first = list(body["disaggregated_params"]["first_gen_tokens"])
                self.handoffs_in.inc(1, (("ctx_server", str(state.get("server"))),))
            if body.get("stream"):
                return await self.stream(request, body, ids, chat, max_tokens, stop_ids, first, t0)
            return self.full_response(body, ids, chat, max_tokens, stop_ids, first, t0)
        finally:
            self.running.dec(1, self.labels)
            self._kv()

    async def prefill(self, ids: list[int]) -> None:
        """The context phase: reuse the cached prefix, compute the rest at ``--prefill-tokens-per-second``
        (one prefill at a time), then store the prompt's blocks (emitting KV-cache events)."""
        if self.cache is None and self.prefill_tps <= 0:
            self.prefill_computed.inc(len(ids), self.labels)
            return
        async with self._prefill_lock:
            reused = self.cache.lookup(ids) if self.cache is not None else 0
            computed = len(ids) - reused
            if self.prefill_tps > 0 and computed:
                await asyncio.sleep(computed / self.prefill_tps)
            if self.cache is not None:
                self.cache.store(ids)
        self.prefill_computed.inc(computed, self.labels)
        self.prefill_reused.inc(reused, self.labels)

    async def kv_cache_events(self, request: web.Request) -> web.Response:
        """``POST /kv_cache_events``: the queued events, handed out once (upstream's route)."""
        return web.json_response(self.cache.drain() if self.cache is not None else [])

    def _kv(self) -> None:
        """KV-cache utilization as if each running request held 1/``KV_SLOTS`` of the cache."""
        self.kv_util.set(min(1.0, self.running.get(self.labels) / KV_SLOTS), self.labels)

    def generate(self, ids: list[int], max_tokens: int, stop_ids: set[int],
                 first: list[int] | None) -> tuple[list[int], str, int | None]:
        toks = list(first or [])
        toks += echo_tokens(ids, len(toks), max_tokens - len(toks))
        for i, t in enumerate(toks):
            if t in stop_ids:
                return toks[:i], "stop", t
        return toks, "length", None

    def _ids(self, chat: bool) -> tuple[str, int]:
        return (("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex, int(time.time()))

    def _body(self, chat: bool, rid: str, created: int, text: str, finish: str, stop_reason: int | None,
              usage: dict[str, int], extra_choice: dict[str, Any]) -> dict[str, Any]:
        if chat:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": finish, "stop_reason": stop_reason}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish, "stop_reason": stop_reason}
            obj = "text_completion"
        choice.update(extra_choice)
        return {"id": rid, "object": obj, "created": created, "model": self.model, "choices": [choice], "usage": usage}

    def context_response(self, body: dict[str, Any], ids: list[int], chat: bool, stop_ids: set[int],
                         t0: float) -> web.Response:
        toks, finish, stop_reason = self.generate(ids, 1, stop_ids, None)
        ctx_id = next(self.ctx_ids)
        dp_in = body["disaggregated_params"]
        first = echo_tokens(ids, 0, 1)
        state = sign_state(self.secret, {"server": self.server_id, "ctx_request_id": ctx_id,
                                         "prompt": _prompt_digest(ids), "first": first})
        params = {"request_type": protocol.CONTEXT_ONLY, "first_gen_tokens": first, "ctx_request_id": ctx_id,
                  "encoded_opaque_state": state, "draft_tokens": None}
        if self.caps.disagg_request_id:
            params["disagg_request_id"] = dp_in.get("disagg_request_id", ctx_id)
        if finish in ("length", "not_finished"):
            self.hold(ctx_id, len(ids))  # finished requests free their KV at once
        usage = {"prompt_tokens": len(ids), "completion_tokens": len(toks), "total_tokens": len(ids) + len(toks)}
        rid, created = self._ids(chat)
        out = self._body(chat, rid, created, "".join(map(token_text, toks)), finish, stop_reason, usage,
                         {"disaggregated_params": params})
        out["prompt_token_ids"] = ids
        self.ttft.observe(time.monotonic() - t0)
        self.gen_tokens.inc(len(toks), self.labels)
        self.handoffs_out.inc(1, self.labels)
        self.success.inc(1, self.labels)
        return web.Response(body=protocol.dumps(out), content_type=protocol.JSON_CONTENT_TYPE)

    def full_response(self, body: dict[str, Any], ids: list[int], chat: bool, max_tokens: int,
                      stop_ids: set[int], first: list[int] | None, t0: float) -> web.Response:
        toks, finish, stop_reason = self.generate(ids, max_tokens, stop_ids, first)
        usage = {"prompt_tokens": len(ids), "completion_tokens": len(toks), "total_tokens": len(ids) + len(toks)}
        rid, created = self._ids(chat)
        out = self._body(chat, rid, created, "".join(map(token_text, toks)), finish, stop_reason, usage, {})
        self.ttft.observe(time.monotonic() - t0)
        self.gen_tokens.inc(len(toks), self.labels)
        self.success.inc(1, self.labels)
        return web.Response(body=protocol.dumps(out), content_type=protocol.JSON_CONTENT_TYPE)

    async def stream(self, request: web.Request, body: dict[str, Any], ids: list[int], chat: bool,
                     max_tokens: int, stop_ids: set[int], first: list[int] | None, t0: float) -> web.StreamResponse:
        toks, finish, _ = self.generate(ids, max_tokens, stop_ids, first)
        resp = web.StreamResponse(headers={"Content-Type": protocol.SSE_CONTENT_TYPE, "Cache-Control": "no-cache"})
        await resp.prepare(request)
        rid, created = self._ids(chat)
        obj = "chat.completion.chunk" if chat else "text_completion"
        head = (b'data: {"id":"' + rid.encode() + b'","object":"' + obj.encode() + b'","created":'
                + str(created).encode() + b',"model":' + protocol.dumps(self.model) + b',"choices":[{"index":0,')
        if chat:
            await resp.write(head + b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n')
            pre, mid = head + b'"delta":{"content":', b'},"finish_reason":'
        else:
            pre, mid = head + b'"text":', b',"finish_reason":'
        last = len(toks) - 1
        start = time.monotonic()
        if not toks:  # stopped on the first token
            await resp.write(pre + b'""' + mid + protocol.dumps(finish) + b"}]}\n\n")
        for i, t in enumerate(toks):
            if self.tps > 0:
                delay = start + i / self.tps - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            fin = protocol.dumps(finish) if i == last else b"null"
            await resp.write(pre + protocol.dumps(token_text(t)) + mid + fin + b"}]}\n\n")
            if i == 0:
                self.ttft.observe(time.monotonic() - t0)
        opts = body.get("stream_options") or {}
        if opts.get("include_usage"):
            usage = {"prompt_tokens": len(ids), "completion_tokens": len(toks), "total_tokens": len(ids) + len(toks)}
            await resp.write(head[:-len(b'{"index":0,')] + b'],"usage":' + protocol.dumps(usage) + b"}\n\n")
        await resp.write(protocol.DONE)
        await resp.write_eof()
        self.gen_tokens.inc(len(toks), self.labels)
        self.success.inc(1, self.labels)
        return resp

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def models(self, request: web.Request) -> web.Response:
        card = {"id": self.model, "object": "model", "created": 0, "owned_by": "tensorrt_llm"}
        return web.json_response({"object": "list", "data": [card]})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.registry.render(), headers={"Content-Type": self.registry.content_type})


def make_app(standin: StandIn) -> web.Application:
    app = web.Application(client_max_size=64 << 20)
    app.router.add_get("/health", standin.health)
    app.router.add_get("/v1/models", standin.models)
    app.router.add_post("/v1/completions", standin.completions)
    app.router.add_post("/v1/chat/completions", standin.chat)
    app.router.add_get("/metrics", standin.metrics)
    app.router.add_get("/prometheus/metrics", standin.metrics)
    app.router.add_post("/kv_cache_events", standin.kv_cache_events)
    app.router.add_post("/standin/kv/pull", standin.kv_pull)
    app.router.add_post("/standin/fault", standin.set_fault)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m runtime.standin", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--role", choices=ROLES, default="aggregated")
    p.add_argument("--model-name", default="standin")
    p.add_argument("--tokens-per-second", type=float, default=0.0,
                   help="per-request decode pace when streaming; 0 = as fast as the event loop allows")
    p.add_argument("--secret", default=os.environ.get("STANDIN_SECRET", "disagg-standin"),
                   help="HMAC key of encoded_opaque_state, shared by context and generation stand-ins")
    p.add_argument("--trtllm-version", choices=GENERATIONS, default="1.2",
                   help="the TensorRT-LLM release generation whose protocol to speak")
    p.add_argument("--kv-transfer-timeout-ms", type=int, default=60000,
                   help="context KV released after this long unless pulled (releases that have the option)")
    p.add_argument("--kv-cache-blocks", type=int, default=0,
                   help="model a reusable KV cache of this many blocks (LRU, KV-cache events); 0 = none")
    p.add_argument("--tokens-per-block", type=int, default=TOKENS_PER_BLOCK)
    p.add_argument("--kv-event-buffer", type=int, default=1024,
                   help="kv_cache_config.event_buffer_max_size: events kept until polled (0 = no events)")
    p.add_argument("--prefill-tokens-per-second", type=float, default=0.0,
                   help="context-phase pace for uncached prompt tokens, one prefill at a time; 0 = instant")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    cache = (BlockCache(a.kv_cache_blocks, a.tokens_per_block, a.kv_event_buffer)
             if a.kv_cache_blocks > 0 else None)
    standin = StandIn(a.role, a.model_name, a.tokens_per_second, a.secret.encode(), f"{a.host}:{a.port}",
                      a.trtllm_version, a.kv_transfer_timeout_ms, cache, a.prefill_tokens_per_second)
    run(make_app(standin), a.host, a.port)


if __name__ == "__main__":
    main()
