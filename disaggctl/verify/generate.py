"""Streaming generation over gRPC ``ModelStreamInfer`` with per-token timing.

A :class:`StreamSession` owns one gRPC client and one bidirectional stream and runs requests on
it one after another (the load test gives each concurrent worker its own session). Every
streamed response that carries ``text_output`` counts as one output token: with
``stream=True`` the TensorRT-LLM ensemble sends one response per generated token.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

TEXT_INPUT = "text_input"
MAX_TOKENS = "max_tokens"
STREAM = "stream"
TEXT_OUTPUT = "text_output"


@dataclass
class GenerationResult:
    """One request's outcome. Times are seconds since the request was sent."""

    ok: bool
    chunks: list[str] = field(default_factory=list)
    token_times_s: list[float] = field(default_factory=list)
    """Arrival time of each token (response carrying ``text_output``)."""
    latency_s: float | None = None
    """Time to the final response (or to the error / timeout)."""
    error: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def output_tokens(self) -> int:
        return len(self.chunks)

    @property
    def ttft_s(self) -> float | None:
        return self.token_times_s[0] if self.token_times_s else None

    @property
    def inter_token_s(self) -> list[float]:
        """Gaps between consecutive tokens."""
        t = self.token_times_s
        return [b - a for a, b in itertools.pairwise(t)]


class GenerateError(RuntimeError):
    """The model's configuration does not fit a text generation request."""


def _input_shape(config: dict, name: str) -> list[int] | None:
    """Shape of a one-element request for input ``name``, or None if the model lacks it."""
    for inp in config.get("input", []):
        if inp.get("name") == name:
            dims = [1 for _ in inp.get("dims", [])] or [1]
            return ([1] if int(config.get("max_batch_size", 0) or 0) > 0 else []) + dims
    return None


def build_inputs(config: dict, prompt: str, max_tokens: int, stream: bool) -> list:
    """KServe v2 inputs for one request, shaped after the model's configuration.

    ``config`` is the model configuration as JSON (``get_model_config(...)["config"]``);
    ``text_input`` and ``max_tokens`` must exist, ``stream`` is sent when the model has it.
    """
    import tritonclient.grpc as grpcclient

    inputs = []
    for name, value, dtype, np_type in (
        (TEXT_INPUT, prompt.encode(), "BYTES", np.object_),
        (MAX_TOKENS, max_tokens, "INT32", np.int32),
        (STREAM, stream, "BOOL", np.bool_),
    ):
        shape = _input_shape(config, name)
        if shape is None:
            if name == STREAM:
                continue
            have = [i.get("name") for i in config.get("input", [])]
            raise GenerateError(
                f"model {config.get('name')!r} has no input {name!r} (inputs: {have}): "
                "point --model at the TensorRT-LLM ensemble"
            )
        arr = np.full(shape, value, dtype=np_type)
        tensor = grpcclient.InferInput(name, shape, dtype)
        tensor.set_data_from_numpy(arr)
        inputs.append(tensor)
    return inputs


class StreamSession:
    """One gRPC client and stream to ``url`` (``host:port``) for sequential requests to ``model``."""

    def __init__(self, url: str, model: str, *, connect_timeout_s: float = 10.0) -> None:
        import tritonclient.grpc as grpcclient

        self.url, self.model = url, model
        self._client = grpcclient.InferenceServerClient(url)
        self._ids = itertools.count(1)
        self._queue: queue.Queue = queue.Queue()
        self._streaming = False
        self.config: dict = self._client.get_model_config(model, as_json=True, client_timeout=connect_timeout_s)[
            "config"
        ]

    def _callback(self, result, error) -> None:
        self._queue.put((time.perf_counter(), result, error))

    def _start(self) -> None:
        if not self._streaming:
            self._queue = queue.Queue()
            self._client.start_stream(callback=self._callback)
            self._streaming = True

    def _stop(self, cancel: bool = False) -> None:
        if self._streaming:
            self._streaming = False
            with contextlib.suppress(Exception):
                self._client.stop_stream(cancel_requests=cancel)

    def generate(
        self,
        prompt: str,
        max_tokens: int,
        *,
        timeout_s: float = 60.0,
        on_token: Callable[[str], None] | None = None,
    ) -> GenerationResult:
        """Send one streaming request and wait (at most ``timeout_s``) for its final response."""
        inputs = build_inputs(self.config, prompt, max_tokens, stream=True)
        request_id = str(next(self._ids))
        self._start()
        result = GenerationResult(ok=False)
        sent = time.perf_counter()
        deadline = sent + timeout_s
        try:
            self._client.async_stream_infer(
                self.model, inputs, request_id=request_id, enable_empty_final_response=True
            )
        except Exception as err:
            self._stop(cancel=True)
            result.error = f"send failed: {err}"
            result.latency_s = time.perf_counter() - sent
            return result
        while True:
            remaining = deadline - time.perf_counter()
            try:
                if remaining <= 0:
                    raise queue.Empty
                arrived, response, error = self._queue.get(timeout=remaining)
            except queue.Empty:
                self._stop(cancel=True)  # abandon the request; the next one gets a fresh stream
                result.error = f"timed out after {timeout_s:g}s ({result.output_tokens} tokens received)"
                result.latency_s = time.perf_counter() - sent
                return result
            if error is not None:
                self._stop(cancel=True)
                result.error = str(error).strip() or type(error).__name__
                result.latency_s = arrived - sent
                return result
            message = response.get_response()
            if message.id and message.id != request_id:
                continue  # a late response of an abandoned request
            if any(o.name == TEXT_OUTPUT for o in message.outputs):
                chunk = response.as_numpy(TEXT_OUTPUT).reshape(-1)
                text = chunk[0].decode("utf-8", errors="replace") if len(chunk) else ""
                result.chunks.append(text)
                result.token_times_s.append(arrived - sent)
                if on_token is not None:
                    on_token(text)
            final = message.parameters.get("triton_final_response")
            if final is not None and final.bool_param:
                result.ok = True
                result.latency_s = arrived - sent
                return result

    def close(self) -> None:
        self._stop()
        with contextlib.suppress(Exception):
            self._client.close()

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stream_generate(
    url: str,
    prompt: str,
    max_tokens: int,
    *,
    model: str = "ensemble",
    timeout_s: float = 60.0,
    on_token: Callable[[str], None] | None = None,
) -> GenerationResult:
    """One streaming request on a fresh session; ``on_token`` sees each token as it arrives."""
    try:
        session = StreamSession(url, model, connect_timeout_s=min(timeout_s, 10.0))
    except Exception as err:
        return GenerationResult(ok=False, error=f"cannot reach model {model} at {url}: {str(err).strip()}")
    with session:
        try:
            return session.generate(prompt, max_tokens, timeout_s=timeout_s, on_token=on_token)
        except GenerateError as err:
            return GenerationResult(ok=False, error=str(err))
