"""Reading ``Pulumi.<stack>.yaml`` safely: every unreadable file is one error naming file and line.

PyYAML's ``safe_load`` keeps the last of two equal keys and raises its own exceptions (with a
traceback) on syntax errors and bad encodings; the Pulumi CLI refuses duplicate keys. This
reader refuses them too, so the offline synth and ``pulumi up`` agree on what a file means.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from components.config.base import OFFLINE_SECRET
from components.config.errors import ConfigError, shown


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (Pulumi's YAML parser does too)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key (a list or mapping as a key)
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a string", key_node.start_mark
            ) from None
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {shown(key)} is given twice (first on line {first}): keep one", key_node.start_mark
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)

_FastLoader: type | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CUniqueKeyLoader(yaml.CSafeLoader):  # type: ignore[name-defined,misc]
        """The same loader over libyaml's parser (about 5x faster on a large stack file). Only a file
        that parses is read with it: errors are reported by PyYAML's parser, whose messages and marks
        the tests pin."""

    _CUniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    _FastLoader = _CUniqueKeyLoader


def _load(text: str) -> Any:
    if _FastLoader is not None:
        try:
            return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a CSafeLoader subclass
        except yaml.YAMLError:
            pass  # parsed again below, for PyYAML's message
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def parse_stack_text(text: str, name: str) -> dict[str, Any]:
    """The document of a stack file's ``text`` (``name`` is the file name for messages)."""
    try:
        document = _load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = err.problem or err.context or "not valid YAML"
        fix = "" if problem.endswith("keep one") else ": fix the YAML"
        raise ConfigError([f"{where}: {problem}{fix}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError([f"{name}: not valid YAML ({shown(str(err))}): fix the file"]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            [f"{name}:1: the file holds a {type(document).__name__}, not a mapping: start it with 'config:'"]
        )
    config = document.get("config")
    if config is not None and not isinstance(config, dict):
        raise ConfigError(
            [f"{name}: 'config' is a {type(config).__name__}, not a mapping of keys: write 'disagg:<key>: …' under it"]
        )
    for key in config or {}:
        if not isinstance(key, str):
            raise ConfigError([f"{name}: config key {shown(key)} is not a string: quote it or rename it"])
    return document


def read_stack_file(path: Path) -> dict[str, Any]:
    """The parsed stack file at ``path``; :class:`ConfigError` (file and line) if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError([f"{path.name}: cannot be read ({err.strerror}): fix its permissions"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            [f"{path.name}:{line}: byte 0x{data[err.start]:02x} is not UTF-8: save the file as UTF-8"]
        ) from None
    return parse_stack_text(text.removeprefix("\ufeff"), path.name)


class StackNotFoundError(LookupError):
    """The project or stack file is not there; the message names it and the stacks that are."""


def read_stack_config(project_dir: Path, stack: str) -> tuple[str, dict[str, str], list[str]]:
    """Project name, flat config (``ns:key`` → string, as Pulumi passes it) and secret keys."""
    project_file = project_dir / "Pulumi.yaml"
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not project_file.exists():
        raise StackNotFoundError(f"no Pulumi.yaml in {project_dir}: run from the project directory or pass --project")
    if not stack_file.exists():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackNotFoundError(f"no stack file {stack_file.name} (stacks here: {', '.join(known) or 'none'})")
    project = yaml.safe_load(project_file.read_text())["name"]
    stack_doc = read_stack_file(stack_file)  # ConfigError naming file and line, never a traceback
    raw: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (stack_doc.get("config") or {}).items():
        full_key = key if ":" in key else f"{project}:{key}"
        if _has_secret(value):
            secret_keys.append(full_key)
        value = _mask_secrets(value)
        raw[full_key] = value if isinstance(value, str) else json.dumps(value)
    return project, raw, sorted(secret_keys)


def _has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


def _mask_secrets(value: Any) -> Any:
    """Encrypted values cannot be read offline: they become a placeholder."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return OFFLINE_SECRET
        return {k: _mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(v) for v in value]
    return value
