"""Tokenizers for the frontend and the stand-in: ``bytes`` (tests) or a model directory.

``bytes`` maps text to its UTF-8 bytes (ids 0-255) and renders chat with a fixed template, so
tests can predict every token. A model directory is loaded with ``transformers`` (present in
the TensorRT-LLM release image, optional elsewhere) and uses the model's own chat template.
"""

from __future__ import annotations

from typing import Any, Protocol

BYTES = "bytes"


def message_text(content: Any) -> str:
    """A message's text: a string, or the text parts of an OpenAI content-part list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ValueError("message content must be a string or a list of content parts")


class Tokenizer(Protocol):
    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def chat_ids(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> list[int]: ...


class ByteTokenizer:
    """UTF-8 bytes as token ids; chat template ``<|role|>\\ncontent\\n`` then ``<|assistant|>\\n``."""

    name = BYTES

    def encode(self, text: str) -> list[int]:
        return list(text.encode())

    def decode(self, ids: list[int]) -> str:
        return bytes(i & 0xFF for i in ids).decode(errors="replace")

    def render_chat(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        parts = [f"<|{m.get('role', 'user')}|>\n{message_text(m.get('content'))}\n" for m in messages]
        if add_generation_prompt:
            parts.append("<|assistant|>\n")
        return "".join(parts)

    def chat_ids(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> list[int]:
        return self.encode(self.render_chat(messages, add_generation_prompt))


class HFTokenizer:
    """A Hugging Face tokenizer from a model directory (``transformers`` must be installed)."""

    def __init__(self, path: str) -> None:
        try:
            from transformers import AutoTokenizer  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SystemExit(f"--tokenizer {path!r}: transformers is not installed; "
                             "use an image that has it or --tokenizer bytes") from exc
        self.name = path
        self._tok = AutoTokenizer.from_pretrained(path)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text))

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=True))

    def chat_ids(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> list[int]:
        norm = [{**m, "content": message_text(m.get("content"))} for m in messages]
        ids = self._tok.apply_chat_template(norm, tokenize=True, add_generation_prompt=add_generation_prompt)
        if isinstance(ids, dict):  # BatchEncoding in newer transformers
            ids = ids["input_ids"]
        return list(ids)


def load_tokenizer(spec: str) -> Tokenizer:
    """``bytes`` or a model directory."""
    if spec == BYTES:
        return ByteTokenizer()
    return HFTokenizer(spec)
