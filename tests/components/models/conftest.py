"""A recording Pulumi mock for the model components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest


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
