"""Fixtures for engine tests: a recording Pulumi mock and upstream flag tables as parsers."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest

DATA = Path(__file__).parent / "data"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Echoes inputs back as state (names filled in) and records every registration."""

    resources: list[Recorded] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if "metadata" in state:
            state["metadata"] = {"name": args.name, **(state["metadata"] or {})}
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs), args.provider or ""))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]


@pytest.fixture
def mocks() -> RecordingMocks:
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, project="disagg", stack="test", preview=False)
    return recording


class _Raise(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would sys.exit; tests want the message
        raise ValueError(message)


def flag_parser(table: str) -> argparse.ArgumentParser:
    """An argparse parser rebuilt from a ``data/*_flags.txt`` table of upstream flags."""
    parser = _Raise(prog=table, add_help=False, allow_abbrev=False)
    for line in (DATA / table).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        flag, kind, *rest = line.split()
        if kind == "int":
            parser.add_argument(flag, type=int)
        elif kind == "str":
            parser.add_argument(flag, type=str)
        elif kind == "choice":
            parser.add_argument(flag, choices=rest[0].split(","))
        elif kind == "store_true":
            parser.add_argument(flag, action="store_true")
        elif kind == "nargs+":
            parser.add_argument(flag, nargs="+")
        else:
            raise AssertionError(f"{table}: unknown kind {kind!r} in {line!r}")
    return parser


@pytest.fixture
def parse_flags():
    """``parse_flags(table, argv)``: parse ``argv`` as upstream would (ValueError if it would refuse)."""

    def parse(table: str, argv: list[str]) -> argparse.Namespace:
        return flag_parser(table).parse_args(argv)

    return parse
