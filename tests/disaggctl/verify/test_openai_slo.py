"""verify over the OpenAI API (SSE) against a real local server, gated on the SLO."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from disaggctl.verify.cli import main
from disaggctl.verify.openai_api import OpenAISession
from disaggctl.verify.slo import SloTarget, slo_gate

MODEL = "llama-8b"


def make_handler(first_token_s: float, gap_s: float, tokens: int):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/v1/completions" or request.get("stream") is not True or request.get("model") != MODEL:
                self._json(400, {"error": f"unexpected request {self.path} {request}"})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def send(line: str) -> None:
                data = f"data: {line}\n\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            time.sleep(first_token_s)
            for i in range(min(tokens, int(request["max_tokens"]))):
                if i:
                    time.sleep(gap_s)
                send(json.dumps({"id": "cmpl-1", "object": "text_completion", "model": MODEL,
                                 "choices": [{"index": 0, "text": f" t{i}", "finish_reason": None}]}))
            send("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


@pytest.fixture
def server(request) -> Iterator[str]:
    first_token_s, gap_s = request.param
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(first_token_s, gap_s, tokens=8))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def verify(url: str, tmp_path: Path, *flags: str) -> int:
    return main(["verify", "--api", "openai", "--frontend-url", url, "--model", MODEL, "--max-tokens", "8",
                 "--requests", "6", "--concurrency", "2", "--time-limit", "60", "--report", str(tmp_path / "r.json"), *flags])


@pytest.mark.parametrize("server", [(0.0, 0.0)], indirect=True)
def test_session_times_each_sse_token(server: str) -> None:
    session = OpenAISession(server, MODEL)
    try:
        result = session.generate("hi", 5, timeout_s=10)
    finally:
        session.close()
    assert result.ok and result.text == " t0 t1 t2 t3 t4"
    assert len(result.token_times_s) == 5 and result.token_times_s == sorted(result.token_times_s)


@pytest.mark.parametrize("server", [(0.25, 0.01)], indirect=True)
def test_verify_exits_1_when_ttft_breaches_the_slo(server: str, tmp_path: Path, capsys) -> None:
    assert verify(server, tmp_path, "--slo-ttft-ms", "100", "--slo-tpot-ms", "200") == 1
    err = capsys.readouterr().err
    assert "verify: FAIL: SLO: TTFT p90" in err and "breaches the SLO of 100 ms (flags)" in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["requests_ok"] == 6
    assert report["ttft_s"]["p90"] >= 0.25 and len(report["slo"]["breaches"]) == 1


@pytest.mark.parametrize("server", [(0.0, 0.005)], indirect=True)
def test_verify_passes_an_slo_read_from_the_stack(server: str, tmp_path: Path, capsys) -> None:
    stack = {"config": {"disagg:deployments": [{"name": MODEL, "workload": {
        "inputTokens": 2000, "outputTokens": 300, "requestRate": 16,
        "slo": {"ttftMs": 800, "tpotMs": 25, "percentile": 95},
        "prediction": {"source": "test", "gpu": "A100-SXM4-40GB", "tokensPerSecondPerGpu": 1241.19,
                       "tokensPerSecondPerUser": 40.9, "ttftMs": 505.5, "tpotMs": 24.5, "requestsPerSecond": 16.6,
                       "concurrency": 128, "roles": {"workers": {"tensorParallelSize": 2, "maxBatchSize": 64, "groups": 2}}}}}]}}
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))
    code = verify(server, tmp_path, "--slo-stack", "dev", "--project", str(tmp_path), "--deployment", MODEL)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "verify: PASS (SLO p95 met)" in out
    assert "SLO gate (p95, ms)" in out and "505.5" in out


def test_gate_against_the_prediction_is_opt_in() -> None:
    report = {"ttft_s": {"p90": 0.6}, "inter_token_s": {"p90": 0.02}}
    target = SloTarget(ttft_ms=800, tpot_ms=25, predicted_ttft_ms=400, predicted_tpot_ms=20)
    assert slo_gate(report, target)[1] == []
    [problem] = slo_gate(report, target, max_over_prediction_pct=20)[1]
    assert problem.startswith("TTFT p90 600.0 ms is 50% over the prediction 400.0 ms")
