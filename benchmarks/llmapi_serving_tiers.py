"""Cost of the llmapi serving tiers (runtime.frontend + runtime.router) on this machine's CPU.

    python benchmarks/llmapi_serving_tiers.py --concurrency 8 --requests 64 --max-tokens 256 \
        --tokens-per-second 200 [--mode aggregated|disaggregated] [--loops asyncio,uvloop] [--json out.json]

Starts stand-ins (``runtime.standin``, pacing each stream at ``--tokens-per-second`` like a GPU
decode step), a router and a frontend on 127.0.0.1, then runs the same streaming load twice:
straight at a stand-in ("direct") and through frontend -> router -> stand-in ("tiers"). It
prints:
- streamed tokens per second per CPU core consumed by the frontend + router processes
  (their utime + stime from /proc over the tiers run);
- time to first token and inter-token latency p50/p99 direct vs through the tiers, and the
  difference ("added");
- the request path alone: added TTFT p50/p99 of ``--probe-requests`` 4-token requests at the same
  concurrency, direct and through the tiers in alternating rounds (no long streams competing for
  the CPU, so per-request costs such as connection setup show without the streaming load).
The client runs in this process (aiohttp), parsing SSE per read; its CPU is not counted. Each
event loop in ``--loops`` (the stock image's asyncio, uvloop) gets its own run of the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.runtime.procs import Cluster  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


async def one_request(session: aiohttp.ClientSession, url: str, prompt: str, max_tokens: int,
                      model: str) -> tuple[float, list[float], int]:
    """(ttft, inter-token gaps, tokens) of one streamed completion."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "stream": True}
    t0 = time.perf_counter()
    times: list[float] = []
    buf = b""
    async with session.post(url, json=body) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")
        async for data in resp.content.iter_any():
            now = time.perf_counter()
            buf += data
            *events, buf = buf.split(b"\n\n")
            for event in events:
                if event.startswith(b"data: {"):
                    times.append(now)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return times[0] - t0, gaps, len(times)


@dataclass
class Load:
    tokens: int = 0
    wall_s: float = 0.0
    ttft: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)


async def load(url: str, model: str, requests: int, concurrency: int, max_tokens: int) -> Load:
    out = Load()
    queue = list(range(requests))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, read_bufsize=1 << 18,
                                     timeout=aiohttp.ClientTimeout(total=600)) as session:
        async def worker() -> None:
            while queue:
                i = queue.pop()
                ttft, g, n = await one_request(session, url, f"benchmark prompt {i} " * 8, max_tokens, model)
                out.ttft.append(ttft)
                out.itl.extend(g)
                out.tokens += n
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.wall_s = time.perf_counter() - t0
    return out


def run(args: argparse.Namespace, loop: str = "auto") -> dict[str, Any]:
    cluster = Cluster(env={"RUNTIME_EVENT_LOOP": loop})
    try:
        model = "bench"
        if args.mode == "aggregated":
            worker = cluster.standin("aggregated", model, args.tokens_per_second)
            router = cluster.router("--workers", f"static://127.0.0.1:{worker.port}", refresh=2.0)
            direct_url = worker.url + "/v1/completions"
        else:
            ctx = cluster.standin("context", model, args.tokens_per_second)
            gen = cluster.standin("generation", model, args.tokens_per_second)
            router = cluster.router("--context", f"static://127.0.0.1:{ctx.port}",
                                    "--generation", f"static://127.0.0.1:{gen.port}", refresh=2.0)
            worker = cluster.standin("aggregated", model, args.tokens_per_second)  # the direct baseline
            direct_url = worker.url + "/v1/completions"
        frontend = cluster.frontend(router.url, model, max_seq_len=1 << 20, default_max_tokens=args.max_tokens)
        tiers_url = frontend.url + "/v1/completions"
        warm = min(args.concurrency * 2, args.requests)
        asyncio.run(load(direct_url, model, warm, args.concurrency, 16))
        asyncio.run(load(tiers_url, model, warm, args.concurrency, 16))

        direct = asyncio.run(load(direct_url, model, args.requests, args.concurrency, args.max_tokens))
        pids = [frontend.popen.pid, router.popen.pid]
        cpu0 = [cpu_seconds(p) for p in pids]
        tiers = asyncio.run(load(tiers_url, model, args.requests, args.concurrency, args.max_tokens))
        cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
        probe_direct, probe_tiers = Load(), Load()
        probe_cpu = 0.0
        for _ in range(4):
            for url, acc in ((direct_url, probe_direct), (tiers_url, probe_tiers)):
                before = sum(cpu_seconds(p) for p in pids)
                got = asyncio.run(load(url, model, max(1, args.probe_requests // 4), args.concurrency, 4))
                if acc is probe_tiers:
                    probe_cpu += sum(cpu_seconds(p) for p in pids) - before
                acc.ttft.extend(got.ttft)
    finally:
        cluster.close()

    def ms(values: list[float], q: float) -> float:
        return round(pct(values, q) * 1000, 3)

    cpu_total = sum(cpu)
    runs = (("direct", direct), ("tiers", tiers))
    result: dict[str, Any] = {
        "config": {k: str(v) for k, v in vars(args).items()},
        "tokens_streamed": tiers.tokens,
        "tiers_wall_s": round(tiers.wall_s, 3),
        "tokens_per_s": round(tiers.tokens / tiers.wall_s, 1),
        "cpu_s": {"frontend": round(cpu[0], 3), "router": round(cpu[1], 3)},
        "tokens_per_cpu_core_s": round(tiers.tokens / cpu_total, 1) if cpu_total else None,
        "frontend_router_cores_busy": round(cpu_total / tiers.wall_s, 3),
        "ttft_ms": {k: {"p50": ms(d.ttft, 50), "p99": ms(d.ttft, 99)} for k, d in runs},
        "itl_ms": {k: {"p50": ms(d.itl, 50), "p99": ms(d.itl, 99),
                       "mean": round(statistics.fmean(d.itl) * 1000, 3)} for k, d in runs},
    }
    result["request_path_added_ttft_ms"] = {
        q: round(pct(probe_tiers.ttft, p) * 1000 - pct(probe_direct.ttft, p) * 1000, 3)
        for q, p in (("p50", 50), ("p99", 99))}
    result["request_path_cpu_ms_per_request"] = round(probe_cpu / max(1, len(probe_tiers.ttft)) * 1000, 3)
    for key in ("itl_ms", "ttft_ms"):
        result["added_" + key] = {q: round(result[key]["tiers"][q] - result[key]["direct"][q], 3)
                                  for q in ("p50", "p99")}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("aggregated", "disaggregated"), default="aggregated")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--tokens-per-second", type=float, default=200.0,
                   help="decode pace of each stand-in stream (0 = as fast as it can)")
    p.add_argument("--probe-requests", type=int, default=128, help="short requests of the request-path probe")
    p.add_argument("--loops", default="asyncio,uvloop", help="event loops to run the tiers on, comma-separated")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    results = {}
    print(f"mode {args.mode}: {args.requests} requests x {args.max_tokens} tokens, concurrency "
          f"{args.concurrency}, stand-in pace {args.tokens_per_second} tok/s/stream")
    for loop in args.loops.split(","):
        result = results[loop] = run(args, loop)
        print(f"[{loop}] tiers: {result['tokens_streamed']} tokens in {result['tiers_wall_s']} s = "
              f"{result['tokens_per_s']} tok/s; CPU frontend {result['cpu_s']['frontend']} s + router "
              f"{result['cpu_s']['router']} s -> {result['tokens_per_cpu_core_s']} streamed tokens/s per core")
        for name in ("ttft_ms", "itl_ms"):
            d = result[name]
            print(f"[{loop}] {name}: direct p50 {d['direct']['p50']} p99 {d['direct']['p99']} | "
                  f"tiers p50 {d['tiers']['p50']} p99 {d['tiers']['p99']}")
        print(f"[{loop}] added TTFT p50 {result['added_ttft_ms']['p50']} ms, p99 {result['added_ttft_ms']['p99']} ms; "
              f"added ITL p50 {result['added_itl_ms']['p50']} ms, p99 {result['added_itl_ms']['p99']} ms")
        r = result["request_path_added_ttft_ms"]
        print(f"[{loop}] request path alone (4-token requests): added TTFT p50 {r['p50']} ms, p99 {r['p99']} ms; "
              f"frontend + router CPU {result['request_path_cpu_ms_per_request']} ms per request")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")


if __name__ == "__main__":
    main()
