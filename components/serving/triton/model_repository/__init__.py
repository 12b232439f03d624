"""Triton model repositories of a disaggregated TRT-LLM deployment (pure; no Pulumi).

Two repositories per model deployment, rendered from :class:`ModelRepositoryArgs`:
:func:`frontend_repository` (ensemble, pre/postprocessing, BLS, tensorrt_llm proxy) and
:func:`orchestrator_repository` (the real tensorrt_llm). :func:`standin_orchestrator_repository`
replaces the TRT-LLM backend by a CPU stand-in for tests. :func:`repository_files` gives
``{relative_path: file_text}``; :func:`write_repository` writes a directory Triton can load.
"""

from components.serving.triton.model_repository.repository import (
    DEFAULT_EXECUTOR_WORKER_PATH,
    ORCHESTRATOR_ENV,
    EngineLimits,
    FrontendSettings,
    ModelRepositoryArgs,
    TensorrtLlmSettings,
    TokenizerSettings,
    bls_model,
    ensemble_model,
    frontend_repository,
    orchestrator_repository,
    postprocessing_model,
    preprocessing_model,
    standin_orchestrator_repository,
    tensorrt_llm_model,
    tensorrt_llm_parameters,
    tensorrt_llm_proxy_model,
    tensorrt_llm_standin_model,
)
from components.serving.triton.model_repository.spec import (
    DynamicBatching,
    EnsembleStep,
    ModelRepository,
    ModelSpec,
    Tensor,
    python_model_source,
    repository_files,
    write_repository,
)

__all__ = [
    "DEFAULT_EXECUTOR_WORKER_PATH",
    "ORCHESTRATOR_ENV",
    "DynamicBatching",
    "EngineLimits",
    "EnsembleStep",
    "FrontendSettings",
    "ModelRepository",
    "ModelRepositoryArgs",
    "ModelSpec",
    "Tensor",
    "TensorrtLlmSettings",
    "TokenizerSettings",
    "bls_model",
    "ensemble_model",
    "frontend_repository",
    "orchestrator_repository",
    "postprocessing_model",
    "preprocessing_model",
    "python_model_source",
    "repository_files",
    "standin_orchestrator_repository",
    "tensorrt_llm_model",
    "tensorrt_llm_parameters",
    "tensorrt_llm_proxy_model",
    "tensorrt_llm_standin_model",
    "write_repository",
]
