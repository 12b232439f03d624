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

COMMENT_MARKER = "<!-- disagg-synth-diff -->"
"""First line of the PR comment; the workflow finds and updates its previous comment by it."""
GITHUB_COMMENT_LIMIT = 65_536


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

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


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
    return result


FORECASTS_KEY = "deploymentForecasts"


def _forecasts(root: Path) -> dict[str, dict]:
    try:
        outputs = json.loads((root / "outputs.json").read_text())
    except (OSError, ValueError):
        return {}
    value = outputs.get(FORECASTS_KEY) if isinstance(outputs, dict) else None
    return value if isinstance(value, dict) else {}


def _signed(value: float, fmt: str, unit: str = "", prefix: str = "") -> str:
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{prefix}{format(abs(value), fmt)}{unit}"


def capacity_rows(diff: StackDiff) -> list[tuple[str, str, str, str, str]]:
    """Per deployment: name, GPUs, $/hour, tokens/s/GPU (head, or base if removed), change base→head."""
    rows = []
    for name in sorted(set(diff.base_forecasts) | set(diff.head_forecasts)):
        old, new = diff.base_forecasts.get(name), diff.head_forecasts.get(name)
        shown = new or old or {}
        gpus, cost, tps = shown.get("gpus"), shown.get("usd_per_hour"), shown.get("tokens_per_s_per_gpu")
        cells = (
            str(gpus) if gpus is not None else "-",
            f"{cost:,.2f}" if cost is not None else "-",
            f"{tps:,.1f}" if tps is not None else "-",
        )
        rows.append((name, *cells, _change(old, new)))
    return rows


def _change(old: dict | None, new: dict | None) -> str:
    if old is None and new is None:
        return ""
    if old is None:
        assert new is not None
        cost = new.get("usd_per_hour")
        return f"new: adds {new.get('gpus', 0)} GPUs" + (f", +${cost:,.2f}/hour" if cost is not None else "")
    if new is None:
        cost = old.get("usd_per_hour")
        return f"removed: frees {old.get('gpus', 0)} GPUs" + (f", −${cost:,.2f}/hour" if cost is not None else "")
    parts = []
    gpus = (new.get("gpus") or 0) - (old.get("gpus") or 0)
    if gpus:
        parts.append(f"{'adds' if gpus > 0 else 'frees'} {abs(gpus)} GPUs")
    if new.get("usd_per_hour") is not None and old.get("usd_per_hour") is not None:
        cost = new["usd_per_hour"] - old["usd_per_hour"]
        if abs(cost) >= 0.005:
            parts.append(_signed(cost, ",.2f", "/hour", "$"))
    a, b = old.get("tokens_per_s_per_gpu"), new.get("tokens_per_s_per_gpu")
    if a and b and abs(b - a) / a >= 0.0005:
        parts.append(_signed((b - a) / a * 100, ".1f", "% tokens/s/GPU"))
    elif b and not a:
        parts.append(f"now predicted {b:,.1f} tokens/s/GPU")
    if new.get("status") != old.get("status"):
        parts.append(f"status: {new.get('status')}")
    return ", ".join(parts) or "no change"


def stack_totals(diff: StackDiff) -> str:
    """"This PR adds 16 GPUs, +$65.54/hour" for one stack (empty when GPUs and cost are unchanged)."""

    def total(forecasts: dict[str, dict], key: str) -> float:
        return sum(float(f.get(key) or 0) for f in forecasts.values())

    gpus = total(diff.head_forecasts, "gpus") - total(diff.base_forecasts, "gpus")
    cost = total(diff.head_forecasts, "usd_per_hour") - total(diff.base_forecasts, "usd_per_hour")
    parts = []
    if gpus:
        parts.append(f"{'adds' if gpus > 0 else 'frees'} {abs(int(gpus))} GPUs")
    if abs(cost) >= 0.005:
        parts.append(_signed(cost, ",.2f", "/hour", "$"))
    return "This PR " + ", ".join(parts) if parts else ""


def render_capacity(diffs: list[StackDiff]) -> list[str]:
    """Markdown lines: GPUs, cost and predicted throughput per deployment, with base→head change."""
    lines: list[str] = []
    for d in diffs:
        rows = capacity_rows(d)
        if not rows:
            continue
        changed = [f"`{r[0]}` {r[4]}" for r in rows if r[4] and r[4] != "no change"]
        totals = stack_totals(d)
        if changed:
            lines.append(f"**`{d.stack}`**: " + (f"{totals} ({'; '.join(changed)})." if totals else f"{'; '.join(changed)}."))
        else:
            lines.append(f"**`{d.stack}`**: no change in GPUs, cost or predicted throughput.")
        lines += ["", "| deployment | GPUs | $/hour | tokens/s/GPU | change base→head |", "|---|---:|---:|---:|---|"]
        lines += [f"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]} | {r[4]} |" for r in rows]
        lines.append("")
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
    if all(d.is_empty for d in diffs):
        out.append("No resource or manifest changes in " + ", ".join(f"`{d.stack}`" for d in diffs) + ".")
        return "\n".join(out) + "\n"
    capacity = render_capacity(diffs)
    if capacity:
        out += ["### GPUs, cost and predicted throughput", "", *capacity]
    out += ["| stack | added | removed | changed |", "|---|---:|---:|---:|"]
    for d in diffs:
        note = " (new stack)" if d.base_missing else " (stack removed)" if d.head_missing else ""
        out.append(f"| `{d.stack}`{note} | {len(d.added)} | {len(d.removed)} | {len(d.changed)} |")
    out.append("")
    body: list[str] = []
    omitted = 0
    for d in diffs:
        if d.is_empty:
            continue
        body.append(f"### `{d.stack}`")
        for label, paths in (("added", d.added), ("removed", d.removed), ("changed", d.changed)):
            for rel in paths:
                body.append(f"- {label}: `{rel}` ({_kind(rel)})")
        body.append("")
        for rel in d.added + d.removed + d.changed:
            block = f"<details><summary><code>{d.stack}/{rel}</code></summary>\n\n```diff\n{d.patches[rel]}```\n</details>\n"
            if len("\n".join(out + body)) + len(block) > limit:
                omitted += 1
                continue
            body.append(block)
    out += body
    if omitted:
        out.append(
            f"_{omitted} diff(s) left out to fit a GitHub comment: run `.ci/pr-preview <base-ref>` "
            "locally for all of them._"
        )
    return "\n".join(out) + "\n"


def render_text(diffs: list[StackDiff]) -> str:
    """Terminal form: one line per differing file, then the patches."""
    lines: list[str] = []
    for d in diffs:
        lines.append(
            f"stack {d.stack}: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed"
        )
        lines += [f"  + {p}" for p in d.added] + [f"  - {p}" for p in d.removed] + [f"  ~ {p}" for p in d.changed]
        lines += [f"  {name}: {r4}" for name, _, _, _, r4 in capacity_rows(d) if r4 and r4 != "no change"]
    patches = "".join(d.patches[rel] for d in diffs for rel in d.added + d.removed + d.changed)
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
