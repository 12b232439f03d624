"""The frontend's API key (public frontends) and its drain on SIGTERM, on real processes."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from tests.runtime.procs import Cluster, http

KEY = "k3y-for-tests-only"
ARGS = ("--api-key-env", "FRONTEND_API_KEY", "--api-key-header", "x-api-key")


@pytest.fixture(scope="module")
def guarded(cluster: Cluster):
    standin = cluster.standin()
    router = cluster.router("--workers", f"static://127.0.0.1:{standin.port}")
    return cluster.frontend(router.url, extra=ARGS, env={"FRONTEND_API_KEY": KEY})


def completion(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    status, body = http("POST", url + "/v1/completions", {"model": "llama", "prompt": "hi", "max_tokens": 4},
                        headers=headers)
    return status, json.loads(body)


def test_requests_without_the_key_get_an_openai_401(guarded) -> None:
    status, body = completion(guarded.url)
    assert status == 401
    assert body == {"error": {"message": "missing or invalid API key in header 'x-api-key'",
                              "type": "authentication_error", "param": None, "code": 401}}


def test_a_wrong_key_is_refused_on_every_api_route(guarded) -> None:
    for method, path in (("GET", "/v1/models"), ("GET", "/v2/models/llama"), ("POST", "/v1/chat/completions")):
        status, _ = http(method, guarded.url + path, {} if method == "POST" else None, headers={"x-api-key": "nope"})
        assert status == 401, path


def test_a_non_utf8_key_is_a_401_not_a_500(guarded) -> None:
    status, body = completion(guarded.url, {"x-api-key": "\xff"})
    assert status == 401 and body["error"]["type"] == "authentication_error"


def test_the_key_opens_the_api(guarded) -> None:
    status, body = completion(guarded.url, {"x-api-key": KEY})
    assert status == 200
    assert body["object"] == "text_completion"


def test_probes_and_metrics_need_no_key(guarded) -> None:
    assert http("GET", guarded.url + "/health")[0] == 200
    assert http("GET", guarded.url + "/metrics")[0] == 200


def test_bearer_header_is_what_openai_clients_send(cluster: Cluster) -> None:
    standin = cluster.standin()
    router = cluster.router("--workers", f"static://127.0.0.1:{standin.port}")
    frontend = cluster.frontend(router.url, extra=("--api-key-env", "K", "--api-key-header", "authorization"),
                                env={"K": KEY})
    assert completion(frontend.url, {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert completion(frontend.url, {"Authorization": KEY})[0] == 401


def test_the_key_can_come_from_a_mounted_file(cluster: Cluster, tmp_path) -> None:
    """--api-key-file: what the pods use (the Secret mounted as a file)."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    standin = cluster.standin()
    router = cluster.router("--workers", f"static://127.0.0.1:{standin.port}")
    frontend = cluster.frontend(router.url, extra=("--api-key-file", str(key_file)))
    assert completion(frontend.url)[0] == 401
    assert completion(frontend.url, {"x-api-key": KEY})[0] == 200


def test_an_unset_key_variable_refuses_to_start(cluster: Cluster) -> None:
    frontend = cluster.frontend("http://127.0.0.1:9", extra=ARGS, env={"FRONTEND_API_KEY": ""}, ready=False)
    assert frontend.popen.wait(20) != 0
    assert "--api-key-env FRONTEND_API_KEY: the variable is unset or empty" in frontend.log()


def test_sigterm_lets_a_stream_in_flight_finish(cluster: Cluster) -> None:
    """--shutdown-timeout: on SIGTERM the frontend stops accepting and the open stream completes."""
    standin = cluster.standin(tps=20.0)  # 20 tokens ≈ 1 s
    router = cluster.router("--workers", f"static://127.0.0.1:{standin.port}")
    frontend = cluster.frontend(router.url, extra=("--shutdown-timeout", "20"))
    result: dict = {}

    def stream() -> None:
        result["status"], result["body"] = http(
            "POST", frontend.url + "/v1/completions",
            {"model": "llama", "prompt": "hi", "max_tokens": 20, "stream": True, "ignore_eos": True}, timeout=30,
        )

    thread = threading.Thread(target=stream)
    thread.start()
    time.sleep(0.4)
    frontend.popen.send_signal(signal.SIGTERM)
    thread.join(30)
    assert result["status"] == 200
    assert result["body"].rstrip().endswith(b"data: [DONE]")
    assert frontend.popen.wait(25) == 0
