"""Fixtures for configuration tests: the dev stack's raw config, ready to be broken."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from disaggctl.synth import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]


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
