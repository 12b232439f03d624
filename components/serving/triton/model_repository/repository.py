"""The two Triton model repositories of one disaggregated TRT-LLM deployment.

* **frontend** (CPU pods, client traffic): ``ensemble`` (preprocessing -> tensorrt_llm ->
  postprocessing), ``preprocessing`` (tokenize), ``postprocessing`` (detokenize),
  ``tensorrt_llm_bls`` and a ``tensorrt_llm`` *proxy*: a decoupled python model with the real
  model's inputs/outputs that forwards each request over tritonclient gRPC streaming to the
  orchestrator's ``tensorrt_llm`` and streams the responses back.
* **orchestrator**: the real ``tensorrt_llm`` model (backend ``tensorrtllm``). The pods run it
  in orchestrator mode: they set ``TRTLLM_ORCHESTRATOR=1`` in tritonserver's environment, and
  the backend MPI-spawns ``executor_worker_path`` (trtllmExecutorWorker) for the GPU ranks, or,
  with ``participant_ids`` set, uses ranks mpirun started with it.

Prefill/decode disaggregation: two orchestrators (context and generation engines); the
frontend proxy sends each request ``request_type=context_only`` to the first and
``generation_only`` with the returned ``context_phase_params`` to the second
(``FrontendSettings.generation_orchestrator_url``), as upstream's disaggregated_serving_bls.

:func:`standin_orchestrator_repository` swaps the real backend for a CPU python stand-in with
the identical config (tests and local runs only).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from components.serving.triton.model_repository import tensors
from components.serving.triton.model_repository.spec import (
    DataType,
    DynamicBatching,
    EnsembleStep,
    ModelRepository,
    ModelSpec,
)

TENSORRT_LLM = "tensorrt_llm"


class ConfigModel(BaseModel):
    """Frozen, strict, camelCase-in-YAML: the same conventions as components.config.base.

    Defined here so this package stays importable on its own (no Pulumi, no stack config).
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


DEFAULT_EXECUTOR_WORKER_PATH = "/opt/tritonserver/backends/tensorrtllm/trtllmExecutorWorker"


class EngineLimits(ConfigModel):
    """Limits baked into the TRT-LLM engine; the Triton configs must not exceed them."""

    max_batch_size: int = Field(ge=1, description="Triton max_batch_size of every model.")
    max_input_len: int = Field(ge=1, description="Longest prompt in tokens (checked in preprocessing).")
    max_seq_len: int = Field(
        ge=2, description="Prompt + generated tokens; max_tokens is capped at max_seq_len - prompt."
    )
    max_beam_width: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _input_shorter_than_seq(self) -> EngineLimits:
        if self.max_input_len >= self.max_seq_len:
            raise ValueError(
                f"maxInputLen ({self.max_input_len}) must be smaller than maxSeqLen "
                f"({self.max_seq_len}): raise maxSeqLen or lower maxInputLen"
            )
        return self

    def violations(self, spec) -> list[str]:
        """Where these limits exceed an ``engines.spec.EngineSpec``'s (empty list: consistent)."""
        problems = []
        for key in ("max_batch_size", "max_input_len", "max_seq_len"):
            mine, engine = getattr(self, key), getattr(spec, key)
            if mine > engine:
                problems.append(
                    f"{key}={mine} exceeds the engine's {key}={engine}: lower it to at most {engine} "
                    f"or rebuild the engine"
                )
        return problems

    @classmethod
    def from_engine_spec(cls, spec) -> EngineLimits:
        """Limits of an ``engines.spec.EngineSpec`` (duck-typed: reads its limit fields)."""
        return cls(
            max_batch_size=spec.max_batch_size,
            max_input_len=spec.max_input_len,
            max_seq_len=spec.max_seq_len,
        )


class TokenizerSettings(ConfigModel):
    """Which tokenizer pre/postprocessing load."""

    kind: Literal["hf", "bytes"] = Field(
        default="hf",
        description="'hf': transformers.AutoTokenizer from `path` (production). 'bytes': a "
        "dependency-free byte-level tokenizer (ids 0-255 = bytes, 256 = <eos>, 257 = <pad>) "
        "for CPU tests and local runs; it ignores `path`.",
    )
    path: str = Field(default="/models/tokenizer", description="Mounted tokenizer directory.")
    add_special_tokens: bool = True
    skip_special_tokens: bool = True


class TensorrtLlmSettings(ConfigModel):
    """Parameters of the real ``tensorrt_llm`` model (names as upstream's config.pbtxt keys)."""

    engine_dir: str = Field(description="Engine directory in the pod (`gpt_model_path`).")
    batching_strategy: Literal["inflight_fused_batching", "V1"] = Field(
        default="inflight_fused_batching", description="Rendered as `gpt_model_type`."
    )
    batch_scheduler_policy: Literal["guaranteed_no_evict", "max_utilization"] = "guaranteed_no_evict"
    kv_cache_free_gpu_mem_fraction: float = Field(default=0.9, gt=0, le=1)
    max_tokens_in_paged_kv_cache: int | None = Field(
        default=None, ge=1, description="KV cache size cap in tokens; None: bounded by memory only."
    )
    enable_kv_cache_reuse: bool = Field(
        default=False, description="Needs an engine built with paged KV cache + paged context FMHA."
    )
    enable_chunked_context: bool = False
    exclude_input_in_output: bool = Field(
        default=True, description="Return only generated tokens (requests may override)."
    )
    decoding_mode: Literal["top_k", "top_p", "top_k_top_p", "beam_search"] | None = None
    normalize_log_probs: bool = True
    cancellation_check_period_ms: int = Field(default=100, ge=1)
    executor_worker_path: str = Field(
        default=DEFAULT_EXECUTOR_WORKER_PATH,
        description="trtllmExecutorWorker the orchestrator MPI-spawns for the GPU ranks.",
    )
    gpu_device_ids: str | None = Field(default=None, description="e.g. '0,1'; None: all visible.")
    participant_ids: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(,[0-9]+)*$",
        description="MPI ranks that run this model's executor, e.g. '1,2,3,4', when the "
        "orchestrator does not spawn them but mpirun starts every rank at once "
        "(TRTLLM_ORCHESTRATOR_SPAWN_PROCESSES=0; rank 0 is the orchestrator). None: spawned.",
    )
    max_queue_delay_microseconds: int = Field(default=0, ge=0)
    max_queue_size: int | None = Field(default=None, ge=1)
    logits_datatype: DataType = "TYPE_FP32"
    instance_count: int = Field(default=1, ge=1)


class FrontendSettings(ConfigModel):
    """The CPU frontend tier's models."""

    orchestrator_url: str = Field(
        description="gRPC host:port of the orchestrator Triton (e.g. "
        "'llama-orchestrator.inference.svc:8001'); the tensorrt_llm proxy forwards here. With "
        "generation_orchestrator_url set, this is the context (prefill) orchestrator."
    )
    generation_orchestrator_url: str | None = Field(
        default=None,
        description="gRPC host:port of the generation (decode) orchestrator. Set: the proxy runs "
        "TRT-LLM's disaggregated flow, a request_type=context_only request to orchestrator_url, "
        "then a generation_only request carrying the returned context_phase_params here. "
        "None: every request goes to orchestrator_url whole.",
    )
    request_timeout_s: float = Field(
        default=600.0, gt=0, description="Longest a proxied request may stream before it fails."
    )
    proxy_max_inflight: int = Field(
        default=256, ge=1, description="Requests the proxy forwards concurrently per instance."
    )
    default_max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Output tokens for a request without max_tokens (capped at max_seq_len - "
        "prompt). None: max_tokens is required.",
    )
    preprocessing_instance_count: int = Field(default=4, ge=1)
    postprocessing_instance_count: int = Field(default=4, ge=1)
    bls_instance_count: int = Field(default=4, ge=1)


class ModelRepositoryArgs(ConfigModel):
    """Everything the two repositories of one model deployment are rendered from."""

    limits: EngineLimits
    tokenizer: TokenizerSettings = TokenizerSettings()
    tensorrt_llm: TensorrtLlmSettings
    frontend: FrontendSettings

    @model_validator(mode="after")
    def _kv_cache_fits_a_sequence(self) -> ModelRepositoryArgs:
        cap = self.tensorrt_llm.max_tokens_in_paged_kv_cache
        if cap is not None and cap < self.limits.max_seq_len:
            raise ValueError(
                f"tensorrtLlm.maxTokensInPagedKvCache ({cap}) is smaller than limits.maxSeqLen "
                f"({self.limits.max_seq_len}): one full-length request would not fit; raise it or "
                f"leave it unset"
            )
        return self

    @model_validator(mode="after")
    def _default_output_fits(self) -> ModelRepositoryArgs:
        default = self.frontend.default_max_tokens
        if default is not None and default >= self.limits.max_seq_len:
            raise ValueError(
                f"frontend.defaultMaxTokens ({default}) must be smaller than limits.maxSeqLen "
                f"({self.limits.max_seq_len}), which also holds the prompt: lower it"
            )
        return self


ORCHESTRATOR_ENV: dict[str, str] = {"TRTLLM_ORCHESTRATOR": "1"}
"""Environment of the orchestrator pods' tritonserver: the TRT-LLM backend runs in orchestrator
mode and MPI-spawns ``executor_worker_path`` for the engine's ranks (upstream README,
"Orchestrator Mode")."""


def _b(value: bool) -> str:
    return "true" if value else "false"


def tensorrt_llm_parameters(args: ModelRepositoryArgs) -> dict[str, str]:
    """``parameters`` of the real tensorrt_llm model; unset optional ones are left out."""
    t = args.tensorrt_llm
    params = {
        "max_beam_width": str(args.limits.max_beam_width),
        "FORCE_CPU_ONLY_INPUT_TENSORS": "no",
        "gpt_model_type": t.batching_strategy,
        "gpt_model_path": t.engine_dir,
        "batch_scheduler_policy": t.batch_scheduler_policy,
        "kv_cache_free_gpu_mem_fraction": repr(t.kv_cache_free_gpu_mem_fraction),
        "enable_kv_cache_reuse": _b(t.enable_kv_cache_reuse),
        "enable_chunked_context": _b(t.enable_chunked_context),
        "exclude_input_in_output": _b(t.exclude_input_in_output),
        "normalize_log_probs": _b(t.normalize_log_probs),
        "cancellation_check_period_ms": str(t.cancellation_check_period_ms),
        "executor_worker_path": t.executor_worker_path,
    }
    if t.max_tokens_in_paged_kv_cache is not None:
        params["max_tokens_in_paged_kv_cache"] = str(t.max_tokens_in_paged_kv_cache)
    if t.decoding_mode is not None:
        params["decoding_mode"] = t.decoding_mode
    if t.gpu_device_ids is not None:
        params["gpu_device_ids"] = t.gpu_device_ids
    if t.participant_ids is not None:
        params["participant_ids"] = t.participant_ids
    return params


def _tensorrt_llm_spec(
    args: ModelRepositoryArgs, *, backend: str, parameters: dict[str, str], model_py: str | None
) -> ModelSpec:
    t = args.tensorrt_llm
    return ModelSpec(
        name=TENSORRT_LLM,
        backend=backend,
        max_batch_size=args.limits.max_batch_size,
        inputs=tensors.tensorrt_llm_inputs(),
        outputs=tensors.tensorrt_llm_outputs(t.logits_datatype),
        decoupled=True,
        dynamic_batching=DynamicBatching(
            preferred_batch_size=(args.limits.max_batch_size,),
            max_queue_delay_microseconds=t.max_queue_delay_microseconds,
            max_queue_size=t.max_queue_size,
        ),
        instance_count=t.instance_count,
        parameters=parameters,
        python_files={"model.py": model_py} if model_py else {},
    )


def tensorrt_llm_model(args: ModelRepositoryArgs) -> ModelSpec:
    """The real ``tensorrt_llm`` model (orchestrator tier)."""
    return _tensorrt_llm_spec(
        args, backend="tensorrtllm", parameters=tensorrt_llm_parameters(args), model_py=None
    )


def tensorrt_llm_standin_model(args: ModelRepositoryArgs) -> ModelSpec:
    """CPU stand-in for the real model: identical config, python backend, deterministic tokens.

    It echoes the prompt's token ids in reverse order, cyclically, for ``request_output_len``
    tokens, stopping early at ``end_id`` (not emitted) or after a stop word (emitted), one
    response per token when ``streaming`` is true. See python_models/tensorrt_llm_standin.py.
    """
    return _tensorrt_llm_spec(
        args,
        backend="python",
        parameters=tensorrt_llm_parameters(args),
        model_py="tensorrt_llm_standin.py",
    )


def tensorrt_llm_proxy_model(args: ModelRepositoryArgs) -> ModelSpec:
    """Frontend ``tensorrt_llm``: forwards to the orchestrator over gRPC streaming.

    With ``frontend.generation_orchestrator_url`` it forwards in two phases (context to
    ``orchestrator_url``, generation there); the parameter is absent otherwise.
    """
    f = args.frontend
    parameters = {
        "orchestrator_url": f.orchestrator_url,
        "orchestrator_model_name": TENSORRT_LLM,
        "request_timeout_s": repr(f.request_timeout_s),
        "max_inflight": str(f.proxy_max_inflight),
    }
    if f.generation_orchestrator_url is not None:
        parameters["generation_orchestrator_url"] = f.generation_orchestrator_url
    return _tensorrt_llm_spec(args, backend="python", parameters=parameters, model_py="tensorrt_llm_proxy.py")


def _tokenizer_parameters(args: ModelRepositoryArgs) -> dict[str, str]:
    return {"tokenizer_dir": args.tokenizer.path, "tokenizer_kind": args.tokenizer.kind}


_TOKENIZER_FILES = {"disagg_tokenizers.py": "disagg_tokenizers.py"}


def preprocessing_model(args: ModelRepositoryArgs) -> ModelSpec:
    return ModelSpec(
        name="preprocessing",
        backend="python",
        max_batch_size=args.limits.max_batch_size,
        inputs=tensors.preprocessing_inputs(),
        outputs=tensors.preprocessing_outputs(),
        dynamic_batching=DynamicBatching(),
        instance_count=args.frontend.preprocessing_instance_count,
        parameters={
            **_tokenizer_parameters(args),
            "add_special_tokens": _b(args.tokenizer.add_special_tokens),
            "max_input_len": str(args.limits.max_input_len),
            "max_seq_len": str(args.limits.max_seq_len),
            **(
                {"default_max_tokens": str(args.frontend.default_max_tokens)}
                if args.frontend.default_max_tokens is not None
                else {}
            ),
        },
        python_files={"model.py": "preprocessing.py", **_TOKENIZER_FILES},
    )


def postprocessing_model(args: ModelRepositoryArgs) -> ModelSpec:
    return ModelSpec(
        name="postprocessing",
        backend="python",
        max_batch_size=args.limits.max_batch_size,
        inputs=tensors.postprocessing_inputs(),
        outputs=tensors.postprocessing_outputs(),
        dynamic_batching=DynamicBatching(),
        instance_count=args.frontend.postprocessing_instance_count,
        parameters={
            **_tokenizer_parameters(args),
            "skip_special_tokens": _b(args.tokenizer.skip_special_tokens),
        },
        python_files={"model.py": "postprocessing.py", **_TOKENIZER_FILES},
    )


def ensemble_model(args: ModelRepositoryArgs) -> ModelSpec:
    """preprocessing -> tensorrt_llm -> postprocessing, decoupled: one response per token.

    Triton streams every response of the decoupled ``tensorrt_llm`` step through
    postprocessing to the client. Upstream leaves the ensemble's transaction policy unset;
    Triton 2.51 then treats it as decoupled anyway (HTTP /infer refuses it, /generate and gRPC
    streaming serve it); declaring ``decoupled: true`` makes the model's config say so.
    """
    client_outputs = tensors.client_outputs(args.tensorrt_llm.logits_datatype)
    passthrough = [t.name for t in client_outputs if t.name != "text_output"]
    return ModelSpec(
        name="ensemble",
        platform="ensemble",
        max_batch_size=args.limits.max_batch_size,
        inputs=tensors.client_inputs(),
        outputs=client_outputs,
        decoupled=True,
        ensemble_steps=(
            EnsembleStep(
                model_name="preprocessing",
                input_map={
                    "QUERY": "text_input",
                    "REQUEST_OUTPUT_LEN": "max_tokens",
                    "BAD_WORDS_DICT": "bad_words",
                    "STOP_WORDS_DICT": "stop_words",
                    "END_ID": "end_id",
                    "PAD_ID": "pad_id",
                },
                output_map={
                    "INPUT_ID": "_INPUT_ID",
                    "REQUEST_INPUT_LEN": "_REQUEST_INPUT_LEN",
                    "REQUEST_OUTPUT_LEN": "_REQUEST_OUTPUT_LEN",
                    "BAD_WORDS_IDS": "_BAD_WORDS_IDS",
                    "STOP_WORDS_IDS": "_STOP_WORDS_IDS",
                    "OUT_END_ID": "_PREPROCESSOR_END_ID",
                    "OUT_PAD_ID": "_PREPROCESSOR_PAD_ID",
                },
            ),
            EnsembleStep(
                model_name=TENSORRT_LLM,
                input_map={
                    "input_ids": "_INPUT_ID",
                    "input_lengths": "_REQUEST_INPUT_LEN",
                    "request_output_len": "_REQUEST_OUTPUT_LEN",
                    "end_id": "_PREPROCESSOR_END_ID",
                    "pad_id": "_PREPROCESSOR_PAD_ID",
                    "stop_words_list": "_STOP_WORDS_IDS",
                    "bad_words_list": "_BAD_WORDS_IDS",
                    **tensors.CLIENT_TO_TENSORRT_LLM,
                },
                output_map={
                    "output_ids": "_TOKENS_BATCH",
                    "sequence_length": "_SEQUENCE_LENGTH",
                    **{name: name for name in passthrough},
                },
            ),
            EnsembleStep(
                model_name="postprocessing",
                input_map={"TOKENS_BATCH": "_TOKENS_BATCH", "SEQUENCE_LENGTH": "_SEQUENCE_LENGTH"},
                output_map={"OUTPUT": "text_output"},
            ),
        ),
    )


def bls_model(args: ModelRepositoryArgs) -> ModelSpec:
    """``tensorrt_llm_bls``: the ensemble's pipeline as one decoupled python model (BLS calls)."""
    return ModelSpec(
        name="tensorrt_llm_bls",
        backend="python",
        max_batch_size=args.limits.max_batch_size,
        inputs=tensors.client_inputs(),
        outputs=tensors.client_outputs(args.tensorrt_llm.logits_datatype),
        decoupled=True,
        instance_count=args.frontend.bls_instance_count,
        parameters={
            "accumulate_tokens": "false",
            "tensorrt_llm_model_name": TENSORRT_LLM,
            "client_to_tensorrt_llm": json.dumps(tensors.CLIENT_TO_TENSORRT_LLM, sort_keys=True),
        },
        python_files={"model.py": "tensorrt_llm_bls.py"},
    )


def frontend_repository(args: ModelRepositoryArgs) -> ModelRepository:
    """Models of the CPU frontend Triton (client traffic)."""
    return ModelRepository(
        tier="frontend",
        models=(
            ensemble_model(args),
            preprocessing_model(args),
            tensorrt_llm_proxy_model(args),
            postprocessing_model(args),
            bls_model(args),
        ),
    )


def orchestrator_repository(args: ModelRepositoryArgs) -> ModelRepository:
    """Models of the orchestrator Triton: the real tensorrt_llm (TRTLLM_ORCHESTRATOR=1 pods)."""
    return ModelRepository(tier="orchestrator", models=(tensorrt_llm_model(args),))


def standin_orchestrator_repository(args: ModelRepositoryArgs) -> ModelRepository:
    """The orchestrator repository with the CPU stand-in in place of the tensorrtllm backend."""
    return ModelRepository(tier="orchestrator", models=(tensorrt_llm_standin_model(args),))
