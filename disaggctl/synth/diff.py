"""Compare two synth outputs (base and head of a pull request) and render the difference.

A synth directory per stack holds ``tree.txt``, ``summary.txt``, ``outputs.json``,
``resources/…`` and ``manifests/…`` (see :mod:`disaggctl.synth.program`). Because synth is
deterministic, every differing file is a real change of the stack. The markdown rendering is
what the pull-request workflow posts as a comment: a table per stack, then the unified diffs,
cut to fit GitHub's comment limit.
"""

from __future__ import annotations

import argparse
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

from disaggctl.plan.cost import CostRow, render_cost_markdown, render_cost_text, row_from_json
from disaggctl.synth import triage

COMMENT_MARKER = "<!-- disagg-synth-diff -->"
"""First line of the PR comment; the workflow finds and updates its previous comment by it."""
GITHUB_COMMENT_LIMIT = 65_536


@dataclass(frozen=True)
class OptionChange:
    """One resource option that differs between base and head (None: not set on that side)."""

    resource: str
    """``<type dir>/<name>`` of the resource file."""
    option: str
    old: object
    new: object


def _options(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    options = document.get("options") if isinstance(document, dict) else None
    return options if isinstance(options, dict) else {}


def option_changes(rel: str, old: Path | None, new: Path | None) -> list[OptionChange]:
    """The resource options that differ between two versions of a ``resources/…json`` file
    (a resource added with options, or removed with them, counts as a change from/to unset)."""
    if not rel.startswith("resources/") or not rel.endswith(".json"):
        return []
    before, after = _options(old), _options(new)
    resource = rel.removeprefix("resources/").removesuffix(".json")
    return [
        OptionChange(resource, key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def _option_value(value: object) -> str:
    return "unset" if value is None else json.dumps(value, sort_keys=True)


@dataclass
class StackDiff:
    """What changed in one stack between base and head."""

    stack: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    patches: dict[str, str] = field(default_factory=dict)
    """Relative path -> unified diff text."""
    base_missing: bool = False
    head_missing: bool = False
    base_forecasts: dict[str, dict] = field(default_factory=dict)
    head_forecasts: dict[str, dict] = field(default_factory=dict)
    """Deployment -> forecast (outputs.json ``deploymentForecasts``: GPUs, $/hour, tokens/s/GPU)."""
    dependency_only: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    """Changed resource files whose only difference is ``dependsOn``: path -> (added, removed)."""
    option_changes: list[OptionChange] = field(default_factory=list)
    """Resource options (customTimeouts, protect, retainOnDelete, …) that differ, per resource."""
    base_pools: dict[str, dict] = field(default_factory=dict)
    head_pools: dict[str, dict] = field(default_factory=dict)
    """Pool -> cost row (outputs.json ``gpuPoolCosts``: disaggctl.cost.CostRow)."""

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def significant(self) -> list[tuple[str, str]]:
        """(added|removed|changed, path) of every change but the dependency-only ones, most important first."""
        entries = [("removed", r) for r in self.removed] + [("added", r) for r in self.added]
        entries += [("changed", r) for r in self.changed if r not in self.dependency_only]
        return triage.ordered(entries)


def _files(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)


def diff_stack(stack: str, base: Path, head: Path) -> StackDiff:
    """Compare one stack's synth directories (either may be missing: a new or deleted stack)."""
    result = StackDiff(stack, base_missing=not base.is_dir(), head_missing=not head.is_dir())
    result.base_forecasts, result.head_forecasts = _forecasts(base), _forecasts(head)
    result.base_pools, result.head_pools = _forecasts(base, POOL_COSTS_KEY), _forecasts(head, POOL_COSTS_KEY)
    base_files, head_files = _files(base), _files(head)
    for rel in sorted(set(base_files) | set(head_files)):
        old, new = base_files.get(rel), head_files.get(rel)
        if old is not None and new is not None and old.read_bytes() == new.read_bytes():
            continue
        if old is None:
            result.added.append(rel)
        elif new is None:
            result.removed.append(rel)
        else:
            result.changed.append(rel)
        patch = difflib.unified_diff(
            _lines(old), _lines(new),
            fromfile=f"a/{stack}/{rel}" if old else "/dev/null",
            tofile=f"b/{stack}/{rel}" if new else "/dev/null",
        )
        result.patches[rel] = "".join(line if line.endswith("\n") else line + "\n" for line in patch)
        if old is not None and new is not None and rel.startswith("resources/") and rel.endswith(".json"):
            moved = triage.dependency_change(old.read_text(errors="replace"), new.read_text(errors="replace"))
            if moved is not None:
                result.dependency_only[rel] = moved
        result.option_changes += option_changes(rel, old, new)
    return result


FORECASTS_KEY = "deploymentForecasts"
POOL_COSTS_KEY = "gpuPoolCosts"


def _forecasts(root: Path, key: str = FORECASTS_KEY) -> dict[str, dict]:
    try:
        outputs = json.loads((root / "outputs.json").read_text())
    except (OSError, ValueError):
        return {}
    value = outputs.get(key) if isinstance(outputs, dict) else None
    return value if isinstance(value, dict) else {}


def _signed(value: float, fmt: str, unit: str = "", prefix: str = "") -> str:
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{prefix}{format(abs(value), fmt)}{unit}"


def _delta(old: dict | None, new: dict | None, key: str) -> float | None:
    """new − old of a dollar figure (a side that is missing counts 0; None when a side is unpriced)."""
    a = 0.0 if old is None else old.get(key)
    b = 0.0 if new is None else new.get(key)
    return None if a is None or b is None else float(b) - float(a)


def _dollars(value: float | None) -> str:
    return "unpriced" if value is None else _signed(value, ",.2f", "/hour", "$") if abs(value) >= 0.005 else "±$0.00/hour"


def capacity_rows(diff: StackDiff) -> list[tuple[str, ...]]:
    """Per deployment: name, GPUs, nodes, $/hour, max $/hour, $/Mtok, tokens/s/GPU (head, or base
    if removed), change base→head."""
    rows: list[tuple[str, ...]] = []
    for name in sorted(set(diff.base_forecasts) | set(diff.head_forecasts)):
        old, new = diff.base_forecasts.get(name), diff.head_forecasts.get(name)
        shown = new or old or {}
        nodes, max_nodes = shown.get("nodes"), shown.get("max_nodes")
        cells = (
            _num(shown.get("gpus"), "d"),
            "-" if nodes is None else f"{nodes}" + (f"-{max_nodes}" if max_nodes not in (None, nodes) else ""),
            _num(shown.get("usd_per_hour"), ",.2f"),
            _num(shown.get("max_usd_per_hour"), ",.2f"),
            _num(shown.get("usd_per_million_tokens"), ",.3f"),
            _num(shown.get("tokens_per_s_per_gpu"), ",.1f"),
        )
        rows.append((name, *cells, _change(old, new)))
    return rows


def _num(value: float | int | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _change(old: dict | None, new: dict | None) -> str:
    if old is None and new is None:
        return ""
    expected, worst = _delta(old, new, "usd_per_hour"), _delta(old, new, "max_usd_per_hour")
    money = f"expected {_dollars(expected)}, worst case {_dollars(worst)}"
    if old is None:
        assert new is not None
        return f"new: adds {new.get('gpus', 0)} GPUs, {money}"
    if new is None:
        return f"removed: frees {old.get('gpus', 0)} GPUs, {money}"
    parts = []
    gpus = (new.get("gpus") or 0) - (old.get("gpus") or 0)
    if gpus:
        parts.append(f"{'adds' if gpus > 0 else 'frees'} {abs(gpus)} GPUs")
    if any(v is None or abs(v) >= 0.005 for v in (expected, worst)):
        parts.append(money)
    a, b = old.get("tokens_per_s_per_gpu"), new.get("tokens_per_s_per_gpu")
    if a and b and abs(b - a) / a >= 0.0005:
        parts.append(_signed((b - a) / a * 100, ".1f", "% tokens/s/GPU"))
    elif b and not a:
        parts.append(f"now predicted {b:,.1f} tokens/s/GPU")
    if new.get("status") != old.get("status"):
        parts.append(f"status: {new.get('status')}")
    return ", ".join(parts) or "no change"


def pool_changes(diff: StackDiff) -> list[tuple[CostRow, str]]:
    """Each pool (head's row, or base's if removed) and its change: nodes, price, $/hour expected
    and at the pool's ceiling (maxSize or its block)."""
    out = []
    for name in sorted(set(diff.base_pools) | set(diff.head_pools)):
        old, new = diff.base_pools.get(name), diff.head_pools.get(name)
        row = row_from_json(new or old or {})
        money = f"expected {_dollars(_delta(old, new, 'usd_per_hour'))}, worst case {_dollars(_delta(old, new, 'max_usd_per_hour'))}"
        if old is None:
            out.append((row, f"new pool: {money}"))
            continue
        if new is None:
            out.append((row, f"removed pool: {money}"))
            continue
        parts = []
        for key, label in (("instance_type", "instance"), ("kind", "bought as"), ("usd_per_node_hour", "$/node-hour"),
                           ("nodes", "nodes"), ("max_nodes", "max nodes")):
            if old.get(key) != new.get(key):
                parts.append(f"{label} {old.get(key)} → {new.get(key)}")
        expected, worst = _delta(old, new, "usd_per_hour"), _delta(old, new, "max_usd_per_hour")
        if parts or any(v is None or abs(v) >= 0.005 for v in (expected, worst)):
            parts.append(money)
        out.append((row, ", ".join(parts) or "no change"))
    return out


def stack_totals(diff: StackDiff) -> str:
    """"This PR adds 16 GPUs, expected +$65.54/hour, worst case +$131.09/hour" for one stack: the
    pools' whole nodes (the deployments' figures where a side has no pool rows); empty when nothing changes."""

    def total(rows: dict[str, dict], key: str) -> float | None:
        values = [f.get(key) for f in rows.values()]
        return None if any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]

    gpus = (total(diff.head_forecasts, "gpus") or 0) - (total(diff.base_forecasts, "gpus") or 0)
    base_rows = diff.base_pools or diff.base_forecasts
    head_rows = diff.head_pools or diff.head_forecasts
    money = []
    for key, label in (("usd_per_hour", "expected"), ("max_usd_per_hour", "worst case")):
        a, b = total(base_rows, key), total(head_rows, key)
        change = None if a is None or b is None else b - a
        if change is None or abs(change) >= 0.005:
            money.append(f"{label} {_dollars(change)}")
    parts = [f"{'adds' if gpus > 0 else 'frees'} {abs(int(gpus))} GPUs"] if gpus else []
    parts += money
    return "This PR " + ", ".join(parts) if parts else ""


CAPACITY_HEADER = ("deployment", "GPUs", "nodes", "$/hour", "max $/hour", "$/Mtok", "tokens/s/GPU", "change base→head")


def render_capacity(diffs: list[StackDiff]) -> list[str]:
    """Markdown lines per stack: the change in one line, each deployment (whole nodes, $/hour
    expected and at maxGroups, $/Mtok at its target rate) and each pool's cost rows with their change."""
    lines: list[str] = []
    for d in diffs:
        rows = capacity_rows(d)
        pools = pool_changes(d)
        if not rows and not pools:
            continue
        changed = [f"`{r[0]}` {r[-1]}" for r in rows if r[-1] and r[-1] != "no change"]
        changed += [f"pool `{row.pool}` {change}" for row, change in pools if change != "no change"]
        totals = stack_totals(d)
        if changed or totals:
            lines.append(f"**`{d.stack}`**: " + (f"{totals} ({'; '.join(changed)})." if totals else f"{'; '.join(changed)}."))
        elif d.is_empty:
            lines.append(f"**`{d.stack}`**: no change in GPUs, cost or predicted throughput.")
        else:
            lines.append(f"**`{d.stack}`**: cost unchanged (expected ±$0.00/hour, worst case ±$0.00/hour); "
                         "predicted throughput unchanged.")
        if rows:
            lines += ["", "| " + " | ".join(CAPACITY_HEADER) + " |", "|---|" + "---:|" * 6 + "---|"]
            lines += ["| `" + r[0] + "` | " + " | ".join(r[1:]) + " |" for r in rows]
        if pools:
            header, rule, *body = render_cost_markdown([row for row, _ in pools]).splitlines()
            lines += ["", header + " change base→head |", rule + "---|"]
            lines += [f"{line} {change} |" for line, (_, change) in zip(body, pools, strict=True)]
        lines.append("")
    return lines


def render_capacity_text(diffs: list[StackDiff]) -> list[str]:
    """The same as :func:`render_capacity` for a terminal."""
    lines: list[str] = []
    for d in diffs:
        rows, pools = capacity_rows(d), pool_changes(d)
        totals = stack_totals(d)
        if totals:
            lines.append(f"  {totals}")
        lines += [f"  {r[0]}: {r[-1]}" for r in rows if r[-1] and r[-1] != "no change"]
        lines += [f"  pool {row.pool}: {change}" for row, change in pools if change != "no change"]
        if pools:
            lines += render_cost_text([row for row, _ in pools], indent="    ").rstrip("\n").splitlines()
    return lines


def diff_roots(base_root: Path, head_root: Path, stacks: list[str] | None = None) -> list[StackDiff]:
    """Compare every stack directory under two roots (``<root>/<stack>/…``)."""
    if stacks is None:
        names = {p.name for root in (base_root, head_root) if root.is_dir() for p in root.iterdir() if p.is_dir()}
        stacks = sorted(names)
    return [diff_stack(stack, base_root / stack, head_root / stack) for stack in stacks]


def _kind(rel: str) -> str:
    parts = rel.split("/")
    if parts[0] == "resources" and len(parts) > 2:
        return parts[1]
    if parts[0] == "manifests" and len(parts) > 2:
        return f"manifest {parts[-1].split('-', 1)[0]}"
    return parts[0]


def render_markdown(diffs: list[StackDiff], limit: int = GITHUB_COMMENT_LIMIT - 1_000) -> str:
    """The PR comment: a summary per stack, then diffs until ``limit`` characters."""
    out = [COMMENT_MARKER, "## Synth preview", ""]
    if all(d.is_empty for d in diffs) and not any(stack_totals(d) for d in diffs):
        out.append("No resource or manifest changes in " + ", ".join(f"`{d.stack}`" for d in diffs) + ".")
        return "\n".join(out) + "\n"
    capacity = render_capacity(diffs)
    if capacity:
        out += ["### GPUs, cost and predicted throughput", "", *capacity]
    out += ["| stack | added | removed | changed | only dependsOn |", "|---|---:|---:|---:|---:|"]
    for d in diffs:
        note = " (new stack)" if d.base_missing else " (stack removed)" if d.head_missing else ""
        changed = len(d.changed) - len(d.dependency_only)
        out.append(f"| `{d.stack}`{note} | {len(d.added)} | {len(d.removed)} | {changed} | {len(d.dependency_only)} |")
    out.append("")
    options = [(d.stack, c) for d in diffs for c in d.option_changes]
    if options:
        out += ["### Resource options", "", "| stack | resource | option | base | head |", "|---|---|---|---|---|"]
        out += [
            f"| `{stack}` | `{c.resource}` | `{c.option}` | `{_option_value(c.old)}` | `{_option_value(c.new)}` |"
            for stack, c in options
        ]
        out.append("")
    body: list[str] = []
    omitted = 0
    size = len("\n".join(out))
    for d in diffs:
        if d.is_empty:
            continue
        listing = [f"### `{d.stack}`"]
        if d.dependency_only:
            listing.append(f"- {triage.dependency_summary(d.dependency_only)}")
        significant = d.significant()
        listing += [f"- {label}: `{rel}` ({_kind(rel)})" for label, rel in significant[:MAX_LISTED]]
        if len(significant) > MAX_LISTED:
            listing.append(f"- … and {len(significant) - MAX_LISTED} more (most important listed first)")
        listing.append("")
        body += listing
        size += sum(len(line) + 1 for line in listing)
        for _, rel in significant:
            block = f"<details><summary><code>{d.stack}/{rel}</code></summary>\n\n```diff\n{d.patches[rel]}```\n</details>\n"
            if size + len(block) > limit:
                omitted += 1
                continue
            body.append(block)
            size += len(block) + 1
    out += body
    if omitted:
        out.append(
            f"_{omitted} diff(s) left out to fit a GitHub comment: run `.ci/pr-preview <base-ref>` "
            "locally for all of them._"
        )
    return triage.fit("\n".join(out) + "\n", GITHUB_COMMENT_LIMIT, TRUNCATED_NOTE)


MAX_LISTED = 200
"""Changed files listed by name per stack (the rest are counted)."""
TRUNCATED_NOTE = (
    "_The preview was cut to fit GitHub's 65,536-character comment limit: run `.ci/pr-preview "
    "<base-ref>` locally, or download the synth-preview artifact, for the whole of it._"
)


def render_text(diffs: list[StackDiff]) -> str:
    """Terminal form: one line per differing file, then the patches."""
    lines: list[str] = []
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for d in diffs:
        changed = len(d.changed) - len(d.dependency_only)
        lines.append(
            f"stack {d.stack}: {len(d.added)} added, {len(d.removed)} removed, {changed} changed"
            + (f", {len(d.dependency_only)} only in dependsOn" if d.dependency_only else "")
        )
        if d.dependency_only:
            lines.append(f"  = {triage.dependency_summary(d.dependency_only)}")
        lines += [f"  {marks[label]} {rel}" for label, rel in d.significant()]
        lines += render_capacity_text([d])
        lines += [
            f"  option {c.resource} {c.option}: {_option_value(c.old)} -> {_option_value(c.new)}"
            for c in d.option_changes
        ]
    patches = "".join(d.patches[rel] for d in diffs for _, rel in d.significant())
    return "\n".join(lines) + "\n" + patches


def _synth_diff(args: argparse.Namespace) -> int:
    base, head = Path(args.base), Path(args.head)
    if not base.is_dir() and not head.is_dir():
        print(f"synth-diff: neither {base} nor {head} is a directory: run synth first", flush=True)
        return 2
    diffs = [diff_stack(args.stack, base, head)] if args.stack else diff_roots(base, head)
    text = render_markdown(diffs) if args.format == "markdown" else render_text(diffs)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    changed = any(not d.is_empty for d in diffs)
    return 1 if args.exit_code and changed else 0


def add_diff_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``synth-diff`` on the disaggctl command line."""
    cmd = commands.add_parser(
        "synth-diff",
        help="compare two synth outputs (base vs head) and print the change as text or a PR comment",
    )
    cmd.add_argument("base", help="base synth: a root with one directory per stack, or one stack's directory with --stack")
    cmd.add_argument("head", help="head synth, laid out like base")
    cmd.add_argument("--stack", help="compare BASE and HEAD as this one stack's directories")
    cmd.add_argument("--format", choices=["text", "markdown"], default="text")
    cmd.add_argument("--out", help="write to this file instead of stdout")
    cmd.add_argument("--exit-code", action="store_true", help="exit 1 when anything differs (like git diff --exit-code)")
    cmd.set_defaults(func=_synth_diff)
