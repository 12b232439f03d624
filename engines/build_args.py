"""Pure argv builders for the engine build: download, checkpoint conversion, trtllm-build.

Standard library only: this module runs inside the TensorRT-LLM container next to
:mod:`engines.build`, from a ConfigMap-mounted copy. A spec is the plain ``dict`` of
``EngineSpec.model_dump(mode="json")`` (snake_case keys, every field present).

Every flag was checked against upstream NVIDIA/TensorRT-LLM (the 1.0 line shipped in
``nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3``):

* ``trtllm-build``: tensorrt_llm/commands/build.py @ 65f1d1536e18aea3380e6e270e00895a709333eb and
  tensorrt_llm/plugin/plugin.py (``cli_plugin_args``) @ c20322ffd3dc0740ca530c9fad989b22e64f6e06;
* conversion: examples/models/core/llama/convert_checkpoint.py @ 368f8f2ade001e8fcb955be39e4812f918d7fb92
  (also Mixtral's converter, see examples/models/core/mixtral/README.md);
* quantization: examples/quantization/quantize.py @ 059c97c10c12e948e91676c8db3c9f137b0a2389.

tests/engines/data/*_flags.txt hold the accepted flags; the tests parse every argv built here
against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_EXAMPLES_DIR = "/app/examples"
"""Where the Triton TRT-LLM container keeps upstream's ``examples/`` (tensorrtllm_backend
dockerfile/Dockerfile.triton.trt_llm_backend: ``WORKDIR /app`` + ``COPY .../examples examples``)."""

CONVERT_SCRIPTS: dict[str, str] = {
    "LlamaForCausalLM": "models/core/llama/convert_checkpoint.py",
    "MixtralForCausalLM": "models/core/llama/convert_checkpoint.py",
}
"""HF architecture -> converter script, relative to the examples directory."""
QUANTIZE_SCRIPT = "quantization/quantize.py"

HF_ALLOW_PATTERNS = ("*.json", "*.safetensors", "tokenizer.model", "*.tiktoken")
"""What to download of a HF repo: config, safetensors weights and tokenizer (Llama 3.1 repos also
carry ``original/*.pth``, a second full copy of the weights the converters do not read)."""
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "generation_config.json",
    "config.json",
)
"""Files copied next to the engine so serving needs nothing but the engine directory."""

SpecDict = Mapping[str, Any]


def _flag(value: bool) -> str:
    return "enable" if value else "disable"


def uses_modelopt(spec: SpecDict) -> bool:
    """Whether conversion goes through quantize.py (any quantization, or a quantized KV cache)."""
    return spec["quantization"] != "none" or spec["kv_cache_dtype"] != "auto"


def download_argv(repo_id: str, local_dir: str, python: str = "python3") -> list[str]:
    """Fetch a HF repo's safetensors, configs and tokenizer into ``local_dir``.

    ``huggingface_hub.snapshot_download`` (a transformers dependency, present in the container)
    reads the token from ``HF_TOKEN`` and resumes interrupted downloads.
    """
    code = (
        "import sys; from huggingface_hub import snapshot_download; "
        "snapshot_download(repo_id=sys.argv[1], local_dir=sys.argv[2], allow_patterns=sys.argv[3:])"
    )
    return [python, "-c", code, repo_id, local_dir, *HF_ALLOW_PATTERNS]


def convert_argv(
    spec: SpecDict,
    architecture: str,
    model_dir: str,
    output_dir: str,
    examples_dir: str = DEFAULT_EXAMPLES_DIR,
    workers: int = 1,
    python: str = "python3",
) -> list[str]:
    """HF weights -> TensorRT-LLM checkpoint sharded for tp × pp.

    Unquantized: the architecture's ``convert_checkpoint.py``. Quantized weights or KV cache:
    ``quantize.py`` (NVIDIA Model Optimizer; calibrates on its default dataset, so the pod needs
    the GPUs and access to the Hugging Face hub).
    """
    if architecture not in CONVERT_SCRIPTS:
        raise ValueError(
            f"architecture '{architecture}' has no checkpoint converter here "
            f"(supported: {', '.join(sorted(CONVERT_SCRIPTS))}): add it to engines/build_args.py"
        )
    common = [
        "--model_dir", model_dir,
        "--output_dir", output_dir,
        "--dtype", spec["dtype"],
        "--tp_size", str(spec["tp_size"]),
        "--pp_size", str(spec["pp_size"]),
    ]
    if uses_modelopt(spec):
        quantization = spec["quantization"]
        argv = [
            python, f"{examples_dir}/{QUANTIZE_SCRIPT}", *common,
            "--qformat", "full_prec" if quantization == "none" else quantization,
            "--calib_size", "512",
        ]
        if spec["kv_cache_dtype"] != "auto":
            argv += ["--kv_cache_dtype", spec["kv_cache_dtype"]]
        return argv
    return [python, f"{examples_dir}/{CONVERT_SCRIPTS[architecture]}", *common, "--workers", str(workers)]


def trtllm_build_argv(spec: SpecDict, checkpoint_dir: str, output_dir: str, workers: int = 1) -> list[str]:
    """``trtllm-build`` for the checkpoint ``convert_argv`` wrote; every option explicit so the
    engine does not depend on upstream's defaults of the day."""
    dtype = spec["dtype"]
    gemm = dtype if spec["gemm_plugin"] == "auto" else spec["gemm_plugin"]
    attention = dtype if spec["gpt_attention_plugin"] == "auto" else spec["gpt_attention_plugin"]
    fp8_context = spec["quantization"] == "fp8" and spec["kv_cache_dtype"] == "fp8"
    return [
        "trtllm-build",
        "--checkpoint_dir", checkpoint_dir,
        "--output_dir", output_dir,
        "--max_batch_size", str(spec["max_batch_size"]),
        "--max_input_len", str(spec["max_input_len"]),
        "--max_seq_len", str(spec["max_seq_len"]),
        "--max_num_tokens", str(spec["max_num_tokens"]),
        "--max_beam_width", str(spec["max_beam_width"]),
        "--kv_cache_type", "paged" if spec["paged_kv_cache"] else "continuous",
        "--tokens_per_block", str(spec["tokens_per_block"]),
        "--gpt_attention_plugin", attention,
        "--gemm_plugin", gemm,
        "--remove_input_padding", _flag(spec["remove_input_padding"]),
        "--context_fmha", _flag(spec["context_fmha"]),
        "--use_paged_context_fmha", _flag(spec["use_paged_context_fmha"]),
        "--use_fp8_context_fmha", _flag(fp8_context),
        "--use_fused_mlp", _flag(spec["use_fused_mlp"]),
        "--multiple_profiles", _flag(spec["multiple_profiles"]),
        "--workers", str(workers),
    ]


def expected_engine_files(spec: SpecDict) -> list[str]:
    """Files trtllm-build writes: one ``rank<N>.engine`` per GPU and ``config.json``."""
    world = spec["tp_size"] * spec["pp_size"]
    return ["config.json", *(f"rank{rank}.engine" for rank in range(world))]
