"""docs/config-reference.md and schema/stack.schema.json are what the config models generate (CI
fails on a stale one), the schema accepts the shipped stacks and refuses what the loader refuses,
and the reference names every key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from disaggctl.__main__ import main as disaggctl_main
from disaggctl.docs.reference import (
    REFERENCE_PATH,
    SCHEMA_LINE,
    SCHEMA_PATH,
    generated_files,
    model_paths,
    stale_files,
)

PROJECT_DIR = Path(__file__).resolve().parents[3]
STACKS = ("dev", "prod")


def test_the_committed_files_are_current() -> None:
    assert stale_files(PROJECT_DIR) == [], "run `python -m disaggctl docs` and commit the result"


def test_check_fails_on_a_stale_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_text((PROJECT_DIR / name).read_text())
    assert disaggctl_main(["docs", "--project", str(tmp_path)]) == 0
    assert disaggctl_main(["docs", "--check", "--project", str(tmp_path)]) == 0
    reference = tmp_path / REFERENCE_PATH
    reference.write_text(reference.read_text().replace("minGroups", "minGroup", 1))
    capsys.readouterr()
    assert disaggctl_main(["docs", "--check", "--project", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"docs: {REFERENCE_PATH} is not what the models generate: run `python -m disaggctl docs`\n"
    )


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((PROJECT_DIR / SCHEMA_PATH).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def stack_doc(stack: str) -> dict[str, Any]:
    return yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())


@pytest.mark.parametrize("stack", STACKS)
def test_the_schema_accepts_the_shipped_stacks(stack: str, validator: jsonschema.Draft202012Validator) -> None:
    assert [e.message for e in validator.iter_errors(stack_doc(stack))] == []


@pytest.mark.parametrize("stack", STACKS)
def test_each_shipped_stack_points_editors_at_the_schema(stack: str) -> None:
    assert (PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text().partition("\n")[0] == SCHEMA_LINE
    assert (PROJECT_DIR / SCHEMA_PATH).exists()


def all_messages(errors: Any) -> list[str]:
    """Messages of the errors and of the branches of the unions (Optional sections) they failed."""
    out: list[str] = []
    for error in errors:
        out.append(error.message)
        out += all_messages(error.context or [])
    return out


def test_the_schema_refuses_a_mistyped_key_a_wrong_type_and_an_unknown_enum(validator) -> None:
    doc = stack_doc("dev")
    workers = doc["config"]["disagg:deployments"][0]["workers"]
    workers["groupz"] = 2
    workers["podsPerGroup"] = "two"
    doc["config"]["disagg:cluster"]["eks"]["gpuNodePools"][0]["capacityType"] = "reserved"
    messages = all_messages(validator.iter_errors(doc))
    assert any("'groupz' was unexpected" in m for m in messages)
    assert any("'two' is not of type 'integer'" in m for m in messages)
    assert any("'reserved' is not one of" in m for m in messages)


def test_a_secret_value_is_valid_where_a_string_is(validator) -> None:
    doc = stack_doc("dev")
    doc["config"]["disagg:namespace"] = {"secure": "v1:abc"}
    assert [e.message for e in validator.iter_errors(doc)] == []


def test_the_reference_documents_every_key_with_type_default_and_applicability() -> None:
    text = generated_files(PROJECT_DIR)[REFERENCE_PATH]
    for model in model_paths():
        section = text.split(f"\n## {model.__name__}\n", 1)[1].split("\n## ", 1)[0]
        for name, field in model.model_fields.items():
            key = field.alias or name
            line = next((ln for ln in section.splitlines() if re.match(rf"- \*\*`(disagg:)?{re.escape(key)}`\*\* · ", ln)), None)
            assert line is not None, f"{model.__name__}.{key} missing"
            assert line.count(" · ") >= 3, line  # type · default · (constraints ·) applicability
            assert ("applies " in line) or ("all runtimes and modes" in line), line


def test_every_leaf_key_has_an_example() -> None:
    text = generated_files(PROJECT_DIR)[REFERENCE_PATH]
    entries = text.split("\n- **`")[1:]
    missing = [e.split("`", 1)[0] for e in entries if "Example: `" not in e.split("\n\n", 1)[0] and "](#" not in e.split("\n", 1)[0]]
    assert missing == []


def test_a_known_key_reads_as_documented() -> None:
    text = generated_files(PROJECT_DIR)[REFERENCE_PATH]
    assert (
        "- **`capacityType`** · `\"on-demand\"` \\| `\"spot\"` \\| `\"capacity-block\"` · `on-demand` · applies to provider: eks"
        in text
    )
    assert "- **`tensorParallelSize`** · integer · `1` · ≥ 1 · applies to runtime llmapi" in text
