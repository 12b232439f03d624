"""Reading and validating the stack configuration: every problem reported, nothing created."""

from __future__ import annotations

import contextlib
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from components.config.base import OFFLINE_SECRET
from components.config.errors import ConfigError, shown
from components.config.stack import NAMESPACE, StackConfig
from components.config.validation import check_provider_region, check_stack

__all__ = [
    "OFFLINE_RENDER_KEY", "OFFLINE_SECRET", "ConfigError", "load_from_pulumi", "load_stack_config", "parse_raw_config",
]

PROVIDER_NAMESPACES = ("aws", "kubernetes", "pulumi", "random", "tls", "command")
"""Config namespaces of providers: passed through unread."""


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
            if _misspelled_namespace(namespace):
                fix = f"{NAMESPACE}:{key}" if key in known else f"{NAMESPACE}:<key>"
                problems.append(
                    f"{shown(full_key)[1:-1]}: unknown namespace '{shown(namespace)[1:-1]}': did you "
                    f"mean '{fix}'? (keys of this project read {NAMESPACE}:<key>)"
                )
            continue
        if key not in known:
            problems.append(f"{full_key}: unknown key{_suggest(key, known)}")
            continue
        value = raw[full_key]
        if isinstance(value, str) and value[:1] in "{[" and value != OFFLINE_SECRET:  # "[secret]" is a string
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                problems.append(f"{full_key}: not valid JSON/YAML structure ({err}): fix the value")
                continue
        sections[key] = value
    return sections, problems


def _misspelled_namespace(namespace: str) -> bool:
    """Whether ``namespace`` is this project's namespace mistyped (``disag``, ``Disagg``)."""
    if namespace in PROVIDER_NAMESPACES:
        return False
    lowered = namespace.lower()
    return lowered == NAMESPACE or bool(difflib.get_close_matches(lowered, [NAMESPACE], n=1, cutoff=0.7))


def load_stack_config(raw: Mapping[str, str], secret_keys: Iterable[str] = ()) -> StackConfig:
    """Validate the raw Pulumi config; raise :class:`ConfigError` listing every problem.

    ``secret_keys``: the ``ns:key`` names Pulumi holds encrypted; values that must be secret
    (a kubeconfig) are refused when their key is not among them.
    """
    sections, problems = parse_raw_config(raw)
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(sections)
    except ValidationError as err:
        problems += [_describe(error) for error in err.errors()]
    if config is not None:
        problems += config.cross_check(capacity=False)
        problems += check_stack(config, frozenset(secret_keys))
        problems += check_provider_region(config, raw.get("aws:region"))
        if not problems:  # capacity is judged on an otherwise valid stack (no cascade of messages)
            problems += config.capacity_report().problems
    if problems:
        unique = list(dict.fromkeys(problems))  # one line per problem, however many groups share its cause
        raise ConfigError(_scrub(unique, raw, frozenset(secret_keys)))
    assert config is not None
    return config


def _scrub(problems: list[str], raw: Mapping[str, str], secret_keys: frozenset[str]) -> list[str]:
    """Problems with the long string values of secret keys (kubeconfigs, tokens) replaced by [secret]."""
    secrets: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str) and (len(value) >= 24 or "\n" in value) and value != OFFLINE_SECRET:
            secrets.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for key in secret_keys:
        value = raw.get(key)
        if isinstance(value, str) and value[:1] in "{[":
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        collect(value)
    for secret in sorted(secrets, key=len, reverse=True):
        problems = [p.replace(secret, OFFLINE_SECRET) for p in problems]
        for line in (s for s in secret.splitlines() if len(s.strip()) >= 24):
            problems = [p.replace(line, OFFLINE_SECRET) for p in problems]
    return problems


OFFLINE_RENDER_KEY = f"{NAMESPACE}:offlineRender"
"""Set to ``"true"`` by ``python -m disaggctl synth`` only (a stack file holding it is refused
there): the program renders offline, so placeholders (:meth:`StackConfig.deploy_blockers`) are
warnings instead of stopping it."""


def load_from_pulumi() -> StackConfig:
    """Read this stack's configuration from the running Pulumi program (call once).

    On a real update (not ``pulumi preview``, not the offline synth) the placeholders a deploy
    cannot go on with are refused here, before anything is declared."""
    import pulumi
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime import get_config_env, get_config_secret_keys_env, is_config_secret

    # The SDK has no public call that lists every key of the stack (``pulumi.Config`` reads one key
    # at a time), and the loader needs them all to name unknown keys: ``CONFIG`` is the SDK's
    # (unprefixed) map the engine fills. Secrecy goes through the public ``is_config_secret``.
    raw = dict(get_config_env())
    raw.update(runtime_config.CONFIG.get())
    offline = raw.pop(OFFLINE_RENDER_KEY, None) == "true"
    secret_keys = set(get_config_secret_keys_env()) | {key for key in raw if is_config_secret(key)}
    config = load_stack_config(raw, secret_keys)
    blockers = config.deploy_blockers()
    if blockers and not offline and not pulumi.runtime.is_dry_run():
        raise ConfigError(blockers)
    return config


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
    return f"{path}: {message} (got {shown(error.get('input'))}): fix the value"


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
        annotation = _unwrap(annotation)
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
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
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
