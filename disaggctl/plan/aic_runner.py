"""Run one NVIDIA AIConfigurator search and print its candidates as JSON (stdin: request JSON).

This file imports only the standard library and ``aiconfigurator``: it runs in the interpreter
that has AIConfigurator installed (``.venv-plan``: AIConfigurator needs numpy >= 2.1, the
project's venv pins numpy < 2 for pytriton), started by :mod:`disaggctl.plan.perf_model`.

It calls ``aiconfigurator.cli.api.cli_default`` (aiconfigurator 0.12.0,
``aiconfigurator/cli/api.py``), which sweeps aggregated and disaggregated (prefill/decode)
layouts over AIConfigurator's own performance database, and flattens each row of its
``best_configs`` tables into one candidate. Nothing here models performance.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _num(value: Any) -> float:
    return float(value)


def _agg_candidate(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "mode": "aggregated",
        "ttft_ms": _num(row["ttft"]),
        "tpot_ms": _num(row["tpot"]),
        "tokens_per_s_per_gpu": _num(row["tokens/s/gpu"]),
        "tokens_per_s_per_user": _num(row["tokens/s/user"]),
        "request_rate": _num(row["request_rate"]),
        "concurrency": int(row["concurrency"]),
        "gpus": int(row["num_total_gpus"]),
        "roles": {
            "workers": {
                "tp": int(row["tp"]),
                "pp": int(row["pp"]),
                "batch_size": int(row["bs"]),
                "max_num_tokens": int(row["num_tokens"]),
                "workers": 1,
                "memory_gib": _num(row["memory"]),
            }
        },
    }


def _disagg_candidate(row: dict[str, Any]) -> dict[str, Any]:
    def role(p: str) -> dict[str, Any]:
        return {
            "tp": int(row[f"({p})tp"]),
            "pp": int(row[f"({p})pp"]),
            "batch_size": int(row[f"({p})bs"]),
            "workers": int(row[f"({p})workers"]),
            "memory_gib": _num(row[f"({p})memory"]),
        }

    return {
        "mode": "prefill-decode",
        "ttft_ms": _num(row["ttft"]),
        "tpot_ms": _num(row["tpot"]),
        "tokens_per_s_per_gpu": _num(row["tokens/s/gpu"]),
        "tokens_per_s_per_user": _num(row["tokens/s/user"]),
        "request_rate": _num(row["request_rate"]),
        "concurrency": int(row["concurrency"]),
        "gpus": int(row["num_total_gpus"]),
        "roles": {"prefill": role("p"), "decode": role("d")},
    }


def search(request: dict[str, Any]) -> dict[str, Any]:
    import logging
    from importlib.metadata import version

    from aiconfigurator.cli.api import cli_default

    logging.disable(logging.WARNING)
    result = cli_default(
        model_path=request["model_path"],
        total_gpus=int(request["total_gpus"]),
        system=request["system"],
        backend=request.get("backend", "trtllm"),
        backend_version=request.get("backend_version"),
        isl=int(request["isl"]),
        osl=int(request["osl"]),
        ttft=float(request["ttft_ms"]),
        tpot=float(request["tpot_ms"]),
        top_n=int(request.get("top_n", 10)),
    )
    candidates: list[dict[str, Any]] = []
    versions: set[str] = set()
    for exp, table in sorted(result.best_configs.items()):
        if table is None:
            continue
        for row in table.to_dict(orient="records"):
            candidate = _agg_candidate(row) if exp.startswith("agg") else _disagg_candidate(row)
            candidates.append(candidate)
            versions.add(str(row.get("version") or row.get("(p)version")))
    return {
        "engine": f"aiconfigurator {version('aiconfigurator')}",
        "database": {
            "system": request["system"],
            "backend": request.get("backend", "trtllm"),
            "version": ",".join(sorted(versions)),
        },
        "candidates": candidates,
    }


def main() -> int:
    request = json.load(sys.stdin)
    json.dump(search(request), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
