"""The synth's JSON and YAML text, fast and byte-identical to ``json.dumps``/``yaml.dump``.

The synth writes one JSON document per resource and one YAML manifest per Kubernetes object. The
standard library's JSON encoder runs in pure Python as soon as ``indent`` is set, and PyYAML's
representer and resolver run in Python even under libyaml's emitter; for a thousand resources
that is seconds. The writers below produce the same bytes for the values the synth holds (dicts
with string keys, lists, strings, numbers, booleans, None) and hand anything else to the library
itself. ``tests/disaggctl/synth/test_render.py`` compares them with the libraries on generated
values (hypothesis), ``test_fast_paths.py`` beside it on every shipped stack's synth.
"""

from __future__ import annotations

import functools
import io
import json
import re
from json.encoder import encode_basestring_ascii
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode


class _NotHandledError(Exception):
    """A value the fast writer does not handle: the library renders the whole document."""


def to_json(value: Any) -> str:
    """``json.dumps(value, indent=2, sort_keys=True, default=str) + "\\n"``."""
    parts: list[str] = []
    try:
        _json_value(value, parts, "\n")
    except _NotHandledError:
        return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
    parts.append("\n")
    return "".join(parts)


_FLOAT_SPECIAL = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


def _json_value(value: Any, out: list[str], newline: str) -> None:
    kind = type(value)
    if kind is str:
        out.append(encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is float:
        if value != value:
            out.append("NaN")
        else:
            out.append(_FLOAT_SPECIAL.get(value) or float.__repr__(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        keys = list(value)
        for key in keys:
            if type(key) is not str:
                raise _NotHandledError  # json converts such keys and may not sort them the same way
        keys.sort()
        out.append("{")
        first = True
        for key in keys:
            out.append(inner if first else "," + inner)
            first = False
            out.append(encode_basestring_ascii(key))
            out.append(": ")
            _json_value(value[key], out, inner)
        out.append(newline)
        out.append("}")
    elif kind is list:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        out.append("[")
        first = True
        for item in value:
            out.append(inner if first else "," + inner)
            first = False
            _json_value(item, out, inner)
        out.append(newline)
        out.append("]")
    else:
        raise _NotHandledError


class ManifestDumper(yaml.SafeDumper):
    """Multi-line strings (config.pbtxt, scripts, model.py) as literal blocks: reviewable diffs."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


ManifestDumper.add_representer(str, _represent_str)

_ANALYZER = yaml.emitter.Emitter(None)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _block_allowed(text: str) -> bool:
    """PyYAML's own verdict on a literal block (slow on long text; deployments repeat the same
    scripts: cached)."""
    return bool(_ANALYZER.analyze_scalar(text).allow_block)


_YAML_OPTIONS: dict[str, Any] = {"sort_keys": True, "default_flow_style": False, "width": 100}


def _pyyaml(manifest: Any) -> str:
    return yaml.dump(manifest, Dumper=ManifestDumper, **_YAML_OPTIONS)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


def _float_text(value: float) -> str:
    """``SafeRepresenter.represent_float``'s text."""
    if value != value:
        return ".nan"
    if value == float("inf"):
        return ".inf"
    if value == float("-inf"):
        return "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


_PLAIN_TEXT = re.compile(r"[\x20-\x7e\n]*")
"""Strings libyaml and PyYAML emit alike: printable ASCII and newlines. Other characters (tabs,
carriage returns, non-ASCII, Unicode line breaks) are escaped or broken differently by the two."""
_PLAIN_KEY = re.compile(r"[\x20-\x7e]{1,100}")
"""Keys both emit as simple keys (PyYAML turns a key longer than 128 characters into "? key")."""


def _node(value: Any, seen: set[int]) -> Any:
    """The node ``ManifestDumper``'s representer builds for ``value`` (block style, keys sorted)."""
    kind = type(value)
    if kind is str:
        if not _PLAIN_TEXT.fullmatch(value):
            raise _NotHandledError
        if "\n" in value:
            if value.endswith("\n\n") or not _block_allowed(value):
                # keep-chomped blocks ("|+") leave the document open: libyaml then writes "..."
                # libyaml folds the double-quoted fallback at other places than PyYAML does
                raise _NotHandledError
            return ScalarNode(_STR, value, style="|")
        return ScalarNode(_STR, value)
    if value is None:
        return ScalarNode("tag:yaml.org,2002:null", "null")
    if kind is bool:
        return ScalarNode("tag:yaml.org,2002:bool", "true" if value else "false")
    if kind is int:
        return ScalarNode("tag:yaml.org,2002:int", str(value))
    if kind is float:
        return ScalarNode("tag:yaml.org,2002:float", _float_text(value))
    if kind is dict or kind is list:
        if id(value) in seen:
            raise _NotHandledError  # the same object twice: PyYAML writes an anchor and an alias
        seen.add(id(value))
        if kind is list:
            return SequenceNode(_SEQ, [_node(item, seen) for item in value], flow_style=False)
        keys = list(value)
        for key in keys:
            if type(key) is not str or not _PLAIN_KEY.fullmatch(key):
                raise _NotHandledError  # libyaml writes these keys other than PyYAML (e.g. '' as a simple key)
        keys.sort()
        return MappingNode(_MAP, [(_node(key, seen), _node(value[key], seen)) for key in keys], flow_style=False)
    raise _NotHandledError


_CDumper: type | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _FastManifestDumper(yaml.CSafeDumper):  # type: ignore[name-defined,misc]
        """libyaml's emitter fed with nodes built by :func:`_node`, with the resolver's verdicts
        cached (the emitter asks twice per scalar, and manifests repeat their scalars)."""

        _resolved: dict[tuple[str, tuple[bool, bool]], str] = {}

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is ScalarNode and type(value) is str:
                key = (value, tuple(implicit))
                tag = self._resolved.get(key)  # type: ignore[arg-type]
                if tag is None:
                    tag = self._resolved[key] = super().resolve(kind, value, implicit)  # type: ignore[index]
                return tag
            return super().resolve(kind, value, implicit)

    _CDumper = _FastManifestDumper


def to_manifest_yaml(manifest: Any) -> str:
    """``yaml.dump(manifest, Dumper=ManifestDumper, sort_keys=True, default_flow_style=False,
    width=100)``: sorted keys, block style, multi-line strings as ``|`` blocks (PyYAML falls back to
    quoting where a block cannot hold the string exactly, e.g. trailing spaces)."""
    if _CDumper is None:
        return _pyyaml(manifest)
    try:
        node = _node(manifest, set())
    except _NotHandledError:
        return _pyyaml(manifest)
    stream = io.StringIO()
    dumper = _CDumper(stream, **_YAML_OPTIONS)
    dumper.open()  # the calls yaml.dump makes, with our node in place of the representer's
    dumper.serialize(node)
    dumper.close()
    return stream.getvalue()
