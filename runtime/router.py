"""The orchestrator tier: discovers ``trtllm-serve`` group leaders and routes requests to them.

``python -m runtime.router --host 0.0.0.0 --port 8000 --workers dns://<svc>:8000`` (aggregated) or
``--context dns://<ctx svc>:8000 --generation dns://<gen svc>:8000`` (prefill-decode).

Routing policy, outlier ejection and endpoint state live in ``runtime/policy.py`` (one
``choose`` call); ``--routing kv-aware`` swaps in ``runtime/kv_routing.py``'s policy (where a
prompt's KV blocks are cached, weighed against load; ``docs/routing.md``), which polls the workers'
``POST /kv_cache_events`` unless ``--kv-events off``, and with ``--max-local-prefill-tokens`` sends
prefill/decode prompts with few uncached tokens straight to a generation server (upstream's
conditional disaggregation). Aggregated requests are relayed as bytes (the body is parsed only for
kv-aware routing, which needs the prompt's token ids).
Prefill-decode follows upstream's context-first ``OpenAIDisaggregatedService``
(``tensorrt_llm/serve/openai_disagg_service.py`` @00bb903d965f, see ``runtime/protocol.py``):
context_only to a context server, then generation_only with the returned
``disaggregated_params`` and ``prompt_token_ids`` to a generation server, whose SSE stream is
relayed back. Generation is skipped only when the context phase finished the request (upstream's
``_need_gen``). The fields sent follow ``--trtllm-version`` (``runtime/capabilities.py``).

Failure handling (issue 21): no context phase runs unless a generation server is available (503
with ``Retry-After`` otherwise); a refused connection is retried on another endpoint; a 5xx or
timeout before any byte reached the client is retried once on another endpoint (Envoy's
``retry_on: 5xx,connect-failure`` with one retry); a stream that breaks after its first bytes is
not migrated (Dynamo's request migration, off by default there too, needs the tokens so far).
When the client leaves, the upstream connection is closed and no later phase is sent (as Dynamo's
frontend cancels before and during streaming: docs.nvidia.com/dynamo v1.1.0
``user-guides/fault-tolerance/request-cancellation``). When generation fails
after a context phase, upstream 1.x has no HTTP abort for a finished context request: its KV is
freed by ``kv_transfer_timeout_ms`` where the release has it, otherwise it stays held; such
requests are counted in ``router_context_kv_orphaned_total``. Errors to clients name no internal
address and carry no worker text beyond 4xx validation messages; details are logged with the
request id (``X-Request-Id``).

Metrics on ``/metrics`` (Prometheus text), used by the scalers and the preStop drain:
- ``router_outstanding_requests{pool}``: requests routed to the pool from the moment an endpoint
  is chosen until the response ends (waiting for first bytes included);
- ``router_outstanding_prompt_tokens{pool}``: prompt tokens of those outstanding requests that
  have not yet received their first byte (queued prefill work). Known when the body carries
  token ids or the frontend sends ``X-Prompt-Tokens``; 0 for ``generation`` (its prefill ran on a
  context server);
- ``router_endpoint_inflight{pool,endpoint}``: the same count as the first, per endpoint.
``pool`` is ``workers`` (aggregated) or ``context`` / ``generation`` (prefill-decode).

``/ready`` (the pod's readiness) is 200 once discovery has run and while not draining; ``/health``
is 200 when every pool has an available endpoint and the router is not draining
(readiness), ``/live`` always 200.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import secrets
import socket
import sys
import time
from typing import Any

import aiohttp
from aiohttp import ClientSession, web

from . import protocol
from .capabilities import GENERATIONS, Capabilities, capabilities
from .discovery import Source, SourceError, parse_source, resolve
from .kv_routing import Choice, KvAwarePolicy, KvRoutingConfig, KvWeights, request_token_ids
from .limits import Admission, RejectedError, openai_errors, parse_json, read_body, request_id
from .metrics import Registry
from .policy import Endpoint, LeastOutstanding, Outliers, Policy, RequestInfo
from .serve import BODY_TIMEOUT_S, Lifecycle, add_serving_flags, check_serving_flags, run
from .upstream import ClientGoneError, ConnectionPool, Timeouts, Upstream, UpstreamError, UpstreamTimeoutError

log = logging.getLogger("runtime.router")
HEALTH_TIMEOUT_S = 2.0
MAX_CONNECT_ATTEMPTS = 3
MAX_BODY_BYTES = 64 << 20
REMOVED_SERIES_S = 120.0
"""How long a removed endpoint's in-flight series stays at 0 after its last request (a few scrapes)."""
_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
MIN_GLOBAL_DISAGG_ID = 1 << 40
"""Upstream keeps worker-local request ids below 2**40 and disaggregated request ids in [2**40, 2**63),
"disjoint by construction so they never collide" (``tensorrt_llm/llmapi/disagg_utils.py``
``MIN_GLOBAL_ID``, ``get_global_disagg_request_id``: timestamp_ms 39 bits | node 8 | process 6 |
counter 10, moved into that range; read on main in the newest version the index holds — the
version @3e53e4adfea6 has no such rule and the 1.3 tag is not readable here). An id in that range
is valid in every release that takes the field, so the router sends only such ids (conservative)."""
_ID_MODULUS = (1 << 63) - 1 - MIN_GLOBAL_DISAGG_ID


def disagg_request_id(timestamp_ms: int, origin: int, counter: int) -> int:
    """A ``disagg_request_id`` in upstream's layout (:data:`MIN_GLOBAL_DISAGG_ID`): the
    millisecond clock (39 bits), the router's ``origin`` (14 bits, upstream's node and process
    ids) and a counter (10 bits), moved into ``[2**40, 2**63)``. Two routers (replicas) collide
    only with the same origin (random per process, 1 in 16,384) in the same millisecond at the
    same counter value."""
    raw = ((timestamp_ms & ((1 << 39) - 1)) << 24) | ((origin & 0x3FFF) << 10) | (counter & 0x3FF)
    return raw % _ID_MODULUS + MIN_GLOBAL_DISAGG_ID


class RouteError(Exception):
    """A request that could not be served, before any byte reached the client."""

    def __init__(self, status: int, message: str, err_type: str, retry_after: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.err_type = err_type
        self.retry_after = retry_after

    def response(self) -> web.Response:
        headers = {"Retry-After": "1"} if self.retry_after else None
        return web.json_response(protocol.openai_error(str(self), self.err_type, self.status), status=self.status,
                                 headers=headers)


class Pool:
    """The endpoints of one role, refreshed from a discovery source."""

    def __init__(self, name: str, source: Source) -> None:
        self.name = name
        self.source = source
        self.endpoints: dict[str, Endpoint] = {}
        self.removed: dict[str, tuple[Endpoint, float]] = {}
        """Endpoints discovery no longer lists, kept for their ``router_endpoint_inflight`` series until
        they have been idle for ``REMOVED_SERIES_S``: a draining leader's preStop asks Prometheus for
        that series and must see it fall to 0 (a missing series reads as busy)."""
        self.outstanding = 0
        self.queued_tokens = 0

    def candidates(self, exclude: set[str], now: float) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.url not in exclude and e.available(now)]

    def update(self, urls: list[str], now: float = 0.0) -> None:
        """Adopt a fresh discovery result: add new endpoints, drop vanished ones (their series stay
        in :attr:`removed` until idle for ``REMOVED_SERIES_S``)."""
        for url in urls:
            if url not in self.endpoints:
                back = self.removed.pop(url, None)
                self.endpoints[url] = back[0] if back is not None else Endpoint(url)
                log.info("%s: added %s", self.name, url)
        for url in list(self.endpoints):
            if url not in urls:
                self.removed[url] = (self.endpoints.pop(url), now)
                log.info("%s: removed %s", self.name, url)
        for url, (ep, since) in list(self.removed.items()):
            if ep.inflight > 0:
                self.removed[url] = (ep, now)  # idle time counts from its last request's end
            elif now - since >= REMOVED_SERIES_S:
                del self.removed[url]

    def available_count(self, now: float) -> int:
        return sum(e.available(now) for e in self.endpoints.values())


class Ticket:
    """One request's hold on a pool and endpoint: counted from routing until the response ends."""

    __slots__ = ("router", "pool", "ep", "tokens", "first", "ended", "choice")

    def __init__(self, router: Router, pool: Pool, ep: Endpoint, tokens: int, choice: Choice | None = None) -> None:
        self.router, self.pool, self.ep, self.tokens, self.choice = router, pool, ep, tokens, choice
        self.first = self.ended = False
        ep.inflight += 1
        pool.outstanding += 1
        pool.queued_tokens += tokens

    def first_byte(self, _data: bytes = b"") -> None:
        if not self.first:
            self.first = True
            self.pool.queued_tokens -= self.tokens
            if self.choice is not None and self.router.kv is not None:
                self.router.kv.first_byte(self.pool.name, self.choice)

    def end(self, status: int) -> None:
        if self.ended:
            return
        self.first_byte()
        self.ended = True
        self.ep.inflight -= 1
        self.pool.outstanding -= 1
        if self.choice is not None and self.router.kv is not None:
            self.router.kv.end(self.pool.name, self.choice)
        self.router.m_requests.inc(1, (("code", f"{status // 100}xx" if status else "error"), ("pool", self.pool.name)))


class Router:
    def __init__(self, pools: dict[str, Pool], refresh_seconds: float, timeouts: Timeouts,
                 caps: Capabilities, admission: Admission, outliers: Outliers | None = None,
                 policy: Policy | None = None, lifecycle: Lifecycle | None = None,
                 body_timeout: float = BODY_TIMEOUT_S, kv: KvRoutingConfig | None = None) -> None:
        self.pools = pools
        self.refresh_seconds = refresh_seconds
        self.timeouts = timeouts
        self.caps = caps
        self.admission = admission
        self.outliers = outliers or Outliers()
        self.kv_config = kv
        self.kv: KvAwarePolicy | None = KvAwarePolicy(kv) if kv is not None else None
        """KV-cache-aware routing (``--routing kv-aware``); None: ``policy`` alone."""
        self.policy: Policy = self.kv or policy or LeastOutstanding()
        self.lifecycle = lifecycle or Lifecycle()
        self.body_timeout = body_timeout
        self.session: ClientSession | None = None
        self.conns = ConnectionPool()
        self.disagg = "context" in pools
        self.discovered = False
        """The first discovery round has run (``/ready``)."""
        self._rid = 0
        self._origin = secrets.randbits(14)
        """This router's part of its ``disagg_request_id`` values (``disagg_request_id``)."""
        reg = self.registry = Registry()
        self.m_requests = reg.counter("router_requests_total", "Requests routed, by pool and upstream status class")
        self.m_errors = reg.counter("router_upstream_errors_total",
                                    "Connection failures, timeouts, 5xx and broken streams, by pool and kind")
        self.m_outstanding = reg.gauge("router_outstanding_requests",
                                       "Requests routed to the pool and not yet ended (pending included)")
        self.m_tokens = reg.gauge("router_outstanding_prompt_tokens",
                                  "Prompt tokens of outstanding requests without a first byte yet (queued prefill)")
        self.m_inflight = reg.gauge("router_endpoint_inflight", "Outstanding requests per endpoint, from routing")
        self.m_endpoints = reg.gauge("router_discovered_endpoints",
                                     "Endpoints from discovery, by pool and state (healthy, unhealthy, ejected)")
        self.m_refresh = reg.counter("router_discovery_refresh_total", "Discovery refreshes, by pool and outcome")
        self.m_rejected = reg.counter("router_rejected_total", "Requests refused before routing, by reason")
        self.m_retries = reg.counter("router_retries_total", "Requests sent again to another endpoint, by pool")
        self.m_cancelled = reg.counter("router_client_cancelled_total",
                                       "Requests whose client left before the response ended, by phase")
        self.m_orphaned = reg.counter("router_context_kv_orphaned_total",
                                      "Context phases done whose generation never started (KV held until released)")
        self.m_kv_routed = reg.counter("router_kv_routed_prompt_tokens_total",
                                       "Prompt tokens routed by KV-cache awareness, by pool")
        self.m_kv_matched = reg.counter("router_kv_matched_prompt_tokens_total",
                                        "Of those, tokens the chosen endpoint held in its KV cache, by pool")
        self.m_local_prefill = reg.counter("router_conditional_local_prefill_total",
                                           "Prefill/decode requests prefilled on the generation server")
        if self.kv is not None:
            self.m_local_prefill.inc(0)
        self.m_orphaned.inc(0)  # the pools' gauges are set on every scrape (metrics)

    # --- discovery ---------------------------------------------------------------------------
    async def refresh_once(self) -> None:
        await asyncio.gather(*(self._refresh_pool(p) for p in self.pools.values()))

    async def _refresh_pool(self, pool: Pool) -> None:
        try:
            urls = await resolve(pool.source)
        except (OSError, SourceError) as exc:
            # NXDOMAIN while no pod is ready is normal for a headless Service: no endpoints.
            log.warning("%s: discovery from %s failed: %s", pool.name, pool.source, exc)
            self.m_refresh.inc(1, (("outcome", "error"), ("pool", pool.name)))
            urls = [] if isinstance(exc, socket.gaierror) else list(pool.endpoints)
        else:
            self.m_refresh.inc(1, (("outcome", "ok"), ("pool", pool.name)))
        pool.update(urls, self._now())
        await asyncio.gather(*(self._probe(pool, e) for e in list(pool.endpoints.values())))
        if self.kv is not None:
            self.kv.chooser(pool.name).index.forget(pool.endpoints)

    async def poll_kv_events(self, pool: Pool, ep: Endpoint) -> None:
        """Apply one endpoint's queued KV-cache events (``POST /kv_cache_events``, as upstream's router)."""
        if self.kv is None or self.session is None:
            return
        chooser = self.kv.chooser(pool.name)
        if chooser.approximate:
            return
        try:
            async with self.session.post(ep.url + "/kv_cache_events",
                                         timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)) as r:
                events = await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            return
        if isinstance(events, list):
            chooser.index.apply_events(ep.url, [e for e in events if isinstance(e, dict)])

    async def _kv_poll_loop(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await asyncio.gather(*(self.poll_kv_events(p, e) for p in self.pools.values()
                                   for e in list(p.endpoints.values())))

    async def _probe(self, pool: Pool, ep: Endpoint) -> None:
        assert self.session is not None
        try:
            async with self.session.get(ep.url + "/health", timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)) as r:
                ok = r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            ok = False
        if ok != ep.healthy:
            log.info("%s: %s is now %s", pool.name, ep.url, "healthy" if ok else "unhealthy")
        ep.healthy = ok

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh_once()
            except Exception:  # keep refreshing whatever one round did
                log.exception("discovery refresh failed")

    async def start(self, app: web.Application) -> Any:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S))
        await self.refresh_once()
        self.discovered = True
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._refresh_loop())]
        if self.kv_config is not None and self.kv_config.events:
            tasks.append(loop.create_task(self._kv_poll_loop(self.kv_config.poll_seconds)))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.session.close()
        self.conns.close()

    # --- forwarding ----------------------------------------------------------------------------
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _choose(self, pool: Pool, info: RequestInfo, tried: set[str]) -> Endpoint:
        candidates = pool.candidates(tried, self._now())
        if not candidates:
            raise RouteError(503, f"no {pool.name} server available; retry shortly", "service_unavailable", True)
        return self.policy.choose(pool.name, candidates, info)

    def _fail(self, pool: Pool, ep: Endpoint, kind: str, rid: str, detail: Any, immediate: bool = False) -> None:
        self.m_errors.inc(1, (("kind", kind), ("pool", pool.name)))
        log.warning("request %s: %s server %s: %s: %s", rid, pool.name, ep.url, kind, str(detail)[:300])
        now = self._now()
        last = ep.available(now) and pool.available_count(now) == 1
        self.outliers.failure(ep, now, pool.name, kind, immediate, last)

    async def _exchange(self, request: web.Request, pool: Pool, path: str, body: bytes, info: RequestInfo,
                        stream: bool, rid: str, timeouts: Timeouts) -> tuple[Ticket, Upstream]:
        """An upstream exchange whose status line is not 5xx, with its ticket (still open): refused
        connections go to other endpoints, a 5xx or timeout before any byte is retried once."""
        tried: set[str] = set()
        connect_failures = 0
        retried = False
        while True:
            ep = self._choose(pool, info, tried)
            tried.add(ep.url)
            ticket = Ticket(self, pool, ep, info.prompt_tokens, self.kv.routed(pool.name) if self.kv else None)
            status = 0
            try:
                try:
                    up = await Upstream.open(self.conns, ep.url, path, body, timeouts, stream, {"X-Request-Id": rid})
                except (OSError, asyncio.TimeoutError) as exc:
                    self._fail(pool, ep, "connect", rid, exc or "connect timeout", immediate=True)
                    connect_failures += 1
                    if connect_failures >= MAX_CONNECT_ATTEMPTS:
                        raise RouteError(503, f"no {pool.name} server accepted the request; retry shortly",
                                         "service_unavailable", True) from None
                    self.m_retries.inc(1, (("pool", pool.name),))
                    continue
                except UpstreamTimeoutError as exc:
                    self._fail(pool, ep, exc.kind + "_timeout", rid, exc)
                    if retried or not pool.candidates(tried, self._now()):
                        raise RouteError(504, f"the {pool.name} server timed out (request id {rid})", "timeout") from None
                    retried = True
                    self.m_retries.inc(1, (("pool", pool.name),))
                    continue
                except UpstreamError as exc:
                    self._fail(pool, ep, "broken_response", rid, exc)
                    if retried or not pool.candidates(tried, self._now()):
                        raise RouteError(502, f"the {pool.name} server failed (request id {rid})", "upstream_error") from None
                    retried = True
                    self.m_retries.inc(1, (("pool", pool.name),))
                    continue
                status = up.status
                if status >= 500:
                    detail = await up.read()
                    self._fail(pool, ep, f"http_{status}", rid, protocol.error_message(detail))
                    if not retried and pool.candidates(tried, self._now()):
                        retried = True
                        self.m_retries.inc(1, (("pool", pool.name),))
                        continue
                    code = 503 if status == 503 else 502
                    raise RouteError(code, f"the {pool.name} server failed (request id {rid})",
                                     "service_unavailable" if code == 503 else "upstream_error", code == 503)
                ok = ticket
                ticket = None  # type: ignore[assignment]
                return ok, up
            finally:
                if ticket is not None:
                    ticket.end(status)

    async def _stream(self, request: web.Request, pool: Pool, path: str, body: bytes, info: RequestInfo,
                      stream: bool, rid: str) -> web.StreamResponse:
        ticket, up = await self._exchange(request, pool, path, body, info, stream, rid, self.timeouts)
        failed: list[UpstreamError] = []
        try:
            resp = await up.relay(request, ticket.first_byte, failed.append)
        except asyncio.CancelledError:
            self.m_cancelled.inc(1, (("phase", pool.name),))
            raise
        finally:
            ticket.end(up.status)
        if failed:
            err = failed[0]
            if isinstance(err, ClientGoneError):
                self.m_cancelled.inc(1, (("phase", pool.name),))
            else:
                kind = err.kind + "_timeout" if isinstance(err, UpstreamTimeoutError) else "broken_stream"
                self._fail(pool, ticket.ep, kind, rid, err)
        elif up.status < 400:
            self.outliers.success(ticket.ep)
        return resp

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rid = request_id(request)
        try:
            await self.admission.acquire()
        except RejectedError as exc:
            self.m_rejected.inc(1, (("reason", "overload"),))
            return web.json_response(protocol.openai_error(str(exc), exc.err_type, exc.status), status=exc.status,
                                     headers=exc.headers)
        try:
            raw = await read_body(request, MAX_BODY_BYTES, self.body_timeout)
            if not self.disagg:
                stream = _STREAM_RE.search(raw) is not None
                info = RequestInfo(request.path, _header_int(request, "X-Prompt-Tokens"))
                if self.kv is not None:
                    info = await self._with_token_ids(info, raw)
                return await self._stream(request, self.pools["workers"], request.path, raw, info, stream, rid)
            return await self.disaggregated(request, request.path, raw, rid)
        except RejectedError as exc:
            self.m_rejected.inc(1, (("reason", str(exc.status)),))
            return web.json_response(protocol.openai_error(str(exc), exc.err_type, exc.status), status=exc.status,
                                     headers=exc.headers)
        except RouteError as exc:
            return exc.response()
        finally:
            self.admission.release()

    async def disaggregated(self, request: web.Request, path: str, raw: bytes, rid: str) -> web.StreamResponse:
        body = await parse_json(raw)
        if body.get("stream_options") and not body.get("stream"):
            # upstream's validate_stream_options (openai_protocol.py): the context phase (sent without
            # them) would run and hold the KV, then the generation server would refuse the request
            raise RouteError(400, "Stream options can only be defined when stream is true.", "invalid_request_error")
        chat = path.endswith("/chat/completions")
        ids = body.get("prompt_token_ids") if chat else body.get("prompt")
        ids = ids if isinstance(ids, list) and all(type(i) is int for i in ids) else None
        tokens = len(ids) if ids is not None else _header_int(request, "X-Prompt-Tokens")
        info = RequestInfo(path, tokens, tuple(ids) if ids is not None else None)
        ctx_pool, gen_pool = self.pools["context"], self.pools["generation"]
        if not gen_pool.available_count(self._now()):
            self.m_rejected.inc(1, (("reason", "no_generation_capacity"),))
            raise RouteError(503, "no generation server available; retry shortly", "service_unavailable", True)
        if self._prefill_locally(gen_pool, info):
            # conditional disaggregation: the generation server prefills the short uncached part itself
            self.m_local_prefill.inc(1)
            return await self._stream(request, gen_pool, path, raw, info, bool(body.get("stream")), rid)
        disagg_id = self._next_disagg_id()
        ctx_body = protocol.dumps(protocol.context_request(body, disagg_id, self.caps.disagg_request_id))
        # The context phase ends with its whole response: its first byte is the first token.
        ctx_timeouts = Timeouts(self.timeouts.connect, self.timeouts.first_byte, self.timeouts.idle,
                                min(self.timeouts.first_byte, self.timeouts.total))
        try:
            ticket, up = await self._exchange(request, ctx_pool, path, ctx_body, info, False, rid, ctx_timeouts)
        except asyncio.CancelledError:
            self.m_cancelled.inc(1, (("phase", "context"),))
            raise
        try:
            ctx_raw = await up.read()
        except asyncio.CancelledError:
            self.m_cancelled.inc(1, (("phase", "context"),))
            raise
        except UpstreamError as exc:
            self._fail(ctx_pool, ticket.ep, "broken_response", rid, exc)
            raise RouteError(502, f"the context server failed (request id {rid})", "upstream_error") from None
        finally:
            ticket.end(up.status)
        if up.status != 200:
            return web.json_response(protocol.openai_error(protocol.error_message(ctx_raw)[:500], "invalid_request_error",
                                                           up.status), status=up.status)
        try:
            ctx = json.loads(ctx_raw)
            protocol.verify_context_response(ctx, self.caps.disagg_request_id)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            self._fail(ctx_pool, ticket.ep, "bad_context_response", rid, exc)
            raise RouteError(502, f"the context server sent an invalid response (request id {rid})",
                             "upstream_error") from None
        self.outliers.success(ticket.ep)
        if request.transport is None or request.transport.is_closing():
            self.m_cancelled.inc(1, (("phase", "between_context_and_generation"),))
            self.m_orphaned.inc(1)
            log.info("request %s: client left after the context phase; no generation request sent", rid)
            raise asyncio.CancelledError
        if not protocol.needs_generation(ctx):
            done = protocol.finished_response(ctx)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return web.Response(body=protocol.response_as_stream(done, chat, include_usage),
                                    headers={"Content-Type": protocol.SSE_CONTENT_TYPE})
            return web.Response(body=protocol.dumps(done), content_type=protocol.JSON_CONTENT_TYPE)
        gen = protocol.generation_request(body, ctx, disagg_id, chat, self.caps.disagg_request_id)
        gen_info = RequestInfo(path, 0, info.prompt_ids)  # the prompt's KV comes from the context server
        try:
            return await self._stream(request, gen_pool, path, protocol.dumps(gen), gen_info, bool(body.get("stream")),
                                      rid)
        except RouteError:
            self.m_orphaned.inc(1)
            log.warning("request %s: generation failed after the context phase; context KV %s", rid,
                        "released by kv_transfer_timeout_ms" if self.caps.kv_transfer_timeout_ms else
                        "stays held (no abort or kv_transfer_timeout_ms in this release)")
            raise

    def _prefill_locally(self, gen_pool: Pool, info: RequestInfo) -> bool:
        """Upstream's ``conditional_disagg_config``: the prompt's part not cached on the generation
        server the policy would pick is at most ``max_local_prefill_length`` tokens."""
        if self.kv is None or self.kv.config.max_local_prefill_tokens is None or info.prompt_ids is None:
            return False
        ranked = self.kv.rank(gen_pool.name, gen_pool.candidates(set(), self._now()), info.prompt_ids)
        if not ranked:
            return False
        _, _, matched = ranked[0]
        return len(info.prompt_ids) - matched <= self.kv.config.max_local_prefill_tokens

    async def _with_token_ids(self, info: RequestInfo, raw: bytes) -> RequestInfo:
        """The request's token ids for kv-aware routing (text prompts route by load alone)."""
        try:
            ids = request_token_ids(await parse_json(raw), info.path.endswith("/chat/completions"))
        except RejectedError:
            return info
        if ids is None:
            return info
        return RequestInfo(info.path, len(ids), tuple(ids))

    def _next_disagg_id(self) -> int:
        self._rid += 1
        return disagg_request_id(int(time.monotonic() * 1000), self._origin, self._rid)

    # --- status ----------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        if self.lifecycle.draining:
            return web.json_response({"ready": False, "draining": True}, status=503)
        now = self._now()
        missing = [p.name for p in self.pools.values() if p.available_count(now) == 0]
        if missing:
            return web.json_response({"ready": False, "no_available_endpoint": missing}, status=503)
        return web.json_response({"ready": True})

    async def ready(self, request: web.Request) -> web.Response:
        """Readiness: able to route — discovery has run and the router is not draining. A router with
        no healthy worker stays ready and answers clients 503 itself (workers may be waiting for GPUs
        or a model download; an unready router would only hide that behind the Service)."""
        if self.lifecycle.draining:
            return web.json_response({"ready": False, "draining": True}, status=503)
        if not self.discovered:
            return web.json_response({"ready": False, "discovered": False}, status=503)
        return web.json_response({"ready": True})

    async def live(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def models(self, request: web.Request) -> web.StreamResponse:
        pool = self.pools["generation" if self.disagg else "workers"]
        assert self.session is not None
        try:
            ep = self._choose(pool, RequestInfo(request.path), set())
            async with self.session.get(ep.url + "/v1/models") as up:
                return web.Response(status=up.status, body=await up.read(), content_type=protocol.JSON_CONTENT_TYPE)
        except RouteError as exc:
            return exc.response()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            log.warning("/v1/models: %s", exc)
            return web.json_response(protocol.openai_error("no model server available", "service_unavailable", 503),
                                     status=503)

    async def metrics(self, request: web.Request) -> web.Response:
        now = self._now()
        for pool in self.pools.values():
            keep = []
            p = (("pool", pool.name),)
            for ep in [*pool.endpoints.values(), *(e for e, _ in pool.removed.values())]:
                labels = (("endpoint", ep.url), ("pool", pool.name))
                self.m_inflight.set(ep.inflight, labels)
                keep.append(labels)
            self.m_inflight.remove_except(keep)
            self.m_outstanding.set(pool.outstanding, p)
            self.m_tokens.set(pool.queued_tokens, p)
            if self.kv is not None:
                routed, matched = self.kv.routed_tokens.get(pool.name, 0), self.kv.matched_tokens.get(pool.name, 0)
                self.m_kv_routed.inc(routed - self.m_kv_routed.get(p), p)
                self.m_kv_matched.inc(matched - self.m_kv_matched.get(p), p)
            eps = list(pool.endpoints.values())
            ejected = sum(e.healthy and now < e.ejected_until for e in eps)
            healthy = sum(e.available(now) for e in eps)
            self.m_endpoints.set(healthy, (("pool", pool.name), ("state", "healthy")))
            self.m_endpoints.set(ejected, (("pool", pool.name), ("state", "ejected")))
            self.m_endpoints.set(len(eps) - healthy - ejected, (("pool", pool.name), ("state", "unhealthy")))
        return web.Response(text=self.registry.render(), headers={"Content-Type": self.registry.content_type})


def _header_int(request: web.Request, name: str) -> int:
    value = request.headers.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else 0


def make_app(router: Router) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[openai_errors(log)])
    app.cleanup_ctx.append(router.start)
    app.router.add_get("/health", router.health)
    app.router.add_get("/live", router.live)
    app.router.add_get("/ready", router.ready)
    app.router.add_get("/metrics", router.metrics)
    app.router.add_get("/v1/models", router.models)
    app.router.add_post("/v1/completions", router.handle)
    app.router.add_post("/v1/chat/completions", router.handle)
    return app


def build_pools(args: argparse.Namespace) -> dict[str, Pool]:
    """The pools the flags describe, or SystemExit with one line naming the flag and the fix."""
    try:
        if args.workers and not (args.context or args.generation):
            return {"workers": Pool("workers", parse_source("--workers", args.workers))}
        if args.context and args.generation and not args.workers:
            return {"context": Pool("context", parse_source("--context", args.context)),
                    "generation": Pool("generation", parse_source("--generation", args.generation))}
    except SourceError as exc:
        raise SystemExit(f"runtime.router: {exc}") from None
    raise SystemExit("runtime.router: give either --workers (aggregated) or both --context and --generation "
                     "(prefill-decode)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m runtime.router", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", help="aggregated workers: dns://host:port, file:///path or static://h:p,h:p")
    p.add_argument("--context", help="context (prefill) servers, same forms")
    p.add_argument("--generation", help="generation (decode) servers, same forms")
    p.add_argument("--refresh-seconds", type=float, default=2.0)
    p.add_argument("--trtllm-version", default="1.2",
                   help=f"TensorRT-LLM release generation of the workers ({', '.join(GENERATIONS)})")
    p.add_argument("--eject-after", type=int, default=3, help="consecutive failures that eject an endpoint")
    p.add_argument("--eject-seconds", type=float, default=2.0, help="ejection time, times the number of ejections in a row (Envoy's base_ejection_time)")
    p.add_argument("--routing", choices=("least-outstanding", "kv-aware"), default="least-outstanding",
                   help="kv-aware: weigh where a prompt's KV blocks are cached against each endpoint's load")
    p.add_argument("--kv-events", choices=("on", "off"), default="on",
                   help="poll the workers' /kv_cache_events (off: approximate from routing decisions)")
    p.add_argument("--kv-overlap-weight", type=float, default=KvWeights.overlap,
                   help="weight of the prompt tokens an endpoint would prefill, against its queued tokens")
    p.add_argument("--kv-load-weight", type=float, default=KvWeights.load)
    p.add_argument("--kv-decode-token-cost", type=float, default=KvWeights.decode_token_cost,
                   help="tokens of load one outstanding request adds besides its queued prefill")
    p.add_argument("--tokens-per-block", type=int, default=32, help="the workers' kv_cache_config.tokens_per_block")
    p.add_argument("--kv-poll-seconds", type=float, default=KvRoutingConfig.poll_seconds)
    p.add_argument("--max-local-prefill-tokens", type=int, default=None,
                   help="prefill/decode: prompts with at most this many uncached tokens are prefilled on the "
                        "generation server (conditional disaggregation); unset: always disaggregate")
    add_serving_flags(p, max_inflight=2048)
    return p.parse_args(argv)


def kv_config(args: argparse.Namespace) -> KvRoutingConfig | None:
    """The KV-aware settings the flags describe, or SystemExit naming the flag."""
    if args.routing != "kv-aware":
        if args.max_local_prefill_tokens is not None:
            raise SystemExit("runtime.router: --max-local-prefill-tokens needs --routing kv-aware")
        return None
    for flag, value in (("--kv-overlap-weight", args.kv_overlap_weight), ("--kv-load-weight", args.kv_load_weight),
                        ("--kv-decode-token-cost", args.kv_decode_token_cost)):
        if value < 0:
            raise SystemExit(f"runtime.router: {flag} {value}: must be >= 0")
    if args.tokens_per_block < 1 or args.kv_poll_seconds <= 0:
        raise SystemExit("runtime.router: --tokens-per-block must be >= 1 and --kv-poll-seconds > 0")
    if args.max_local_prefill_tokens is not None and args.max_local_prefill_tokens < 0:
        raise SystemExit(f"runtime.router: --max-local-prefill-tokens {args.max_local_prefill_tokens}: must be >= 0")
    weights = KvWeights(args.kv_overlap_weight, args.kv_load_weight, args.kv_decode_token_cost)
    return KvRoutingConfig(weights, args.kv_events == "on", args.tokens_per_block, args.kv_poll_seconds,
                           max_local_prefill_tokens=args.max_local_prefill_tokens)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.refresh_seconds <= 0:
        sys.exit(f"runtime.router: --refresh-seconds {args.refresh_seconds}: must be > 0")
    timeouts = check_serving_flags("runtime.router", args)
    try:
        caps = capabilities(args.trtllm_version)
    except ValueError as exc:
        raise SystemExit(f"runtime.router: --trtllm-version: {exc}") from None
    if args.eject_after < 1 or args.eject_seconds <= 0:
        raise SystemExit(f"runtime.router: --eject-after {args.eject_after} must be >= 1 and --eject-seconds "
                         f"{args.eject_seconds} > 0")
    lifecycle = Lifecycle()
    router = Router(build_pools(args), args.refresh_seconds, timeouts, caps,
                    Admission(args.max_inflight, args.max_queue, args.queue_timeout),
                    Outliers(args.eject_after, args.eject_seconds), lifecycle=lifecycle, body_timeout=args.body_timeout,
                    kv=kv_config(args))
    run(make_app(router), args.host, args.port, args.shutdown_timeout, lifecycle, args.drain_delay, args.header_timeout)


if __name__ == "__main__":
    main()
