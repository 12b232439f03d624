"""Property: any stack file either loads or fails with ConfigError in the clear-error format.

Two generators: configs built from the models' schema (right and wrong types, any subset of
keys), and the dev/prod stacks with one value replaced, removed or misspelt. Every problem must be
one line, bounded, and start with the key it is about; nothing else may be raised. Bounded
examples keep this under a few seconds.
"""

from __future__ import annotations

import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from components.config import ConfigError, StackConfig, load_stack_config
from components.config.errors import MAX_PROBLEM_CHARS
from disaggctl.synth.program import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[3]
STACKS = {name: read_stack_config(PROJECT_DIR, name)[1] for name in ("dev", "prod")}
SETTINGS = settings(max_examples=int(os.environ.get("CONFIG_PROPERTY_EXAMPLES", "120")), deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

NASTY_TEXT = st.sampled_from(
    ["", " ", "eight", "0.0.0.0/0", "kube-system", "1e400", "-1", "latest", "hf_" + "a1B2" * 10, "x" * 5000,
     "ünïcödé", "a\nb", "{", "[", "null", "1.33", "us-west-2-lax-1a", "8b-model", "10.0.0.1/16"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    NASTY_TEXT,
)
ANY_VALUE = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def check_outcome(raw: dict[str, str]) -> None:
    """Loads, or raises ConfigError whose every problem is one bounded line naming a key. What
    loads is a fixed point: written back (by alias, as the stack file spells it) it loads to the
    same configuration, so nothing was half-read or coerced into something the file does not say."""
    try:
        config = load_stack_config(raw)
    except ConfigError as err:
        assert err.problems, "a ConfigError without problems"
        for problem in err.problems:
            assert "\n" not in problem and "Traceback" not in problem, problem
            assert len(problem) <= MAX_PROBLEM_CHARS, problem
            key = problem.split(":", 2)
            assert len(key) >= 2 and key[0] and " " not in key[0], f"no key named: {problem}"
        assert len(str(err)) <= 60 * MAX_PROBLEM_CHARS
    else:
        assert load_stack_config(written_back(config)) == config


def written_back(config: StackConfig) -> dict[str, str]:
    """``config`` as the raw Pulumi config a stack file gives (only the keys it was given)."""
    sections = config.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return {f"disagg:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in sections.items()}


# -- configs generated from the schema ---------------------------------------------------------------


def _alias(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    return field.alias or name


def for_annotation(annotation: Any, depth: int) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if depth > 4:
        return SCALARS
    if origin in (typing.Union, types.UnionType):
        return st.one_of([for_annotation(a, depth) for a in args])
    if origin is Literal:
        return st.sampled_from(args) | SCALARS
    if origin in (list, tuple):
        return st.lists(for_annotation(args[0] if args else Any, depth + 1), max_size=3) | SCALARS
    if origin is dict:
        value = args[1] if len(args) == 2 else Any
        keys = st.sampled_from(["a", "llama-8b", "llama-8b-tp4", "8B", ""]) | st.text(max_size=8)
        return st.dictionaries(keys, for_annotation(value, depth + 1), max_size=2) | SCALARS
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return from_model(annotation, depth + 1)
    if annotation is bool:
        return st.booleans() | SCALARS
    if annotation is int:
        return st.integers(min_value=-10, max_value=10**12) | SCALARS
    if annotation is float:
        return st.floats(min_value=-1, max_value=2) | SCALARS
    if annotation is str:
        return NASTY_TEXT | st.text(max_size=20)
    return ANY_VALUE


def from_model(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    fields = {_alias(model, n): for_annotation(f.annotation, depth) for n, f in model.model_fields.items()}
    return st.fixed_dictionaries({}, optional=fields)


@SETTINGS
@given(config=from_model(StackConfig))
def test_configs_generated_from_the_schema_load_or_fail_clearly(config: dict[str, Any]) -> None:
    raw = {f"disagg:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    check_outcome(raw)


# -- mutations of the real stacks -----------------------------------------------------------------------


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def sections(raw: dict[str, str]) -> dict[str, Any]:
    return {k: json.loads(v) if v[:1] in "{[" else v for k, v in raw.items()}


@st.composite
def mutated_stack(draw: st.DrawFn) -> dict[str, str]:
    stack = draw(st.sampled_from(sorted(STACKS)))
    tree = sections(STACKS[stack])
    path = draw(st.sampled_from(paths(tree)))
    action = draw(st.sampled_from(["replace", "delete", "misspell", "add"]))
    parent: Any = tree
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = draw(ANY_VALUE)
    elif action == "delete":
        del parent[last]
    elif action == "misspell" and isinstance(last, str):
        parent[last[:-1] or "x"] = parent.pop(last)
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=12))] = draw(ANY_VALUE)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in tree.items()}


@SETTINGS
@given(raw=mutated_stack())
def test_mutated_stacks_load_or_fail_clearly(raw: dict[str, str]) -> None:
    check_outcome(raw)


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_the_unmutated_stacks_load_and_write_back_unchanged(stack: str) -> None:
    config = load_stack_config(STACKS[stack])
    assert config.cluster.name.startswith("llm-")
    assert load_stack_config(written_back(config)) == config


def test_check_outcome_fails_what_it_claims_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """The twins of the property: a problem without a key, a multi-line one, and a configuration
    that loads to something else when written back each fail check_outcome."""
    this = sys.modules[__name__]
    real = load_stack_config
    for problems in (["no key in this problem"], ["disagg:cluster: first line\nTraceback (most recent call last)"]):

        def refuse(raw, problems=problems):
            raise ConfigError(problems)

        monkeypatch.setattr(this, "load_stack_config", refuse)
        with pytest.raises(AssertionError):
            check_outcome(STACKS["dev"])
    loads = iter(["llm-dev", "llm-other"])

    def renaming(raw):
        config = real(raw)
        return config.model_copy(update={"cluster": config.cluster.model_copy(update={"name": next(loads)})})

    monkeypatch.setattr(this, "load_stack_config", renaming)
    with pytest.raises(AssertionError):
        check_outcome(STACKS["dev"])
