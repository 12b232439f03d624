"""Tensor tables of the inflight_batcher_llm models, as upstream tensorrtllm_backend names them.

Names, data types, dims, ``optional``, ``reshape`` and ``allow_ragged_batch`` follow
``all_models/inflight_batcher_llm/*/config.pbtxt`` of triton-inference-server/tensorrtllm_backend
(text-only subset: no multimodal, encoder-decoder, speculative-decoding, guided-decoding or
KV-retention tensors). The frontend's ``tensorrt_llm`` proxy and the CPU stand-in use exactly
the :func:`tensorrt_llm_inputs` / :func:`tensorrt_llm_outputs` of the real model.

``context_phase_params`` (UINT8 bytes, optional input and output) carries TRT-LLM's
disaggregated-serving state: a ``request_type: context_only`` request returns it, and a
``generation_only`` request sends it back (upstream's tensorrt_llm config declares both).
"""

from __future__ import annotations

from components.serving.triton.model_repository.spec import DataType, Tensor


def _scalar(name: str, dtype: DataType) -> Tensor:
    """Optional per-request scalar: dims [1], seen by the model as a scalar (reshape [])."""
    return Tensor(name=name, data_type=dtype, dims=(1,), reshape=(), optional=True)


def _ragged(name: str, dtype: DataType, dims: tuple[int, ...]) -> Tensor:
    return Tensor(name=name, data_type=dtype, dims=dims, optional=True, allow_ragged_batch=True)


def tensorrt_llm_inputs() -> tuple[Tensor, ...]:
    """Inputs of the ``tensorrt_llm`` model (backend ``tensorrtllm``)."""
    return (
        _ragged("input_ids", "TYPE_INT32", (-1,)),
        Tensor(name="input_lengths", data_type="TYPE_INT32", dims=(1,), reshape=()),
        Tensor(name="request_output_len", data_type="TYPE_INT32", dims=(1,), reshape=()),
        _scalar("num_return_sequences", "TYPE_INT32"),
        _scalar("end_id", "TYPE_INT32"),
        _scalar("pad_id", "TYPE_INT32"),
        _ragged("stop_words_list", "TYPE_INT32", (2, -1)),
        _ragged("bad_words_list", "TYPE_INT32", (2, -1)),
        _ragged("embedding_bias", "TYPE_FP32", (-1,)),
        _scalar("beam_width", "TYPE_INT32"),
        _scalar("temperature", "TYPE_FP32"),
        _scalar("runtime_top_k", "TYPE_INT32"),
        _scalar("runtime_top_p", "TYPE_FP32"),
        _scalar("runtime_top_p_min", "TYPE_FP32"),
        _scalar("runtime_top_p_decay", "TYPE_FP32"),
        _scalar("runtime_top_p_reset_ids", "TYPE_INT32"),
        _scalar("len_penalty", "TYPE_FP32"),
        _scalar("early_stopping", "TYPE_BOOL"),
        _scalar("repetition_penalty", "TYPE_FP32"),
        _scalar("min_tokens", "TYPE_INT32"),
        _scalar("beam_search_diversity_rate", "TYPE_FP32"),
        _scalar("presence_penalty", "TYPE_FP32"),
        _scalar("frequency_penalty", "TYPE_FP32"),
        _scalar("seed", "TYPE_UINT64"),
        _scalar("return_log_probs", "TYPE_BOOL"),
        _scalar("return_context_logits", "TYPE_BOOL"),
        _scalar("return_generation_logits", "TYPE_BOOL"),
        _scalar("exclude_input_in_output", "TYPE_BOOL"),
        _scalar("stop", "TYPE_BOOL"),
        _scalar("streaming", "TYPE_BOOL"),
        _scalar("lora_task_id", "TYPE_UINT64"),
        _ragged("lora_weights", "TYPE_FP16", (-1, -1)),
        _ragged("lora_config", "TYPE_INT32", (-1, 3)),
        _ragged("context_phase_params", "TYPE_UINT8", (-1,)),
    )


def tensorrt_llm_outputs(logits_datatype: DataType) -> tuple[Tensor, ...]:
    """Outputs of the ``tensorrt_llm`` model: ``output_ids`` is [beam, tokens] per request."""
    return (
        Tensor(name="output_ids", data_type="TYPE_INT32", dims=(-1, -1)),
        Tensor(name="sequence_length", data_type="TYPE_INT32", dims=(-1,)),
        Tensor(name="cum_log_probs", data_type="TYPE_FP32", dims=(-1,)),
        Tensor(name="output_log_probs", data_type="TYPE_FP32", dims=(-1, -1)),
        Tensor(name="context_logits", data_type=logits_datatype, dims=(-1, -1)),
        Tensor(name="generation_logits", data_type=logits_datatype, dims=(-1, -1, -1)),
        Tensor(name="batch_index", data_type="TYPE_INT32", dims=(1,)),
        Tensor(name="sequence_index", data_type="TYPE_INT32", dims=(1,)),
        Tensor(name="context_phase_params", data_type="TYPE_UINT8", dims=(-1,)),
    )


def preprocessing_inputs() -> tuple[Tensor, ...]:
    return (
        Tensor(name="QUERY", data_type="TYPE_STRING", dims=(1,)),
        Tensor(name="REQUEST_OUTPUT_LEN", data_type="TYPE_INT32", dims=(1,), optional=True),
        Tensor(name="BAD_WORDS_DICT", data_type="TYPE_STRING", dims=(-1,), optional=True),
        Tensor(name="STOP_WORDS_DICT", data_type="TYPE_STRING", dims=(-1,), optional=True),
        Tensor(name="END_ID", data_type="TYPE_INT32", dims=(1,), optional=True),
        Tensor(name="PAD_ID", data_type="TYPE_INT32", dims=(1,), optional=True),
    )


def preprocessing_outputs() -> tuple[Tensor, ...]:
    return (
        Tensor(name="INPUT_ID", data_type="TYPE_INT32", dims=(-1,)),
        Tensor(name="REQUEST_INPUT_LEN", data_type="TYPE_INT32", dims=(1,)),
        Tensor(name="BAD_WORDS_IDS", data_type="TYPE_INT32", dims=(2, -1)),
        Tensor(name="STOP_WORDS_IDS", data_type="TYPE_INT32", dims=(2, -1)),
        Tensor(name="REQUEST_OUTPUT_LEN", data_type="TYPE_INT32", dims=(-1,)),
        Tensor(name="OUT_END_ID", data_type="TYPE_INT32", dims=(1,)),
        Tensor(name="OUT_PAD_ID", data_type="TYPE_INT32", dims=(1,)),
    )


def postprocessing_inputs() -> tuple[Tensor, ...]:
    return (
        Tensor(name="TOKENS_BATCH", data_type="TYPE_INT32", dims=(-1, -1)),
        Tensor(name="SEQUENCE_LENGTH", data_type="TYPE_INT32", dims=(-1,)),
    )


def postprocessing_outputs() -> tuple[Tensor, ...]:
    return (Tensor(name="OUTPUT", data_type="TYPE_STRING", dims=(-1,)),)


def _client_scalar(name: str, dtype: DataType) -> Tensor:
    return Tensor(name=name, data_type=dtype, dims=(1,), optional=True)


def client_inputs() -> tuple[Tensor, ...]:
    """Inputs of ``ensemble`` and ``tensorrt_llm_bls``: what clients send."""
    return (
        Tensor(name="text_input", data_type="TYPE_STRING", dims=(1,)),
        Tensor(name="max_tokens", data_type="TYPE_INT32", dims=(1,), optional=True),
        Tensor(name="bad_words", data_type="TYPE_STRING", dims=(-1,), optional=True),
        Tensor(name="stop_words", data_type="TYPE_STRING", dims=(-1,), optional=True),
        _client_scalar("exclude_input_in_output", "TYPE_BOOL"),
        _client_scalar("end_id", "TYPE_INT32"),
        _client_scalar("pad_id", "TYPE_INT32"),
        _client_scalar("top_k", "TYPE_INT32"),
        _client_scalar("top_p", "TYPE_FP32"),
        _client_scalar("temperature", "TYPE_FP32"),
        _client_scalar("length_penalty", "TYPE_FP32"),
        _client_scalar("repetition_penalty", "TYPE_FP32"),
        _client_scalar("min_tokens", "TYPE_INT32"),
        _client_scalar("presence_penalty", "TYPE_FP32"),
        _client_scalar("frequency_penalty", "TYPE_FP32"),
        _client_scalar("seed", "TYPE_UINT64"),
        _client_scalar("return_log_probs", "TYPE_BOOL"),
        _client_scalar("return_context_logits", "TYPE_BOOL"),
        _client_scalar("return_generation_logits", "TYPE_BOOL"),
        _client_scalar("num_return_sequences", "TYPE_INT32"),
        _client_scalar("beam_width", "TYPE_INT32"),
        _client_scalar("stream", "TYPE_BOOL"),
    )


def client_outputs(logits_datatype: DataType) -> tuple[Tensor, ...]:
    """Outputs of ``ensemble`` and ``tensorrt_llm_bls``."""
    return (
        Tensor(name="text_output", data_type="TYPE_STRING", dims=(-1,)),
        Tensor(name="cum_log_probs", data_type="TYPE_FP32", dims=(-1,)),
        Tensor(name="output_log_probs", data_type="TYPE_FP32", dims=(-1, -1)),
        Tensor(name="context_logits", data_type=logits_datatype, dims=(-1, -1)),
        Tensor(name="generation_logits", data_type=logits_datatype, dims=(-1, -1, -1)),
        Tensor(name="batch_index", data_type="TYPE_INT32", dims=(1,)),
        Tensor(name="sequence_index", data_type="TYPE_INT32", dims=(1,)),
    )


# Ensemble wiring, as upstream's ensemble/config.pbtxt: client tensor -> tensorrt_llm input.
CLIENT_TO_TENSORRT_LLM: dict[str, str] = {
    "exclude_input_in_output": "exclude_input_in_output",
    "runtime_top_k": "top_k",
    "runtime_top_p": "top_p",
    "temperature": "temperature",
    "len_penalty": "length_penalty",
    "repetition_penalty": "repetition_penalty",
    "min_tokens": "min_tokens",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "return_log_probs": "return_log_probs",
    "return_context_logits": "return_context_logits",
    "return_generation_logits": "return_generation_logits",
    "num_return_sequences": "num_return_sequences",
    "beam_width": "beam_width",
    "streaming": "stream",
}
