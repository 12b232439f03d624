"""Benchmark: the generated frontend → orchestrator path on this machine's CPU.

Starts two real Triton servers (``disaggctl.testing.local_triton``): an orchestrator serving the CPU
stand-in ``tensorrt_llm`` and a frontend serving the generated ensemble (byte tokenizer,
pre/postprocessing, the gRPC-streaming ``tensorrt_llm`` proxy). Then runs the same bounded load
test as ``disaggctl verify`` against the frontend and prints its figures (TTFT, inter-token
latency, tokens/s). It measures the overhead of the frontend tier and the hop between tiers,
not a GPU: the stand-in emits tokens as fast as Python can.

    python benchmarks/local_disaggregated.py --requests 200 --concurrency 8 --max-tokens 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from components.serving.triton.model_repository import (
    EngineLimits,
    FrontendSettings,
    ModelRepositoryArgs,
    TensorrtLlmSettings,
    TokenizerSettings,
    frontend_repository,
    standin_orchestrator_repository,
    write_repository,
)
from disaggctl.testing.local_triton import LocalTriton
from disaggctl.verify.cli import render_load_summary
from disaggctl.verify.loadtest import (
    LoadTestConfig,
    ProgressBar,
    report_problems,
    run_load_test,
    write_report,
)


def repository_args(orchestrator_url: str, max_batch_size: int, instances: int) -> ModelRepositoryArgs:
    return ModelRepositoryArgs(
        limits=EngineLimits(max_batch_size=max_batch_size, max_input_len=256, max_seq_len=1024),
        tokenizer=TokenizerSettings(kind="bytes"),
        tensorrt_llm=TensorrtLlmSettings(engine_dir="/engines/benchmark"),
        frontend=FrontendSettings(
            orchestrator_url=orchestrator_url,
            preprocessing_instance_count=instances,
            postprocessing_instance_count=instances,
            bls_instance_count=instances,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--instances", type=int, default=2, help="python model instances in the frontend")
    parser.add_argument("--report", type=Path, default=Path("build/benchmarks/local_disaggregated.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="disagg-bench-") as tmp:
        orchestrator_repo, frontend_repo = Path(tmp, "orchestrator"), Path(tmp, "frontend")
        batch = max(8, args.concurrency)
        write_repository(standin_orchestrator_repository(repository_args("unused:8001", batch, 1)), orchestrator_repo)
        with LocalTriton(orchestrator_repo) as orchestrator:
            write_repository(
                frontend_repository(repository_args(orchestrator.grpc_url, batch, args.instances)), frontend_repo
            )
            with LocalTriton(frontend_repo) as frontend:
                config = LoadTestConfig(
                    url=frontend.grpc_url,
                    max_tokens=args.max_tokens,
                    requests=args.requests,
                    concurrency=args.concurrency,
                    time_limit_s=600,
                )
                bar = ProgressBar(config.requests)
                try:
                    report = run_load_test(config, progress=bar.update)
                finally:
                    bar.close()
    print(render_load_summary(report), end="")
    print(f"report: {write_report(report, args.report)}")
    problems = report_problems(report)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
