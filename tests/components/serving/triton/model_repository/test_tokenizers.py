"""The byte-level tokenizer shipped next to pre/postprocessing model.py."""

from __future__ import annotations

import pytest

from components.serving.triton.model_repository.python_models.disagg_tokenizers import (
    ByteTokenizer,
    load_tokenizer,
)


def test_bytes_round_trip_utf8():
    tok = ByteTokenizer()
    ids = tok.encode("héllo")
    assert ids == list("héllo".encode())
    assert tok.decode(ids) == "héllo"


def test_special_tokens_skipped_or_shown():
    tok = ByteTokenizer()
    ids = [104, 105, tok.eos_token_id, tok.pad_token_id]
    assert tok.decode(ids) == "hi"
    assert tok.decode(ids, skip_special_tokens=False) == "hi<eos><pad>"


def test_load_bytes_ignores_the_directory():
    assert isinstance(load_tokenizer("bytes", "/does/not/exist"), ByteTokenizer)


def test_unknown_kind_names_the_parameter():
    with pytest.raises(ValueError, match="tokenizer_kind='sentencepiece'"):
        load_tokenizer("sentencepiece", "/x")
