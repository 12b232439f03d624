"""Triton python model ``preprocessing``: text -> token ids (frontend tier).

Inputs/outputs follow upstream inflight_batcher_llm/preprocessing (text-only subset).
Parameters: tokenizer_dir, tokenizer_kind (hf | bytes), add_special_tokens, max_input_len,
max_seq_len, default_max_tokens. A prompt longer than max_input_len, or max_tokens beyond
max_seq_len - prompt, fails that request with an error naming the limit. A request without
max_tokens (REQUEST_OUTPUT_LEN) gets default_max_tokens, capped at max_seq_len - prompt; without
that parameter, max_tokens is required.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils
from disagg_tokenizers import load_tokenizer


def _param(cfg, key, default=None):
    value = cfg.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") or value.startswith("${") else value


def _optional(request, name):
    t = pb_utils.get_input_tensor_by_name(request, name)
    return None if t is None else t.as_numpy()


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.tokenizer = load_tokenizer(_param(cfg, "tokenizer_kind", "hf"), _param(cfg, "tokenizer_dir", ""))
        self.add_special_tokens = _param(cfg, "add_special_tokens", "true").lower() == "true"
        self.max_input_len = int(_param(cfg, "max_input_len", "0")) or None
        self.max_seq_len = int(_param(cfg, "max_seq_len", "0")) or None
        self.default_max_tokens = int(_param(cfg, "default_max_tokens", "0")) or None
        self.end_id = self.tokenizer.eos_token_id
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.end_id

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(pb_utils.InferenceResponse(output_tensors=self._one(request)))
            except ValueError as err:
                responses.append(
                    pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(err)))
                )
        return responses

    def _one(self, request):
        query = pb_utils.get_input_tensor_by_name(request, "QUERY").as_numpy()
        batch = query.shape[0]
        ids = [self.tokenizer.encode(_text(q[0]), add_special_tokens=self.add_special_tokens) for q in query]
        out_len = _optional(request, "REQUEST_OUTPUT_LEN")
        if out_len is None:
            out_len = self._default_output_len(ids)
        for i, seq in enumerate(ids):
            if not seq:
                raise ValueError("text_input is empty: send at least one token of text")
            if self.max_input_len and len(seq) > self.max_input_len:
                raise ValueError(
                    f"prompt has {len(seq)} tokens but the engine's max_input_len is "
                    f"{self.max_input_len}: shorten text_input"
                )
            want = int(out_len.reshape(batch, -1)[i][0])
            if want < 1:
                raise ValueError(f"max_tokens={want} must be at least 1")
            if self.max_seq_len and len(seq) + want > self.max_seq_len:
                raise ValueError(
                    f"prompt ({len(seq)} tokens) + max_tokens ({want}) exceeds the engine's "
                    f"max_seq_len {self.max_seq_len}: lower max_tokens"
                )
        end_id = _optional(request, "END_ID")
        pad_id = _optional(request, "PAD_ID")
        end = np.full((batch, 1), self.end_id, np.int32) if end_id is None else end_id.astype(np.int32)
        pad = np.full((batch, 1), self.pad_id, np.int32) if pad_id is None else pad_id.astype(np.int32)
        width = max(len(s) for s in ids)
        input_id = np.array(
            [s + [int(p[0])] * (width - len(s)) for s, p in zip(ids, pad, strict=False)], dtype=np.int32
        )
        lengths = np.array([[len(s)] for s in ids], dtype=np.int32)
        return [
            pb_utils.Tensor("INPUT_ID", input_id),
            pb_utils.Tensor("REQUEST_INPUT_LEN", lengths),
            pb_utils.Tensor("BAD_WORDS_IDS", self._word_list(_optional(request, "BAD_WORDS_DICT"), batch)),
            pb_utils.Tensor("STOP_WORDS_IDS", self._word_list(_optional(request, "STOP_WORDS_DICT"), batch)),
            pb_utils.Tensor("REQUEST_OUTPUT_LEN", out_len.astype(np.int32).reshape(batch, -1)),
            pb_utils.Tensor("OUT_END_ID", end),
            pb_utils.Tensor("OUT_PAD_ID", pad),
        ]

    def _default_output_len(self, ids):
        if self.default_max_tokens is None:
            raise ValueError("max_tokens is required: send the number of tokens to generate")
        room = [self.max_seq_len - len(seq) if self.max_seq_len else self.default_max_tokens for seq in ids]
        return np.array([[max(1, min(self.default_max_tokens, r))] for r in room], dtype=np.int32)

    def _word_list(self, words, batch):
        """TRT-LLM word-list format per request: [2, N] = (flat token ids, end offsets | -1)."""
        if words is None:
            return np.zeros((batch, 2, 0), dtype=np.int32)
        flat, offsets = [], []
        for row in words.reshape(batch, -1):
            ids, ends = [], []
            for word in row:
                tok = self.tokenizer.encode(_text(word), add_special_tokens=False)
                if tok:
                    ids += tok
                    ends.append(len(ids))
            flat.append(ids)
            offsets.append(ends)
        width = max(1, max(len(f) for f in flat))
        out = np.zeros((batch, 2, width), dtype=np.int32)
        out[:, 1, :] = -1
        for i, (ids, ends) in enumerate(zip(flat, offsets, strict=False)):
            out[i, 0, : len(ids)] = ids
            out[i, 1, : len(ends)] = ends
        return out
