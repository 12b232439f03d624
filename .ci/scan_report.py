"""checkov over synthesized manifests: prepare its input, then judge its findings.

``prepare <synth-dir> <scan-dir>``: copies the stack's Kubernetes manifests and adds, for every
LeaderWorkerSet (a CRD checkov does not read), its leader and worker pod templates as Pods, so
the GPU worker pods are scanned like any Deployment.

``judge <checkov.json> <skips> <pending>``: a failed check is
  * skipped   — its id is in ``.ci/checkov-skips.txt`` (a decision, each with its reason), or
  * pending   — it matches ``.ci/checkov-pending.txt`` (known, owned, to be fixed: delete the
                line when it is), or
  * new       — anything else: the scan fails.
A pending line that matches nothing is reported as stale (the fix landed: delete it).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Rule:
    check_id: str
    resource: str
    reason: str

    def matches(self, check_id: str, resource: str) -> bool:
        return self.check_id in (check_id, "*") and fnmatch.fnmatchcase(resource, self.resource)


def read_rules(path: Path, with_resource: bool) -> list[Rule]:
    """Rules of a skip (``ID  # why``) or pending (``ID resource-glob  # why``) file; a line
    without its reason is an error."""
    rules = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        body, _, reason = line.partition("#")
        fields = body.split()
        if not fields:
            continue
        if not reason.strip():
            raise SystemExit(f"{path}:{number}: '{line.strip()}' gives no reason: add '# why'")
        expected = 2 if with_resource else 1
        if len(fields) != expected:
            raise SystemExit(f"{path}:{number}: expected {expected} field(s) before '#', got {fields}")
        rules.append(Rule(fields[0], fields[1] if with_resource else "*", reason.strip()))
    return rules


def lws_pods(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The leader and worker pod templates of a LeaderWorkerSet, as Pods."""
    metadata = document.get("metadata") or {}
    template = (document.get("spec") or {}).get("leaderWorkerTemplate") or {}
    pods = []
    for role in ("leaderTemplate", "workerTemplate"):
        pod = template.get(role)
        if not pod:
            continue
        pod_metadata = dict(pod.get("metadata") or {})
        pod_metadata.update(
            name=f"{metadata.get('name', 'lws')}-{role.removesuffix('Template')}",
            namespace=metadata.get("namespace"),
        )
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": pod_metadata, "spec": pod.get("spec") or {}})
    return pods


def prepare(synth_dir: Path, scan_dir: Path) -> int:
    manifests = synth_dir / "manifests"
    if not manifests.is_dir():
        raise SystemExit(f"{manifests} does not exist: synthesize the stack first")
    if scan_dir.exists():
        shutil.rmtree(scan_dir)
    shutil.copytree(manifests, scan_dir)
    count = 0
    for path in sorted(scan_dir.rglob("leaderworkerset-*.yaml")):
        for pod in lws_pods(yaml.safe_load(path.read_text())):
            target = path.with_name(f"pod-{pod['metadata']['name']}.yaml")
            target.write_text(yaml.safe_dump(pod, sort_keys=True))
            count += 1
    print(f"{scan_dir}: manifests of {synth_dir.name}, {count} LeaderWorkerSet pod templates as Pods")
    return 0


def failed_checks(report: Any) -> list[tuple[str, str, str, str]]:
    """(check id, resource, file, name) of every failed check in a checkov JSON report."""
    reports = report if isinstance(report, list) else [report]
    found = []
    for item in reports:
        for check in (item.get("results") or {}).get("failed_checks") or []:
            found.append((check["check_id"], check["resource"], check.get("file_path", ""), check.get("check_name", "")))
    return sorted(set(found))


def judge(report_path: Path, skips_path: Path, pending_path: Path) -> int:
    report = json.loads(report_path.read_text() or "[]") if report_path.stat().st_size else []
    skips = read_rules(skips_path, with_resource=False)
    pending = read_rules(pending_path, with_resource=True)
    new: list[str] = []
    waiting: dict[Rule, int] = {}
    for check_id, resource, file, name in failed_checks(report):
        if any(rule.matches(check_id, resource) for rule in skips):
            continue
        rule = next((r for r in pending if r.matches(check_id, resource)), None)
        if rule is not None:
            waiting[rule] = waiting.get(rule, 0) + 1
        else:
            new.append(f"  NEW     {check_id} {resource.split('.app.kubernetes.io')[0]} ({file}): {name}")
    print(f"{report_path.name}: {len(new)} new, {sum(waiting.values())} pending findings")
    for line in new:
        print(line)
    for rule, count in waiting.items():
        print(f"  pending {rule.check_id} {rule.resource} ×{count}: {rule.reason}")
    return 1 if new else 0


def stale(pending_path: Path, report_paths: list[Path]) -> int:
    """Pending lines no report matches any more (print them; never fails the scan)."""
    pending = read_rules(pending_path, with_resource=True)
    findings = [f for p in report_paths if p.stat().st_size for f in failed_checks(json.loads(p.read_text()))]
    for rule in pending:
        if not any(rule.matches(check_id, resource) for check_id, resource, _, _ in findings):
            print(f"  stale pending entry (fixed? delete it): {rule.check_id} {rule.resource}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["prepare"] and len(argv) == 3:
        return prepare(Path(argv[1]), Path(argv[2]))
    if argv[:1] == ["judge"] and len(argv) == 4:
        return judge(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    if argv[:1] == ["stale"] and len(argv) >= 3:
        return stale(Path(argv[1]), [Path(p) for p in argv[2:]])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
