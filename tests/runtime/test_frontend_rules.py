"""The frontend's request rules (runtime/frontend.py), without processes."""

from __future__ import annotations

import pytest

from runtime.frontend import Frontend, RequestError, completion_prompt_ids, resolve_max_tokens
from runtime.tokenizer import ByteTokenizer


def test_default_max_tokens_is_capped_by_what_the_sequence_leaves():
    assert resolve_max_tokens(None, 10, 100, 32) == 32
    assert resolve_max_tokens(None, 90, 100, 32) == 10


def test_explicit_max_tokens_over_the_sequence_is_refused_with_the_room_left():
    with pytest.raises(RequestError, match="ask for at most 10 tokens"):
        resolve_max_tokens(11, 90, 100, 32)
    assert resolve_max_tokens(10, 90, 100, 32) == 10


def test_prompt_that_fills_the_sequence_is_refused():
    with pytest.raises(RequestError, match="has 100 tokens"):
        resolve_max_tokens(None, 100, 100, 32)


@pytest.mark.parametrize("bad", [0, -1, "8", True])
def test_max_tokens_must_be_a_positive_int(bad):
    with pytest.raises(RequestError, match="max_tokens must be a positive integer"):
        resolve_max_tokens(bad, 1, 100, 32)


def test_completion_prompts_become_token_ids():
    tok = ByteTokenizer()
    assert completion_prompt_ids("hi", tok) == [104, 105]
    assert completion_prompt_ids([[1, 2]], tok) == [1, 2]
    assert completion_prompt_ids([5, 6], tok) == [5, 6]
    with pytest.raises(RequestError, match="batched prompts are not supported"):
        completion_prompt_ids(["a", "b"], tok)


def test_chat_is_templated_and_tokenized_in_the_frontend():
    fe = Frontend("http://r:8000", "llama", ByteTokenizer(), 256, 16, 60)
    out = fe.prepare_chat({"model": "llama", "messages": [{"role": "user", "content": "hi"}],
                           "max_completion_tokens": 3})
    assert out["prompt_token_ids"] == list(b"<|user|>\nhi\n<|assistant|>\n")
    assert out["max_tokens"] == 3 and "max_completion_tokens" not in out


def test_kserve_generate_maps_parameters_onto_completions():
    fe = Frontend("http://r:8000", "llama", ByteTokenizer(), 256, 16, 60)
    out = fe.generate_to_completion({"text_input": "ab", "max_tokens": 9, "parameters": {"temperature": 0,
                                                                                       "stream": False}}, True)
    assert out == {"prompt": [97, 98], "stream": True, "max_tokens": 9, "temperature": 0, "model": "llama"}
    with pytest.raises(RequestError, match="unsupported generate parameter"):
        fe.generate_to_completion({"text_input": "ab", "parameters": {"beam_width": 2}}, False)


def test_unknown_model_is_404():
    fe = Frontend("http://r:8000", "llama", ByteTokenizer(), 256, 16, 60)
    with pytest.raises(RequestError) as err:
        fe.prepare_completion({"model": "gpt-4", "prompt": "x"})
    assert err.value.status == 404 and err.value.code == "model_not_found"
