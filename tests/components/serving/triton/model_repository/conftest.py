"""Fixtures for the model repository tests: repository args and two real Triton servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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

MAX_BATCH_SIZE = 8
MAX_INPUT_LEN = 32
MAX_SEQ_LEN = 64
DEFAULT_MAX_TOKENS = 40


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "triton: starts a real Triton Inference Server on 127.0.0.1 (CPU)")


def make_args(
    orchestrator_url: str = "orchestrator.test.svc:8001",
    default_max_tokens: int | None = DEFAULT_MAX_TOKENS,
    **tensorrt_llm,
) -> ModelRepositoryArgs:
    """Small CPU-test deployment: byte tokenizer, one instance per python model."""
    return ModelRepositoryArgs(
        limits=EngineLimits(
            max_batch_size=MAX_BATCH_SIZE, max_input_len=MAX_INPUT_LEN, max_seq_len=MAX_SEQ_LEN
        ),
        tokenizer=TokenizerSettings(kind="bytes"),
        tensorrt_llm=TensorrtLlmSettings(engine_dir="/engines/test", **tensorrt_llm),
        frontend=FrontendSettings(
            orchestrator_url=orchestrator_url,
            default_max_tokens=default_max_tokens,
            preprocessing_instance_count=1,
            postprocessing_instance_count=1,
            bls_instance_count=1,
        ),
    )


@pytest.fixture
def args() -> ModelRepositoryArgs:
    return make_args()


@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTriton]:
    """Orchestrator Triton serving the CPU stand-in tensorrt_llm."""
    repo = tmp_path_factory.mktemp("orchestrator")
    write_repository(standin_orchestrator_repository(make_args()), repo)
    with LocalTriton(repo) as server:
        yield server


@pytest.fixture(scope="module")
def frontend(orchestrator: LocalTriton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTriton]:
    """Frontend Triton whose tensorrt_llm proxy forwards to ``orchestrator``."""
    repo: Path = tmp_path_factory.mktemp("frontend")
    write_repository(frontend_repository(make_args(orchestrator.grpc_url)), repo)
    with LocalTriton(repo) as server:
        yield server


@pytest.fixture
def args_factory():
    """``make_args`` as a fixture (test modules cannot import conftest under importlib mode)."""
    return make_args
