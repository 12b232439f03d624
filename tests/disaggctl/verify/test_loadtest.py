"""The load test's report, its failure rules, its bounds (with stand-in sessions) and progress bar."""

import io
import json
import threading
import time

import pytest
from pydantic import ValidationError

from disaggctl.verify.generate import GenerationResult
from disaggctl.verify.loadtest import (
    REPORT_SCHEMA,
    LoadTestConfig,
    ProgressBar,
    RequestRecord,
    build_report,
    report_json,
    report_problems,
    run_load_test,
    write_report,
)

CONFIG = LoadTestConfig(url="127.0.0.1:1", requests=3, concurrency=2, max_tokens=3)


def rec(index, ok=True, ttft=0.1, gaps=(0.02, 0.04), error=None):
    latency = ttft + sum(gaps) if ttft is not None else 0.5
    return RequestRecord(index, ok, ttft, latency, len(gaps) + 1 if ok else 0, tuple(gaps), error)


def test_report_aggregates_ok_requests():
    report = build_report(CONFIG, [rec(2, ttft=0.3), rec(0, ttft=0.1), rec(1, ttft=0.2)], wall_time_s=2.0, time_limit_hit=False)
    s = report["summary"]
    assert report["schema"] == REPORT_SCHEMA
    assert (s["requests_sent"], s["requests_ok"], s["requests_failed"], s["requests_not_started"]) == (3, 3, 0, 0)
    assert s["output_tokens_total"] == 9
    assert s["tokens_per_s"] == 4.5
    assert report["ttft_s"]["p50"] == 0.2 and report["ttft_s"]["count"] == 3
    assert report["inter_token_s"]["count"] == 6
    assert report["inter_token_s"]["p50"] == pytest.approx(0.03)
    assert [r["index"] for r in report["requests"]] == [0, 1, 2]
    assert report["requests"][0]["inter_token_mean_s"] == pytest.approx(0.03)
    assert report_problems(report) == []


def test_failed_requests_are_listed_and_excluded_from_latency():
    records = [rec(0), rec(1, ok=False, ttft=None, gaps=(), error="boom")]
    report = build_report(CONFIG, records, wall_time_s=1.0, time_limit_hit=True)
    assert report["errors"] == [{"index": 1, "error": "boom"}]
    assert report["latency_s"]["count"] == 1
    assert report["summary"]["requests_not_started"] == 1
    problems = report_problems(report)
    assert any("1 of 2 requests failed (first, #1: boom)" in p for p in problems)
    assert any("were not sent within time_limit_s" in p for p in problems)


def test_report_json_is_deterministic_and_sorted(tmp_path):
    a = build_report(CONFIG, [rec(1), rec(0)], wall_time_s=1.0, time_limit_hit=False)
    b = build_report(CONFIG, [rec(0), rec(1)], wall_time_s=1.0, time_limit_hit=False)
    assert report_json(a) == report_json(b)
    text = report_json(a)
    assert list(json.loads(text)) == sorted(json.loads(text))
    path = write_report(a, tmp_path / "sub" / "report.json")
    assert json.loads(path.read_text()) == json.loads(text)
    assert list(json.loads(text)["summary"]) == sorted(json.loads(text)["summary"])


@pytest.mark.parametrize(
    "field,value",
    [("requests", 0), ("requests", 100_001), ("concurrency", 0), ("time_limit_s", 0), ("time_limit_s", 3601)],
)
def test_config_is_bounded(field, value):
    with pytest.raises(ValidationError):
        LoadTestConfig(url="x:1", **{field: value})


class SlowSession:
    """Stands in for a StreamSession: each request takes ``seconds`` (or its timeout, if shorter)."""

    opened = 0
    closed = 0
    lock = threading.Lock()

    def __init__(self, seconds):
        self.seconds = seconds
        with SlowSession.lock:
            SlowSession.opened += 1

    def generate(self, prompt, max_tokens, timeout_s):
        start = time.perf_counter()
        time.sleep(min(self.seconds, timeout_s))
        took = time.perf_counter() - start
        if self.seconds > timeout_s:
            return GenerationResult(ok=False, latency_s=took, error=f"timed out after {timeout_s:g}s")
        return GenerationResult(ok=True, chunks=["a"] * max_tokens, token_times_s=[took / 2, took], latency_s=took)

    def close(self):
        with SlowSession.lock:
            SlowSession.closed += 1


def test_time_limit_stops_new_requests_and_is_reported():
    SlowSession.opened = SlowSession.closed = 0
    config = LoadTestConfig(url="x:1", requests=1000, concurrency=2, time_limit_s=0.5, max_tokens=2)
    start = time.perf_counter()
    report = run_load_test(config, session_factory=lambda: SlowSession(0.05))
    assert time.perf_counter() - start < 2.0
    s = report["summary"]
    assert s["time_limit_hit"] is True
    assert 4 <= s["requests_ok"] < 40
    assert s["requests_not_started"] == 1000 - s["requests_sent"] > 900
    assert SlowSession.opened == SlowSession.closed == 2
    assert any("not sent within time_limit_s=0.5" in p for p in report_problems(report))


def test_in_flight_requests_are_abandoned_at_the_time_limit():
    config = LoadTestConfig(url="x:1", requests=4, concurrency=4, time_limit_s=0.3, request_timeout_s=60)
    start = time.perf_counter()
    report = run_load_test(config, session_factory=lambda: SlowSession(30))
    assert time.perf_counter() - start < 2.0
    assert report["summary"]["requests_failed"] == 4
    assert all("time limit 0.3s reached" in e["error"] for e in report["errors"])


def test_every_request_runs_once_with_progress():
    seen = []
    config = LoadTestConfig(url="x:1", requests=7, concurrency=3, max_tokens=4)
    report = run_load_test(config, session_factory=lambda: SlowSession(0.01), progress=lambda d, f: seen.append((d, f)))
    assert [r["index"] for r in report["requests"]] == list(range(7))
    assert sorted(d for d, _ in seen) == list(range(1, 8))
    assert report["summary"]["output_tokens_total"] == 28
    assert report["summary"]["time_limit_hit"] is False


def test_unreachable_server_fails_every_request_it_took():
    def broken():
        raise ConnectionError("connection refused")

    config = LoadTestConfig(url="x:1", requests=5, concurrency=2)
    report = run_load_test(config, session_factory=broken)
    assert report["summary"]["requests_ok"] == 0
    assert "connection refused" in report["errors"][0]["error"]
    assert report_problems(report)


def test_progress_bar_logs_each_tenth_when_not_a_terminal():
    out = io.StringIO()
    bar = ProgressBar(20, stream=out, width=10)
    for done in range(1, 21):
        bar.update(done, failed=1 if done > 10 else 0)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # the first request, then each further tenth
    assert lines[0].startswith("[----------] 1/20")
    assert lines[-1].startswith("[##########] 20/20 ok 19 failed 1")
    assert bar.render(5, 0, 1.0) == "[##--------] 5/20 ok 5 failed 0 1.0s"
