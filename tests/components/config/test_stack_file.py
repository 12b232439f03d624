"""Unreadable stack files: one error naming the file and line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import ConfigError
from components.config.stack_file import read_stack_file


def problems_reading(tmp_path: Path, content: bytes) -> list[str]:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read_stack_file(path)
    return caught.value.problems


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    content = b"config:\n  disagg:namespace: a\n  aws:region: us-west-2\n  disagg:namespace: b\n"
    assert problems_reading(tmp_path, content) == [
        'Pulumi.bad.yaml:4: key "disagg:namespace" is given twice (first on line 2): keep one'
    ]


def test_duplicate_nested_keys_are_refused(tmp_path: Path) -> None:
    content = b"config:\n  disagg:cluster:\n    name: a\n    name: b\n"
    assert problems_reading(tmp_path, content) == [
        'Pulumi.bad.yaml:4: key "name" is given twice (first on line 3): keep one'
    ]


def test_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    content = b"config:\n  disagg:namespace: [a, b\n  aws:region: x\n"
    assert problems_reading(tmp_path, content) == [
        "Pulumi.bad.yaml:3: expected ',' or ']', but got ':': fix the YAML"
    ]


def test_a_bad_encoding_names_its_line(tmp_path: Path) -> None:
    content = b"config:\n  disagg:namespace: caf\xe9\n"
    assert problems_reading(tmp_path, content) == [
        "Pulumi.bad.yaml:2: byte 0xe9 is not UTF-8: save the file as UTF-8"
    ]


@pytest.mark.parametrize(("content", "kind"), [(b"- a\n- b\n", "list"), (b"just text\n", "str")])
def test_a_top_level_list_or_scalar_is_refused(tmp_path: Path, content: bytes, kind: str) -> None:
    assert problems_reading(tmp_path, content) == [
        f"Pulumi.bad.yaml:1: the file holds a {kind}, not a mapping: start it with 'config:'"
    ]


def test_config_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert problems_reading(tmp_path, b"config: [a]\n") == [
        "Pulumi.bad.yaml: 'config' is a list, not a mapping of keys: write 'disagg:<key>: …' under it"
    ]


def test_a_valid_file_with_a_bom_reads(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.ok.yaml"
    path.write_bytes("\ufeffconfig:\n  disagg:namespace: a\n".encode())
    assert read_stack_file(path) == {"config": {"disagg:namespace": "a"}}
