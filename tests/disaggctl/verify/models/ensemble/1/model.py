"""Streams ``max_tokens`` tokens: the prompt's words cycled, token k is " <word>#<k>".

Each request runs on its own thread, so concurrent requests interleave like a batching engine.
``max_tokens`` <= 0 answers with an error (for failure tests); ``stream=False`` sends one response.
"""

import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


def tokens(prompt, max_tokens):
    words = prompt.split() or ["<empty>"]
    return [f" {words[k % len(words)]}#{k}" for k in range(max_tokens)]


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.delay = float(params.get("TOKEN_DELAY_S", {}).get("string_value", "0.01"))
        self.threads = []

    def execute(self, requests):
        for request in requests:
            thread = threading.Thread(target=self.generate, args=(request,), daemon=True)
            thread.start()
            self.threads.append(thread)
        self.threads = [t for t in self.threads if t.is_alive()]
        return None

    def generate(self, request):
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        prompt = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy().reshape(-1)[0].decode()
        max_tokens = int(pb_utils.get_input_tensor_by_name(request, "max_tokens").as_numpy().reshape(-1)[0])
        stream_in = pb_utils.get_input_tensor_by_name(request, "stream")
        stream = bool(stream_in.as_numpy().reshape(-1)[0]) if stream_in is not None else False
        if max_tokens <= 0:
            error = pb_utils.TritonError(f"max_tokens must be positive, got {max_tokens}")
            sender.send(pb_utils.InferenceResponse(output_tensors=[], error=error), flags=final)
            return
        out = tokens(prompt, max_tokens)
        if not stream:
            time.sleep(self.delay * len(out))
            tensor = pb_utils.Tensor("text_output", np.array([["".join(out).encode()]], dtype=np.object_))
            sender.send(pb_utils.InferenceResponse(output_tensors=[tensor]), flags=final)
            return
        for token in out:
            time.sleep(self.delay)
            tensor = pb_utils.Tensor("text_output", np.array([[token.encode()]], dtype=np.object_))
            sender.send(pb_utils.InferenceResponse(output_tensors=[tensor]))
        sender.send(flags=final)

    def finalize(self):
        for thread in self.threads:
            thread.join(timeout=5)
