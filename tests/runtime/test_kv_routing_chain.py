"""KV-aware routing over real processes: router -> stand-ins that model a reusable KV cache."""

from __future__ import annotations

import json
import time

from tests.runtime.procs import http, metrics, wait_until

MODEL = "llama"
LABELS = '{engine_type="trtllm",model_name="llama"}'
CACHE = ("--kv-cache-blocks", "64", "--tokens-per-block", "4")
KV = ("--routing", "kv-aware", "--tokens-per-block", "4", "--kv-poll-seconds", "0.1")


def _reused(proc) -> float:
    return metrics(proc.url + "/metrics")[f"standin_prefill_tokens_reused_total{LABELS}"]


def _computed(proc) -> float:
    return metrics(proc.url + "/metrics")[f"standin_prefill_tokens_computed_total{LABELS}"]


def _complete(router, prompt: list[int]) -> dict:
    status, body = http("POST", router.url + "/v1/completions", {"model": MODEL, "prompt": prompt, "max_tokens": 2})
    assert status == 200, body
    return json.loads(body)


def _same_prefix_goes_where_it_is_cached(cluster, *router_flags: str) -> None:
    a, b = cluster.standin("aggregated", MODEL, extra=CACHE), cluster.standin("aggregated", MODEL, extra=CACHE)
    router = cluster.router("--workers", f"static://127.0.0.1:{a.port},127.0.0.1:{b.port}", *router_flags)
    wait_until(lambda: http("GET", router.url + "/health")[0] == 200, 10)
    prompt = list(range(1, 42))  # 40 usable tokens: 10 blocks of 4
    _complete(router, prompt)
    first = a if _computed(a) else b
    time.sleep(0.3)  # the router polls the first request's events after it ends
    for k in range(3):
        _complete(router, prompt + [100 + k])  # a new suffix each time: the shared prefix is reused
    assert _reused(first) >= 3 * 40
    other = b if first is a else a
    assert _reused(other) == 0 and _computed(other) == 0


def test_kv_aware_routing_follows_the_workers_kv_events(cluster):
    _same_prefix_goes_where_it_is_cached(cluster, *KV)


def test_kv_aware_routing_without_events_approximates_from_its_own_decisions(cluster):
    _same_prefix_goes_where_it_is_cached(cluster, *KV, "--kv-events", "off")


def test_conditional_disaggregation_prefills_short_uncached_prompts_on_the_generation_server(cluster):
    ctx = cluster.standin("context", MODEL, extra=CACHE)
    gen = cluster.standin("generation", MODEL, extra=CACHE)
    router = cluster.router("--context", f"static://127.0.0.1:{ctx.port}", "--generation",
                            f"static://127.0.0.1:{gen.port}", *KV, "--max-local-prefill-tokens", "16")
    wait_until(lambda: http("GET", router.url + "/health")[0] == 200, 10)
    handoffs = f"standin_context_handoffs_total{LABELS}"
    before = metrics(ctx.url + "/metrics")[handoffs]
    out = _complete(router, list(range(1, 11)))  # 10 tokens, all uncached: below the threshold
    assert out["choices"][0]["text"] and metrics(ctx.url + "/metrics")[handoffs] == before
    assert _computed(gen) == 10
    assert metrics(router.url + "/metrics")["router_conditional_local_prefill_total"] == 1
    _complete(router, list(range(1, 60)))  # 59 uncached tokens: through the context server
    assert metrics(ctx.url + "/metrics")[handoffs] == before + 1
    assert _computed(gen) == 10


def test_router_is_ready_without_workers_and_answers_clients_503(cluster):
    router = cluster.router("--workers", "static://127.0.0.1:9")  # nothing listens on the discard port
    wait_until(lambda: http("GET", router.url + "/ready")[0] == 200, 10)
    assert http("GET", router.url + "/health")[0] == 503
    status, body = http("POST", router.url + "/v1/completions", {"model": MODEL, "prompt": [1, 2, 3], "max_tokens": 2})
    assert status == 503 and "127.0.0.1:9" not in body.decode()


def test_a_removed_endpoint_keeps_its_inflight_series_at_zero(cluster):
    """A draining leader's preStop reads router_endpoint_inflight of its own address from Prometheus:
    after discovery drops it, the series stays (at 0) instead of vanishing (which reads as busy)."""
    a, b = cluster.standin("aggregated", MODEL), cluster.standin("aggregated", MODEL)
    listed = cluster.endpoints_file("kv-removed.txt", [a, b])
    router = cluster.router("--workers", f"file://{listed}", refresh=0.2)
    wait_until(lambda: http("GET", router.url + "/health")[0] == 200, 10)
    _complete(router, [1, 2, 3, 4])
    cluster.endpoints_file("kv-removed.txt", [a])
    key = f'router_endpoint_inflight{{endpoint="{b.url}",pool="workers"}}'
    time.sleep(1.0)  # several discovery rounds without b
    assert metrics(router.url + "/metrics").get(key) == 0.0
