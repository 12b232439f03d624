"""Which changes of a synth diff matter most, and which are only dependency noise.

A resource whose only difference is its ``dependsOn`` list (a component gaining a dependency on a
new release makes every child of it list that release) changes no input of any resource: Pulumi
orders the update differently and replaces nothing. Those changes are collapsed into one summary
line; the others are listed most important first: removed resources (destroyed on apply), then
resources holding state or capacity (cluster, node groups, storage, network), then other changed
and added resources and manifests, then the synth's own summaries.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

DEPENDENCY_KEYS = ("dependsOn",)
"""Keys of a recorded resource (disaggctl.synth.program) that only order the deployment."""

STATEFUL_TYPES = (
    "aws_eks_cluster_Cluster",
    "aws_eks_nodeGroup_NodeGroup",
    "aws_fsx_",
    "aws_s3_bucket",
    "aws_ec2_vpc_Vpc",
    "aws_ec2_subnet_Subnet",
    "aws_ec2_launchTemplate_LaunchTemplate",
    "aws_ec2_placementGroup",
    "kubernetes_core_v1_PersistentVolumeClaim",
    "kubernetes_core_v1_Namespace",
)
"""Resource directories (``resources/<type>/``) whose changes can destroy data or capacity."""

METADATA_FILES = ("tree.txt", "summary.txt", "outputs.json")


def dependency_change(old_text: str, new_text: str) -> tuple[list[str], list[str]] | None:
    """(added, removed) dependencies when two recorded resources differ only in them, else None."""
    try:
        old, new = json.loads(old_text), json.loads(new_text)
    except ValueError:
        return None
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    strip = {k: v for k, v in old.items() if k not in DEPENDENCY_KEYS}
    if strip != {k: v for k, v in new.items() if k not in DEPENDENCY_KEYS}:
        return None
    before = [str(d) for key in DEPENDENCY_KEYS for d in old.get(key) or []]
    after = [str(d) for key in DEPENDENCY_KEYS for d in new.get(key) or []]
    return sorted(set(after) - set(before)), sorted(set(before) - set(after))


def importance(rel: str, status: str) -> tuple[int, str]:
    """Sort key of one changed file: lower comes first."""
    stateful = rel.startswith("resources/") and any(rel.split("/")[1].startswith(t) for t in STATEFUL_TYPES)
    if rel in METADATA_FILES:
        rank = 6
    elif status == "removed":
        rank = 0 if stateful else 1
    elif stateful:
        rank = 2
    elif status == "changed":
        rank = 3 if rel.startswith("manifests/") else 4
    else:
        rank = 5
    return rank, rel


def dependency_summary(changes: dict[str, tuple[list[str], list[str]]]) -> str:
    """One line for every dependency-only change: how many resources, and which dependencies moved."""
    gained: Counter[str] = Counter(d for added, _ in changes.values() for d in added)
    lost: Counter[str] = Counter(d for _, removed in changes.values() for d in removed)
    parts = [f"+{name} on {count}" for name, count in gained.most_common()]
    parts += [f"−{name} on {count}" for name, count in lost.most_common()]
    shown = ", ".join(parts[:6]) + (f", … {len(parts) - 6} more" if len(parts) > 6 else "")
    return (
        f"{len(changes)} resource(s) changed only in dependsOn ({shown}): apply order only, no input "
        "changes, nothing replaced"
    )


def ordered(entries: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(status, path) pairs, most important first."""
    return sorted(entries, key=lambda entry: importance(entry[1], entry[0]))


def fit(text: str, limit: int, note: str) -> str:
    """``text`` cut at a line so that it and ``note`` fit ``limit`` characters (unchanged if it fits)."""
    if len(text) <= limit:
        return text
    closing = "\n```\n</details>"
    room = limit - len(note) - len(closing) - 3
    cut = text.rfind("\n", 0, room)
    head = text[: cut if cut > 0 else room]
    if head.count("```") % 2:  # a fenced block left open would swallow the note
        head += closing
    return f"{head}\n\n{note}\n"
