"""Prefill/decode disaggregation: the proxy's two-phase flow, rendered and in real Tritons.

Three servers: a context (prefill) and a generation (decode) orchestrator, both serving the
CPU stand-in, and a frontend whose proxy has ``generation_orchestrator_url`` set. The stand-in
refuses a generation_only request without the context_phase_params of the same prompt, so a
correct answer proves the frontend ran both phases and carried the state across.
"""

from __future__ import annotations

import json
import queue
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from components.serving.triton.model_repository import (
    EngineLimits,
    FrontendSettings,
    ModelRepositoryArgs,
    TensorrtLlmSettings,
    TokenizerSettings,
    frontend_repository,
    orchestrator_repository,
    repository_files,
    standin_orchestrator_repository,
    write_repository,
)
from disaggctl.testing.local_triton import LocalTriton, free_port


def with_generation(args: ModelRepositoryArgs, context_url: str, generation_url: str | None):
    frontend = args.frontend.model_dump()
    frontend.update(orchestrator_url=context_url, generation_orchestrator_url=generation_url)
    return args.model_copy(update={"frontend": FrontendSettings(**frontend)})


def parsed(repo, name: str) -> mc.ModelConfig:
    return text_format.Parse(repository_files(repo)[f"{name}/config.pbtxt"], mc.ModelConfig())


def params(cfg: mc.ModelConfig) -> dict[str, str]:
    return {k: v.string_value for k, v in cfg.parameters.items()}


# ---- rendered configs ---------------------------------------------------------------------


def test_proxy_gets_the_generation_url_only_when_set(args):
    plain = params(parsed(frontend_repository(args), "tensorrt_llm"))
    assert "generation_orchestrator_url" not in plain
    split = with_generation(args, "p.ns.svc:8001", "d.ns.svc:8001")
    p = params(parsed(frontend_repository(split), "tensorrt_llm"))
    assert p["orchestrator_url"] == "p.ns.svc:8001"
    assert p["generation_orchestrator_url"] == "d.ns.svc:8001"


def test_real_model_declares_context_phase_params_both_ways(args):
    cfg = parsed(orchestrator_repository(args), "tensorrt_llm")
    ins = {i.name: i for i in cfg.input}
    outs = {o.name: o for o in cfg.output}
    assert ins["context_phase_params"].data_type == mc.TYPE_UINT8
    assert ins["context_phase_params"].optional and ins["context_phase_params"].allow_ragged_batch
    assert list(ins["context_phase_params"].dims) == [-1]
    assert outs["context_phase_params"].data_type == mc.TYPE_UINT8


def test_participant_ids_are_rendered_when_set(args_factory):
    assert "participant_ids" not in params(parsed(orchestrator_repository(args_factory()), "tensorrt_llm"))
    cfg = parsed(orchestrator_repository(args_factory(participant_ids="1,2,3,4")), "tensorrt_llm")
    assert params(cfg)["participant_ids"] == "1,2,3,4"


def test_participant_ids_must_be_a_rank_list(args_factory):
    with pytest.raises(ValueError, match="participant_ids"):
        args_factory(participant_ids="1, 2")


# ---- real servers ---------------------------------------------------------------------------

needs_triton = pytest.mark.triton


def _serve_standin(args, tmp_path_factory, name) -> LocalTriton:
    repo = tmp_path_factory.mktemp(name)
    write_repository(standin_orchestrator_repository(args), repo)
    return LocalTriton(repo)


@pytest.fixture(scope="module")
def prefill(args_module, tmp_path_factory):
    with _serve_standin(args_module, tmp_path_factory, "prefill") as server:
        yield server


@pytest.fixture(scope="module")
def decode(args_module, tmp_path_factory):
    with _serve_standin(args_module, tmp_path_factory, "decode") as server:
        yield server


@pytest.fixture(scope="module")
def args_module() -> ModelRepositoryArgs:
    """conftest's small CPU deployment (module scope: conftest cannot be imported here)."""
    return ModelRepositoryArgs(
        limits=EngineLimits(max_batch_size=8, max_input_len=32, max_seq_len=64),
        tokenizer=TokenizerSettings(kind="bytes"),
        tensorrt_llm=TensorrtLlmSettings(engine_dir="/engines/test"),
        frontend=FrontendSettings(
            orchestrator_url="unused:8001",
            preprocessing_instance_count=1,
            postprocessing_instance_count=1,
            bls_instance_count=1,
        ),
    )


@pytest.fixture(scope="module")
def split_frontend(args_module, prefill, decode, tmp_path_factory):
    repo: Path = tmp_path_factory.mktemp("split-frontend")
    write_repository(frontend_repository(with_generation(args_module, prefill.grpc_url, decode.grpc_url)), repo)
    with LocalTriton(repo) as server:
        yield server


def expected_generation(prompt: str, max_tokens: int) -> str:
    rev = prompt[::-1]
    return "".join(rev[k % len(rev)] for k in range(max_tokens))


def _infer_input(name, arr):
    dtype = {np.object_: "BYTES", np.int32: "INT32", np.bool_: "BOOL", np.uint8: "UINT8"}[arr.dtype.type]
    inp = grpcclient.InferInput(name, list(arr.shape), dtype)
    inp.set_data_from_numpy(arr)
    return inp


def stream(url: str, model: str, inputs, parameters=None, output: str = "text_output"):
    """One ModelStreamInfer request: (list of `output` arrays, error or None)."""
    client = grpcclient.InferenceServerClient(url)
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    chunks, error = [], None
    try:
        client.async_stream_infer(model, inputs, enable_empty_final_response=True, parameters=parameters)
        while True:
            result, error = results.get(timeout=20)
            if error is not None:
                break
            response = result.get_response()
            if any(o.name == output for o in response.outputs):
                chunks.append(result.as_numpy(output))
            if response.parameters["triton_final_response"].bool_param:
                break
    finally:
        client.stop_stream()
        client.close()
    return chunks, error


def generate_text(url: str, text: str, max_tokens: int, stream_tokens: bool):
    inputs = [
        _infer_input("text_input", np.array([[text.encode()]], dtype=np.object_)),
        _infer_input("max_tokens", np.array([[max_tokens]], dtype=np.int32)),
        _infer_input("stream", np.array([[stream_tokens]], dtype=np.bool_)),
    ]
    chunks, error = stream(url, "ensemble", inputs)
    return [c.reshape(-1)[0].decode() for c in chunks], error


def request_success(server: LocalTriton) -> float:
    text = urllib.request.urlopen(f"http://{server.metrics_url}/metrics", timeout=5).read().decode()
    m = re.search(r'^nv_inference_request_success\{model="tensorrt_llm",version="1"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def settled_counts(servers: tuple[LocalTriton, ...], expected: tuple[float, ...], wait_s: float = 5.0):
    """The servers' success counters once they reach ``expected`` (or after ``wait_s``): Triton
    records a decoupled request's statistics just after sending its final response."""
    deadline = time.monotonic() + wait_s
    while True:
        counts = tuple(request_success(s) for s in servers)
        if all(c >= e for c, e in zip(counts, expected, strict=True)) or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


@needs_triton
def test_streaming_request_runs_context_then_generation(split_frontend, prefill, decode):
    before = request_success(prefill), request_success(decode)
    chunks, error = generate_text(split_frontend.grpc_url, "Hello", 7, stream_tokens=True)
    assert error is None
    assert chunks == list(expected_generation("Hello", 7))
    assert settled_counts((prefill, decode), (before[0] + 1, before[1] + 1)) == (before[0] + 1, before[1] + 1)


@needs_triton
def test_non_streaming_request_returns_the_whole_generation(split_frontend):
    chunks, error = generate_text(split_frontend.grpc_url, "Disagg!", 9, stream_tokens=False)
    assert error is None
    assert chunks == [expected_generation("Disagg!", 9)]


@needs_triton
def test_context_only_returns_params_and_one_token(prefill):
    inputs = [
        _infer_input("input_ids", np.array([[72, 105]], dtype=np.int32)),
        _infer_input("input_lengths", np.array([[2]], dtype=np.int32)),
        _infer_input("request_output_len", np.array([[5]], dtype=np.int32)),
        _infer_input("streaming", np.array([[True]], dtype=np.bool_)),
    ]
    chunks, error = stream(
        prefill.grpc_url, "tensorrt_llm", inputs, {"request_type": "context_only"}, "context_phase_params"
    )
    assert error is None and len(chunks) == 1
    state = json.loads(bytes(chunks[0].reshape(-1).astype(np.uint8)))
    assert state["first_gen_tokens"] == [105] and state["prompt_len"] == 2


@needs_triton
def test_generation_without_context_params_is_refused(decode):
    inputs = [
        _infer_input("input_ids", np.array([[72, 105]], dtype=np.int32)),
        _infer_input("input_lengths", np.array([[2]], dtype=np.int32)),
        _infer_input("request_output_len", np.array([[3]], dtype=np.int32)),
    ]
    chunks, error = stream(decode.grpc_url, "tensorrt_llm", inputs, {"request_type": "generation_only"}, "output_ids")
    assert chunks == []
    assert error is not None and "without context_phase_params" in str(error)


@needs_triton
def test_unreachable_generation_orchestrator_is_named(prefill, args_module, tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    write_repository(frontend_repository(with_generation(args_module, prefill.grpc_url, dead)), tmp_path)
    with LocalTriton(tmp_path) as server:
        chunks, error = generate_text(server.grpc_url, "Hello", 3, stream_tokens=True)
    assert chunks == []
    assert error is not None and f"orchestrator {dead} model tensorrt_llm" in str(error)
