"""Triton python model ``tensorrt_llm_bls``: the ensemble's pipeline as BLS calls (frontend).

Decoupled. Per request: ``preprocessing`` -> ``tensorrt_llm_model_name`` (on the frontend the
proxy to the orchestrator; streamed) -> ``postprocessing`` for every streamed response, each
sent on as one response carrying ``text_output`` and the pass-through outputs. Parameters:
tensorrt_llm_model_name, accumulate_tokens (decode all tokens so far instead of the delta),
client_to_tensorrt_llm (JSON: tensorrt_llm input -> client input, as the ensemble wires them).
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

_PREPROCESSING = {
    "QUERY": "text_input",
    "REQUEST_OUTPUT_LEN": "max_tokens",
    "BAD_WORDS_DICT": "bad_words",
    "STOP_WORDS_DICT": "stop_words",
    "END_ID": "end_id",
    "PAD_ID": "pad_id",
}
_FROM_PREPROCESSING = {
    "input_ids": "INPUT_ID",
    "input_lengths": "REQUEST_INPUT_LEN",
    "request_output_len": "REQUEST_OUTPUT_LEN",
    "end_id": "OUT_END_ID",
    "pad_id": "OUT_PAD_ID",
    "stop_words_list": "STOP_WORDS_IDS",
    "bad_words_list": "BAD_WORDS_IDS",
}
_PASSTHROUGH = (
    "cum_log_probs",
    "output_log_probs",
    "context_logits",
    "generation_logits",
    "batch_index",
    "sequence_index",
)


def _param(cfg, key, default=None):
    value = cfg.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") or value.startswith("${") else value


class _StepError(Exception):
    pass


def _check(response, step):
    if response.has_error():
        raise _StepError(f"{step}: {response.error().message()}")
    return response


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.llm = _param(cfg, "tensorrt_llm_model_name", "tensorrt_llm")
        self.accumulate = _param(cfg, "accumulate_tokens", "false").lower() == "true"
        self.client_map = json.loads(_param(cfg, "client_to_tensorrt_llm", "{}"))

    def execute(self, requests):
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        for request in requests:
            sender = request.get_response_sender()
            try:
                self._serve(request, sender)
                sender.send(flags=final)
            except _StepError as err:
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(err))), flags=final)
        return None

    def _serve(self, request, sender):
        pre_inputs = [
            pb_utils.Tensor(step_name, t.as_numpy())
            for step_name, client_name in _PREPROCESSING.items()
            if (t := pb_utils.get_input_tensor_by_name(request, client_name)) is not None
        ]
        pre = _check(
            pb_utils.InferenceRequest(
                model_name="preprocessing",
                requested_output_names=list(_FROM_PREPROCESSING.values()),
                inputs=pre_inputs,
            ).exec(),
            "preprocessing",
        )
        llm_inputs = [
            pb_utils.Tensor(name, pb_utils.get_output_tensor_by_name(pre, out).as_numpy())
            for name, out in _FROM_PREPROCESSING.items()
        ]
        for name, client_name in self.client_map.items():
            t = pb_utils.get_input_tensor_by_name(request, client_name)
            if t is not None:
                llm_inputs.append(pb_utils.Tensor(name, t.as_numpy()))
        wanted = set(request.requested_output_names())
        passthrough = [n for n in _PASSTHROUGH if n in wanted]
        responses = pb_utils.InferenceRequest(
            model_name=self.llm,
            requested_output_names=["output_ids", "sequence_length", *passthrough],
            inputs=llm_inputs,
        ).exec(decoupled=True)
        so_far = None
        for response in responses:
            _check(response, self.llm)
            ids = pb_utils.get_output_tensor_by_name(response, "output_ids")
            if ids is None:  # empty final response
                continue
            tokens = ids.as_numpy()
            lengths = pb_utils.get_output_tensor_by_name(response, "sequence_length").as_numpy()
            if self.accumulate:
                so_far = tokens if so_far is None else np.concatenate([so_far, tokens], axis=-1)
                tokens, lengths = so_far, np.full_like(lengths, so_far.shape[-1])
            post = _check(
                pb_utils.InferenceRequest(
                    model_name="postprocessing",
                    requested_output_names=["OUTPUT"],
                    inputs=[
                        pb_utils.Tensor("TOKENS_BATCH", tokens),
                        pb_utils.Tensor("SEQUENCE_LENGTH", lengths),
                    ],
                ).exec(),
                "postprocessing",
            )
            outputs = [
                pb_utils.Tensor("text_output", pb_utils.get_output_tensor_by_name(post, "OUTPUT").as_numpy())
            ]
            for name in passthrough:
                t = pb_utils.get_output_tensor_by_name(response, name)
                if t is not None:
                    outputs.append(pb_utils.Tensor(name, t.as_numpy()))
            sender.send(pb_utils.InferenceResponse(output_tensors=outputs))
