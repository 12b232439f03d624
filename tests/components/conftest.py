"""Fixtures for component tests: declare components under the recording Pulumi mocks, then inspect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
import pytest
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from disaggctl.synth.fast_registration import install_fast_mocks
from disaggctl.testing.mocks import RecordedResource

T = TypeVar("T")


@dataclass
class Declared:
    """What a program declared: every registered resource, with inputs as the engine saw them."""

    resources: list[RecordedResource]

    def of_type(self, typ: str) -> list[RecordedResource]:
        return sorted((r for r in self.resources if r.type == typ), key=lambda r: r.name)

    def one(self, typ: str, name: str | None = None) -> RecordedResource:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"{len(found)} {typ} named {name}: {[r.name for r in self.of_type(typ)]}"
        return found[0]

    def named(self, name: str) -> RecordedResource:
        (found,) = [r for r in self.resources if r.name == name]
        return found

    def types(self) -> set[str]:
        return {r.type for r in self.resources}

    @staticmethod
    def resolve(value: Any) -> Any:
        """The value of an Output (or plain value) once the program has run."""
        return _sync_await(pulumi.Output.from_input(value).future())


@pytest.fixture
def declare() -> Callable[[Callable[[], T]], tuple[T, Declared]]:
    """``declare(build)``: run ``build`` as a Pulumi program under mocks; its result and resources."""

    def run(build: Callable[[], T]) -> tuple[T, Declared]:
        monitor = install_fast_mocks("disagg", "test")
        result: dict[str, T] = {}

        def program() -> None:
            result["value"] = build()

        _sync_await(run_pulumi_func(program))
        return result["value"], Declared(list(monitor.recorded.values()))

    return run
