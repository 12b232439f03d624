"""Reading and validating the stack configuration: every problem reported, nothing created."""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from components.config.stack import NAMESPACE, StackConfig

OFFLINE_SECRET = "[secret]"
"""What a secret config value reads as when the program runs offline (``disaggctl synth``), where
secrets cannot be decrypted. Components that need a secret's content at plan time accept it."""


class ConfigError(ValueError):
    """The stack configuration is invalid; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"invalid stack configuration ({count}):\n" + "\n".join(f"  - {p}" for p in problems)
        )


def parse_raw_config(raw: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Turn Pulumi's flat ``namespace:key -> string`` config into a dict of sections.

    Returns the sections of this project's namespace and problems for unknown keys.
    Other namespaces (``aws:region``, ``kubernetes:…``) belong to providers and are ignored.
    """
    sections: dict[str, Any] = {}
    problems: list[str] = []
    known = [field.alias or name for name, field in StackConfig.model_fields.items()]
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if key not in known:
            problems.append(f"{full_key}: unknown key{_suggest(key, known)}")
            continue
        value = raw[full_key]
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                problems.append(f"{full_key}: not valid JSON/YAML structure ({err}): fix the value")
                continue
        sections[key] = value
    return sections, problems


def load_stack_config(raw: Mapping[str, str]) -> StackConfig:
    """Validate the raw Pulumi config; raise :class:`ConfigError` listing every problem."""
    sections, problems = parse_raw_config(raw)
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(sections)
    except ValidationError as err:
        problems += [_describe(error) for error in err.errors()]
    if config is not None:
        problems += config.cross_check()
    if problems:
        raise ConfigError(problems)
    assert config is not None
    return config


def load_from_pulumi() -> StackConfig:
    """Read this stack's configuration from the running Pulumi program (call once)."""
    from pulumi.runtime import config as runtime_config

    raw = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return load_stack_config(raw)


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = _format_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"{path}: unknown key{_suggest(str(loc[-1]), allowed)}"
    if kind == "missing":
        return f"{path}: required but missing: add it"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind in ("value_error", "assertion_error"):
        return f"{path}: {message}"
    given = error.get("input")
    shown = json.dumps(given) if isinstance(given, (str, int, float, bool)) else type(given).__name__
    return f"{path}: {message} (got {shown}): fix the value"


_VALIDATOR_TAGS = {"lax-or-strict", "json-or-python", "function-plain", "constrained-str"}


def _format_path(loc: tuple[Any, ...]) -> str:
    path = NAMESPACE
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif index == 0:
            path += f":{part}"
        elif isinstance(part, str) and ("[" in part or part in _VALIDATOR_TAGS):
            # pydantic's validator/union tags ("function-after[...]") are not config keys
            continue
        else:
            path += f".{part}"
    return path


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The camelCase keys accepted at ``loc`` (best effort; empty when unknown)."""
    annotation: Any = StackConfig
    for part in loc:
        annotation = _unwrap(annotation, dict_value=not isinstance(part, int))
        if isinstance(part, int):
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next(
                (f for n, f in annotation.model_fields.items() if part in (n, f.alias)), None
            )
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
    annotation = _unwrap(annotation, dict_value=True)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any, dict_value: bool) -> Any:
    """Strip Optional/list wrappers to reach the model class."""
    while True:
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(args) == 1 or origin in (list, tuple) and args:
            annotation = args[0]
        else:
            return annotation


def _suggest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f" '{key}': did you mean '{close[0]}'?"
    if allowed:
        return f" '{key}': remove it (allowed: {', '.join(allowed)})"
    return f" '{key}': remove it"
