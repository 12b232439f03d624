"""CPU stand-in for the ``tensorrt_llm`` model (backend tensorrtllm): tests and local runs only.

Decoupled python model with exactly the real model's config (inputs, outputs, parameters).
Deterministic "generation": generated token k is the prompt's token ids read backwards,
cyclically: ``prompt[-1 - k % len(prompt)]``, for ``request_output_len`` tokens. Generation
stops early when the next token equals ``end_id`` (not emitted) or once the output ends with
a stop word of ``stop_words_list`` (emitted, as TRT-LLM does). With ``streaming`` true each
token is one response (output_ids [1, 1, 1]); otherwise a single response carries all tokens,
prefixed with the prompt unless ``exclude_input_in_output`` (request input, else the model
parameter of the same name) is true. Every response has all outputs of the real model.

Disaggregated serving (request parameter ``request_type``), mimicking TRT-LLM's phases:

* ``context_only``: one final response whatever ``streaming`` says, carrying the first
  generated token and ``context_phase_params``: UTF-8 JSON bytes
  ``{"first_gen_tokens": [t], "prompt_len": n, "prompt_hash": h}``;
* ``generation_only``: needs ``context_phase_params`` for this very prompt (else an error);
  the first token is taken from it, the rest generated as above (streamed or not).
"""

import hashlib
import json
import threading

import numpy as np
import triton_python_backend_utils as pb_utils


def _param(cfg, key, default=None):
    value = cfg.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") or value.startswith("${") else value


def _scalar(request, name, default):
    t = pb_utils.get_input_tensor_by_name(request, name)
    if t is None:
        return default
    return t.as_numpy().reshape(-1)[0].item()


def _stop_sequences(request):
    t = pb_utils.get_input_tensor_by_name(request, "stop_words_list")
    if t is None:
        return []
    arr = t.as_numpy()
    if arr.size == 0:
        return []
    arr = arr.reshape((-1,) + arr.shape[-2:])[0]
    ids, ends = arr[0].tolist(), arr[1].tolist()
    seqs, start = [], 0
    for end in ends:
        if end < 0:
            break
        seqs.append(ids[start:end])
        start = end
    return [s for s in seqs if s]


def _request_type(request):
    try:
        return json.loads(request.parameters() or "{}").get("request_type", "context_and_generation")
    except (AttributeError, ValueError):
        return "context_and_generation"


def _prompt_hash(prompt):
    return hashlib.sha256(json.dumps(prompt).encode()).hexdigest()[:16]


def _context_phase_params(request, prompt):
    """First generated token from a generation_only request's context_phase_params."""
    t = pb_utils.get_input_tensor_by_name(request, "context_phase_params")
    if t is None:
        raise ValueError("generation_only request without context_phase_params: run the context phase first")
    state = json.loads(bytes(t.as_numpy().reshape(-1).astype(np.uint8)).decode())
    if state.get("prompt_len") != len(prompt) or state.get("prompt_hash") != _prompt_hash(prompt):
        raise ValueError("context_phase_params belong to another prompt")
    return state["first_gen_tokens"]


def generate(prompt, max_new, end_id, stop_sequences):
    """The stand-in's deterministic token sequence for a prompt."""
    out = []
    for k in range(max_new):
        token = prompt[-1 - (k % len(prompt))]
        if end_id is not None and token == end_id:
            break
        out.append(token)
        if any(len(s) <= len(out) and out[-len(s) :] == s for s in stop_sequences):
            break
    return out


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.exclude_default = _param(cfg, "exclude_input_in_output", "false").lower() == "true"
        self.logits_dtype = {"TYPE_FP16": np.float16}.get(
            next(o["data_type"] for o in cfg["output"] if o["name"] == "context_logits"), np.float32
        )
        self.threads = []

    def execute(self, requests):
        for request in requests:
            thread = threading.Thread(target=self._serve, args=(request,), daemon=True)
            thread.start()
            self.threads.append(thread)
        self.threads = [t for t in self.threads if t.is_alive()]
        return None

    def _serve(self, request):
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        try:
            ids = pb_utils.get_input_tensor_by_name(request, "input_ids").as_numpy()
            if ids.shape[0] != 1:
                raise ValueError(f"stand-in serves batch 1 per request, got batch {ids.shape[0]}")
            length = int(_scalar(request, "input_lengths", ids.shape[1]))
            prompt = ids[0][:length].tolist()
            tokens = generate(
                prompt,
                int(_scalar(request, "request_output_len", 1)),
                _scalar(request, "end_id", None),
                _stop_sequences(request),
            )
            request_type = _request_type(request)
            if request_type == "context_only":
                first = tokens[:1]
                state = {"first_gen_tokens": first, "prompt_len": len(prompt), "prompt_hash": _prompt_hash(prompt)}
                params = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8).reshape(1, -1)
                sender.send(self._response(first, params), flags=final)
                return
            if request_type == "generation_only":
                tokens = _context_phase_params(request, prompt) + tokens[1:]
            if bool(_scalar(request, "streaming", False)):
                if not tokens:
                    sender.send(self._response([]), flags=final)
                for i, token in enumerate(tokens):
                    if sender.is_cancelled():
                        sender.send(flags=final)
                        return
                    last = i == len(tokens) - 1
                    sender.send(self._response([token]), flags=final if last else 0)
            else:
                exclude = bool(_scalar(request, "exclude_input_in_output", self.exclude_default))
                sender.send(self._response(tokens if exclude else prompt + tokens), flags=final)
        except Exception as err:  # noqa: BLE001 - every failure must reach the client
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(err))), flags=final)

    def _response(self, tokens, context_phase_params=None):
        n = len(tokens)
        extra = []
        if context_phase_params is not None:
            extra = [pb_utils.Tensor("context_phase_params", context_phase_params)]
        return pb_utils.InferenceResponse(
            output_tensors=extra + [
                pb_utils.Tensor("output_ids", np.array(tokens, dtype=np.int32).reshape(1, 1, n)),
                pb_utils.Tensor("sequence_length", np.array([[n]], dtype=np.int32)),
                pb_utils.Tensor("cum_log_probs", np.zeros((1, 1), dtype=np.float32)),
                pb_utils.Tensor("output_log_probs", np.zeros((1, 1, n), dtype=np.float32)),
                pb_utils.Tensor("context_logits", np.zeros((1, 1, 1), dtype=self.logits_dtype)),
                pb_utils.Tensor("generation_logits", np.zeros((1, 1, 1, 1), dtype=self.logits_dtype)),
                pb_utils.Tensor("batch_index", np.zeros((1, 1), dtype=np.int32)),
                pb_utils.Tensor("sequence_index", np.zeros((1, 1), dtype=np.int32)),
            ]
        )

    def finalize(self):
        for thread in self.threads:
            thread.join(timeout=5)
