"""Fixtures for configuration tests: the dev stack's raw config, ready to be broken."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from disaggctl.synth.program import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[3]


class RawConfig:
    """The flat ``ns:key -> string`` config Pulumi hands the program, editable as dicts."""

    def __init__(self, raw: dict[str, str]):
        self.raw = dict(raw)

    def section(self, key: str) -> Any:
        value = self.raw[f"disagg:{key}"]
        return copy.deepcopy(json.loads(value)) if value[:1] in "{[" else value

    def set(self, key: str, value: Any) -> RawConfig:
        self.raw[f"disagg:{key}"] = value if isinstance(value, str) else json.dumps(value)
        return self


@pytest.fixture
def dev_config() -> RawConfig:
    _, raw, _ = read_stack_config(PROJECT_DIR, "dev")
    return RawConfig(raw)


ENGINE_SPEC = {
    "model": "llama-3.1-8b-instruct",
    "dtype": "bfloat16",
    "tpSize": 4,
    "ppSize": 1,
    "maxBatchSize": 64,
    "maxInputLen": 4096,
    "maxSeqLen": 8192,
    "maxNumTokens": 8192,
}


@pytest.fixture
def engine_config(dev_config: RawConfig) -> RawConfig:
    """The dev stack moved to runtime 'engine': one tp-4 engine of Llama-3.1-8B in groups of one
    4-GPU pod, no disagg:models, no workload (its prediction is for dev's planned tp-2 layout)."""
    dev_config.raw.pop("disagg:models")
    deployments = dev_config.section("deployments")
    deployments[0]["runtime"] = "engine"
    deployments[0]["orchestrator"].pop("replicas", None)
    deployments[0].pop("workload", None)
    workers = deployments[0]["workers"]
    workers.pop("llmApi")
    workers.pop("model")
    workers["engine"] = "llama-8b-tp4"
    workers["gpusPerPod"] = ENGINE_SPEC["tpSize"]
    dev_config.set("deployments", deployments)
    dev_config.set("engines", {"llama-8b-tp4": dict(ENGINE_SPEC)})
    return dev_config


@pytest.fixture
def prod_config() -> RawConfig:
    _, raw, _ = read_stack_config(PROJECT_DIR, "prod")
    return RawConfig(raw)
