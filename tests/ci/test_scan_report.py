"""The checkov judge of .ci/scan: skipped, pending and new findings; LeaderWorkerSet pods scanned."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("scan_report", PROJECT_DIR / ".ci/scan_report.py")
assert _spec is not None and _spec.loader is not None
scan_report = importlib.util.module_from_spec(_spec)
sys.modules["scan_report"] = scan_report  # dataclasses look their module up
_spec.loader.exec_module(scan_report)


def report(tmp_path: Path, failed: list[tuple[str, str]]) -> Path:
    path = tmp_path / "stack.json"
    checks = [{"check_id": c, "resource": r, "file_path": "/x.yaml", "check_name": "n"} for c, r in failed]
    path.write_text(json.dumps([{"check_type": "kubernetes", "results": {"failed_checks": checks}}]))
    return path


def files(tmp_path: Path, skips: str, pending: str) -> tuple[Path, Path]:
    (tmp_path / "skips").write_text(skips)
    (tmp_path / "pending").write_text(pending)
    return tmp_path / "skips", tmp_path / "pending"


def test_a_finding_neither_skipped_nor_pending_fails_the_scan(tmp_path: Path, capsys) -> None:
    skips, pending = files(tmp_path, "CKV_K8S_43  # digests optional\n", "CKV_K8S_20 Deployment.*-frontend  # serving\n")
    failed = [
        ("CKV_K8S_43", "Deployment.ns.a-frontend"),
        ("CKV_K8S_20", "Deployment.ns.a-frontend"),
        ("CKV_K8S_20", "Deployment.ns.router"),
    ]
    assert scan_report.judge(report(tmp_path, failed), skips, pending) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "stack.json: 1 new, 1 pending findings"
    assert out[1] == "  NEW     CKV_K8S_20 Deployment.ns.router (/x.yaml): n"
    assert out[2] == "  pending CKV_K8S_20 Deployment.*-frontend ×1: serving"


def test_only_skipped_and_pending_findings_pass(tmp_path: Path) -> None:
    skips, pending = files(tmp_path, "CKV_K8S_43  # digests optional\n", "CKV_K8S_20 Deployment.*-frontend  # serving\n")
    failed = [("CKV_K8S_43", "Job.ns.engine"), ("CKV_K8S_20", "Deployment.ns.a-frontend")]
    assert scan_report.judge(report(tmp_path, failed), skips, pending) == 0


def test_every_rule_needs_its_reason(tmp_path: Path) -> None:
    skips, pending = files(tmp_path, "CKV_K8S_43\n", "")
    with pytest.raises(SystemExit, match="gives no reason"):
        scan_report.judge(report(tmp_path, []), skips, pending)


def test_the_committed_rules_all_have_reasons() -> None:
    skips = scan_report.read_rules(PROJECT_DIR / ".ci/checkov-skips.txt", with_resource=False)
    assert [rule.check_id for rule in skips] == ["CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_11", "CKV_K8S_25", "CKV_K8S_40"]
    assert all(len(rule.reason) > 40 for rule in skips)
    # every finding the serving layer and the Jobs had is fixed: nothing is pending
    assert scan_report.read_rules(PROJECT_DIR / ".ci/checkov-pending.txt", with_resource=True) == []


def test_leader_worker_set_templates_become_pods() -> None:
    lws = {
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "m-workers", "namespace": "llm"},
        "spec": {"leaderWorkerTemplate": {
            "leaderTemplate": {"metadata": {"labels": {"role": "leader"}}, "spec": {"containers": [{"name": "o"}]}},
            "workerTemplate": {"spec": {"containers": [{"name": "w"}]}},
        }},
    }  # fmt: skip
    leader, worker = scan_report.lws_pods(lws)
    assert leader == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"labels": {"role": "leader"}, "name": "m-workers-leader", "namespace": "llm"},
        "spec": {"containers": [{"name": "o"}]},
    }  # fmt: skip
    assert (worker["metadata"]["name"], worker["spec"]["containers"][0]["name"]) == ("m-workers-worker", "w")
