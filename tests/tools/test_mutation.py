"""tools/mutation.py: the mutants it makes, the score it gives, and the equivalence list it trusts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "tools" / "mutation.py")
assert _spec and _spec.loader
mutation = importlib.util.module_from_spec(_spec)
sys.modules["mutation_tool"] = mutation
_spec.loader.exec_module(mutation)

MODULE = '''"""A module docstring is not mutated."""
LIMIT: int = 3
"""Nor an attribute docstring."""


def refuse(x: int) -> list[str]:
    problems = []
    if x > LIMIT and not x % 2:
        problems.append(f"{x} is too large")
    return problems
'''
TESTS = '''from m import refuse


def test_refuse():
    assert refuse(4) == ["4 is too large"]
    assert refuse(2) == refuse(5) == []
'''


def write_project(tmp_path: Path) -> Path:
    (tmp_path / "m.py").write_text(MODULE)
    (tmp_path / "test_m.py").write_text(TESTS)
    return tmp_path


def test_the_operator_mutants_of_a_small_module(tmp_path: Path) -> None:
    _, _, found = mutation.mutants("m.py", write_project(tmp_path))
    assert sorted((m.line, m.scope, m.description) for m in found) == [
        (2, "<module>", "3 -> 2"),
        (2, "<module>", "3 -> 4"),
        (8, "refuse", "% -> //"),
        (8, "refuse", "2 -> 1"),
        (8, "refuse", "2 -> 3"),
        (8, "refuse", "> -> >="),
        (8, "refuse", "and -> or"),
        (8, "refuse", "condition negated"),
        (8, "refuse", "not x -> x"),
        (9, "refuse", "statement dropped (expr)"),
        (10, "refuse", "statement dropped (return)"),
    ]


def test_a_mutant_changes_one_node(tmp_path: Path) -> None:
    import ast

    tree, lines, found = mutation.mutants("m.py", write_project(tmp_path))
    (flip,) = [m for m in found if m.description == "> -> >="]
    mutated = ast.unparse(mutation._mutate(tree, lines, flip.index))
    assert "if x >= LIMIT and (not x % 2):" in mutated
    assert mutated.replace(">=", ">") == ast.unparse(tree)


def test_the_score_of_a_small_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """refuse(4), refuse(2) and refuse(5) kill every mutant but two that no input can tell apart:
    LIMIT 3 -> 2 and x > LIMIT -> x >= LIMIT differ only at x = 3, which is odd (refused by neither)."""
    project = write_project(tmp_path)
    killed, scored, equivalent = mutation.run_module("m.py", ("test_m.py",), project, 0, 0, set(), 60)
    out = capsys.readouterr().out
    assert sorted(line for line in out.splitlines() if line.startswith("SURVIVED")) == [
        "SURVIVED m.py:2 (<module>): 3 -> 2: LIMIT: int = 3",
        "SURVIVED m.py:8 (refuse): > -> >=: if x > LIMIT and not x % 2:",
    ]
    assert (killed, scored, equivalent) == (9, 11, 0)
    assert (project / "m.py").read_text() == MODULE  # the copy is put back


def test_equivalent_mutants_are_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Listed mutants are neither run nor scored (all listed here: only the baseline runs)."""
    project = write_project(tmp_path)
    keys = {m.key() for m in mutation.mutants("m.py", project)[2]}
    assert "m.py | refuse | if x > LIMIT and not x % 2: | > -> >= @ col 7" in keys
    assert mutation.run_module("m.py", ("test_m.py",), project, 0, 0, keys, 60) == (0, 0, 11)
    out = capsys.readouterr().out
    assert out.count("EQUIVALENT m.py:") == 11 and "KILLED" not in out and "SURVIVED" not in out


def test_every_listed_equivalent_mutant_still_exists() -> None:
    """A stale entry (the line changed) would hide nothing, but would mislead the reader."""
    listed = mutation.load_equivalent()
    existing = {m.key() for module in {k.split(" | ")[0] for k in listed} for m in mutation.mutants(module)[2]}
    assert listed and listed <= existing


def test_equivalent_entries_need_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "equivalent.txt"
    path.write_text("m.py | refuse | if x: | 2 -> 1 @ col 4 |\n")
    with pytest.raises(SystemExit, match="needs five fields"):
        mutation.load_equivalent(path)


def test_every_module_of_the_workflow_has_its_tests() -> None:
    for module, tests in mutation.MODULES.items():
        assert (ROOT / module).is_file(), module
        assert all((ROOT / t).exists() for t in tests), tests


def test_list_runs_nothing() -> None:
    done = subprocess.run([sys.executable, "tools/mutation.py", "runtime/protocol.py", "--list", "--sample", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert len(done.stdout.splitlines()) == 3 and all(line.startswith("runtime/protocol.py:") for line in done.stdout.splitlines())


def test_the_workflow_mutates_every_module_of_the_table() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "mutation.yml").read_text())
    matrix = workflow["jobs"]["mutation"]["strategy"]["matrix"]["module"]
    choices = workflow[True]["workflow_dispatch"]["inputs"]["module"]["options"]  # YAML 1.1 reads `on` as True
    assert matrix == list(mutation.MODULES)
    assert choices == ["all", *mutation.MODULES]


def test_listed_files_run_alone_before_their_folder() -> None:
    """pytest merges a file with its folder and collects in folder order: the tool splits the runs."""
    assert mutation.run_plan(("tests/runtime/test_router.py", "tests/runtime/test_router_refusals.py", "tests/runtime")) == [
        ["tests/runtime/test_router.py"],
        ["tests/runtime/test_router_refusals.py"],
        ["tests/runtime", "--ignore=tests/runtime/test_router.py", "--ignore=tests/runtime/test_router_refusals.py"],
    ]
    assert mutation.run_plan(("tests/a", "tests/b/test_x.py")) == [["tests/a"], ["tests/b/test_x.py"]]


def test_a_timed_out_run_is_killed_with_the_servers_it_started(tmp_path: Path) -> None:
    import subprocess as sp
    import time

    marker = tmp_path / "child.pid"
    (tmp_path / "test_hang.py").write_text(
        "import subprocess, sys, time\n"
        "def test_hang():\n"
        f"    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"    open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "    time.sleep(60)\n"
    )
    start = time.monotonic()
    assert mutation.run_tests(tmp_path, ("test_hang.py",), timeout=5)[0] == "timeout"
    assert time.monotonic() - start < 20
    pid = int(marker.read_text())
    for _ in range(50):
        if sp.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip() in ("", "Z"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the test's child {pid} outlived the timeout")


def test_logging_calls_and_a_final_bare_return_are_not_mutated(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import logging\n"
        "log = logging.getLogger(__name__)\n\n\n"
        "def f(x):\n"
        "    log.info('x is %s', x)\n"
        "    if x:\n"
        "        return None\n"
        "    print(x)\n"
        "    return None\n"
    )
    found = sorted((m.line, m.description) for m in mutation.mutants("m.py", tmp_path)[2])
    assert found == [(7, "condition negated"), (8, "statement dropped (return)"), (9, "statement dropped (expr)")]
