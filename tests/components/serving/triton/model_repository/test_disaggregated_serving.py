"""The real proof: two tritonservers, frontend -> (gRPC stream) -> orchestrator stand-in.

The orchestrator serves the CPU stand-in tensorrt_llm; the frontend serves the ensemble,
pre/postprocessing, BLS and the tensorrt_llm proxy pointing at the orchestrator's gRPC port.
The stand-in generates the prompt's tokens backwards, cyclically (byte tokenizer: characters),
so for "Hello" it produces "olleH" repeated.
"""

from __future__ import annotations

import json
import queue
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from components.serving.triton.model_repository import (
    frontend_repository,
    orchestrator_repository,
    write_repository,
)
from disaggctl.testing.local_triton import LocalTriton, TritonStartError, free_port

pytestmark = pytest.mark.triton

_DTYPES = {np.int32: "INT32", np.float32: "FP32", np.bool_: "BOOL", np.uint64: "UINT64"}


def expected_generation(prompt: str, max_tokens: int) -> str:
    """What the stand-in must produce: prompt characters read backwards, cyclically."""
    rev = prompt[::-1]
    return "".join(rev[k % len(rev)] for k in range(max_tokens))


def generate(url: str, text: str, max_tokens: int | None, *, model: str = "ensemble", **extra):
    """One request over gRPC ModelStreamInfer: (list of text_output chunks, error or None).
    ``max_tokens`` None: the request leaves it out."""
    client = grpcclient.InferenceServerClient(url)
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    inputs = []

    def add(name, arr):
        dtype = "BYTES" if arr.dtype == np.object_ else _DTYPES[arr.dtype.type]
        inp = grpcclient.InferInput(name, list(arr.shape), dtype)
        inp.set_data_from_numpy(arr)
        inputs.append(inp)

    add("text_input", np.array([[text.encode()]], dtype=np.object_))
    if max_tokens is not None:
        add("max_tokens", np.array([[max_tokens]], dtype=np.int32))
    for name, value in extra.items():
        if isinstance(value, list):
            add(name, np.array([[v.encode() for v in value]], dtype=np.object_))
        else:
            add(name, np.array([[value]], dtype={bool: np.bool_, int: np.int32}[type(value)]))
    chunks, error = [], None
    try:
        client.async_stream_infer(model, inputs, enable_empty_final_response=True)
        while True:
            result, error = results.get(timeout=20)
            if error is not None:
                break
            response = result.get_response()
            if response.outputs:
                chunks.append(result.as_numpy("text_output").reshape(-1)[0].decode())
            if response.parameters["triton_final_response"].bool_param:
                break
    finally:
        client.stop_stream()
        client.close()
    return chunks, error


def request_success(metrics_url: str, model: str) -> float:
    text = urllib.request.urlopen(f"http://{metrics_url}/metrics", timeout=5).read().decode()
    m = re.search(rf'^nv_inference_request_success\{{model="{model}",version="1"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_streaming_ensemble_streams_one_chunk_per_token(frontend):
    chunks, error = generate(frontend.grpc_url, "Hello", 7, stream=True)
    assert error is None
    assert chunks == list(expected_generation("Hello", 7))
    assert "".join(chunks) == "olleHol"


def test_non_streaming_ensemble_returns_one_response(frontend):
    chunks, error = generate(frontend.grpc_url, "Disagg!", 9, stream=False)
    assert error is None
    assert chunks == [expected_generation("Disagg!", 9)]


def test_exclude_input_in_output_false_prefixes_the_prompt(frontend):
    chunks, error = generate(frontend.grpc_url, "abc", 4, stream=False, exclude_input_in_output=False)
    assert error is None
    assert chunks == ["abc" + expected_generation("abc", 4)]


def test_end_id_stops_generation_before_that_token(frontend):
    chunks, error = generate(frontend.grpc_url, "Hello", 7, stream=True, end_id=ord("e"))
    assert error is None
    assert "".join(chunks) == "oll"


def test_stop_words_travel_through_preprocessing(frontend):
    chunks, error = generate(frontend.grpc_url, "Hello", 20, stream=False, stop_words=["eH"])
    assert error is None
    assert chunks == ["olleH"]


def test_bls_streams_the_same_tokens(frontend):
    chunks, error = generate(frontend.grpc_url, "Hello", 6, model="tensorrt_llm_bls", stream=True)
    assert error is None
    assert chunks == list(expected_generation("Hello", 6))


def test_http_generate_endpoint(frontend):
    body = json.dumps({"text_input": "Triton", "max_tokens": 8}).encode()
    req = urllib.request.Request(
        f"http://{frontend.http_url}/v2/models/ensemble/generate",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    reply = json.loads(urllib.request.urlopen(req, timeout=20).read())
    assert reply["text_output"] == expected_generation("Triton", 8)


def test_http_infer_endpoint_refuses_the_decoupled_ensemble(frontend):
    body = json.dumps(
        {
            "inputs": [
                {"name": "text_input", "shape": [1, 1], "datatype": "BYTES", "data": ["Hi"]},
                {"name": "max_tokens", "shape": [1, 1], "datatype": "INT32", "data": [2]},
            ]
        }
    ).encode()
    req = urllib.request.Request(f"http://{frontend.http_url}/v2/models/ensemble/infer", data=body)
    with pytest.raises(urllib.error.HTTPError, match="501"):
        urllib.request.urlopen(req, timeout=20)


def test_concurrent_streams_through_the_proxy_do_not_mix(frontend):
    prompts = ["alpha", "bravo!", "charlie", "delta42", "echo", "foxtrot"]
    with ThreadPoolExecutor(len(prompts)) as pool:
        results = list(pool.map(lambda p: generate(frontend.grpc_url, p, 12, stream=True), prompts))
    for prompt, (chunks, error) in zip(prompts, results, strict=True):
        assert error is None
        assert "".join(chunks) == expected_generation(prompt, 12)


def test_orchestrator_metrics_count_each_proxied_request(frontend, orchestrator):
    before = request_success(orchestrator.metrics_url, "tensorrt_llm")
    chunks, error = generate(frontend.grpc_url, "count me", 3, stream=True)
    assert error is None and chunks
    deadline = time.monotonic() + 5  # Triton counts a decoupled request just after its final response
    while request_success(orchestrator.metrics_url, "tensorrt_llm") < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert request_success(orchestrator.metrics_url, "tensorrt_llm") == before + 1


def test_without_max_tokens_the_default_applies(frontend, args):
    default = args.frontend.default_max_tokens
    chunks, error = generate(frontend.grpc_url, "Hello", None, stream=True)
    assert error is None
    assert len(chunks) == default and "".join(chunks) == expected_generation("Hello", default)


def test_the_default_is_capped_by_the_room_left_in_max_seq_len(frontend, args):
    prompt = "y" * 30  # 30 + default 40 > max_seq_len 64: 34 tokens fit
    chunks, error = generate(frontend.grpc_url, prompt, None, stream=False)
    assert error is None
    assert chunks == [expected_generation(prompt, args.limits.max_seq_len - 30)]


def test_explicit_max_tokens_beyond_max_seq_len_is_refused(frontend, args):
    chunks, error = generate(frontend.grpc_url, "y" * 30, 40, stream=True)
    assert chunks == []
    assert error is not None and "prompt (30 tokens) + max_tokens (40) exceeds the engine's max_seq_len 64" in str(error)


def test_max_tokens_is_required_without_a_default(tmp_path, args_factory):
    write_repository(frontend_repository(args_factory(f"127.0.0.1:{free_port()}", default_max_tokens=None)), tmp_path)
    with LocalTriton(tmp_path) as server:
        chunks, error = generate(server.grpc_url, "Hello", None, stream=True)
    assert chunks == []
    assert error is not None and "max_tokens is required" in str(error)


def test_prompt_over_max_input_len_is_refused(frontend, args):
    chunks, error = generate(frontend.grpc_url, "x" * (args.limits.max_input_len + 1), 4, stream=True)
    assert chunks == []
    assert error is not None and "max_input_len" in str(error)


def test_proxy_reports_an_unreachable_orchestrator(tmp_path, args_factory):
    dead = f"127.0.0.1:{free_port()}"
    write_repository(frontend_repository(args_factory(dead)), tmp_path)
    with LocalTriton(tmp_path) as server:
        assert re.fullmatch(r"127\.0\.0\.1:\d+", server.grpc_url)
        assert len({server.http_url, server.grpc_url, server.metrics_url}) == 3
        chunks, error = generate(server.grpc_url, "Hello", 3, stream=True)
    assert server.process is None  # stopped on leaving the block
    assert "Started GRPCInferenceService at " + server.grpc_url in server.log_path.read_text()
    assert chunks == []
    assert error is not None and f"orchestrator {dead} model tensorrt_llm" in str(error)


def test_broken_ensemble_config_fails_to_load(tmp_path, args):
    files = frontend_repository(args).files()
    files["ensemble/config.pbtxt"] = files["ensemble/config.pbtxt"].replace(
        'key: "QUERY"', 'key: "NOT_AN_INPUT"'
    )
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "ensemble" / "1").mkdir()
    with pytest.raises(TritonStartError) as err:
        LocalTriton(tmp_path, startup_timeout_s=30).start()
    message = str(err.value)
    assert "tritonserver exited" in message
    assert "mapping to non-existing input NOT_AN_INPUT in model preprocessing" in message


def test_real_backend_is_absent_on_cpu_machines(tmp_path, args):
    write_repository(orchestrator_repository(args), tmp_path)
    with pytest.raises(
        TritonStartError,
        match="(?s)tritonserver exited.*unable to find backend library for backend 'tensorrtllm'",
    ):
        LocalTriton(tmp_path, startup_timeout_s=30).start()
