"""Fixtures for cluster tests: the dev stack's EKS configuration and builders of variants (``declare``: tests/components/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from components.config import load_stack_config
from components.config.cluster import EksConfig
from disaggctl.synth.program import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[3]
T = TypeVar("T")




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
