"""Benchmark: KV-cache-aware routing against least-outstanding, on stand-ins that model a KV cache.

Starts ``--workers`` real stand-ins (``python -m runtime.standin``) with a reusable KV cache of
``--cache-blocks`` blocks each (LRU, KV-cache events), a prefill pace for uncached tokens (one prefill
at a time per worker, like one GPU group's context batches) and a decode pace, and one router per
policy in front of them (restarted workers for each run, so every policy starts cold). Two workloads:

- shared-prefix: ``--system-prompts`` system prompts of 1-2k tokens, each used by several users in
  multi-turn sessions (turn k resends the system prompt and the whole history);
- control: every request a prompt nobody else sends (nothing to reuse).

For each policy it prints time to first token p50/p99 (client-side, streamed), prefill tokens the
workers computed against an oracle that never recomputes a prefix any worker ever cached (infinite
caches, block-granular), and the request imbalance (max/mean requests per worker). Last line, for
the shared-prefix workload: ``ttft_p50_speedup=X prefill_vs_oracle=Y imbalance=Z`` (KV-aware vs
least-outstanding; prefill and imbalance of KV-aware).

    python benchmarks/prefix_routing.py            # ~1 minute on a 2-core machine
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from runtime.kv_routing import block_hashes
from runtime.metrics import parse_text

MODEL = "llama"
LABELS = '{engine_type="trtllm",model_name="llama"}'


@dataclass(frozen=True)
class Request:
    session: int
    prompt: list[int]


def shared_prefix_workload(rng: random.Random, system_prompts: int, sessions: int, turns: int,
                           turn_tokens: int) -> list[list[Request]]:
    """Sessions (each a list of turns, sent in order): a system prompt shared by several sessions,
    then the growing conversation."""
    prompts = [[rng.randrange(1, 120_000) for _ in range(rng.randrange(1000, 2001))] for _ in range(system_prompts)]
    out = []
    for s in range(sessions):
        history = list(prompts[s % system_prompts])
        session = []
        for _ in range(turns):
            history += [rng.randrange(1, 120_000) for _ in range(turn_tokens)]  # the user's turn
            session.append(Request(s, list(history)))
            history += [rng.randrange(1, 120_000) for _ in range(turn_tokens // 2)]  # the answer
        out.append(session)
    rng.shuffle(out)
    return out


def control_workload(rng: random.Random, sessions: int, turns: int) -> list[list[Request]]:
    return [[Request(s, [rng.randrange(1, 120_000) for _ in range(rng.randrange(1000, 2001))]) for _ in range(turns)]
            for s in range(sessions)]


def oracle_prefill_tokens(sessions: list[list[Request]], tokens_per_block: int) -> int:
    """Tokens an ideal cluster computes: each request recomputes only what no earlier request cached."""
    seen: set[int] = set()
    total = 0
    for req in (r for s in sessions for r in s):  # order does not matter for an infinite cache
        hs = block_hashes(req.prompt, tokens_per_block)
        hit = 0
        for h in hs:
            if h not in seen:
                break
            hit += 1
        total += len(req.prompt) - hit * tokens_per_block
        seen.update(hs)
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, module: str, *args: str) -> str:
        port = free_port()
        log = open(self.log_dir / f"{module}-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.procs.append(subprocess.Popen([sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port),
                                            *args], stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        path = "/live" if module == "runtime.router" else "/health"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + path, timeout=1):
                    return url
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"prefix_routing: {module} on port {port} did not start; see {log.name}")

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        return parse_text(r.read().decode())


async def run_sessions(router: str, sessions: list[list[Request]], concurrency: int, max_tokens: int,
                       timeout_s: float) -> list[float]:
    """Closed-loop clients, each running whole sessions turn by turn; returns TTFTs (seconds)."""
    queue: asyncio.Queue[list[Request]] = asyncio.Queue()
    for s in sessions:
        queue.put_nowait(s)
    ttfts: list[float] = []

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            for req in queue.get_nowait():
                body = {"model": MODEL, "prompt": req.prompt, "max_tokens": max_tokens, "stream": True}
                t0 = time.monotonic()
                async with http.post(router + "/v1/completions", json=body) as resp:
                    if resp.status != 200:
                        raise SystemExit(f"prefix_routing: HTTP {resp.status}: {(await resp.text())[:200]}")
                    first = None
                    async for _ in resp.content.iter_any():
                        if first is None:
                            first = time.monotonic() - t0
                    ttfts.append(first if first is not None else time.monotonic() - t0)

    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.wait_for(asyncio.gather(*(client(http) for _ in range(concurrency))), timeout_s)
    return ttfts


@dataclass
class Result:
    policy: str
    ttft_p50: float
    ttft_p99: float
    prefill: float
    requests: list[float]

    @property
    def imbalance(self) -> float:
        return max(self.requests) / statistics.mean(self.requests)


def run_policy(args: argparse.Namespace, policy: list[str], name: str, sessions: list[list[Request]],
               log_dir: Path) -> Result:
    procs = Procs(log_dir)
    try:
        workers = [procs.start("runtime.standin", "--role", "aggregated", "--model-name", MODEL,
                               "--tokens-per-second", str(args.decode_tps), "--kv-cache-blocks", str(args.cache_blocks),
                               "--tokens-per-block", str(args.tokens_per_block),
                               "--prefill-tokens-per-second", str(args.prefill_tps))
                   for _ in range(args.workers)]
        static = "static://" + ",".join(w.removeprefix("http://") for w in workers)
        router = procs.start("runtime.router", "--workers", static, "--tokens-per-block", str(args.tokens_per_block),
                             *policy)
        ttfts = asyncio.run(run_sessions(router, sessions, args.concurrency, args.max_tokens, args.timeout))
        scraped = [scrape(w) for w in workers]
    finally:
        procs.stop()
    q = statistics.quantiles(ttfts, n=100, method="inclusive")
    return Result(name, q[49], q[98], sum(m[f"standin_prefill_tokens_computed_total{LABELS}"] for m in scraped),
                  [m[f"trtllm_request_success_total{LABELS}"] for m in scraped])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--system-prompts", type=int, default=32)
    p.add_argument("--sessions", type=int, default=96)
    p.add_argument("--turns", type=int, default=3)
    p.add_argument("--turn-tokens", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=8)
    p.add_argument("--cache-blocks", type=int, default=600,
                   help="per worker: ~12 of the 32 system prompts (32 tokens a block)")
    p.add_argument("--tokens-per-block", type=int, default=32)
    p.add_argument("--prefill-tps", type=float, default=10_000.0, help="uncached prompt tokens per second per worker")
    p.add_argument("--decode-tps", type=float, default=200.0, help="output tokens per second per request")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run, at most")
    p.add_argument("--kv-overlap-weight", type=float, default=2.0)
    p.add_argument("--kv-load-weight", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per policy, interleaved; medians are printed (a shared machine's speed drifts)")
    p.add_argument("--kv-events", choices=("on", "off"), default="on",
                   help="off: the router approximates from its own decisions (images without /kv_cache_events)")
    p.add_argument("--only", choices=("shared-prefix", "control"), help="run one workload")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)

    rng = random.Random(args.seed)
    shared = shared_prefix_workload(rng, args.system_prompts, args.sessions, args.turns, args.turn_tokens)
    control = control_workload(rng, args.sessions, args.turns)
    policies = {"least-outstanding": ["--routing", "least-outstanding"],
                "kv-aware": ["--routing", "kv-aware", "--kv-poll-seconds", "0.2",
                             "--kv-overlap-weight", str(args.kv_overlap_weight),
                             "--kv-load-weight", str(args.kv_load_weight), "--kv-events", args.kv_events]}
    figures: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="prefix-routing-") as tmp:
        for wname, sessions in (("shared-prefix", shared), ("control", control)):
            if args.only and wname != args.only:
                continue
            oracle = oracle_prefill_tokens(sessions, args.tokens_per_block)
            print(f"{wname}: {sum(map(len, sessions))} requests, oracle prefill {oracle} tokens")
            print(f"  {'policy':<18} {'ttft p50 ms':>11} {'ttft p99 ms':>11} {'prefill/oracle':>14} {'imbalance':>9}")
            runs: dict[str, list[Result]] = {name: [] for name in policies}
            for _ in range(args.repeat):
                for pname, flags in policies.items():
                    runs[pname].append(run_policy(args, flags, pname, sessions, Path(tmp)))
            for pname, rs in runs.items():
                f = {"ttft_p50_s": statistics.median(r.ttft_p50 for r in rs),
                     "ttft_p99_s": statistics.median(r.ttft_p99 for r in rs),
                     "prefill_tokens": statistics.median(r.prefill for r in rs),
                     "imbalance": statistics.median(r.imbalance for r in rs)}
                f["prefill_vs_oracle"] = f["prefill_tokens"] / oracle
                figures.setdefault(wname, {})[pname] = f
                print(f"  {pname:<18} {f['ttft_p50_s'] * 1e3:>11.1f} {f['ttft_p99_s'] * 1e3:>11.1f} "
                      f"{f['prefill_vs_oracle']:>14.3f} {f['imbalance']:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if "control" in figures:
        c = figures["control"]
        control_ratio = c["kv-aware"]["ttft_p50_s"] / c["least-outstanding"]["ttft_p50_s"]
        print(f"control: kv-aware ttft p50 / least-outstanding = {control_ratio:.3f}")
    if "shared-prefix" not in figures:
        return 0
    s = figures["shared-prefix"]
    print(f"ttft_p50_speedup={s['least-outstanding']['ttft_p50_s'] / s['kv-aware']['ttft_p50_s']:.2f} "
          f"prefill_vs_oracle={s['kv-aware']['prefill_vs_oracle']:.3f} imbalance={s['kv-aware']['imbalance']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
