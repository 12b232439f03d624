"""Fault injection against frontend -> router -> stand-ins, real processes on 127.0.0.1 (issue 21).

Each test injects one fault (client gone, SIGSTOP, kill, slow worker, 5xx, overload, bad bytes,
slow client, SIGTERM) and asserts the behaviour with numbers: counts on the stand-ins' and
tiers' metrics, statuses, and elapsed time. Counts and timeouts are small so the whole module
stays within about a minute on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.runtime.procs import Cluster, free_port, http, metrics, wait_until

MODEL = "llama"
L = '{engine_type="trtllm",model_name="llama"}'


def _post(url: str, body: dict[str, Any], timeout: float = 15.0, headers: dict[str, str] | None = None
          ) -> tuple[int, bytes]:
    return http("POST", url, body, timeout=timeout, headers=headers)


def _fault(proc: Any, **fault: Any) -> None:
    assert http("POST", proc.url + "/standin/fault", fault)[0] == 200


def _open_stream(port: int, body: dict[str, Any], path: str = "/v1/completions") -> socket.socket:
    raw = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST %b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                 % (path.encode(), len(raw), raw))
    return sock


def _read_all(sock: socket.socket, limit_s: float, until: bytes = b"0\r\n\r\n") -> tuple[bytes, float]:
    """Everything until the server ends the response (or closes), and how long it took."""
    t0 = time.monotonic()
    sock.settimeout(limit_s)
    got = b""
    try:
        while until not in got:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    except TimeoutError:
        pass
    return got, time.monotonic() - t0


def _no_tracebacks(*procs: Any) -> None:
    for p in procs:
        p._log.flush()
        assert "Traceback" not in p.log_path.read_text(errors="replace"), p.log()


def _metric(proc: Any, key: str) -> float:
    return metrics(proc.url + "/metrics").get(key, 0.0)


# --- prefill-decode ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def disagg():
    c = Cluster()
    try:
        ctx1, ctx2 = c.standin("context", MODEL), c.standin("context", MODEL)
        gen1, gen2 = c.standin("generation", MODEL), c.standin("generation", MODEL)
        router = c.router("--context", f"static://127.0.0.1:{ctx1.port},127.0.0.1:{ctx2.port}",
                          "--generation", f"static://127.0.0.1:{gen1.port},127.0.0.1:{gen2.port}",
                          "--eject-after", "2", "--eject-seconds", "30", refresh=0.5)
        frontend = c.frontend(router.url, MODEL)
        yield {"c": c, "ctx": [ctx1, ctx2], "gen": [gen1, gen2], "router": router, "frontend": frontend}
    finally:
        c.close()


def _sum(procs: list[Any], key: str) -> float:
    return sum(_metric(p, key) for p in procs)


def test_client_gone_during_the_context_phase_sends_no_generation_request(disagg):
    ctx, gen = disagg["ctx"], disagg["gen"]
    for p in ctx:
        _fault(p, delay_s=1.5, count=1)  # a long prefill on whichever context server is chosen
    gen_before = _sum(gen, f"trtllm_request_success_total{L}") + _sum(gen, f"standin_refused_total{L}")
    cancelled_before = _sum(ctx, f"standin_cancelled_total{L}")
    sock = _open_stream(disagg["frontend"].port, {"model": MODEL, "prompt": "leave", "max_tokens": 50, "stream": True})
    time.sleep(0.5)
    sock.close()  # the client gives up before its first token
    wait_until(lambda: _sum(ctx, f"standin_cancelled_total{L}") == cancelled_before + 1, 5,
               "the context server sees the request aborted")
    time.sleep(1.5)  # past the end of the prefill it would have run
    assert _sum(gen, f"trtllm_request_success_total{L}") + _sum(gen, f"standin_refused_total{L}") == gen_before
    assert _sum(ctx, "standin_kv_held_requests") == 0
    assert _metric(disagg["frontend"], "frontend_requests_in_flight") == 0
    router = metrics(disagg["router"].url + "/metrics")
    assert router['router_outstanding_requests{pool="context"}'] == 0
    assert router['router_client_cancelled_total{phase="context"}'] >= 1
    for p in ctx:
        _fault(p, count=0)
    _no_tracebacks(disagg["frontend"], disagg["router"], *ctx, *gen)


def test_generation_5xx_is_retried_once_on_another_server_and_ejected(disagg):
    gen1, gen2 = disagg["gen"]
    _fault(gen1, status=500, count=100)
    ok_before = _metric(gen2, f"trtllm_request_success_total{L}")
    results = [_post(disagg["frontend"].url + "/v1/completions", {"model": MODEL, "prompt": f"r{i}", "max_tokens": 3})
               for i in range(6)]
    assert [s for s, _ in results] == [200] * 6
    assert all(json.loads(b)["choices"][0]["text"] == f"r{i}r"[:3] for i, (_, b) in enumerate(results))
    assert _metric(gen2, f"trtllm_request_success_total{L}") == ok_before + 6
    failed_on_gen1 = metrics(gen1.url + "/metrics")["standin_faults_injected_total"]
    assert failed_on_gen1 <= 2  # --eject-after 2: then it gets no more requests
    router = metrics(disagg["router"].url + "/metrics")
    assert router['router_retries_total{pool="generation"}'] >= failed_on_gen1
    assert router['router_discovered_endpoints{pool="generation",state="ejected"}'] == 1
    # the generation request gen1 refused never pulled the KV: gen2 did, nothing is left held
    assert _sum(disagg["ctx"], "standin_kv_held_requests") == 0


def test_context_5xx_is_retried_and_worker_text_never_reaches_the_client(disagg):
    ctx1, ctx2 = disagg["ctx"]
    faults_before = _metric(ctx1, "standin_faults_injected_total")
    _fault(ctx1, status=500, count=100)
    statuses = []
    for i in range(6):
        status, body = _post(disagg["frontend"].url + "/v1/completions",
                             {"model": MODEL, "prompt": f"c{i}", "max_tokens": 2})
        statuses.append(status)
        assert b"CUDA" not in body and b"10.1.2.3" not in body
    assert statuses == [200] * 6
    assert _metric(ctx1, "standin_faults_injected_total") - faults_before <= 2  # then ejected
    # with every context server failing, the client gets a request id, not the worker's text
    _fault(ctx2, status=500, count=100)  # ctx1 stays ejected (30 s): only ctx2 is tried
    status, body = _post(disagg["frontend"].url + "/v1/completions", {"model": MODEL, "prompt": "z", "max_tokens": 2})
    err = json.loads(body)["error"]
    assert status in (502, 503) and "request id" in err["message"]
    assert b"CUDA" not in body and b"127.0.0.1" not in body and b"Traceback" not in body
    _fault(ctx2, count=0)


def test_no_context_phase_runs_without_generation_capacity(disagg):
    ctx = disagg["ctx"][1]
    router = disagg["c"].router("--context", f"static://127.0.0.1:{ctx.port}",
                                "--generation", f"static://127.0.0.1:{free_port()}")  # nobody listens
    before = _metric(ctx, f"standin_context_handoffs_total{L}") + _metric(ctx, "standin_faults_injected_total")
    t0 = time.monotonic()
    for i in range(5):
        status, body = _post(router.url + "/v1/completions", {"model": MODEL, "prompt": [1, 2, i], "max_tokens": 4})
        assert status == 503 and "no generation server available" in json.loads(body)["error"]["message"]
    assert time.monotonic() - t0 < 2.0
    assert _metric(ctx, f"standin_context_handoffs_total{L}") + _metric(ctx, "standin_faults_injected_total") == before
    assert metrics(router.url + "/metrics")['router_rejected_total{reason="no_generation_capacity"}'] == 5


# --- KV retention per release ------------------------------------------------------------------

def test_kv_of_a_failed_generation_is_released_by_the_transfer_timeout_on_1_3_and_leaks_on_1_2():
    c = Cluster()
    try:
        held = {}
        for version in ("1.3", "1.2"):
            ctx = c.standin("context", MODEL, extra=("--trtllm-version", version, "--kv-transfer-timeout-ms", "1500"))
            gen = c.standin("generation", MODEL, extra=("--trtllm-version", version))
            router = c.router("--context", f"static://127.0.0.1:{ctx.port}", "--generation",
                              f"static://127.0.0.1:{gen.port}", "--trtllm-version", version, "--eject-after", "5")
            _fault(gen, status=500, count=10)
            status, _ = _post(router.url + "/v1/completions", {"model": MODEL, "prompt": [5, 6, 7], "max_tokens": 4})
            assert status == 502
            assert _metric(ctx, "standin_kv_held_requests") == 1 and _metric(ctx, "standin_kv_held_blocks") == 1
            assert _metric(router, "router_context_kv_orphaned_total") == 1
            held[version] = (ctx, router)
        wait_until(lambda: _metric(held["1.3"][0], "standin_kv_held_requests") == 0, 4, "1.3 releases the KV")  # kv_transfer_timeout_ms released it
        assert _metric(held["1.3"][0], 'standin_kv_released_total{reason="timeout"}') == 1
        assert _metric(held["1.2"][0], "standin_kv_held_requests") == 1  # no abort, no timeout: held
        # the stand-ins speak their release's protocol: 1.2 forbids disagg_request_id, 1.3 takes it
        body = {"model": MODEL, "prompt": [1], "max_tokens": 2,
                "disaggregated_params": {"request_type": "context_only", "disagg_request_id": 7}}
        status, err = _post(held["1.2"][0].url + "/v1/completions", body)
        assert status == 400 and "disagg_request_id: Extra inputs are not permitted" in json.loads(err)["message"]
        assert _post(held["1.3"][0].url + "/v1/completions", body)[0] == 200
        # and the 1.3 router sent it (its requests were accepted above), the 1.2 router did not
    finally:
        c.close()


# --- aggregated ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def agg():
    c = Cluster()
    try:
        w1, w2 = c.standin("aggregated", MODEL, tps=20), c.standin("aggregated", MODEL, tps=20)
        router = c.router("--workers", f"static://127.0.0.1:{w1.port},127.0.0.1:{w2.port}",
                          "--idle-timeout", "1", "--first-byte-timeout", "4", "--eject-after", "1",
                          "--eject-seconds", "30", refresh=0.5)
        frontend = c.frontend(router.url, MODEL, extra=("--header-timeout", "1", "--body-timeout", "1",
                                                        "--max-body-bytes", "200000"))
        yield {"c": c, "w": [w1, w2], "router": router, "frontend": frontend}
    finally:
        c.close()


def test_load_is_counted_from_request_start(agg):
    w1, w2 = agg["w"]
    _fault(w1, delay_s=2.0, count=100)  # w1 answers only after 2 s
    before = [_metric(w, f"trtllm_request_success_total{L}") for w in (w1, w2)]
    fe = agg["frontend"].url + "/v1/completions"
    seen: dict[str, float] = {}

    def watch() -> None:
        time.sleep(0.4)
        m = metrics(agg["router"].url + "/metrics")
        seen.update(m)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(4) as pool:
        futures = []
        for _ in range(12):
            futures.append(pool.submit(_post, fe, {"model": MODEL, "prompt": "p" * 40, "max_tokens": 1}))
            time.sleep(0.05)
        statuses = [f.result()[0] for f in futures]
    watcher.join()
    assert statuses == [200] * 12
    got = [_metric(w, f"trtllm_request_success_total{L}") - b for w, b in zip((w1, w2), before, strict=True)]
    assert got[0] <= 3 and got[1] >= 9, got  # the slow worker's pending requests count as load
    assert seen[f'router_endpoint_inflight{{endpoint="{w1.url}",pool="workers"}}'] >= 1
    assert seen['router_outstanding_requests{pool="workers"}'] >= 1
    assert seen['router_outstanding_prompt_tokens{pool="workers"}'] >= 40  # X-Prompt-Tokens from the frontend
    _fault(w1, count=0)
    wait_until(lambda: _metric(agg["router"], 'router_outstanding_requests{pool="workers"}') == 0, 5, "router idle")
    assert _metric(agg["router"], 'router_outstanding_prompt_tokens{pool="workers"}') == 0


def test_a_hung_worker_ends_its_streams_with_an_sse_error_and_is_ejected(agg):
    w1, w2 = agg["w"]
    body = {"model": MODEL, "prompt": "hung", "max_tokens": 100, "stream": True}  # 5 s at 20 tokens/s
    socks = [_open_stream(agg["frontend"].port, body) for _ in range(2)]  # one on each worker
    time.sleep(0.6)
    os.kill(w1.popen.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            ended = list(pool.map(lambda s: _read_all(s, 6.0), socks))
        errors = [b for b, _ in ended if b'"type":"timeout"' in b]
        assert len(errors) == 1  # the stream on the stopped worker
        assert all(b"data: [DONE]" not in b for b in errors)
        stalled_for = max(t for b, t in ended if b'"type":"timeout"' in b)
        assert stalled_for < 2.5  # --idle-timeout 1 (not --first-byte-timeout 4, nor the 5 s the stream had left)
        healthy_done = [b for b, _ in ended if b"data: [DONE]" in b]
        assert len(healthy_done) == 1
        # new requests skip the ejected worker
        t1 = time.monotonic()
        for i in range(8):
            status, out = _post(agg["frontend"].url + "/v1/completions", {"model": MODEL, "prompt": f"n{i}",
                                                                           "max_tokens": 2})
            assert status == 200
        assert time.monotonic() - t1 < 4.0
        assert time.monotonic() - t0 < 10.0
        router = metrics(agg["router"].url + "/metrics")
        assert router['router_upstream_errors_total{kind="idle_timeout",pool="workers"}'] == 1
    finally:
        os.kill(w1.popen.pid, signal.SIGCONT)
    for s in socks:
        s.close()


def test_a_stream_without_a_first_token_in_time_is_a_504(agg):
    w1, w2 = agg["w"]  # w1 is still ejected by the test above: w2 is the only candidate
    _fault(w2, delay_s=7.0, count=1)
    t0 = time.monotonic()
    status, body = _post(agg["frontend"].url + "/v1/completions",
                         {"model": MODEL, "prompt": "slow", "max_tokens": 2, "stream": True})
    elapsed = time.monotonic() - t0
    assert status == 504 and "timed out" in _error(body)["message"]
    assert 3.5 < elapsed < 6.0  # --first-byte-timeout 4
    router = metrics(agg["router"].url + "/metrics")
    assert router['router_upstream_errors_total{kind="first_byte_timeout",pool="workers"}'] == 1
    assert router[f'router_endpoint_inflight{{endpoint="{w2.url}",pool="workers"}}'] == 0
    # the pool's last endpoint stays in rotation: the next request is served
    assert _post(agg["frontend"].url + "/v1/completions", {"model": MODEL, "prompt": "ok", "max_tokens": 2})[0] == 200


def _error(body: bytes) -> dict[str, Any]:
    assert b"Traceback" not in body
    return json.loads(body)["error"]


def test_hostile_input_is_refused_before_any_work(agg):
    fe = agg["frontend"].url
    worker_before = sum(_metric(w, f"trtllm_prompt_tokens_total{L}") for w in agg["w"])
    deep = b'{"model":"llama","prompt":' + b"[" * 90_000 + b"]" * 90_000 + b"}"
    for path in ("/v1/completions", "/v1/chat/completions", f"/v2/models/{MODEL}/generate"):
        status, body = http("POST", fe + path, raw=deep)
        assert status in (400, 413), (path, status)
    cases = [
        ({"model": MODEL, "prompt": "\ud800"}, "not valid Unicode"),
        ({"model": MODEL, "prompt": "x", "stream": "false"}, "stream must be a boolean"),
        ({"model": MODEL, "prompt": [-5, 1e20]}, "prompt must be one non-empty string"),
        ({"model": MODEL, "prompt": [-5, 3]}, "not an integer in [0, 256)"),
        ({"model": MODEL, "prompt": [1000, 3]}, "not an integer in [0, 256)"),
        ({"model": MODEL, "prompt": [1] * 300}, "max_seq_len 256"),
        ({"model": MODEL, "prompt": "x", "logprobs": 2}, "logprobs are not supported"),
        ({"model": MODEL, "prompt": "x", "n": 3}, "n must be 1"),
    ]
    for body, message in cases:
        status, out = http("POST", fe + "/v1/completions", raw=json.dumps(body).encode())
        assert status == 400 and message in _error(out)["message"], (body, out)
    status, out = _post(fe + "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                                       "tools": [{"type": "function", "function": {"name": "f"}}]})
    assert status == 400 and "tool calling is not supported" in _error(out)["message"]
    status, out = http("POST", fe + "/v1/completions", raw=b'{"model":"llama","prompt":"x"}',
                       headers={"x-api-key": "\xff"})
    assert status == 200  # no key configured: the odd header is ignored, not a 500
    # bodies beyond the route's limit are refused from Content-Length, without reading them
    big = b'{"model":"llama","prompt":[' + b"1," * 500_000 + b"1]}"
    t0 = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: http("POST", fe + "/v1/completions", raw=big, timeout=20), range(3)))
        health_t0 = time.monotonic()
        assert http("GET", fe + "/health")[0] == 200
        health_s = time.monotonic() - health_t0
    assert [s for s, _ in results] == [413] * 3 and "byte limit" in _error(results[0][1])["message"]
    assert health_s < 1.0 and time.monotonic() - t0 < 10
    assert sum(_metric(w, f"trtllm_prompt_tokens_total{L}") for w in agg["w"]) == worker_before + 1


def test_slow_clients_are_cut_off(agg):
    port = agg["frontend"].port
    trickle = socket.create_connection(("127.0.0.1", port), timeout=5)
    trickle.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    body_slow = socket.create_connection(("127.0.0.1", port), timeout=5)
    body_slow.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"model\":")  # the body never finishes
    t0 = time.monotonic()
    got_headers, _ = _read_all(trickle, 4.0)
    assert got_headers == b"" and time.monotonic() - t0 < 3.0  # closed after --header-timeout 1
    got_body, _ = _read_all(body_slow, 4.0, until=b"\r\n\r\n")
    assert got_body.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 4.0  # --body-timeout 1
    trickle.close()
    body_slow.close()
    _no_tracebacks(agg["frontend"], agg["router"], *agg["w"])  # after cut streams, bad bytes, slow clients


# --- admission and restarts ------------------------------------------------------------------

def test_admission_control_answers_429_with_retry_after():
    c = Cluster()
    try:
        w = c.standin("aggregated", MODEL, tps=10)
        router = c.router("--workers", f"static://127.0.0.1:{w.port}", "--max-inflight", "3")
        frontend = c.frontend(router.url, MODEL, extra=("--max-inflight", "2", "--max-queue", "1",
                                                        "--queue-timeout", "0.3"))
        body = {"model": MODEL, "prompt": "adm", "max_tokens": 15, "stream": True}  # 1.5 s each
        socks = [_open_stream(frontend.port, body) for _ in range(2)]
        time.sleep(0.3)
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda i: _post(frontend.url + "/v1/completions",
                                                    {"model": MODEL, "prompt": "x", "max_tokens": 1}), range(4)))
        elapsed = time.monotonic() - t0
        assert sorted(s for s, _ in results) == [429] * 4
        assert elapsed < 1.5  # refused after at most the 0.3 s queue wait, not after the streams
        assert _error(results[0][1])["type"] == "rate_limit_exceeded"
        assert _post(router.url + "/v1/completions", {"model": MODEL, "prompt": "y", "max_tokens": 1})[0] == 200
        third = _open_stream(router.port, body)  # the router's third and last slot
        time.sleep(0.3)
        over = _open_stream(router.port, {"model": MODEL, "prompt": "z", "max_tokens": 1})
        head, _ = _read_all(over, 3.0, until=b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 429") and b"Retry-After: 1" in head
        for s in [*socks, third, over]:
            s.close()
    finally:
        c.close()


def test_router_restart_costs_no_errors():
    c = Cluster()
    try:
        w = c.standin("aggregated", MODEL)
        r1 = c._start("runtime.router", ["--host", "127.0.0.1", "--workers", f"static://127.0.0.1:{w.port}",
                                         "--drain-delay", "1"], "/live")
        r2 = c.router("--workers", f"static://127.0.0.1:{w.port}")
        frontend = c.frontend(f"{r1.url},{r2.url}", MODEL)
        stop = threading.Event()
        statuses: list[int] = []

        def load() -> None:
            while not stop.is_set():
                statuses.append(_post(frontend.url + "/v1/completions",
                                      {"model": MODEL, "prompt": "rs", "max_tokens": 2}, timeout=10)[0])

        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        r1.popen.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        draining = http("GET", r1.url + "/health")[0]
        r1.popen.wait(10)
        time.sleep(0.7)
        stop.set()
        for t in threads:
            t.join(15)
        assert draining == 503  # readiness off first, while it still serves
        assert len(statuses) >= 10 and set(statuses) == {200}, statuses.count(200)
    finally:
        c.close()
