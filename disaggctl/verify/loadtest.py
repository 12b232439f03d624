"""A bounded streaming load test and its JSON report.

Bounded three ways: a fixed number of requests, a fixed concurrency, and a hard time limit
after which no request starts and in-flight ones are abandoned. Each of ``concurrency``
workers owns one gRPC stream and sends its requests one after another.

Report (JSON, ``sort_keys=True``, 2-space indent; every duration in seconds)::

    {
      "schema": "disaggctl.verify.loadtest/v1",
      "config":  {"url", "model", "prompt", "max_tokens", "requests", "concurrency",
                  "time_limit_s", "request_timeout_s"},
      "summary": {"requests_sent", "requests_ok", "requests_failed", "requests_not_started",
                  "time_limit_hit", "wall_time_s", "output_tokens_total", "tokens_per_s",
                  "requests_per_s"},
      "ttft_s":          {"count", "min", "mean", "p50", "p90", "p99", "max"},
      "inter_token_s":   {... same keys: every gap between consecutive tokens of ok requests},
      "latency_s":       {... same keys: send to final response, ok requests},
      "output_tokens":   {... same keys: tokens per ok request},
      "errors":  [{"index", "error"}],          # failed requests, by index
      "requests": [{"index", "ok", "ttft_s", "latency_s", "output_tokens",
                    "inter_token_mean_s", "error"}]   # every request sent, by index
    }

Statistics over no samples are ``null``. ``tokens_per_s`` is output tokens of ok requests over
the wall time of the whole test.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field

from .stats import summarize

REPORT_SCHEMA = "disaggctl.verify.loadtest/v1"
MAX_REQUESTS = 100_000
MAX_CONCURRENCY = 256
MAX_TIME_LIMIT_S = 3600.0


class LoadTestConfig(BaseModel):
    """What to send, how many, how many at once, and for how long at most."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    """Frontend gRPC ``host:port``."""
    model: str = "ensemble"
    prompt: str = "What is disaggregated serving?"
    max_tokens: int = Field(default=32, ge=1, le=65536)
    requests: int = Field(default=20, ge=1, le=MAX_REQUESTS)
    concurrency: int = Field(default=4, ge=1, le=MAX_CONCURRENCY)
    time_limit_s: float = Field(default=120.0, gt=0, le=MAX_TIME_LIMIT_S)
    """Hard limit for the whole test: no request starts after it, in-flight ones are abandoned."""
    request_timeout_s: float = Field(default=60.0, gt=0, le=MAX_TIME_LIMIT_S)


@dataclass(frozen=True)
class RequestRecord:
    """One sent request, as the report lists it."""

    index: int
    ok: bool
    ttft_s: float | None
    latency_s: float | None
    output_tokens: int
    inter_token_s: tuple[float, ...]
    error: str | None = None


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def build_report(
    config: LoadTestConfig,
    records: Sequence[RequestRecord],
    *,
    wall_time_s: float,
    time_limit_hit: bool,
) -> dict:
    """The report dict (see the module docstring) from per-request records. Pure."""
    records = sorted(records, key=lambda r: r.index)
    ok = [r for r in records if r.ok]
    tokens_total = sum(r.output_tokens for r in ok)
    gaps = [g for r in ok for g in r.inter_token_s]
    return {
        "schema": REPORT_SCHEMA,
        "config": config.model_dump(),
        "summary": {
            "requests_sent": len(records),
            "requests_ok": len(ok),
            "requests_failed": len(records) - len(ok),
            "requests_not_started": config.requests - len(records),
            "time_limit_hit": time_limit_hit,
            "wall_time_s": _r(wall_time_s),
            "output_tokens_total": tokens_total,
            "tokens_per_s": _r(tokens_total / wall_time_s if wall_time_s > 0 else None, 3),
            "requests_per_s": _r(len(ok) / wall_time_s if wall_time_s > 0 else None, 3),
        },
        "ttft_s": summarize([r.ttft_s for r in ok if r.ttft_s is not None]),
        "inter_token_s": summarize(gaps),
        "latency_s": summarize([r.latency_s for r in ok if r.latency_s is not None]),
        "output_tokens": summarize([float(r.output_tokens) for r in ok]),
        "errors": [{"index": r.index, "error": r.error} for r in records if not r.ok],
        "requests": [
            {
                "index": r.index,
                "ok": r.ok,
                "ttft_s": _r(r.ttft_s),
                "latency_s": _r(r.latency_s),
                "output_tokens": r.output_tokens,
                "inter_token_mean_s": _r(sum(r.inter_token_s) / len(r.inter_token_s) if r.inter_token_s else None),
                "error": r.error,
            }
            for r in records
        ],
    }


def report_json(report: dict) -> str:
    """Deterministic text of a report: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(report, sort_keys=True, indent=2) + "\n"


def write_report(report: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_json(report))
    return path


def report_problems(report: dict) -> list[str]:
    """Why a load test failed (empty when it passed): failed, unsent or tokenless requests."""
    s = report["summary"]
    problems = []
    if s["requests_failed"]:
        first = report["errors"][0]
        problems.append(
            f"{s['requests_failed']} of {s['requests_sent']} requests failed "
            f"(first, #{first['index']}: {first['error']})"
        )
    if s["requests_not_started"]:
        problems.append(
            f"{s['requests_not_started']} of {report['config']['requests']} requests were not sent within "
            f"time_limit_s={report['config']['time_limit_s']:g}: raise --time-limit or lower --requests"
        )
    if s["requests_ok"] and not s["output_tokens_total"]:
        problems.append("requests succeeded but streamed no text_output tokens")
    return problems


class ProgressBar:
    """``[#####-----] 10/20 ok 10 failed 0 3.1s`` on stderr: redrawn in place on a terminal,
    otherwise one line per 10 % so logs stay short."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.width = total, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last_decile = -1
        self._lock = threading.Lock()

    def render(self, done: int, failed: int, elapsed_s: float) -> str:
        filled = self.width * done // self.total if self.total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        return f"[{bar}] {done}/{self.total} ok {done - failed} failed {failed} {elapsed_s:.1f}s"

    def update(self, done: int, failed: int) -> None:
        with self._lock:
            line = self.render(done, failed, time.monotonic() - self.start)
            if self.tty:
                self.stream.write("\r" + line)
            else:
                decile = 10 * done // self.total if self.total else 10
                if decile == self._last_decile:
                    return
                self._last_decile = decile
                self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def run_load_test(
    config: LoadTestConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    session_factory: Callable[[], object] | None = None,
) -> dict:
    """Run the test and return its report. ``progress(done, failed)`` is called after each request.

    ``session_factory`` makes one session per worker (default: a
    :class:`~disaggctl.verify.generate.StreamSession` to ``config.url``); it must offer
    ``generate(prompt, max_tokens, timeout_s=...)`` and ``close()``.
    """
    from .generate import GenerationResult, StreamSession

    def default_factory():
        return StreamSession(config.url, config.model, connect_timeout_s=min(10.0, config.time_limit_s))

    factory: Callable[[], Any] = session_factory or default_factory
    start = time.perf_counter()
    deadline = start + config.time_limit_s
    lock = threading.Lock()
    next_index = [0]
    records: list[RequestRecord] = []
    counts = {"done": 0, "failed": 0}
    limit_hit = threading.Event()

    def take() -> int | None:
        with lock:
            if next_index[0] >= config.requests:
                return None
            if time.perf_counter() >= deadline:
                limit_hit.set()
                return None
            next_index[0] += 1
            return next_index[0] - 1

    def record(index: int, res: GenerationResult) -> None:
        rec = RequestRecord(
            index=index,
            ok=res.ok,
            ttft_s=res.ttft_s,
            latency_s=res.latency_s,
            output_tokens=res.output_tokens,
            inter_token_s=tuple(res.inter_token_s),
            error=res.error,
        )
        with lock:
            records.append(rec)
            counts["done"] += 1
            counts["failed"] += 0 if res.ok else 1
            done, failed = counts["done"], counts["failed"]
        if progress is not None:
            progress(done, failed)

    def worker() -> None:
        index = take()
        if index is None:
            return
        try:
            session = factory()
        except Exception as err:
            record(index, GenerationResult(ok=False, error=f"cannot open a stream to {config.url}: {err}"))
            return
        try:
            while index is not None:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    limit_hit.set()
                    record(index, GenerationResult(ok=False, error="time limit reached before sending"))
                    return
                timeout = min(config.request_timeout_s, remaining)
                try:
                    res = session.generate(config.prompt, config.max_tokens, timeout_s=timeout)
                except Exception as err:
                    res = GenerationResult(ok=False, error=f"{type(err).__name__}: {err}")
                if not res.ok and timeout < config.request_timeout_s and time.perf_counter() >= deadline:
                    limit_hit.set()
                    res.error = f"time limit {config.time_limit_s:g}s reached: {res.error}"
                record(index, res)
                index = take()
        finally:
            session.close()

    threads = [
        threading.Thread(target=worker, name=f"loadtest-{i}", daemon=True)
        for i in range(min(config.concurrency, config.requests))
    ]
    for t in threads:
        t.start()
    for t in threads:  # workers stop themselves at the deadline; the grace covers teardown
        t.join(timeout=max(0.0, deadline - time.perf_counter()) + 15.0)
    wall = time.perf_counter() - start
    with lock:
        snapshot = list(records)
    return build_report(config, snapshot, wall_time_s=wall, time_limit_hit=limit_hit.is_set())
