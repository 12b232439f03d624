"""Fixtures for cluster tests: declare components under the recording Pulumi mocks, then inspect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import pytest
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.config import load_stack_config
from components.config.cluster import EksConfig
from disaggctl.mocks import RecordedResource, install_mocks
from disaggctl.synth import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@dataclass
class Declared:
    """What a program declared: every registered resource, with inputs as the engine saw them."""

    resources: list[RecordedResource]

    def of_type(self, typ: str) -> list[RecordedResource]:
        return sorted((r for r in self.resources if r.type == typ), key=lambda r: r.name)

    def one(self, typ: str, name: str | None = None) -> RecordedResource:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"{len(found)} {typ} named {name}: {[r.name for r in self.of_type(typ)]}"
        return found[0]

    def named(self, name: str) -> RecordedResource:
        (found,) = [r for r in self.resources if r.name == name]
        return found

    def types(self) -> set[str]:
        return {r.type for r in self.resources}

    @staticmethod
    def resolve(value: Any) -> Any:
        """The value of an Output (or plain value) once the program has run."""
        return _sync_await(pulumi.Output.from_input(value).future())


@pytest.fixture
def declare() -> Callable[[Callable[[], T]], tuple[T, Declared]]:
    """``declare(build)``: run ``build`` as a Pulumi program under mocks; its result and resources."""

    def run(build: Callable[[], T]) -> tuple[T, Declared]:
        monitor = install_mocks("disagg", "test")
        result: dict[str, T] = {}

        def program() -> None:
            result["value"] = build()

        _sync_await(run_pulumi_func(program))
        return result["value"], Declared(list(monitor.recorded.values()))

    return run


def _dev_eks() -> EksConfig:
    _, raw, _ = read_stack_config(PROJECT_DIR, "dev")
    config = load_stack_config(raw)
    assert config.cluster.eks is not None
    return config.cluster.eks


@pytest.fixture
def dev_eks() -> EksConfig:
    """The dev stack's EKS section (p4d pool with EFA and placement group, FSx)."""
    return _dev_eks()


def _eks(**overrides: Any) -> EksConfig:
    fields: dict[str, Any] = {
        "region": "us-east-2",
        "availabilityZones": ["us-east-2a", "us-east-2b", "us-east-2c"],
        "vpcCidr": "10.60.0.0/16",
        "publicAccessCidrs": ["100.20.0.0/16"],  # the deployer's egress range (public, not documentation)
    }
    return EksConfig.model_validate({**fields, **overrides})


@pytest.fixture
def make_eks() -> Callable[..., EksConfig]:
    """``make_eks(**overrides)``: a small valid EKS config in us-east-2 (camelCase keys), no GPU pools."""
    return _eks


@pytest.fixture
def make_pool() -> Callable[..., dict[str, Any]]:
    """``make_pool(**overrides)``: a p5.48xlarge pool pinned to us-east-2a, as config (camelCase)."""

    def make(**overrides: Any) -> dict[str, Any]:
        return {"name": "h100", "instanceType": "p5.48xlarge", "availabilityZone": "us-east-2a", **overrides}

    return make
