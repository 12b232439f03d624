"""The seam between ``disaggctl plan`` and a performance model.

:class:`AIConfiguratorModel` runs NVIDIA AIConfigurator (PyPI ``aiconfigurator==0.12.0`` with
its database ``aiconfigurator-core==0.12.0``; ``aisimulate``, its continuation, is a stub that
downloads its wheel from NVIDIA's own index, which is not reachable here) in the interpreter of
``.venv-plan`` (``requirements-plan.txt``): AIConfigurator needs numpy >= 2.1, this project's
venv pins numpy < 2 for pytriton. :class:`RecordedModel` replays searches AIConfigurator wrote
(tests/disaggctl/plan/data/aic/), so tests run without the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

AIC_RUNNER = Path(__file__).with_name("aic_runner.py")
AIC_PYTHON_ENV = "DISAGG_AIC_PYTHON"
DEFAULT_AIC_PYTHON = Path(".venv-plan/bin/python")

SYSTEMS: dict[str, str] = {
    "A100-SXM4-40GB": "a100_sxm",
    "A100-SXM4-80GB": "a100_sxm",
    "H100-80GB-HBM3": "h100_sxm",
    "H200-141GB": "h200_sxm",
    "B200-179GB": "b200_sxm",
    "L4": "l4",
    "L40S": "l40s",
}
"""GPU model (components/config/instance_types.py) -> AIConfigurator system
(aiconfigurator_core/systems/<name>.yaml, 0.12.0). The a100_sxm system is an 80 GB part: the
planner drops candidates whose per-GPU memory exceeds the pool's GPU (A100 40 GB). ``l4`` ships
no performance data in 0.12.0 (``systems/data/l4`` is empty): searches there fail with
AIConfigurator's own message."""

MODELS: dict[tuple[str, str], str] = {
    ("llama-3.1-8b-instruct", "none"): "meta-llama/Meta-Llama-3.1-8B",
    ("llama-3.1-70b-instruct", "none"): "meta-llama/Meta-Llama-3.1-70B",
    ("llama-3.1-70b-instruct", "fp8"): "nvidia/Llama-3.1-70B-Instruct-FP8",
    ("llama-3.3-70b-instruct", "none"): "meta-llama/Meta-Llama-3.1-70B",
}
"""(engines/catalog.py key, quantization) -> AIConfigurator model (aiconfigurator_core/
model_configs/<org>--<name>_config.json): same architecture and sizes."""


@dataclass(frozen=True)
class SearchRequest:
    model_path: str
    system: str
    total_gpus: int
    isl: int
    osl: int
    ttft_ms: float
    tpot_ms: float
    backend: str = "trtllm"

    def as_json(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            "system": self.system,
            "total_gpus": self.total_gpus,
            "isl": self.isl,
            "osl": self.osl,
            "ttft_ms": self.ttft_ms,
            "tpot_ms": self.tpot_ms,
            "backend": self.backend,
        }

    def key(self) -> str:
        model = self.model_path.replace("/", "--")
        return f"{model}_{self.system}_{self.total_gpus}gpu_{self.isl}in_{self.osl}out_{self.ttft_ms:g}ms_{self.tpot_ms:g}ms"


class PerformanceModelError(RuntimeError):
    """The model could not answer; the message says why and what to do."""


class PerformanceModel(Protocol):
    def search(self, request: SearchRequest) -> dict[str, Any]:
        """``{"engine", "database": {"system", "backend", "version"}, "candidates": [...]}``
        (candidates as :mod:`disaggctl.plan.aic_runner` writes them)."""


class AIConfiguratorModel:
    """AIConfigurator in its own interpreter; ``record_dir`` keeps every answer (fixtures)."""

    def __init__(self, python: str | None = None, record_dir: Path | None = None) -> None:
        self.python = python or os.environ.get(AIC_PYTHON_ENV) or str(DEFAULT_AIC_PYTHON)
        self.record_dir = record_dir

    def search(self, request: SearchRequest) -> dict[str, Any]:
        python = self.python
        if python == sys.executable or python == "self":
            python = sys.executable
        elif not Path(python).exists():
            raise PerformanceModelError(
                f"no AIConfigurator interpreter at {python}: python3 -m venv .venv-plan && "
                ".venv-plan/bin/pip install -r requirements-plan.txt (or set DISAGG_AIC_PYTHON)"
            )
        run = subprocess.run(
            [python, str(AIC_RUNNER)],
            input=json.dumps(request.as_json()),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if run.returncode != 0:
            lines = [line.strip() for line in run.stderr.strip().splitlines() if line.strip()]
            errors = [line for line in lines if "Error" in line.split(":", 1)[0]] or lines[-1:] or ["no output"]
            raise PerformanceModelError(f"AIConfigurator search {request.key()} failed: {errors[-1][:300]}")
        answer = json.loads(run.stdout)
        if self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            record = {"request": request.as_json(), **answer}
            (self.record_dir / f"{request.key()}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        return answer


class RecordedModel:
    """Answers recorded from AIConfigurator (``<dir>/<request key>.json``); a request never
    recorded is an error naming the file to record."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def search(self, request: SearchRequest) -> dict[str, Any]:
        path = self.directory / f"{request.key()}.json"
        if not path.exists():
            raise PerformanceModelError(
                f"no recorded search {path.name} in {self.directory}: record it with "
                f"`python -m disaggctl plan ... --record {self.directory}`"
            )
        record = json.loads(path.read_text())
        if record.get("request") != request.as_json():
            raise PerformanceModelError(f"{path} was recorded for another request: re-record it")
        return {k: v for k, v in record.items() if k != "request"}
