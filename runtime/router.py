"""The orchestrator tier: discovers ``trtllm-serve`` group leaders and routes requests to them.

``python -m runtime.router --host 0.0.0.0 --port 8000 --workers dns://<svc>:8000`` (aggregated) or
``--context dns://<ctx svc>:8000 --generation dns://<gen svc>:8000`` (prefill-decode).

Routing is least outstanding requests (upstream's ``LoadBalancingRouter`` policy in
``tensorrt_llm/serve/router.py`` @3e53e4adfea6, counted in requests), ties broken round-robin.
Endpoints that refuse connections or fail ``/health`` are evicted until a later probe passes;
a request that could not connect is retried on another endpoint. Aggregated requests are
relayed as bytes (the body is never parsed). Prefill-decode follows upstream's context-first
``OpenAIDisaggregatedService`` (``openai_disagg_service.py`` @319f5114a274, see
``runtime/protocol.py``): context_only to a context server, then generation_only with the
returned ``disaggregated_params`` and ``prompt_token_ids`` to a generation server, whose SSE
stream is relayed back.

``/health`` is 200 when every pool has a healthy endpoint (readiness), ``/live`` always 200.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import ClientSession, web

from . import protocol
from .discovery import Source, SourceError, parse_source, resolve
from .kv_routing import Choice, KvAwareChooser, KvRoutingConfig, KvWeights, request_token_ids
from .metrics import Registry
from .serve import SHUTDOWN_TIMEOUT_S, client_session, run
from .upstream import Upstream, UpstreamError

log = logging.getLogger("runtime.router")
HEALTH_TIMEOUT_S = 2.0
MAX_CONNECT_ATTEMPTS = 3


@dataclass(eq=False)
class Endpoint:
    url: str
    inflight: int = 0
    healthy: bool = True
    requests: int = 0


class NoEndpointError(Exception):
    pass


class Pool:
    """The endpoints of one role, refreshed from a discovery source."""

    def __init__(self, name: str, source: Source) -> None:
        self.name = name
        self.source = source
        self.endpoints: dict[str, Endpoint] = {}
        self._rr = itertools.count()

    def candidates(self, exclude: set[str] | frozenset[str] = frozenset()) -> list[Endpoint]:
        """The healthy endpoints not excluded, or NoEndpointError."""
        candidates = [e for e in self.endpoints.values() if e.healthy and e.url not in exclude]
        if not candidates and not exclude:
            # Nothing passed its last probe: try the others rather than fail (a pod that just
            # became ready is listed before the next probe sees it).
            candidates = list(self.endpoints.values())
        if not candidates:
            raise NoEndpointError(f"no healthy {self.name} endpoint (discovered {len(self.endpoints)} from {self.source})")
        return candidates

    def pick(self, exclude: set[str] | frozenset[str] = frozenset()) -> Endpoint:
        """The healthy endpoint with the fewest outstanding requests (ties: round-robin)."""
        candidates = self.candidates(exclude)
        low = min(e.inflight for e in candidates)
        best = [e for e in candidates if e.inflight == low]
        return best[next(self._rr) % len(best)]

    def update(self, urls: list[str]) -> None:
        """Adopt a fresh discovery result: add new endpoints, drop vanished ones."""
        for url in urls:
            if url not in self.endpoints:
                self.endpoints[url] = Endpoint(url)
                log.info("%s: added %s", self.name, url)
        for url in list(self.endpoints):
            if url not in urls:
                del self.endpoints[url]
                log.info("%s: removed %s", self.name, url)

    @property
    def healthy_count(self) -> int:
        return sum(e.healthy for e in self.endpoints.values())


class Router:
    def __init__(self, pools: dict[str, Pool], refresh_seconds: float, request_timeout: float,
                 kv: KvRoutingConfig | None = None) -> None:
        self.pools = pools
        self.kv = kv
        """KV-cache-aware routing (``--routing kv-aware``); None: least outstanding requests."""
        self.choosers: dict[str, KvAwareChooser] = {name: kv.chooser(name) for name in pools} if kv else {}
        self.refresh_seconds = refresh_seconds
        self.request_timeout = request_timeout
        self.session: ClientSession | None = None
        self.disagg = "context" in pools
        self._req_ids = itertools.count((int.from_bytes(os.urandom(2), "big") << 40) + 1)
        reg = self.registry = Registry()
        self.m_requests = reg.counter("router_requests_total", "Requests routed, by pool and upstream status class")
        self.m_errors = reg.counter("router_upstream_errors_total", "Connection failures and bad responses, by pool")
        self.m_inflight = reg.gauge("router_endpoint_inflight", "Outstanding requests per endpoint")
        self.m_endpoints = reg.gauge("router_discovered_endpoints", "Endpoints from discovery, by pool and health")
        self.m_refresh = reg.counter("router_discovery_refresh_total", "Discovery refreshes, by pool and outcome")
        self.m_kv_matched = reg.counter("router_kv_matched_prompt_tokens_total",
                                        "Prompt tokens the chosen endpoint held in its KV cache, by pool")
        self.m_kv_prompt = reg.counter("router_kv_routed_prompt_tokens_total",
                                       "Prompt tokens routed with KV-cache awareness, by pool")
        self.m_local_prefill = reg.counter("router_conditional_local_prefill_total",
                                           "Prefill/decode requests prefilled on the generation server")

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
        pool.update(urls)
        await asyncio.gather(*(self._probe(pool, e) for e in list(pool.endpoints.values())))
        chooser = self.choosers.get(pool.name)
        if chooser is not None:
            chooser.index.forget(pool.endpoints)

    async def poll_kv_events(self, pool: Pool, ep: Endpoint) -> None:
        """Apply one endpoint's queued KV-cache events (``POST /kv_cache_events``, as upstream's router)."""
        chooser = self.choosers.get(pool.name)
        if chooser is None or chooser.approximate or self.session is None:
            return
        try:
            async with self.session.post(ep.url + "/kv_cache_events",
                                         timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)) as r:
                events = await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            return
        if isinstance(events, list):
            chooser.index.apply_events(ep.url, [e for e in events if isinstance(e, dict)])

    async def _kv_poll_loop(self) -> None:
        assert self.kv is not None
        while True:
            await asyncio.sleep(self.kv.poll_seconds)
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
        self.session = client_session(self.request_timeout)
        await self.refresh_once()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._refresh_loop())]
        if self.kv is not None and self.kv.events:
            tasks.append(loop.create_task(self._kv_poll_loop()))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.session.close()

    # --- forwarding ----------------------------------------------------------------------------
    def _pick(self, pool: Pool, tried: set[str], ids: list[int] | None) -> tuple[Endpoint, Choice | None]:
        """Least outstanding requests, or with token ids and ``--routing kv-aware`` least routing cost."""
        chooser = self.choosers.get(pool.name)
        if chooser is None or ids is None:
            return pool.pick(tried), None
        hashes = chooser.hashes(ids)
        _, url, matched = chooser.rank([e.url for e in pool.candidates(tried)], ids, hashes)[0]
        self.m_kv_prompt.inc(len(ids), (("pool", pool.name),))
        self.m_kv_matched.inc(matched, (("pool", pool.name),))
        return pool.endpoints[url], chooser.begin(url, ids, hashes, matched)

    def _release(self, pool: Pool, ep: Endpoint, choice: Choice | None) -> None:
        if choice is not None:
            self.choosers[pool.name].end(choice)
            asyncio.get_running_loop().create_task(self.poll_kv_events(pool, ep))

    async def _open(self, pool: Pool, path: str, body: bytes,
                    ids: list[int] | None = None) -> tuple[Endpoint, Upstream, Choice | None]:
        """POST to the chosen endpoint; connection failures evict it and try another."""
        tried: set[str] = set()
        last: Exception | None = None
        for _ in range(MAX_CONNECT_ATTEMPTS):
            try:
                ep, choice = self._pick(pool, tried, ids)
            except NoEndpointError as exc:
                raise NoEndpointError(f"{exc}; last error: {last}" if last else str(exc)) from None
            tried.add(ep.url)
            try:
                up = await Upstream.open(ep.url, path, body)
            except (OSError, asyncio.TimeoutError) as exc:
                self._release(pool, ep, choice)
                ep.healthy = False
                last = exc
                self.m_errors.inc(1, (("pool", pool.name),))
                continue
            if choice is not None:  # response headers: the endpoint has taken the prompt
                self.choosers[pool.name].first_byte(choice)
            return ep, up, choice
        raise NoEndpointError(f"no {pool.name} endpoint accepted the connection; last error: {last}")

    async def _post_json(self, pool: Pool, path: str, body: bytes,
                         ids: list[int] | None = None) -> tuple[Endpoint, bytes, int]:
        """A non-streamed exchange over the pooled session (context requests)."""
        assert self.session is not None
        tried: set[str] = set()
        last: Exception | None = None
        for _ in range(MAX_CONNECT_ATTEMPTS):
            try:
                ep, choice = self._pick(pool, tried, ids)
            except NoEndpointError as exc:
                raise NoEndpointError(f"{exc}; last error: {last}" if last else str(exc)) from None
            tried.add(ep.url)
            labels = self._begin(pool, ep)
            status = 0
            try:
                async with self.session.post(ep.url + path, data=body,
                                             headers={"Content-Type": protocol.JSON_CONTENT_TYPE}) as up:
                    status = up.status
                    return ep, await up.read(), status
            except aiohttp.ClientConnectorError as exc:
                ep.healthy = False
                last = exc
                self.m_errors.inc(1, (("pool", pool.name),))
            except (aiohttp.ClientError, OSError) as exc:
                raise UpstreamError(f"{pool.name} server {ep.url}: {exc}") from None
            finally:
                self._end(ep, labels, status, pool)
                self._release(pool, ep, choice)
        raise NoEndpointError(f"no {pool.name} endpoint accepted the connection; last error: {last}")

    def _begin(self, pool: Pool, ep: Endpoint) -> tuple[tuple[str, str], ...]:
        ep.inflight += 1
        ep.requests += 1
        labels = (("endpoint", ep.url), ("pool", pool.name))
        self.m_inflight.inc(1, labels)
        return labels

    def _end(self, ep: Endpoint, labels: tuple[tuple[str, str], ...], status: int, pool: Pool) -> None:
        ep.inflight -= 1
        self.m_inflight.dec(1, labels)
        self.m_requests.inc(1, (("code", f"{status // 100}xx"), ("pool", pool.name)))

    async def forward(self, request: web.Request, pool: Pool, path: str, body: bytes,
                      ids: list[int] | None = None) -> web.StreamResponse:
        ep, up, choice = await self._open(pool, path, body, ids)
        labels = self._begin(pool, ep)
        try:
            return await up.relay(request)
        finally:
            self._end(ep, labels, up.status, pool)
            self._release(pool, ep, choice)

    def _token_ids(self, path: str, body: bytes) -> list[int] | None:
        """The prompt's ids when KV-aware routing needs them (the body is parsed only then)."""
        if not self.choosers:
            return None
        try:
            return request_token_ids(json.loads(body), path.endswith("/chat/completions"))
        except ValueError:
            return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        body = await request.read()
        try:
            if not self.disagg:
                return await self.forward(request, self.pools["workers"], path, body, self._token_ids(path, body))
            return await self.disaggregated(request, path, body)
        except NoEndpointError as exc:
            return web.json_response(protocol.openai_error(str(exc), "service_unavailable", 503), status=503)
        except UpstreamError as exc:
            return web.json_response(protocol.openai_error(str(exc), "bad_gateway", 502), status=502)

    async def disaggregated(self, request: web.Request, path: str, raw: bytes) -> web.StreamResponse:
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("request body must be a JSON object")
        except ValueError as exc:
            return web.json_response(protocol.openai_error(f"Invalid JSON body: {exc}"), status=400)
        chat = path.endswith("/chat/completions")
        rid = next(self._req_ids)
        ctx_pool, gen_pool = self.pools["context"], self.pools["generation"]
        ids = request_token_ids(body, chat) if self.choosers else None
        local = self._local_prefill(gen_pool, ids)
        if local is not None:
            # conditional disaggregation: the generation server prefills the short uncached part itself
            self.m_local_prefill.inc(1)
            return await self.forward(request, gen_pool, path, raw, ids)
        ep, ctx_raw, status = await self._post_json(ctx_pool, path, protocol.dumps(protocol.context_request(body, rid)),
                                                    ids)
        if status != 200:
            return web.Response(status=status, body=ctx_raw, content_type=protocol.JSON_CONTENT_TYPE)
        try:
            ctx = json.loads(ctx_raw)
            protocol.verify_context_response(ctx)
        except (ValueError, TypeError, AttributeError) as exc:
            self.m_errors.inc(1, (("pool", ctx_pool.name),))
            return web.json_response(protocol.openai_error(f"context server {ep.url}: {exc}", "bad_gateway", 502),
                                     status=502)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if not protocol.needs_generation(ctx, max_tokens):
            done = protocol.finished_response(ctx)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return web.Response(body=protocol.response_as_stream(done, chat, include_usage),
                                    headers={"Content-Type": protocol.SSE_CONTENT_TYPE})
            return web.Response(body=protocol.dumps(done), content_type=protocol.JSON_CONTENT_TYPE)
        gen = protocol.generation_request(body, ctx, rid, chat)
        return await self.forward(request, gen_pool, path, protocol.dumps(gen), ids)

    def _local_prefill(self, gen_pool: Pool, ids: list[int] | None) -> str | None:
        """The generation endpoint that should prefill this prompt itself, or None (upstream's
        ``conditional_disagg_config``: uncached prompt tokens on the chosen generation server at most
        ``max_local_prefill_length``)."""
        if self.kv is None or self.kv.max_local_prefill_tokens is None or ids is None:
            return None
        chooser = self.choosers[gen_pool.name]
        try:
            _, url, matched = chooser.rank([e.url for e in gen_pool.candidates()], ids)[0]
        except NoEndpointError:
            return None
        return url if len(ids) - matched <= self.kv.max_local_prefill_tokens else None

    # --- status ----------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        missing = [p.name for p in self.pools.values() if p.healthy_count == 0]
        if missing:
            return web.json_response({"ready": False, "no_healthy_endpoint": missing}, status=503)
        return web.json_response({"ready": True})

    async def live(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def models(self, request: web.Request) -> web.StreamResponse:
        pool = self.pools["generation" if self.disagg else "workers"]
        assert self.session is not None
        try:
            ep = pool.pick()
            async with self.session.get(ep.url + "/v1/models") as up:
                return web.Response(status=up.status, body=await up.read(), content_type=protocol.JSON_CONTENT_TYPE)
        except (NoEndpointError, aiohttp.ClientError, OSError) as exc:
            return web.json_response(protocol.openai_error(str(exc), "service_unavailable", 503), status=503)

    async def metrics(self, request: web.Request) -> web.Response:
        for pool in self.pools.values():
            keep = []
            for ep in pool.endpoints.values():
                labels = (("endpoint", ep.url), ("pool", pool.name))
                self.m_inflight.set(ep.inflight, labels)
                keep.append(labels)
            self.m_inflight.remove_except(keep)
            self.m_endpoints.set(pool.healthy_count, (("pool", pool.name), ("state", "healthy")))
            self.m_endpoints.set(len(pool.endpoints) - pool.healthy_count, (("pool", pool.name), ("state", "unhealthy")))
        return web.Response(text=self.registry.render(), headers={"Content-Type": self.registry.content_type})



def make_app(router: Router) -> web.Application:
    app = web.Application(client_max_size=64 << 20)
    app.cleanup_ctx.append(router.start)
    app.router.add_get("/health", router.health)
    app.router.add_get("/live", router.live)
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
    p.add_argument("--request-timeout", type=float, default=3600.0, help="seconds per upstream request")
    p.add_argument("--shutdown-timeout", type=float, default=SHUTDOWN_TIMEOUT_S,
                   help="on SIGTERM, stop accepting and give streams in flight this long to finish")
    p.add_argument("--routing", choices=("least-outstanding", "kv-aware"), default="least-outstanding",
                   help="kv-aware: weigh where a prompt's KV blocks are cached against each endpoint's load")
    p.add_argument("--kv-events", choices=("on", "off"), default="on",
                   help="poll the workers' /kv_cache_events (off: approximate from routing decisions)")
    p.add_argument("--kv-overlap-weight", type=float, default=KvWeights.overlap,
                   help="weight of the prompt tokens an endpoint would prefill, against its queued tokens")
    p.add_argument("--kv-load-weight", type=float, default=1.0)
    p.add_argument("--kv-decode-token-cost", type=float, default=1.0,
                   help="tokens of load one outstanding request adds besides its queued prefill")
    p.add_argument("--tokens-per-block", type=int, default=32, help="the workers' kv_cache_config.tokens_per_block")
    p.add_argument("--kv-poll-seconds", type=float, default=0.5)
    p.add_argument("--max-local-prefill-tokens", type=int, default=None,
                   help="prefill/decode: prompts with at most this many uncached tokens are prefilled on the "
                        "generation server (conditional disaggregation); unset: always disaggregate")
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
    if args.shutdown_timeout <= 0:  # aiohttp reads 0 as "wait forever"
        sys.exit(f"runtime.router: --shutdown-timeout {args.shutdown_timeout}: must be > 0")
    router = Router(build_pools(args), args.refresh_seconds, args.request_timeout, kv_config(args))
    run(make_app(router), args.host, args.port, args.shutdown_timeout)


if __name__ == "__main__":
    main()
