"""Triton python model ``tensorrt_llm`` on the frontend tier: a proxy to the orchestrator.

Decoupled, with exactly the real tensorrt_llm model's inputs and outputs. Each request is
forwarded over tritonclient gRPC streaming (``ModelStreamInfer``) to the model
``orchestrator_model_name`` of the Triton at ``orchestrator_url``; every response the
orchestrator streams back is sent on as one response of this model, the last one flagged
final. Errors (orchestrator unreachable, model error, ``request_timeout_s`` exceeded) become
an error response naming the orchestrator. A request cancelled by the client cancels the
forwarded stream. At most ``max_inflight`` requests are forwarded at once per instance;
further ``execute`` calls wait, which backs pressure up into Triton's queue.

With ``generation_orchestrator_url`` set (prefill/decode disaggregation) each request takes
TRT-LLM's disaggregated flow, as upstream's disaggregated_serving_bls: first the request is
sent to ``orchestrator_url`` with the request parameter ``request_type: context_only`` and only
``context_phase_params`` requested; the single response's ``context_phase_params`` is then
added to the request's inputs and the request is sent with ``request_type: generation_only`` to
``generation_orchestrator_url``, whose responses are streamed back (they include the first
token). A failure names the orchestrator of the failing phase.
"""

import json
import queue
import threading

import numpy as np
import triton_python_backend_utils as pb_utils
import tritonclient.grpc as grpcclient
from tritonclient.utils import np_to_triton_dtype


class _CancelledError(Exception):
    """The client cancelled the request; the forwarded stream was cancelled too."""


def _param(cfg, key, default=None):
    value = cfg.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") or value.startswith("${") else value


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.url = _param(cfg, "orchestrator_url")
        if not self.url:
            raise pb_utils.TritonModelException(
                "model parameter orchestrator_url is empty: set it to the orchestrator's gRPC host:port"
            )
        self.model = _param(cfg, "orchestrator_model_name", "tensorrt_llm")
        self.timeout_s = float(_param(cfg, "request_timeout_s", "600"))
        self.slots = threading.BoundedSemaphore(int(_param(cfg, "max_inflight", "256")))
        self.batched = int(cfg.get("max_batch_size", 0)) > 0
        # Inputs the model sees reshaped (e.g. dims [1] -> reshape []): restore the wire shape.
        self.wire_dims = {i["name"]: [int(d) for d in i["dims"]] for i in cfg["input"] if "reshape" in i}
        self.generation_url = _param(cfg, "generation_orchestrator_url")
        self.clients = {url: queue.LifoQueue() for url in (self.url, self.generation_url) if url}
        self.threads = []

    def execute(self, requests):
        for request in requests:
            self.slots.acquire()
            thread = threading.Thread(target=self._forward, args=(request,), daemon=True)
            thread.start()
            self.threads.append(thread)
        self.threads = [t for t in self.threads if t.is_alive()]
        return None

    def _inputs(self, request):
        inputs = []
        for tensor in request.inputs():
            name = tensor.name()
            arr = tensor.as_numpy()
            if name in self.wire_dims:
                lead = [arr.shape[0]] if self.batched else []
                arr = arr.reshape(lead + self.wire_dims[name])
            dtype = "BYTES" if arr.dtype == np.object_ else np_to_triton_dtype(arr.dtype)
            inp = grpcclient.InferInput(name, list(arr.shape), dtype)
            inp.set_data_from_numpy(arr)
            inputs.append(inp)
        return inputs

    def _open(self, url):
        """A pooled client for ``url`` with a started stream, and the queue its results land in."""
        try:
            client = self.clients[url].get_nowait()
        except queue.Empty:
            client = grpcclient.InferenceServerClient(url)
        results = queue.Queue()
        try:
            client.start_stream(callback=lambda result, error: results.put((result, error)))
        except Exception:
            client.close()
            raise
        return client, results

    def _release(self, url, client, healthy):
        try:
            client.stop_stream()
        except Exception:  # noqa: BLE001
            healthy = False
        if healthy:
            self.clients[url].put(client)
        else:
            client.close()

    def _responses(self, client, results, sender):
        """Yield (result, response, last) until the final response; _CancelledError if the client left."""
        while True:
            if sender.is_cancelled():
                client.stop_stream(cancel_requests=True)
                raise _CancelledError
            try:
                result, error = results.get(timeout=self.timeout_s)
            except queue.Empty:
                raise TimeoutError(f"no response within request_timeout_s={self.timeout_s}") from None
            if error is not None:
                raise RuntimeError(str(error))
            response = result.get_response()
            last = response.parameters["triton_final_response"].bool_param
            yield result, response, last
            if last:
                return

    def _context_phase(self, request, inputs, sender):
        """context_only request to the context orchestrator: its context_phase_params."""
        client, results = self._open(self.url)
        healthy, params = False, None
        try:
            client.async_stream_infer(
                self.model,
                inputs,
                outputs=[grpcclient.InferRequestedOutput("context_phase_params")],
                request_id=request.request_id(),
                enable_empty_final_response=True,
                parameters={"request_type": "context_only"},
            )
            for result, response, _ in self._responses(client, results, sender):
                if any(o.name == "context_phase_params" for o in response.outputs):
                    params = result.as_numpy("context_phase_params")
            healthy = True
        finally:
            self._release(self.url, client, healthy)
        if params is None:
            raise RuntimeError(
                "the context_only response carried no context_phase_params: serve a TRT-LLM "
                "version with disaggregated serving (context_phase_params output) there"
            )
        return params

    def _forward(self, request):
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        url, client, healthy = self.url, None, False
        try:
            inputs = self._inputs(request)
            parameters = None
            if self.generation_url:
                params = self._context_phase(request, inputs, sender)
                phase = grpcclient.InferInput("context_phase_params", list(params.shape), "UINT8")
                phase.set_data_from_numpy(params)
                inputs.append(phase)
                url, parameters = self.generation_url, {"request_type": "generation_only"}
            client, results = self._open(url)
            client.async_stream_infer(
                self.model,
                inputs,
                outputs=[grpcclient.InferRequestedOutput(n) for n in request.requested_output_names()],
                request_id=request.request_id(),
                enable_empty_final_response=True,
                parameters=parameters,
            )
            for result, response, last in self._responses(client, results, sender):
                tensors = [pb_utils.Tensor(o.name, result.as_numpy(o.name)) for o in response.outputs]
                if tensors:
                    sender.send(
                        pb_utils.InferenceResponse(output_tensors=tensors),
                        flags=final if last else 0,
                    )
                elif last:
                    sender.send(flags=final)
            healthy = True
        except _CancelledError:
            sender.send(flags=final)
        except Exception as err:  # noqa: BLE001 - every failure must reach the client
            sender.send(
                pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"orchestrator {url} model {self.model}: {err}")
                ),
                flags=final,
            )
        finally:
            if client is not None:
                self._release(url, client, healthy)
            self.slots.release()

    def finalize(self):
        for thread in self.threads:
            thread.join(timeout=5)
        for pool in self.clients.values():
            while not pool.empty():
                pool.get_nowait().close()
