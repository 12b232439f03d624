"""Mutation testing of the modules that decide what is refused and how requests flow.

Why not mutmut: mutmut 3 mutates only code inside functions (not
module-level facts such as the capacity leads or the byte tables), copies the package into
``mutants/`` with trampolines and first runs the whole suite to map tests to functions (4-8
minutes on two cores here). What is needed here is small: a bounded, reproducible sample per
module, run against that module's own test folder, with a reviewed list of equivalent mutants.
This script does that with the standard library only:

* operator mutants found in the module's AST: flipped comparisons (``<`` ↔ ``<=``, ``==`` ↔
  ``!=``, ``in`` ↔ ``not in``, ``is`` ↔ ``is not``), arithmetic swaps (``+`` ↔ ``-``, ``*`` ↔
  ``/``, ``//`` ↔ ``/``, ``%`` → ``//``), ``and`` ↔ ``or``, numeric constants ±1, negated
  conditions (``if``/``while``/``elif``/conditional expressions, ``not x`` → ``x``) and dropped
  statements (a call statement, ``raise``, ``return``, ``continue``/``break`` or an augmented
  assignment replaced by ``pass``); docstrings, type annotations, logging calls (``log.info(...)``,
  as PIT's default ``avoidCallsTo``), a bare ``return``/``return None`` ending a function (dropping
  it changes nothing) and lines marked ``# pragma: no mutate`` are left alone;
* each mutant is one changed node, written with ``ast.unparse`` into a copy of the tracked files
  (the working tree is never touched), then the module's test paths run there with
  ``pytest -x``, one run per path in the order listed (a file listed before its folder runs
  first, alone), under one timeout: a failure or a timeout kills the mutant; a run that times out
  is killed with its process group (the servers its tests started);
* a baseline run of the unmutated (unparsed) module must pass first, else nothing is scored;
* mutants listed in ``tools/mutation-equivalent.txt`` (module, scope, source line, mutation and its column, and why the
  change cannot alter behaviour) are left out of the score: score = killed / (total - equivalent).

Usage (from the repository root, with the project's venv)::

    python tools/mutation.py components/config/capacity.py --sample 40
    python tools/mutation.py --all --sample 40 --fail-under 90     # what the workflow runs
    python tools/mutation.py runtime/protocol.py --list             # the mutants, nothing run
    python tools/mutation.py engines/llm_api_checks.py --lines 95,145 --sample 0   # one survivor's line

Output: one line per mutant (KILLED / TIMEOUT / SURVIVED / EQUIVALENT, the line and the change),
then ``<module>: killed K/N (P%)`` per module and a final ``mutation score: K/N (P%)`` line.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODULES: dict[str, tuple[str, ...]] = {
    # module -> the test paths that exercise it: its mirrored test folder (a file listed first runs
    # first, so most mutants are killed before the slow real-process tests start)
    "components/config/capacity.py": ("tests/components/config/test_capacity_rules.py", "tests/components/config"),
    "components/config/validation.py": ("tests/components/config",),
    "components/config/limits.py": ("tests/components/config",),
    "engines/checks.py": ("tests/engines",),
    "engines/llm_api_checks.py": ("tests/engines",),
    "runtime/protocol.py": ("tests/runtime/test_protocol.py", "tests/runtime"),
    "runtime/router.py": ("tests/runtime/test_router.py", "tests/runtime/test_router_refusals.py", "tests/runtime"),
    "disaggctl/plan/pricing.py": ("tests/disaggctl/plan/test_pricing.py", "tests/disaggctl/plan"),
    "disaggctl/plan/cost.py": ("tests/disaggctl/plan/test_cost.py", "tests/disaggctl/plan"),
}
"""What ``--all`` runs. Each path is relative to the repository root."""

EQUIVALENT_FILE = ROOT / "tools" / "mutation-equivalent.txt"

CMP_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
BIN_SWAP: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv,
}
SYMBOL: dict[type, str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.And: "and",
    ast.Or: "or",
}
DROPPABLE = (ast.Expr, ast.Raise, ast.Return, ast.Continue, ast.Break, ast.AugAssign)


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int
    """Position in the module's site list (the walk order of the AST)."""
    line: int
    col: int
    """Column of the changed node: tells apart two equal changes on one line."""
    scope: str
    """The enclosing function or class (``_efa_share``, ``CapacityBlockConfig._ordered``)."""
    source_line: str
    description: str

    def key(self) -> str:
        """Stable across edits elsewhere in the file: module | scope | source line | change @ col N."""
        return f"{self.module} | {self.scope} | {self.source_line} | {self.description} @ col {self.col}"


def _skip_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, decorators."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body:
            # docstrings: the first statement, and a string right after an assignment (attribute docs)
            for i, stmt in enumerate(body):
                is_text = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
                if is_text and (i == 0 or isinstance(body[i - 1], (ast.Assign, ast.AnnAssign))):
                    mark(stmt)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            last = node.body[-1]
            if isinstance(last, ast.Return) and (last.value is None or _is_none(last.value)):
                mark(last)  # a bare ``return``/``return None`` that ends a function: dropping it changes nothing
            mark(node.returns)
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs, node.args.vararg, node.args.kwarg]:
                if arg is not None:
                    mark(arg.annotation)
            for decorator in node.decorator_list:
                mark(decorator)
        if isinstance(node, ast.ClassDef):
            for decorator in node.decorator_list:
                mark(decorator)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            mark(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mark(node)
        if isinstance(node, ast.Expr) and _is_log_call(node.value):
            mark(node)
    return skip


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


def _is_log_call(node: ast.expr) -> bool:
    """``log.info(...)``-style calls (a logger named log/logger/logging): not mutated, as PIT leaves
    logging calls alone by default (``avoidCallsTo``): what an operator reads is not behaviour the
    tests assert, and dropping a log line is no bug they could catch."""
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS
        and isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logger", "logging")
    )


def _sites(tree: ast.Module, lines: list[str]) -> list[tuple[ast.AST, str, str]]:
    """Every (node, kind, description) a mutant can change, in a stable order."""
    skip = _skip_nodes(tree)
    sites: list[tuple[ast.AST, str, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        lineno = getattr(node, "lineno", None)
        if lineno is not None and "pragma: no mutate" in lines[lineno - 1]:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in CMP_SWAP:
                    sites.append((node, f"cmp:{i}", f"{SYMBOL[type(op)]} -> {SYMBOL[CMP_SWAP[type(op)]]}"))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BIN_SWAP:
            sites.append((node, "binop", f"{SYMBOL[type(node.op)]} -> {SYMBOL[BIN_SWAP[type(node.op)]]}"))
        elif isinstance(node, ast.BoolOp):
            other = ast.Or if isinstance(node.op, ast.And) else ast.And
            sites.append((node, "boolop", f"{SYMBOL[type(node.op)]} -> {SYMBOL[other]}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            sites.append((node, "unnot", "not x -> x"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            sites.append((node, "const+", f"{node.value!r} -> {node.value + 1!r}"))
            sites.append((node, "const-", f"{node.value!r} -> {node.value - 1!r}"))
        if isinstance(node, (ast.If, ast.While, ast.IfExp)):
            sites.append((node, "negate", "condition negated"))
        if isinstance(node, DROPPABLE) and not (
            isinstance(node, ast.Expr) and not isinstance(node.value, (ast.Call, ast.Await))
        ):
            sites.append((node, "drop", f"statement dropped ({type(node).__name__.lower()})"))
    return sites


def _mutate(tree: ast.Module, lines: list[str], index: int) -> ast.Module:
    """A copy of ``tree`` with site ``index`` changed."""
    mutated = copy.deepcopy(tree)
    node, kind, _ = _sites(mutated, lines)[index]
    if kind.startswith("cmp:"):
        i = int(kind[4:])
        assert isinstance(node, ast.Compare)
        node.ops[i] = CMP_SWAP[type(node.ops[i])]()
    elif kind == "binop":
        assert isinstance(node, (ast.BinOp, ast.AugAssign))
        node.op = BIN_SWAP[type(node.op)]()
    elif kind == "boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "unnot":
        assert isinstance(node, ast.UnaryOp)
        _replace(mutated, node, node.operand)
    elif kind in ("const+", "const-"):
        assert isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
        node.value = node.value + (1 if kind == "const+" else -1)
    elif kind == "negate":
        assert isinstance(node, (ast.If, ast.While, ast.IfExp))
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif kind == "drop":
        _replace(mutated, node, ast.Pass())
    return ast.fix_missing_locations(mutated)


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list) and any(v is old for v in value):
                setattr(parent, field, [new if v is old else v for v in value])
                return
    raise AssertionError("node not found")


def _scopes(tree: ast.Module) -> dict[int, str]:
    """id of every node -> the dotted name of the function or class around it ('' at module level)."""
    scopes: dict[int, str] = {}

    def visit(node: ast.AST, scope: str) -> None:
        scopes[id(node)] = scope
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope = f"{scope}.{node.name}" if scope else node.name
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, "")
    return scopes


def mutants(module: str, root: Path = ROOT) -> tuple[ast.Module, list[str], list[Mutant]]:
    source = (root / module).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    scopes = _scopes(tree)
    found = [
        Mutant(
            module, i, getattr(node, "lineno", 0), getattr(node, "col_offset", 0), scopes[id(node)] or "<module>",
            lines[getattr(node, "lineno", 1) - 1].strip(), description,
        )
        for i, (node, _, description) in enumerate(_sites(tree, lines))
    ]
    return tree, lines, found


def sample(found: list[Mutant], size: int, seed: int) -> list[Mutant]:
    """``size`` mutants drawn with ``seed`` (0: all), in file order."""
    if size <= 0 or size >= len(found):
        return sorted(found, key=lambda m: (m.line, m.index))
    chosen = random.Random(f"{seed}:{found[0].module}").sample(found, size)
    return sorted(chosen, key=lambda m: (m.line, m.index))


def load_equivalent(path: Path = EQUIVALENT_FILE) -> set[str]:
    """Keys of mutants judged equivalent: ``module | scope | source line | change @ col N | why`` per line."""
    if not path.exists():
        return set()
    keys = set()
    for raw in path.read_text().splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            parts = [p.strip() for p in raw.split(" | ")]
            if len(parts) < 5 or not parts[4]:
                raise SystemExit(f"{path}: '{raw}' needs five fields: module | scope | source line | change @ col N | why")
            keys.add(" | ".join(parts[:4]))
    return keys


def copy_tree(dest: Path) -> None:
    """The tracked (and untracked, not ignored) files of the repository, without caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if not src.is_file() or "__pycache__" in src.parts:
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _pytest(tree_dir: Path, paths: list[str], timeout: float) -> str:
    """'pass', 'fail' or 'timeout' of one pytest run; on a timeout its whole process group (the
    servers its tests started included) is killed."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(tree_dir))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *paths]
    proc = subprocess.Popen(command, cwd=tree_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    _RUNNING.append(proc)
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return "timeout"
    finally:
        _RUNNING.remove(proc)
    if returncode == 5:
        raise SystemExit(f"{' '.join(paths)}: pytest collected no test")
    return "pass" if returncode == 0 else "fail"


_RUNNING: list[subprocess.Popen[bytes]] = []
"""The pytest run in progress (its process group is killed when the tool is stopped)."""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_plan(tests: tuple[str, ...]) -> list[list[str]]:
    """The pytest runs for ``tests``, in the order given: pytest merges a file with a folder that
    holds it and collects in folder order, so a file listed before its folder is run on its own
    first (its fast tests kill most mutants) and left out of the folder's run."""
    runs: list[list[str]] = []
    earlier: list[str] = []
    for path in tests:
        inside = [f for f in earlier if f != path and Path(f).is_relative_to(path)]
        runs.append([path, *(f"--ignore={f}" for f in inside)])
        earlier.append(path)
    return runs


def run_tests(tree_dir: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float]:
    """'pass', 'fail' or 'timeout' of the test paths (run in order, stopping at the first failure),
    and the seconds taken; ``timeout`` bounds all of them together."""
    start = time.monotonic()
    for paths in run_plan(tests):
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            return "timeout", time.monotonic() - start
        outcome = _pytest(tree_dir, paths, left)
        if outcome != "pass":
            return outcome, time.monotonic() - start
    return "pass", time.monotonic() - start


def run_module(
    module: str, tests: tuple[str, ...], tree_dir: Path, size: int, seed: int,
    equivalent: set[str], timeout: float | None, only_lines: frozenset[int] = frozenset(),
) -> tuple[int, int, int]:
    """(killed, scored, equivalent) for ``module`` of the copy ``tree_dir``; prints one line per mutant."""
    tree, lines, found = mutants(module, tree_dir)
    if only_lines:
        found = [m for m in found if m.line in only_lines]
    chosen = sample(found, size, seed)
    target = tree_dir / module
    original = target.read_text()
    target.write_text(ast.unparse(tree) + "\n")
    outcome, seconds = run_tests(tree_dir, tests, timeout=600)
    if outcome != "pass":
        target.write_text(original)
        raise SystemExit(f"{module}: the unmutated module fails {' '.join(tests)} ({outcome}): fix that first")
    limit = timeout or max(30.0, 3 * seconds + 10)
    print(f"# {module}: {len(chosen)} of {len(found)} mutants, tests {' '.join(tests)} "
          f"(baseline {seconds:.1f}s, timeout {limit:.0f}s)", flush=True)
    killed = scored = skipped = 0
    try:
        for mutant in chosen:
            if mutant.key() in equivalent:
                skipped += 1
                print(f"EQUIVALENT {module}:{mutant.line} ({mutant.scope}): {mutant.description}: {mutant.source_line}", flush=True)
                continue
            target.write_text(ast.unparse(_mutate(tree, lines, mutant.index)) + "\n")
            outcome, _ = run_tests(tree_dir, tests, limit)
            scored += 1
            status = {"fail": "KILLED", "timeout": "TIMEOUT", "pass": "SURVIVED"}[outcome]
            killed += status != "SURVIVED"
            print(f"{status} {module}:{mutant.line} ({mutant.scope}): {mutant.description}: {mutant.source_line}", flush=True)
    finally:
        target.write_text(original)
    return killed, scored, skipped


def percent(killed: int, scored: int) -> str:
    return f"{100 * killed / scored:.0f}%" if scored else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths (default with --all: every module of MODULES)")
    parser.add_argument("--all", action="store_true", help="every module of MODULES")
    parser.add_argument("--tests", nargs="+", help="test paths to run instead of the module's own")
    parser.add_argument("--sample", type=int, default=40, help="mutants per module, drawn with --seed (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 3 × the baseline run + 10, ≥ 30)")
    parser.add_argument("--lines", help="only the mutants on these lines (comma-separated; applies to each module named)")
    parser.add_argument("--list", action="store_true", help="print the sampled mutants, run nothing")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 if a module's score is below this percent")
    args = parser.parse_args(argv)

    modules = list(MODULES) if args.all else args.modules
    if not modules:
        parser.error("name a module or use --all")
    for module in modules:
        if module not in MODULES and not args.tests:
            parser.error(f"{module} has no test paths in MODULES: add it there or pass --tests")
    equivalent = load_equivalent()
    only_lines = frozenset(int(n) for n in args.lines.split(",")) if args.lines else frozenset()
    if args.list:
        for module in modules:
            _, _, found = mutants(module)
            found = [m for m in found if not only_lines or m.line in only_lines]
            for mutant in sample(found, args.sample, args.seed):
                mark = " (equivalent)" if mutant.key() in equivalent else ""
                print(f"{module}:{mutant.line}:{mutant.col} ({mutant.scope}): {mutant.description}: {mutant.source_line}{mark}")
        return 0

    results: dict[str, tuple[int, int, int]] = {}
    def stop(*_: object) -> None:  # the temporary tree is removed and the tests' servers killed on a kill too
        for proc in list(_RUNNING):
            _kill_group(proc)
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        tree_dir = Path(tmp)
        copy_tree(tree_dir)
        for module in modules:
            tests = tuple(args.tests) if args.tests else MODULES[module]
            results[module] = run_module(
                module, tests, tree_dir, args.sample, args.seed, equivalent, args.timeout, only_lines
            )

    print()
    failing = []
    for module, (killed, scored, skipped) in results.items():
        print(f"{module}: killed {killed}/{scored} ({percent(killed, scored)})"
              + (f", {skipped} equivalent left out" if skipped else ""))
        if scored and 100 * killed / scored < args.fail_under:
            failing.append(module)
    killed = sum(r[0] for r in results.values())
    scored = sum(r[1] for r in results.values())
    print(f"mutation score: {killed}/{scored} ({percent(killed, scored)})")
    if failing:
        print(f"below {args.fail_under:g}%: {', '.join(failing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
