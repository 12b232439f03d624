"""The router's refusals, as status codes a client sees: a real router process on 127.0.0.1 in
front of scripted upstream servers (threads in this test) that pass the router's /health probe
and then misbehave: a context response that is not one choice with its handoff params (502),
a context server that hangs up (502), workers that all refuse the connection (503)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.runtime.procs import http

CHOICE = {"index": 0, "text": "h", "finish_reason": "length"}
TRUNCATED = {"truncated": True}
"""A reply the scripted server cuts off after half its body."""
PARAMS = {"request_type": "context_only", "first_gen_tokens": [104], "ctx_request_id": 7,
          "encoded_opaque_state": "abc", "draft_tokens": None, "disagg_request_id": 1}


class Upstream:
    """An HTTP server on 127.0.0.1: GET /health is 200, POST answers with ``reply(request)``
    (a JSON object, or None to close the connection without a response)."""

    def __init__(self, reply: Callable[[dict], dict | None]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._send(200, {"status": "ok"} if self.path == "/health" else {"data": []})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.posts += 1
                answer = reply(body)
                if answer is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                if answer == TRUNCATED:  # headers and half the body, then the connection closes
                    data = json.dumps({"choices": [CHOICE]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._send(200, answer)

            def _send(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.posts = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop listening: connections to the port are refused from now on."""
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def upstreams(*replies: Callable[[dict], dict | None]) -> Iterator[list[Upstream]]:
    servers = [Upstream(reply) for reply in replies]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def context_router(cluster, reply: Callable[[dict], dict | None]):
    """A router whose context server answers with ``reply``; a healthy generation server."""
    ctx, gen = Upstream(reply), Upstream(lambda body: {"choices": [CHOICE]})
    router = cluster.router("--context", f"static://127.0.0.1:{ctx.port}",
                            "--generation", f"static://127.0.0.1:{gen.port}", refresh=60)
    return router, ctx, gen


def post(router, body: dict | None = None) -> tuple[int, dict]:
    status, raw = http("POST", router.url + "/v1/completions",
                       body or {"model": "llama", "prompt": "hello", "max_tokens": 8}, timeout=20)
    return status, json.loads(raw)


def message(error: dict) -> str:
    return error["error"]["message"]


@pytest.mark.parametrize(
    ("case", "reply"),
    [
        ("no choice", lambda body: {"id": "c", "choices": []}),
        ("two choices", lambda body: {"id": "c", "choices": [{**CHOICE, "disaggregated_params": PARAMS}] * 2}),
        ("no handoff params", lambda body: {"id": "c", "choices": [CHOICE]}),
        ("params not an object", lambda body: {"id": "c", "choices": [{**CHOICE, "disaggregated_params": "x"}]}),
        ("no ctx_request_id", lambda body: {"id": "c", "choices": [
            {**CHOICE, "disaggregated_params": {**PARAMS, "ctx_request_id": None}}]}),
        ("not JSON object choices", lambda body: {"id": "c", "choices": "x"}),
    ],
)
def test_a_malformed_context_response_is_502_and_generation_never_called(cluster, case, reply) -> None:
    router, ctx, gen = context_router(cluster, reply)
    try:
        status, error = post(router)
        assert status == 502, (case, error)
        assert "context server" in message(error)
        assert ctx.posts >= 1 and gen.posts == 0
    finally:
        ctx.close()
        gen.close()


@pytest.mark.parametrize("reply", [lambda body: None, lambda body: TRUNCATED], ids=["hangs-up", "cut-off-mid-body"])
def test_a_context_server_that_hangs_up_or_cuts_its_body_off_is_502(cluster, reply) -> None:
    router, ctx, gen = context_router(cluster, reply)
    try:
        status, error = post(router)
        assert status == 502, error
        assert "context server" in message(error)
        assert gen.posts == 0
    finally:
        ctx.close()
        gen.close()


def test_a_well_formed_context_response_reaches_generation(cluster) -> None:
    """The twin of the 502s: the same scripted servers, one proper choice, and the request goes on."""
    ctx_reply = {"id": "c", "choices": [{**CHOICE, "disaggregated_params": PARAMS}], "prompt_token_ids": [1, 2]}
    router, ctx, gen = context_router(cluster, lambda body: ctx_reply)
    try:
        status, answer = post(router)
        assert status == 200, answer
        assert answer["choices"][0]["text"] == "h" and gen.posts == 1
    finally:
        ctx.close()
        gen.close()


def test_workers_that_all_refuse_the_connection_are_503(cluster) -> None:
    """Three workers pass the router's probe, then stop listening before the request: every
    connection attempt is refused, and the client gets 503 (retry later), not a 500."""
    with upstreams(*[lambda body: {"choices": [CHOICE]}] * 3) as workers:
        router = cluster.router("--workers", "static://" + ",".join(f"127.0.0.1:{w.port}" for w in workers),
                                refresh=60)
        assert http("GET", router.url + "/health")[0] == 200
        for worker in workers:
            worker.close()
        status, error = post(router)
    assert status == 503, error
    assert "workers" in message(error)


def test_a_listening_worker_answers(cluster) -> None:
    """The twin of the 503: the same scripted worker, still listening, answers 200."""
    with upstreams(lambda body: {"choices": [CHOICE]}) as (worker,):
        router = cluster.router("--workers", f"static://127.0.0.1:{worker.port}", refresh=60)
        status, answer = post(router)
    assert status == 200 and answer["choices"] == [CHOICE]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]"])
def test_a_request_that_is_not_a_json_object_is_400_and_reaches_no_server(cluster, raw: bytes) -> None:
    router, ctx, gen = context_router(cluster, lambda body: {"choices": [{**CHOICE, "disaggregated_params": PARAMS}]})
    try:
        status, body = http("POST", router.url + "/v1/completions", raw=raw, timeout=20)
        assert status == 400, body
        assert json.loads(body)["error"]["type"] == "invalid_request_error"
        assert ctx.posts == gen.posts == 0
    finally:
        ctx.close()
        gen.close()


def test_a_router_without_both_disaggregated_pools_refuses_to_start() -> None:
    """One line naming the flags, and a failing exit: no half-configured router serves."""
    import subprocess
    import sys

    from tests.runtime.procs import REPO

    done = subprocess.run(
        [sys.executable, "-m", "runtime.router", "--host", "127.0.0.1", "--port", "0",
         "--context", "static://127.0.0.1:9"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith(
        "runtime.router: give either --workers (aggregated) or both --context and --generation"
    )
