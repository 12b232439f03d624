"""Health, one stream and a bounded load test against a real tritonserver on 127.0.0.1 (CPU).

The ``ensemble`` test model streams " <word>#<k>" for k < max_tokens, 10 ms apart.
"""

import pytest

from disaggctl.testing.local_triton import free_port
from disaggctl.verify.endpoints import Endpoints, Url
from disaggctl.verify.generate import StreamSession, stream_generate
from disaggctl.verify.health import check_endpoint, check_health, render_table
from disaggctl.verify.loadtest import LoadTestConfig, report_problems, run_load_test

pytestmark = pytest.mark.triton


def expected_text(prompt, n):
    words = prompt.split()
    return "".join(f" {words[k % len(words)]}#{k}" for k in range(n))


def endpoints(server, **kw):
    return Endpoints(
        frontend_grpc=Url("grpc", server.grpc_url),
        frontend_http=Url("http", server.http_url),
        orchestrator=Url("grpc", server.grpc_url),
        **kw,
    )


def test_every_tier_is_healthy(triton):
    checks = check_health(endpoints(triton))
    assert [(c.tier, c.endpoint.split(":")[0], c.name) for c in checks] == [
        ("frontend", "grpc", "server live"),
        ("frontend", "grpc", "server ready"),
        ("frontend", "grpc", "model ensemble ready"),
        ("frontend", "http", "server live"),
        ("frontend", "http", "server ready"),
        ("frontend", "http", "model ensemble ready"),
        ("orchestrator", "grpc", "server live"),
        ("orchestrator", "grpc", "server ready"),
        ("orchestrator", "grpc", "model tensorrt_llm ready"),
    ]
    assert all(c.ok for c in checks), render_table(checks)
    assert render_table(checks).count("PASS") == 9


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_missing_model_fails_with_the_repository_state(triton, protocol):
    address = triton.grpc_url if protocol == "grpc" else triton.http_url
    checks = check_endpoint(Url(protocol, address), tier="orchestrator", model="no_such_model")
    assert [c.ok for c in checks] == [True, True, False]
    assert "not in the model repository (models: ensemble, tensorrt_llm)" in checks[2].detail


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_unreachable_endpoint_fails_and_skips(protocol):
    dead = Url(protocol, f"127.0.0.1:{free_port()}")
    checks = check_endpoint(dead, tier="orchestrator", model="tensorrt_llm", timeout_s=2)
    assert [c.ok for c in checks] == [False, False, False]
    assert checks[0].detail.startswith("unreachable")
    assert "FAIL" in render_table(checks)


def test_stream_delivers_tokens_in_order_as_they_come(triton):
    seen = []
    result = stream_generate(triton.grpc_url, "disaggregated serving works", 6, on_token=seen.append)
    assert result.ok and result.error is None
    assert seen == result.chunks
    assert result.text == expected_text("disaggregated serving works", 6)
    assert result.output_tokens == 6
    times = result.token_times_s
    assert times == sorted(times)
    assert 0 < result.ttft_s <= result.latency_s
    assert all(gap > 0.005 for gap in result.inter_token_s)  # tokens arrive one by one, ~10 ms apart


def test_server_error_is_reported(triton):
    result = stream_generate(triton.grpc_url, "x", 0)
    assert not result.ok
    assert "max_tokens must be positive, got 0" in result.error


def test_session_runs_requests_back_to_back(triton):
    with StreamSession(triton.grpc_url, "ensemble") as session:
        first = session.generate("a b", 3)
        second = session.generate("c", 2)
    assert (first.text, second.text) == (" a#0 b#1 a#2", " c#0 c#1")


def test_model_without_text_input_is_refused(triton):
    result = stream_generate(triton.grpc_url, "x", 2, model="tensorrt_llm")
    assert not result.ok
    assert "has no input 'text_input'" in result.error


def test_bounded_load_test(triton):
    config = LoadTestConfig(url=triton.grpc_url, requests=20, concurrency=4, max_tokens=8, time_limit_s=30)
    report = run_load_test(config)
    s = report["summary"]
    assert (s["requests_sent"], s["requests_ok"], s["requests_failed"]) == (20, 20, 0)
    assert s["output_tokens_total"] == 160
    assert report["output_tokens"]["p50"] == 8
    assert s["time_limit_hit"] is False
    assert s["tokens_per_s"] == pytest.approx(160 / s["wall_time_s"], rel=1e-3)
    for key in ("ttft_s", "inter_token_s", "latency_s"):
        stats = report[key]
        assert stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"], key
    assert report["inter_token_s"]["count"] == 20 * 7
    assert report["inter_token_s"]["p50"] >= 0.008  # the model's 10 ms token delay
    for r in report["requests"]:
        assert r["ok"] and r["output_tokens"] == 8
        assert 0 < r["ttft_s"] <= r["latency_s"]
    # 4 streams in parallel: far quicker than 20 requests one after another
    assert s["wall_time_s"] < 20 * report["latency_s"]["min"] * 0.6
    assert report_problems(report) == []


def test_load_test_time_limit_against_the_server(triton):
    config = LoadTestConfig(url=triton.grpc_url, requests=500, concurrency=2, max_tokens=20, time_limit_s=1.0)
    report = run_load_test(config)
    s = report["summary"]
    assert s["time_limit_hit"] is True
    assert s["wall_time_s"] < 5
    assert s["requests_not_started"] > 400
    assert any("not sent within time_limit_s=1" in p for p in report_problems(report))
