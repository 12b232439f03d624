"""The import graph follows the layers: no import runs up a layer or across a room, and no cycle.

Every module of the project packages is parsed (``ast``), imports inside functions included, and
each import of a project module becomes an edge. ``LAYERS`` is the one table of who may import
whom: a module may import modules of its own unit (the longest prefix in the table) and of units
with a lower rank, never a unit of its own rank or higher. Within a unit, modules must not import
each other in a circle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("runtime", "engines", "components", "disaggctl")

LAYERS: dict[str, int] = {
    # libraries: import nothing of the project
    "runtime": 0,  # the serving processes (frontend, router, standin): shipped into pods
    "engines": 0,  # LLM API options and checks, engine specs and build entrypoints
    # the Pulumi components
    "components.config": 1,  # the typed stack configuration and its validation
    "components.cluster": 2,
    "components.storage": 3,
    "components.platform": 3,
    "components.models": 3,
    "components.serving": 4,  # the pieces both runtimes use
    "components.serving.llmapi": 5,
    "components.serving.triton": 5,
    "components": 5,  # the package's own __init__
    # the command line
    "disaggctl.testing": 6,
    "disaggctl.verify": 6,
    "disaggctl.plan": 6,
    "disaggctl.docs": 6,  # the configuration reference and schema generator
    "disaggctl.synth": 7,
    "disaggctl": 8,  # the CLI entry point
    "__main__": 9,  # the Pulumi program
}
"""Unit (package prefix) -> rank; a module imports its own unit and lower ranks only."""


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project packages and ``__main__``."""
    modules = {"__main__": root / "__main__.py"} if (root / "__main__.py").is_file() else {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports anywhere in its file (deferred imports included).

    ``from package import submodule`` is an import of the submodule only."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # ``import a.b.c`` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def unit(module: str) -> str:
    """The longest prefix of ``module`` in ``LAYERS``."""
    parts = module.split(".")
    for size in range(len(parts), 0, -1):
        prefix = ".".join(parts[:size])
        if prefix in LAYERS:
            return prefix
    raise KeyError(f"{module}: no unit in LAYERS: add its package to the table")


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {module: imports(module, path, modules) for module, path in modules.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """One line per import of a unit of the same or a higher rank (other than the module's own)."""
    problems = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            mine, theirs = unit(module), unit(target)
            if mine != theirs and LAYERS[theirs] >= LAYERS[mine]:
                problems.append(
                    f"{module} imports {target}: {theirs} (rank {LAYERS[theirs]}) is not below "
                    f"{mine} (rank {LAYERS[mine]})"
                )
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_every_module_has_a_layer(graph: dict[str, set[str]]) -> None:
    for module in graph:
        unit(module)


def test_no_import_runs_up_a_layer(graph: dict[str, set[str]]) -> None:
    assert upward_imports(graph) == []


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_the_libraries_import_nothing_of_the_project(graph: dict[str, set[str]]) -> None:
    for module, targets in graph.items():
        if unit(module) in ("runtime", "engines"):
            assert {unit(t) for t in targets} <= {unit(module)}, module


def test_the_graph_sees_deferred_and_relative_imports(tmp_path: Path) -> None:
    """The checker on a made-up tree: an import inside a function that runs up, and a cycle."""
    (tmp_path / "components" / "config").mkdir(parents=True)
    (tmp_path / "components" / "serving").mkdir(parents=True)
    (tmp_path / "components" / "__init__.py").write_text("")
    (tmp_path / "components" / "config" / "__init__.py").write_text("")
    (tmp_path / "components" / "serving" / "__init__.py").write_text("")
    (tmp_path / "components" / "config" / "a.py").write_text(
        "def f():\n    from components.serving import pods\n    return pods\n"
    )
    (tmp_path / "components" / "config" / "b.py").write_text("from . import c\n")
    (tmp_path / "components" / "config" / "c.py").write_text("import components.config.b\n")
    (tmp_path / "components" / "serving" / "pods.py").write_text("from components.config.a import f\n")
    made_up = import_graph(tmp_path)
    assert upward_imports(made_up) == [
        "components.config.a imports components.serving.pods: components.serving (rank 4) is not below "
        "components.config (rank 1)"
    ]
    assert cycles(made_up) == [
        ["components.config.a", "components.serving.pods"],
        ["components.config.b", "components.config.c"],
    ]


PRIVATE_SDK = re.compile(
    r"\b(pulumi[A-Za-z_.]*|runtime_config|settings|rpc)\._[A-Za-z]|_SECRET_KEYS|_get_rpc_manager|_sync_await|_OutputData"
)
"""Private Pulumi SDK names (``pulumi._types``, ``rpc._add_dependency``, ``_sync_await``, ...)."""


def test_the_pulumi_up_path_uses_the_public_sdk_only() -> None:
    """components/, engines/ and __main__.py: what ``pulumi up`` runs. The synth tool's fast
    registration (disaggctl/synth/) may use SDK internals, behind its version guard."""
    files = [ROOT / "__main__.py", *sorted((ROOT / "components").rglob("*.py")), *sorted((ROOT / "engines").rglob("*.py"))]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE_SDK.search(line)
    ]
    assert found == []
    assert PRIVATE_SDK.search("from pulumi.runtime.sync_await import _sync_await")  # the pattern bites


def test_the_tests_mirror_the_packages() -> None:
    """Each directory of tests holds the tests of the package at the same place (``tests/ci``: ``.ci``)."""
    outside = {"ci": ".ci"}
    unmatched = []
    for directory in sorted({path.parent for path in (ROOT / "tests").rglob("test_*.py")}):
        parts = directory.relative_to(ROOT / "tests").parts
        if not parts:
            continue
        source = ROOT / outside.get(parts[0], parts[0]) / Path(*parts[1:])
        if not source.is_dir():
            unmatched.append(str(directory.relative_to(ROOT)))
    assert unmatched == []
