"""Admission, the outlier ejection and the request checks as pure logic (no processes)."""

from __future__ import annotations

import asyncio

import pytest

from runtime.frontend import RequestError, check_ids, check_params
from runtime.limits import Admission, RejectedError, parse_json
from runtime.policy import Endpoint, LeastOutstanding, Outliers, RequestInfo


def test_admission_admits_up_to_the_bound_then_queues_then_refuses() -> None:
    async def scenario() -> tuple[int, int, list[str]]:
        adm = Admission(2, max_queue=1, queue_timeout=0.5)
        await adm.acquire()
        await adm.acquire()
        queued = asyncio.ensure_future(adm.acquire())
        await asyncio.sleep(0)
        outcomes = []
        try:
            await adm.acquire()  # the queue (1) is full: refused at once
        except RejectedError as exc:
            outcomes.append(f"{exc.status} {exc.headers['Retry-After']}")
        adm.release()  # the slot passes to the queued request
        await queued
        return adm.inflight, len(adm.waiters), outcomes

    assert asyncio.run(scenario()) == (2, 0, ["429 1"])


def test_a_queued_request_is_refused_after_the_queue_timeout() -> None:
    async def scenario() -> int:
        adm = Admission(1, max_queue=4, queue_timeout=0.05)
        await adm.acquire()
        with pytest.raises(RejectedError):
            await adm.acquire()
        adm.release()
        return adm.inflight

    assert asyncio.run(scenario()) == 0


def test_ejection_time_grows_per_ejection_up_to_the_cap_and_a_success_resets_it() -> None:
    out = Outliers(eject_after=2, base_s=1.0, max_s=3.0)
    ep = Endpoint("http://a:1")
    out.failure(ep, 100.0, "workers", "http_500")
    assert ep.available(100.0)  # one failure of two
    out.failure(ep, 100.0, "workers", "http_500")
    assert not ep.available(100.5) and ep.available(101.0)
    for now in (101.0, 101.0):
        out.failure(ep, now, "workers", "http_500")
    assert ep.ejected_until == 103.0  # 2 s for the second ejection
    for now in (103.0, 103.0):
        out.failure(ep, now, "workers", "http_500")
    assert ep.ejected_until == 106.0  # capped at 3 s
    out.success(ep)
    out.failure(ep, 200.0, "workers", "connect", immediate=True)
    assert ep.ejected_until == 201.0
    last = Endpoint("http://c:1")
    for _ in range(5):
        out.failure(last, 300.0, "workers", "http_500", last=True)
    assert last.available(300.0)  # a pool's last endpoint stays in rotation on 5xx
    out.failure(last, 300.0, "workers", "connect", immediate=True, last=True)
    assert not last.available(300.0)  # but not when it refuses connections


def test_least_outstanding_counts_pending_and_round_robins_ties_per_pool() -> None:
    policy = LeastOutstanding()
    a, b = Endpoint("http://a:1"), Endpoint("http://b:1")
    info = RequestInfo("/v1/completions")
    assert [policy.choose("gen", [a, b], info).url for _ in range(4)] == [a.url, b.url, a.url, b.url]
    assert policy.choose("ctx", [a, b], info) is a  # another pool's turns do not shift this one's
    a.inflight = 1
    assert {policy.choose("gen", [a, b], info).url for _ in range(3)} == {b.url}


@pytest.mark.parametrize(("body", "message"), [
    ({"stream": "false"}, "stream must be a boolean"),
    ({"tools": [{"type": "function"}]}, "tool calling is not supported"),
    ({"logprobs": True}, "logprobs are not supported"),
    ({"logprobs": 1}, "logprobs are not supported"),  # completions: one top logprob per token
    ({"top_logprobs": 1}, "logprobs are not supported"),
    ({"echo": 1}, "echo is not supported"),
    ({"response_format": {"type": "json_object"}}, "response_format other than text"),
    ({"n": 2}, "n must be 1"),
    ({"stream_options": "yes"}, "stream_options must be an object"),
])
def test_check_params_refuses(body, message) -> None:
    with pytest.raises(RequestError, match=message):
        check_params(body)


def test_check_params_accepts_neutral_values() -> None:
    check_params({"stream": False, "logprobs": None, "tools": [], "n": 1, "best_of": 1,
                  "response_format": {"type": "text"}, "stream_options": {"include_usage": True}})


@pytest.mark.parametrize(("ids", "message"), [
    ([1, 256], r"not an integer in \[0, 256\)"), ([-1], "not an integer"), ([True], "not an integer"),
    (list(range(8)), "max_seq_len 8"),
])
def test_check_ids(ids, message) -> None:
    with pytest.raises(RequestError, match=message):
        check_ids(ids, 256, 8)


@pytest.mark.parametrize(("raw", "message"), [
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"), (b"[1]", "must be a JSON object"),
    (b"\xff", "Invalid JSON"), (b"{" + b'"a":1,' * 60_000 + b'"b":[' + b"[" * 5000 + b"]" * 5000 + b"]}",
                               "nested too deeply"),
])
def test_parse_json_refuses_with_400(raw, message) -> None:
    with pytest.raises(RejectedError, match=message) as err:
        asyncio.run(parse_json(raw))
    assert err.value.status == 400
