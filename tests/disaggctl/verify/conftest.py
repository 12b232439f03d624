"""A real Triton (CPU) serving this folder's test models, shared by the real-server tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

MODELS = Path(__file__).parent / "models"


@pytest.fixture(scope="session")
def triton() -> Iterator:
    """tritonserver on 127.0.0.1 with ``ensemble`` (streams " <word>#<k>" tokens 10 ms apart)
    and ``tensorrt_llm`` (readiness only): stands in for both the frontend and the orchestrator."""
    from disaggctl.testing.local_triton import LocalTriton

    with LocalTriton(MODELS, startup_timeout_s=60) as server:
        yield server
