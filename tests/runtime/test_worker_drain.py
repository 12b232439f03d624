"""The worker preStop drain (components/serving/scaled_objects.drain_command) run for real against
the trtllm-serve stand-in: it waits while a stream is in flight and returns once it has ended."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time

import aiohttp

from components.serving.scaled_objects import drain_command
from tests.runtime.procs import Cluster


def _stream(url: str, tokens: int, done: threading.Event) -> None:
    async def run() -> None:
        body = {"model": "llama", "prompt": [1, 2, 3], "max_tokens": tokens, "stream": True}
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            async for _ in response.content:
                pass
        done.set()

    asyncio.run(run())


def test_drain_waits_for_the_stream_in_flight_then_returns(cluster: Cluster) -> None:
    standin = cluster.standin(tps=20)  # 40 tokens at 20 tokens/s: a 2 s stream
    done = threading.Event()
    client = threading.Thread(target=_stream, args=(f"{standin.url}/v1/completions", 40, done))
    client.start()
    time.sleep(0.3)
    started = time.monotonic()
    drain = subprocess.run(drain_command(f"{standin.url}/prometheus/metrics", 0, 60), timeout=90)
    waited = time.monotonic() - started
    client.join(timeout=30)
    assert drain.returncode == 0
    assert done.is_set()
    assert waited >= 1.0  # it did not return while the stream ran


def test_drain_of_an_idle_or_gone_server_returns_at_once(cluster: Cluster) -> None:
    standin = cluster.standin()
    started = time.monotonic()
    assert subprocess.run(drain_command(f"{standin.url}/prometheus/metrics", 0, 60), timeout=30).returncode == 0
    assert time.monotonic() - started < 10  # two idle polls 2 s apart, not the 60 s limit
    started = time.monotonic()
    gone = subprocess.run(drain_command("http://127.0.0.1:9/prometheus/metrics", 0, 60), timeout=30)
    assert gone.returncode == 0 and time.monotonic() - started < 10
