"""Tokenizers for the preprocessing/postprocessing python models.

Copied next to each model.py as ``disagg_tokenizers.py`` (the python backend puts the version
directory on sys.path). Two kinds, chosen by the model parameter ``tokenizer_kind``:

* ``hf``: ``transformers.AutoTokenizer.from_pretrained(tokenizer_dir)``; the production path.
  transformers is imported only when this kind is loaded.
* ``bytes``: a dependency-free byte-level tokenizer: UTF-8 byte b -> id b (0..255),
  ``<eos>`` = 256, ``<pad>`` = 257; no special tokens are added on encode. Used by CPU tests
  and local runs where no tokenizer files exist. It is a real code path, not a mock.
"""

from __future__ import annotations


class ByteTokenizer:
    """UTF-8 bytes as token ids, plus <eos> and <pad>."""

    eos_token_id = 256
    pad_token_id = 257
    vocab_size = 258

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        out = bytearray()
        for i in ids:
            i = int(i)
            if 0 <= i < 256:
                out.append(i)
            elif not skip_special_tokens and i == self.eos_token_id:
                out += b"<eos>"
            elif not skip_special_tokens and i == self.pad_token_id:
                out += b"<pad>"
        return out.decode("utf-8", errors="replace")


def load_tokenizer(kind: str, tokenizer_dir: str):
    """A tokenizer with ``encode``, ``decode``, ``eos_token_id`` and ``pad_token_id``."""
    if kind == "bytes":
        return ByteTokenizer()
    if kind == "hf":
        from transformers import AutoTokenizer  # lazy: only frontend images ship transformers

        tok = AutoTokenizer.from_pretrained(
            tokenizer_dir, legacy=False, padding_side="left", trust_remote_code=True
        )
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok
    raise ValueError(f"model parameter tokenizer_kind={kind!r} is not supported: use 'hf' or 'bytes'")
