"""Triton python model ``postprocessing``: token ids -> text (frontend tier).

TOKENS_BATCH is [batch, beam, tokens], SEQUENCE_LENGTH [batch, beam]; OUTPUT holds one string
per beam. Parameters: tokenizer_dir, tokenizer_kind (hf | bytes), skip_special_tokens.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils
from disagg_tokenizers import load_tokenizer


def _param(cfg, key, default=None):
    value = cfg.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") or value.startswith("${") else value


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.tokenizer = load_tokenizer(_param(cfg, "tokenizer_kind", "hf"), _param(cfg, "tokenizer_dir", ""))
        self.skip_special_tokens = _param(cfg, "skip_special_tokens", "true").lower() == "true"

    def execute(self, requests):
        responses = []
        for request in requests:
            tokens = pb_utils.get_input_tensor_by_name(request, "TOKENS_BATCH").as_numpy()
            lengths = pb_utils.get_input_tensor_by_name(request, "SEQUENCE_LENGTH").as_numpy()
            texts = []
            for b, beams in enumerate(tokens):
                for k, beam in enumerate(beams):
                    n = int(lengths[b][k])
                    texts.append(
                        self.tokenizer.decode(beam[:n], skip_special_tokens=self.skip_special_tokens).encode(
                            "utf-8"
                        )
                    )
            out = np.array(texts, dtype=np.object_).reshape(tokens.shape[0], -1)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT", out)]))
        return responses
