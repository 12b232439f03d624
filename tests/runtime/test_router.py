"""The router in one process (runtime/router.py): endpoint bookkeeping, status codes, retries,
outlier ejection, metrics, readiness and flags, against scripted workers on 127.0.0.1.

The workers are aiohttp servers in the test's own event loop, so each test states exactly what
a worker answers and when; the chain tests (test_aggregated_chain.py, test_disaggregated_chain.py,
test_faults.py) run the same router as a real process against the stand-in. A policy that always
takes the first candidate (discovery order) makes retries and ejections deterministic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from runtime import router as rt
from runtime.capabilities import capabilities
from runtime.discovery import parse_source
from runtime.kv_routing import KvRoutingConfig
from runtime.limits import Admission
from runtime.metrics import parse_text
from runtime.policy import Endpoint, Outliers, RequestInfo
from runtime.serve import Lifecycle
from runtime.upstream import Timeouts
from tests.runtime.procs import free_port

Reply = Callable[[web.Request, dict], Awaitable[web.StreamResponse]]
FAST = Timeouts(connect=1.0, first_byte=0.6, idle=1.0, total=0.6)


class InOrder:
    """Always the first candidate in the order the test listed the workers (discovery sorts URLs)."""

    def __init__(self, order: list[str]) -> None:
        self.order = order

    def choose(self, pool: str, candidates: list[Endpoint], request: RequestInfo) -> Endpoint:
        return min(candidates, key=lambda e: self.order.index(e.url))


class Worker:
    """A scripted worker: ``reply`` answers completions; every request body is kept."""

    def __init__(self, reply: Reply | None = None, healthy: bool = True) -> None:
        self.reply = reply or ok
        self.healthy = healthy
        self.bodies: list[dict] = []
        self.events: list[dict] = []
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._complete)
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/kv_cache_events", self._events)
        self.server = TestServer(app)

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m"}]})

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        return await self.reply(request, body)

    async def _events(self, request: web.Request) -> web.Response:
        events, self.events = self.events, []
        return web.json_response(events)


async def ok(request: web.Request, body: dict) -> web.Response:
    return web.json_response({"id": "cmpl-1", "choices": [{"index": 0, "text": "hi", "finish_reason": "stop"}]})


def status(code: int, message: str = "worker says no") -> Reply:
    async def reply(request: web.Request, body: dict) -> web.Response:
        return web.json_response({"object": "error", "message": message, "type": "x", "code": code}, status=code)
    return reply


def sequence(*replies: Reply) -> Reply:
    """Each request gets the next reply (the last one repeats)."""
    queue = list(replies)

    async def reply(request: web.Request, body: dict) -> web.StreamResponse:
        return await (queue.pop(0) if len(queue) > 1 else queue[0])(request, body)
    return reply


def held_until(release: asyncio.Event) -> Reply:
    """Answers once ``release`` is set (a request the test can look at while it waits)."""
    async def reply(request: web.Request, body: dict) -> web.Response:
        await release.wait()
        return await ok(request, body)
    return reply


def slow(seconds: float) -> Reply:
    async def reply(request: web.Request, body: dict) -> web.Response:
        await asyncio.sleep(seconds)
        return await ok(request, body)
    return reply


async def hang_up_server() -> tuple[asyncio.AbstractServer, int]:
    """Accepts, reads the request, closes without a status line."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class NoCancellation(TestServer):
    """A server whose handlers run on after their client disconnects (aiohttp's default before 3.9)."""

    async def _make_runner(self, **kwargs: Any) -> Any:
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


Spec = Worker | int | str
"""A worker, a port nobody listens on (connection refused) or 'hangup' (closes without answering)."""


@asynccontextmanager
async def routed(pools: dict[str, list[Spec]], *, policy: Any = None, timeouts: Timeouts = FAST,
                 version: str = "1.2", admission: Admission | None = None, outliers: Outliers | None = None,
                 kv: KvRoutingConfig | None = None, lifecycle: Lifecycle | None = None,
                 handler_cancellation: bool = True,
                 ) -> AsyncIterator[tuple[rt.Router, TestClient]]:
    raw_servers: list[asyncio.AbstractServer] = []
    workers: list[Worker] = []
    pool_objs = {}
    order: list[str] = []
    for name, specs in pools.items():
        hosts = []
        for spec in specs:
            if isinstance(spec, Worker):
                await spec.server.start_server()
                workers.append(spec)
                hosts.append(f"127.0.0.1:{spec.server.port}")
            elif spec == "hangup":
                server, port = await hang_up_server()
                raw_servers.append(server)
                hosts.append(f"127.0.0.1:{port}")
            else:
                hosts.append(f"127.0.0.1:{spec}")
        order += [f"http://{h}" for h in hosts]
        pool_objs[name] = rt.Pool(name, parse_source(f"--{name}", "static://" + ",".join(hosts)))
    router = rt.Router(pool_objs, 60.0, timeouts, capabilities(version), admission or Admission(64),
                      outliers=outliers, policy=policy or InOrder(order), lifecycle=lifecycle, kv=kv)
    # as runtime/serve.py runs it: a client that disconnects cancels its handler
    client = TestClient((TestServer if handler_cancellation else NoCancellation)(rt.make_app(router)))
    await client.start_server()
    try:
        yield router, client
    finally:
        await client.close()
        for w in workers:
            await w.server.close()
        for s in raw_servers:
            s.close()
            await s.wait_closed()


async def metrics(client: TestClient) -> dict[str, float]:
    r = await client.get("/metrics")
    assert r.status == 200
    return parse_text(await r.text())


async def post(client: TestClient, body: dict | None = None, path: str = "/v1/completions",
               ) -> tuple[int, dict, Any]:
    r = await client.post(path, json=body if body is not None else {"model": "m", "prompt": "hello"})
    return r.status, await r.json(), r.headers


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- endpoint bookkeeping
def test_a_removed_endpoint_that_comes_back_keeps_its_state() -> None:
    pool = rt.Pool("workers", parse_source("--workers", "static://a:1"))
    pool.update(["http://a:1", "http://b:1"], now=0.0)
    ep = pool.endpoints["http://a:1"]
    ep.inflight, ep.failures = 2, 1
    pool.update(["http://b:1"], now=5.0)
    assert list(pool.endpoints) == ["http://b:1"] and pool.removed["http://a:1"] == (ep, 5.0)
    pool.update(["http://a:1", "http://b:1"], now=6.0)
    assert pool.endpoints["http://a:1"] is ep and (ep.inflight, ep.failures) == (2, 1)
    assert pool.removed == {}


def test_a_removed_endpoints_series_stays_until_idle_for_the_hold_time() -> None:
    pool = rt.Pool("workers", parse_source("--workers", "static://a:1"))
    pool.update(["http://a:1"], now=0.0)
    ep = pool.endpoints["http://a:1"]
    ep.inflight = 1
    pool.update([], now=10.0)
    pool.update([], now=10.0 + rt.REMOVED_SERIES_S + 50)  # busy: the idle time restarts at each refresh
    assert pool.removed["http://a:1"] == (ep, 10.0 + rt.REMOVED_SERIES_S + 50)
    ep.inflight = 0
    idle_since = 10.0 + rt.REMOVED_SERIES_S + 50
    pool.update([], now=idle_since + rt.REMOVED_SERIES_S - 1)
    assert "http://a:1" in pool.removed
    pool.update([], now=idle_since + rt.REMOVED_SERIES_S)
    assert pool.removed == {}


def test_available_count_leaves_out_unhealthy_and_ejected_endpoints() -> None:
    pool = rt.Pool("workers", parse_source("--workers", "static://a:1"))
    pool.update(["http://a:1", "http://b:1", "http://c:1"])
    pool.endpoints["http://a:1"].healthy = False
    pool.endpoints["http://b:1"].ejected_until = 10.0
    assert pool.available_count(5.0) == 1
    assert pool.available_count(10.0) == 2
    assert [e.url for e in pool.candidates({"http://c:1"}, 10.0)] == ["http://b:1"]


def test_a_ticket_counts_from_routing_to_the_end_and_labels_the_status_class() -> None:
    async def main() -> None:
        async with routed({"workers": [Worker()]}) as (router, _):
            pool = router.pools["workers"]
            ep = next(iter(pool.endpoints.values()))
            tickets = [rt.Ticket(router, pool, ep, 100), rt.Ticket(router, pool, ep, 30)]
            assert (ep.inflight, pool.outstanding, pool.queued_tokens) == (2, 2, 130)
            tickets[0].first_byte()
            tickets[0].first_byte()  # once only
            assert (ep.inflight, pool.outstanding, pool.queued_tokens) == (2, 2, 30)
            tickets[0].end(200)
            tickets[0].end(200)  # once only
            tickets[1].end(0)
            assert (ep.inflight, pool.outstanding, pool.queued_tokens) == (0, 0, 0)
            for code in (404, 503):
                rt.Ticket(router, pool, ep, 0).end(code)
            counted = router.m_requests.values
            assert counted == {(("code", "2xx"), ("pool", "workers")): 1, (("code", "error"), ("pool", "workers")): 1,
                               (("code", "4xx"), ("pool", "workers")): 1, (("code", "5xx"), ("pool", "workers")): 1}
    run(main())


def test_a_kv_routed_tickets_prefill_stops_counting_at_its_first_byte() -> None:
    async def main() -> None:
        kv = KvRoutingConfig(events=False, tokens_per_block=4)
        async with routed({"workers": [Worker()]}, kv=kv) as (router, _):
            pool = router.pools["workers"]
            ep = next(iter(pool.endpoints.values()))
            assert router.kv is not None
            choice = router.kv.chooser(pool.name).begin(ep.url, list(range(12)), [1, 2, 3], 0)
            chooser = router.kv.chooser(pool.name)
            ticket = rt.Ticket(router, pool, ep, 12, choice)
            assert chooser.active_prefill[ep.url] == 12
            ticket.first_byte()
            assert chooser.active_prefill[ep.url] == 0 and chooser.active_requests[ep.url] == 1
            ticket.end(200)
            assert chooser.active_requests[ep.url] == 0
            rt.Ticket(router, pool, ep, 5).end(200)  # a ticket without a choice leaves the index alone
    run(main())


# --------------------------------------------------------------------------- status codes and retries
def mark_healthy(router: rt.Router) -> None:
    """As if the last probe passed (a server that stops listening between probes)."""
    for pool in router.pools.values():
        for ep in pool.endpoints.values():
            ep.healthy = True


def test_refused_connections_go_to_the_next_endpoint_up_to_three_attempts() -> None:
    async def main() -> None:
        good = Worker()
        async with routed({"workers": [free_port(), free_port(), good]}) as (router, client):
            mark_healthy(router)
            code, body, _ = await post(client)
            assert (code, body["choices"][0]["text"]) == (200, "hi")
            m = await metrics(client)
            assert m['router_retries_total{pool="workers"}'] == 2
            assert m['router_upstream_errors_total{kind="connect",pool="workers"}'] == 2
            assert m['router_discovered_endpoints{pool="workers",state="ejected"}'] == 2  # refused: ejected at once
        async with routed({"workers": [free_port(), free_port(), free_port(), Worker()]}) as (router, client):
            mark_healthy(router)
            code, body, headers = await post(client)
            assert code == 503 and headers["Retry-After"] == "1"
            assert body["error"]["message"] == "no workers server accepted the request; retry shortly"
    run(main())


def test_a_timeout_before_any_byte_is_504_when_no_other_endpoint_is_left() -> None:
    async def main() -> None:
        async with routed({"workers": [Worker(slow(1.5))]}) as (_, client):
            code, body, _ = await post(client)
            assert code == 504 and body["error"]["type"] == "timeout"
            assert body["error"]["message"].startswith("the workers server timed out (request id ")
    run(main())


def test_a_timeout_is_retried_once_on_another_endpoint() -> None:
    async def main() -> None:
        late, fine = Worker(slow(1.5)), Worker()
        async with routed({"workers": [late, fine]}) as (_, client):
            code, _, _ = await post(client)
            assert code == 200 and len(fine.bodies) == 1
            assert (await metrics(client))['router_retries_total{pool="workers"}'] == 1
        async with routed({"workers": [Worker(slow(1.5)), Worker(slow(1.5)), Worker()]}) as (_, client):
            code, _, _ = await post(client)
            assert code == 504  # one retry only
    run(main())


def test_a_worker_that_hangs_up_is_502_and_retried_once() -> None:
    async def main() -> None:
        async with routed({"workers": ["hangup"]}) as (router, client):
            mark_healthy(router)
            code, body, _ = await post(client)
            assert code == 502 and body["error"]["type"] == "upstream_error"
            assert body["error"]["message"].startswith("the workers server failed (request id ")
        fine = Worker()
        async with routed({"workers": ["hangup", fine]}) as (router, client):
            mark_healthy(router)
            assert (await post(client))[0] == 200 and len(fine.bodies) == 1
    run(main())


@pytest.mark.parametrize(("worker_status", "client_status"), [(500, 502), (503, 503)])
def test_a_5xx_is_retried_once_then_mapped(worker_status: int, client_status: int) -> None:
    async def main() -> None:
        a, b, c = Worker(status(worker_status)), Worker(status(worker_status)), Worker()
        async with routed({"workers": [a, b, c]}) as (_, client):
            code, body, headers = await post(client)
            assert code == client_status and (len(a.bodies), len(b.bodies), len(c.bodies)) == (1, 1, 0)
            assert "worker says no" not in json.dumps(body)
            assert body["error"]["type"] == ("service_unavailable" if client_status == 503 else "upstream_error")
            assert ("Retry-After" in headers) == (client_status == 503)
            m = await metrics(client)
            assert m['router_retries_total{pool="workers"}'] == 1
            assert m[f'router_upstream_errors_total{{kind="http_{worker_status}",pool="workers"}}'] == 2
    run(main())


def test_a_4xx_is_relayed_and_is_neither_a_success_nor_a_failure() -> None:
    async def main() -> None:
        flaky = Worker(sequence(status(500), status(400, "bad prompt"), status(500)))
        spare = Worker()
        async with routed({"workers": [flaky, spare]}, outliers=Outliers(eject_after=2)) as (router, client):
            assert (await post(client))[0] == 200  # flaky fails once, the spare answers
            code, body, _ = await post(client)
            assert code == 400 and body["message"] == "bad prompt"  # 4xx bodies pass through
            assert (await post(client))[0] == 200  # the second failure in a row: flaky is ejected
            ep = router.pools["workers"].endpoints[f"http://127.0.0.1:{flaky.server.port}"]
            assert ep.ejections == 1
            assert (await metrics(client))['router_discovered_endpoints{pool="workers",state="ejected"}'] == 1
            await post(client)
            assert len(flaky.bodies) == 3  # ejected: not tried again
    run(main())


def test_a_success_resets_the_failure_count() -> None:
    async def main() -> None:
        flaky = Worker(sequence(status(500), ok, status(500)))
        async with routed({"workers": [flaky, Worker()]}, outliers=Outliers(eject_after=2)) as (router, client):
            for _ in range(3):
                assert (await post(client))[0] == 200
            ep = router.pools["workers"].endpoints[f"http://127.0.0.1:{flaky.server.port}"]
            assert (ep.failures, ep.ejections) == (1, 0)
    run(main())


def test_overload_is_429_and_counted() -> None:
    async def main() -> None:
        async with routed({"workers": [Worker()]}, admission=Admission(0)) as (_, client):
            code, body, headers = await post(client)
            assert code == 429 and headers["Retry-After"] and body["error"]["type"] == "rate_limit_exceeded"
            assert (await metrics(client))['router_rejected_total{reason="overload"}'] == 1
    run(main())


# --------------------------------------------------------------------------- prefill-decode
def context_reply(finish_reason: str = "length", message_len: int = 0) -> Reply:
    async def reply(request: web.Request, body: dict) -> web.Response:
        params = {"request_type": "context_only", "ctx_request_id": 7, "first_gen_tokens": [5],
                  "opaque_state": None, "draft_tokens": None}
        if "disagg_request_id" in body["disaggregated_params"]:
            params["disagg_request_id"] = body["disaggregated_params"]["disagg_request_id"]
        return web.json_response({"id": "c", "prompt_token_ids": [1, 2, 3], "choices": [
            {"index": 0, "text": "x", "finish_reason": finish_reason, "disaggregated_params": params}]})
    return reply


def test_no_generation_server_is_503_before_any_context_phase() -> None:
    async def main() -> None:
        ctx = Worker(context_reply())
        async with routed({"context": [ctx], "generation": [Worker(healthy=False)]}) as (_, client):
            code, body, headers = await post(client)
            assert code == 503 and headers["Retry-After"] == "1" and ctx.bodies == []
            assert body["error"] == {"message": "no generation server available; retry shortly",
                                     "type": "service_unavailable", "param": None, "code": 503}
            assert (await metrics(client))['router_rejected_total{reason="no_generation_capacity"}'] == 1
    run(main())


def test_a_context_servers_error_message_reaches_the_client_cut_to_500_characters() -> None:
    async def main() -> None:
        ctx = Worker(status(400, "y" * 2000))
        gen = Worker()
        async with routed({"context": [ctx], "generation": [gen]}) as (_, client):
            code, body, _ = await post(client)
            assert code == 400 and body["error"]["message"] == "y" * 500 and gen.bodies == []
    run(main())


def test_disaggregated_ids_are_upstreams_global_ids_and_the_same_for_both_phases() -> None:
    async def main() -> None:
        ctx, gen = Worker(context_reply()), Worker()
        async with routed({"context": [ctx], "generation": [gen]}, version="1.3") as (_, client):
            for _ in range(3):
                assert (await post(client))[0] == 200
            ids = [b["disaggregated_params"]["disagg_request_id"] for b in ctx.bodies]
            assert [b["disaggregated_params"]["disagg_request_id"] for b in gen.bodies] == ids
            assert len(set(ids)) == 3 and all(1 << 40 <= i < 1 << 63 for i in ids)
        async with routed({"context": [Worker(context_reply())], "generation": [Worker()]}) as (_, client):
            assert (await post(client))[0] == 200  # 1.2: no id is sent (its model forbids the field)
    run(main())


def test_the_disagg_id_layout() -> None:
    base = 1 << 40
    assert rt.disagg_request_id(0, 0, 0) == base
    assert rt.disagg_request_id(0, 0, 1) == base + 1
    assert rt.disagg_request_id(0, 0, 1024 + 5) == base + 5  # the counter has 10 bits
    assert rt.disagg_request_id(0, 1, 0) == base + (1 << 10)
    assert rt.disagg_request_id(0, (1 << 14) + 2, 0) == base + (2 << 10)  # the origin has 14 bits
    assert rt.disagg_request_id(1, 0, 0) == base + (1 << 24)
    assert rt.disagg_request_id(1 << 39, 0, 0) == base  # the clock has 39 bits
    top = rt.disagg_request_id((1 << 39) - 1, (1 << 14) - 1, 1023)
    assert top == ((1 << 63) - 1) % ((1 << 63) - 1 - base) + base and base <= top < 1 << 63
    ids = {rt.disagg_request_id(123456, 77, c) for c in range(1024)}
    assert len(ids) == 1024


def test_generation_queues_no_prompt_tokens_while_it_waits_for_its_first_byte() -> None:
    async def main() -> None:
        release = asyncio.Event()
        held = held_until(release)

        ctx, gen = Worker(context_reply()), Worker(held)
        async with routed({"context": [ctx], "generation": [gen]}) as (_, client):
            task = asyncio.ensure_future(post(client, {"model": "m", "prompt": [1, 2, 3, 4]}))
            for _ in range(100):
                if gen.bodies:
                    break
                await asyncio.sleep(0.02)
            m = await metrics(client)
            assert m['router_outstanding_requests{pool="generation"}'] == 1
            assert m['router_outstanding_prompt_tokens{pool="generation"}'] == 0
            assert m['router_outstanding_requests{pool="context"}'] == 0
            release.set()
            assert (await task)[0] == 200
            assert gen.bodies[0]["disaggregated_params"]["request_type"] == "generation_only"
    run(main())


# --------------------------------------------------------------------------- KV-aware routing
def test_kv_aware_routing_counts_the_prompts_token_ids_and_keeps_its_counters_across_scrapes() -> None:
    async def main() -> None:
        kv = KvRoutingConfig(events=False, tokens_per_block=4)
        async with routed({"workers": [Worker()]}, kv=kv) as (_, client):
            m = await metrics(client)
            assert m['router_kv_routed_prompt_tokens_total{pool="workers"}'] == 0
            assert m['router_kv_matched_prompt_tokens_total{pool="workers"}'] == 0
            assert m['router_conditional_local_prefill_total'] == 0
            assert (await post(client, {"model": "m", "prompt": "text only"}))[0] == 200  # routed by load
            assert (await post(client, {"model": "m", "prompt": list(range(10))}))[0] == 200
            for _ in range(2):
                m = await metrics(client)
                assert m['router_kv_routed_prompt_tokens_total{pool="workers"}'] == 10
                assert m['router_kv_matched_prompt_tokens_total{pool="workers"}'] == 0
    run(main())


def test_kv_events_polled_from_a_worker_reach_the_index() -> None:
    async def main() -> None:
        worker = Worker()
        worker.events = [{"event_id": 1, "data": {"type": "stored", "parent_hash": None, "blocks": [
            {"type": "stored_block", "block_hash": 11, "tokens": [], "lora_id": None, "cache_level": 0,
             "priority": 35}]}}]
        async with routed({"workers": [worker]}, kv=KvRoutingConfig(events=True, tokens_per_block=4)) as (router, _):
            pool = router.pools["workers"]
            ep = next(iter(pool.endpoints.values()))
            assert router.kv is not None
            index = router.kv.chooser("workers").index
            await router.poll_kv_events(pool, ep)
            assert index.matched_blocks(ep.url, [11]) == 1
    run(main())


# --------------------------------------------------------------------------- status endpoints
def test_health_ready_and_live() -> None:
    async def main() -> None:
        lifecycle = Lifecycle()
        async with routed({"workers": [Worker()]}, lifecycle=lifecycle) as (_, client):
            r = await client.get("/health")
            assert (r.status, await r.json()) == (200, {"ready": True})
            assert (await client.get("/live")).status == 200
            assert (await client.get("/ready")).status == 200
            lifecycle.draining = True
            r = await client.get("/health")
            assert (r.status, await r.json()) == (503, {"ready": False, "draining": True})
            assert (await client.get("/ready")).status == 503
            assert (await client.get("/live")).status == 200
        async with routed({"workers": [Worker(healthy=False)]}) as (_, client):
            r = await client.get("/health")
            assert (r.status, await r.json()) == (503, {"ready": False, "no_available_endpoint": ["workers"]})
            assert (await client.get("/ready")).status == 200  # ready without workers: answers 503 itself
    run(main())


def test_metrics_list_each_endpoints_inflight_and_the_pools_at_zero() -> None:
    async def main() -> None:
        a, b = Worker(), Worker()
        async with routed({"workers": [a, b]}) as (_, client):
            m = await metrics(client)
            for w in (a, b):
                assert m[f'router_endpoint_inflight{{endpoint="http://127.0.0.1:{w.server.port}",pool="workers"}}'] == 0
            assert m['router_outstanding_requests{pool="workers"}'] == 0
            assert m['router_outstanding_prompt_tokens{pool="workers"}'] == 0
            assert m["router_context_kv_orphaned_total"] == 0
            assert m['router_discovered_endpoints{pool="workers",state="healthy"}'] == 2
            assert m['router_discovered_endpoints{pool="workers",state="unhealthy"}'] == 0
    run(main())


def test_the_router_closes_its_client_session_and_ends_its_loops_on_shutdown() -> None:
    def name(task: asyncio.Task) -> str:
        return str(getattr(task.get_coro(), "__qualname__", ""))

    def loops() -> list[asyncio.Task]:
        return [t for t in asyncio.all_tasks() if name(t).startswith("Router._")]

    async def main() -> None:
        kv = KvRoutingConfig(events=True, tokens_per_block=4)
        async with routed({"workers": [Worker()]}, kv=kv) as (router, client):
            assert router.session is not None and not router.session.closed
            assert (await client.get("/v1/models")).status == 200
            running = loops()
            assert sorted(name(t) for t in running) == ["Router._kv_poll_loop", "Router._refresh_loop"]
        assert router.session.closed
        assert all(t.done() for t in running) and loops() == []
    run(main())


# --------------------------------------------------------------------------- flags
def test_kv_flags_reach_the_routing_config() -> None:
    args = rt.parse_args(["--workers", "static://a:1", "--routing", "kv-aware", "--kv-decode-token-cost", "3",
                         "--tokens-per-block", "64", "--kv-poll-seconds", "0.25", "--kv-events", "off",
                         "--max-local-prefill-tokens", "0"])
    config = rt.kv_config(args)
    assert config is not None
    assert (config.weights.decode_token_cost, config.tokens_per_block, config.poll_seconds, config.events,
            config.max_local_prefill_tokens) == (3.0, 64, 0.25, False, 0)
    assert rt.kv_config(rt.parse_args(["--workers", "static://a:1"])) is None


@pytest.mark.parametrize(("flags", "accepted"), [
    (["--tokens-per-block", "1", "--kv-poll-seconds", "0.001"], True),
    (["--tokens-per-block", "0"], False),
    (["--kv-poll-seconds", "0"], False),
    (["--max-local-prefill-tokens", "-1"], False),
    (["--kv-load-weight", "-0.5"], False),
])
def test_kv_flag_bounds(flags: list[str], accepted: bool) -> None:
    args = rt.parse_args(["--workers", "static://a:1", "--routing", "kv-aware", *flags])
    if accepted:
        assert rt.kv_config(args) is not None
    else:
        with pytest.raises(SystemExit, match=r"^runtime\.router: --"):
            rt.kv_config(args)


def test_local_prefill_needs_kv_aware_routing() -> None:
    with pytest.raises(SystemExit, match="--max-local-prefill-tokens needs --routing kv-aware"):
        rt.kv_config(rt.parse_args(["--workers", "static://a:1", "--max-local-prefill-tokens", "8"]))


# --------------------------------------------------------------------------- more of the prefill-decode flow
def test_a_request_the_context_phase_finished_is_answered_without_generation() -> None:
    async def main() -> None:
        ctx, gen = Worker(context_reply(finish_reason="stop")), Worker()
        async with routed({"context": [ctx], "generation": [gen]}) as (_, client):
            code, body, _ = await post(client)
            assert code == 200 and gen.bodies == []
            assert body["choices"] == [{"index": 0, "text": "x", "finish_reason": "stop"}]  # no handoff params
            r = await client.post("/v1/completions", json={"model": "m", "prompt": "p", "stream": True,
                                                          "stream_options": {"include_usage": True}})
            text = await r.text()
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            assert text.endswith("data: [DONE]\n\n") and '"text": "x"' in text.replace('":"', '": "')
            assert ctx.bodies[1]["stream"] is False and "stream_options" not in ctx.bodies[1]
    run(main())


def test_generation_failing_after_the_context_phase_counts_an_orphaned_kv() -> None:
    async def main() -> None:
        ctx, gen = Worker(context_reply()), Worker(status(500))
        async with routed({"context": [ctx], "generation": [gen]}) as (_, client):
            code, body, _ = await post(client)
            assert code == 502 and body["error"]["message"].startswith("the generation server failed")
            m = await metrics(client)
            assert m["router_context_kv_orphaned_total"] == 1, {k: v for k, v in m.items() if "cancel" in k or "orphan" in k}
            assert m['router_requests_total{code="2xx",pool="context"}'] == 1
            assert m['router_requests_total{code="5xx",pool="generation"}'] == 1
    run(main())


@pytest.mark.parametrize("params", [None, {"request_type": "context_only"}])
def test_an_invalid_context_response_is_502_and_generation_is_not_called(params: dict | None) -> None:
    async def bad(request: web.Request, body: dict) -> web.Response:
        choice: dict = {"index": 0, "text": "x", "finish_reason": "length"}
        if params is not None:
            choice["disaggregated_params"] = params
        return web.json_response({"id": "c", "choices": [choice]})

    async def main() -> None:
        gen = Worker()
        async with routed({"context": [Worker(bad)], "generation": [gen]}) as (_, client):
            code, body, _ = await post(client)
            assert code == 502 and gen.bodies == []
            assert body["error"]["message"].startswith("the context server sent an invalid response (request id ")
            assert (await metrics(client))['router_upstream_errors_total{kind="bad_context_response",pool="context"}'] == 1
    run(main())


@pytest.mark.parametrize(("limit", "local"), [(8, True), (7, False), (None, False)])
def test_conditional_disaggregation_prefills_short_uncached_prompts_on_the_generation_server(
        limit: int | None, local: bool) -> None:
    async def main() -> None:
        ctx, gen = Worker(context_reply()), Worker()
        kv = KvRoutingConfig(events=False, tokens_per_block=4, max_local_prefill_tokens=limit)
        async with routed({"context": [ctx], "generation": [gen]}, kv=kv) as (_, client):
            code, _, _ = await post(client, {"model": "m", "prompt": list(range(8))})
            assert code == 200 and len(gen.bodies) == 1
            assert len(ctx.bodies) == (0 if local else 1)
            assert ("disaggregated_params" in gen.bodies[0]) is not local
            assert (await metrics(client))["router_conditional_local_prefill_total"] == (1 if local else 0)
    run(main())


def test_models_come_from_a_generation_server_or_are_503() -> None:
    async def main() -> None:
        async with routed({"context": [Worker()], "generation": [Worker()]}) as (_, client):
            r = await client.get("/v1/models")
            assert r.status == 200 and (await r.json())["data"] == [{"id": "m"}]
        async with routed({"workers": [Worker(healthy=False)]}) as (_, client):
            r = await client.get("/v1/models")
            assert r.status == 503 and (await r.json())["error"]["message"] == "no workers server available; retry shortly"
        async with routed({"workers": [free_port()]}) as (router, client):
            mark_healthy(router)
            r = await client.get("/v1/models")
            assert r.status == 503 and (await r.json())["error"]["message"] == "no model server available"
    run(main())


def test_prompt_tokens_from_the_frontends_header_count_until_the_first_byte() -> None:
    async def main() -> None:
        release = asyncio.Event()
        held = held_until(release)

        async with routed({"workers": [Worker(held)]}) as (_, client):
            tasks = [asyncio.ensure_future(client.post("/v1/completions", json={"prompt": "p"},
                                                       headers={"X-Prompt-Tokens": value}))
                     for value in ("120", "x1", "1234567890", "123456789")]
            await asyncio.sleep(0.3)
            m = await metrics(client)
            assert m['router_outstanding_prompt_tokens{pool="workers"}'] == 120 + 123456789  # not a number, 10 digits: 0
            assert m['router_outstanding_requests{pool="workers"}'] == 4
            release.set()
            for t in tasks:
                assert (await t).status == 200
            m = await metrics(client)
            assert (m['router_outstanding_prompt_tokens{pool="workers"}'], m['router_outstanding_requests{pool="workers"}']) == (0, 0)
    run(main())


def test_an_unexpected_error_is_500_with_a_request_id_and_no_detail() -> None:
    class Broken:
        def choose(self, pool: str, candidates: list[Endpoint], request: RequestInfo) -> Endpoint:
            raise RuntimeError("secret detail")

    async def main() -> None:
        async with routed({"workers": [Worker()]}, policy=Broken()) as (_, client):
            r = await client.post("/v1/completions", json={"prompt": "p"}, headers={"X-Request-Id": "abc123"})
            body = await r.json()
            assert r.status == 500 and body["error"] == {"message": "internal error (request id abc123)",
                                                         "type": "internal_error", "param": None, "code": 500}
            r = await client.get("/v1/completions")
            assert r.status == 405 and (await r.json())["error"]["code"] == 405
    run(main())


def test_pools_from_flags() -> None:
    pools = rt.build_pools(rt.parse_args(["--workers", "static://a:1"]))
    assert list(pools) == ["workers"]
    pools = rt.build_pools(rt.parse_args(["--context", "static://a:1", "--generation", "static://b:1"]))
    assert list(pools) == ["context", "generation"]
    for flags in (["--context", "static://a:1"], ["--workers", "static://a:1", "--generation", "static://b:1"], []):
        with pytest.raises(SystemExit, match="give either --workers"):
            rt.build_pools(rt.parse_args(flags))
    with pytest.raises(SystemExit, match=r"^runtime\.router: --workers 'static://'"):
        rt.build_pools(rt.parse_args(["--workers", "static://"]))


@pytest.mark.parametrize(("flags", "message"), [
    (["--refresh-seconds", "0"], "--refresh-seconds 0.0: must be > 0"),
    (["--trtllm-version", "0.9"], "--trtllm-version: "),
    (["--eject-after", "0"], "--eject-after 0 must be >= 1"),
    (["--eject-seconds", "0"], "--eject-seconds 0.0 > 0"),
])
def test_main_refuses_bad_flags_before_serving(flags: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as caught:
        rt.main(["--workers", "static://a:1", *flags])
    assert str(caught.value).startswith("runtime.router: ") and message in str(caught.value)


# --------------------------------------------------------------------------- discovery
def test_discovery_rounds_are_counted_and_a_failed_round_keeps_the_endpoints(tmp_path, monkeypatch) -> None:
    import socket

    async def main() -> None:
        listing = tmp_path / "workers"
        worker = Worker()
        await worker.server.start_server()
        listing.write_text(f"127.0.0.1:{worker.server.port}\n")
        pool = rt.Pool("workers", parse_source("--workers", f"file://{listing}"))
        router = rt.Router({"workers": pool}, 60.0, FAST, capabilities("1.2"), Admission(8))
        client = TestClient(TestServer(rt.make_app(router)))
        await client.start_server()
        try:
            m = await metrics(client)
            assert m['router_discovery_refresh_total{outcome="ok",pool="workers"}'] == 1
            listing.unlink()
            listing.mkdir()  # reading it fails (OSError): the last endpoints stay
            await router.refresh_once()
            m = await metrics(client)
            assert m['router_discovery_refresh_total{outcome="error",pool="workers"}'] == 1
            assert list(pool.endpoints) == [f"http://127.0.0.1:{worker.server.port}"]

            async def nxdomain(source: object) -> list[str]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

            monkeypatch.setattr(rt, "resolve", nxdomain)  # a headless Service with no ready pod
            await router.refresh_once()
            assert pool.endpoints == {} and list(pool.removed) == [f"http://127.0.0.1:{worker.server.port}"]
            m = await metrics(client)
            assert m['router_discovery_refresh_total{outcome="error",pool="workers"}'] == 2
            assert m['router_discovery_refresh_total{outcome="ok",pool="workers"}'] == 1
        finally:
            await client.close()
            await worker.server.close()

    run(main())


# --------------------------------------------------------------------------- streams that break, clients that leave
async def raw_server(script: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                     ) -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            await script(reader, writer)
        finally:
            writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _broken_sse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    event = b'data: {"choices":[{"text":"a"}]}\n\n'
    writer.write(b"%x\r\n%b\r\n" % (len(event), event))
    await writer.drain()
    await asyncio.sleep(0.05)  # then the connection drops mid-stream


def test_a_stream_broken_after_its_first_bytes_is_a_failure_of_that_server() -> None:
    async def main() -> None:
        server, port = await raw_server(_broken_sse)
        try:
            async with routed({"workers": [port]}) as (router, client):
                mark_healthy(router)
                r = await client.post("/v1/completions", json={"prompt": "p", "stream": True})
                text = await r.text()
                assert r.status == 200 and text.startswith('data: {"choices":[{"text":"a"}]}')
                m = await metrics(client)
                assert m['router_upstream_errors_total{kind="broken_stream",pool="workers"}'] == 1
                assert router.pools["workers"].endpoints[f"http://127.0.0.1:{port}"].failures == 1
                assert m['router_outstanding_requests{pool="workers"}'] == 0
        finally:
            server.close()
    run(main())


@pytest.mark.parametrize("cancellation", [True, False])
def test_a_client_that_leaves_mid_stream_is_counted_and_the_worker_is_not_blamed(cancellation: bool) -> None:
    """With handler cancellation (serve.py) or without it (the relay notices the closed client
    at the next chunk): counted once, the upstream connection closed, the worker not blamed."""
    async def main() -> None:
        gone = asyncio.Event()

        async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            event = b'data: {"choices":[{"text":"a"}]}\n\n'
            try:
                for _ in range(250):  # 5 s of tokens unless the router closes the connection
                    writer.write(b"%x\r\n%b\r\n" % (len(event), event))
                    await writer.drain()
                    await asyncio.sleep(0.02)
            except ConnectionError:  # the router closed it: writing fails
                gone.set()

        server, port = await raw_server(endless)
        try:
            async with routed({"workers": [port]}, handler_cancellation=cancellation) as (router, client):
                mark_healthy(router)
                r = await client.post("/v1/completions", json={"prompt": "p", "stream": True})
                await r.content.readany()
                r.close()  # the client leaves
                for _ in range(100):
                    m = await metrics(client)
                    if m.get('router_client_cancelled_total{phase="workers"}'):
                        break
                    await asyncio.sleep(0.02)
                assert m['router_client_cancelled_total{phase="workers"}'] == 1
                assert m['router_outstanding_requests{pool="workers"}'] == 0
                assert router.pools["workers"].endpoints[f"http://127.0.0.1:{port}"].failures == 0
                await asyncio.wait_for(gone.wait(), 5)  # the upstream connection was closed, not read on
        finally:
            server.close()
    run(main())


def test_a_context_response_cut_off_mid_body_is_502_and_blames_the_context_server() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":")
        await writer.drain()

    async def main() -> None:
        server, port = await raw_server(cut)
        gen = Worker()
        try:
            async with routed({"context": [port], "generation": [gen]}) as (router, client):
                mark_healthy(router)
                code, body, _ = await post(client)
                assert code == 502 and gen.bodies == []
                assert body["error"]["message"].startswith("the context server failed (request id ")
                m = await metrics(client)
                assert m['router_upstream_errors_total{kind="broken_response",pool="context"}'] == 1
                assert m['router_outstanding_requests{pool="context"}'] == 0
        finally:
            server.close()
    run(main())


def test_stream_options_without_stream_are_refused_before_the_context_phase() -> None:
    async def main() -> None:
        ctx, gen = Worker(context_reply()), Worker()
        async with routed({"context": [ctx], "generation": [gen]}) as (_, client):
            code, body, _ = await post(client, {"prompt": "p", "stream_options": {"include_usage": True}})
            assert code == 400 and body["error"]["message"] == "Stream options can only be defined when stream is true."
            assert ctx.bodies == [] and gen.bodies == []
            code, _, _ = await post(client, {"prompt": "p", "stream": False, "stream_options": None})
            assert code == 200 and "stream_options" not in ctx.bodies[0]
    run(main())


def test_a_context_servers_success_resets_its_failure_count() -> None:
    async def main() -> None:
        flaky = Worker(sequence(status(500), context_reply(), status(500)))
        spare = Worker(context_reply())
        async with routed({"context": [flaky, spare], "generation": [Worker()]},
                          outliers=Outliers(eject_after=2)) as (router, client):
            for _ in range(3):
                assert (await post(client))[0] == 200
            ep = router.pools["context"].endpoints[f"http://127.0.0.1:{flaky.server.port}"]
            assert (ep.failures, ep.ejections, len(flaky.bodies)) == (1, 0, 3)
    run(main())


def test_a_client_that_leaves_during_the_context_phase_gets_no_generation() -> None:
    async def main() -> None:
        async def late(request: web.Request, body: dict) -> web.StreamResponse:
            await asyncio.sleep(0.4)
            return await context_reply()(request, body)

        for cancellation, phase, orphaned in ((True, "context", 0), (False, "between_context_and_generation", 1)):
            # handlers cancelled on disconnect (serve.py) stop in the context phase; without cancellation
            # (the race where the client leaves as the context response lands) the check between the
            # phases stops it, and the context KV it leaves is counted
            ctx, gen = Worker(late), Worker()
            async with routed({"context": [ctx], "generation": [gen]},
                              handler_cancellation=cancellation) as (_, client):
                task = asyncio.ensure_future(post(client))
                await asyncio.sleep(0.15)
                task.cancel()  # the client hangs up while the context phase runs
                for _ in range(100):
                    m = await metrics(client)
                    if m.get(f'router_client_cancelled_total{{phase="{phase}"}}'):
                        break
                    await asyncio.sleep(0.02)
                assert m[f'router_client_cancelled_total{{phase="{phase}"}}'] == 1
                assert m["router_context_kv_orphaned_total"] == orphaned
                await asyncio.sleep(0.4)
                assert len(ctx.bodies) == 1 and gen.bodies == []
    run(main())


def test_a_prompt_whose_prefix_the_generation_server_holds_is_prefilled_there() -> None:
    """Conditional disaggregation counts only the uncached part: 16 prompt tokens went through
    generation once (its blocks are recorded there), so the same 16 plus 4 new ones leave 4 to prefill."""
    async def main() -> None:
        ctx, gen = Worker(context_reply()), Worker()
        kv = KvRoutingConfig(events=False, tokens_per_block=4, max_local_prefill_tokens=8)
        async with routed({"context": [ctx], "generation": [gen]}, kv=kv) as (_, client):
            prefix = list(range(100, 116))
            assert (await post(client, {"model": "m", "prompt": prefix}))[0] == 200
            assert (len(ctx.bodies), len(gen.bodies)) == (1, 1)  # 16 uncached > 8: disaggregated
            assert (await post(client, {"model": "m", "prompt": [*prefix, 1, 2, 3, 4]}))[0] == 200
            assert (len(ctx.bodies), len(gen.bodies)) == (1, 2)  # 4 uncached <= 8: prefilled on generation
            assert "disaggregated_params" not in gen.bodies[1]
            assert (await post(client, {"model": "m", "prompt": list(range(200, 220))}))[0] == 200
            assert len(ctx.bodies) == 2  # a new prompt of 20 tokens: disaggregated again
    run(main())


def test_the_router_describes_itself_and_keeps_the_documented_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        rt.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps the description
    assert "The orchestrator tier: discovers ``trtllm-serve`` group leaders and routes requests to them." in help_text
    defaults = rt.parse_args([])
    # docs/config-reference.md (serving.admission.routerMaxInflight: the process default) and routing.md
    assert (defaults.max_inflight, defaults.kv_poll_seconds, defaults.refresh_seconds) == (2048, 0.5, 2.0)
    config = rt.kv_config(rt.parse_args(["--workers", "static://a:1", "--routing", "kv-aware"]))
    assert config is not None and config.poll_seconds == 0.5 and config.events


def test_a_body_declared_above_64_mib_is_refused_before_it_is_read() -> None:
    async def send_headers(port: int, length: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % length)
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(4096), 0.5)
        except asyncio.TimeoutError:
            return b""  # still waiting for the body
        finally:
            writer.close()

    async def main() -> None:
        worker = Worker()
        async with routed({"workers": [worker]}) as (_, client):
            port = client.server.port
            assert port is not None
            refused = await send_headers(port, (64 << 20) + 1)
            assert refused.startswith(b"HTTP/1.1 413") and b"exceeds the 67108864 byte limit" in refused
            assert await send_headers(port, 64 << 20) == b""  # at the limit: the router waits for the body
            assert worker.bodies == []
    run(main())


@pytest.mark.parametrize("code", [404, 499])
def test_every_status_below_500_is_relayed_without_a_retry(code: int) -> None:
    async def main() -> None:
        first, spare = Worker(status(code, "as the worker said")), Worker()
        async with routed({"workers": [first, spare]}) as (_, client):
            got, body, _ = await post(client)
            assert (got, body["message"], len(spare.bodies)) == (code, "as the worker said", 0)
    run(main())


def test_a_client_that_leaves_while_the_worker_is_silent_cancels_the_relay() -> None:
    """No byte arrives to notice the closed client: the handler's cancellation (runtime/serve.py)
    ends the relay, counted once, and the upstream connection is closed."""
    async def main() -> None:
        closed = asyncio.Event()

        async def one_then_silence(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            event = b'data: {"choices":[{"text":"a"}]}\n\n'
            writer.write(b"%x\r\n%b\r\n" % (len(event), event))
            await writer.drain()
            if await reader.read() == b"":  # the router closed its end
                closed.set()

        server, port = await raw_server(one_then_silence)
        try:
            async with routed({"workers": [port]}) as (router, client):
                mark_healthy(router)
                r = await client.post("/v1/completions", json={"prompt": "p", "stream": True})
                await r.content.readany()
                r.close()
                await asyncio.wait_for(closed.wait(), 5)
                for _ in range(50):
                    m = await metrics(client)
                    if m.get('router_client_cancelled_total{phase="workers"}'):
                        break
                    await asyncio.sleep(0.02)
                assert m['router_client_cancelled_total{phase="workers"}'] == 1
                assert m['router_outstanding_requests{pool="workers"}'] == 0
        finally:
            server.close()
    run(main())
