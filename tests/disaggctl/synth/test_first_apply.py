"""The first-apply check (disaggctl.synth.first_apply) over the shipped stacks and over resources built
to break one await rule each."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from disaggctl.synth.first_apply import first_apply_problems, first_apply_steps, parse_duration
from disaggctl.synth.program import resource_document, run_program

PROJECT_DIR = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def documents() -> dict[str, list[dict]]:
    return {
        stack: [resource_document(r) for r in run_program(PROJECT_DIR, stack).resources]
        for stack in ("dev", "prod")
    }


def _named(docs: list[dict], name: str) -> dict:
    return next(d for d in docs if d["name"] == name)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_shipped_resource_waits_longer_than_its_timeout(documents: dict, stack: str) -> None:
    assert first_apply_problems(documents[stack]) == []


def test_the_walk_is_in_dependency_order_and_adds_up_the_waits(documents: dict) -> None:
    """Each resource comes after what it depends on; the 70B frontend is ready only after its
    model Job's deadline (7200 s) plus its own image pull and probes (1215 s)."""
    steps = first_apply_steps(documents["prod"])
    position = {s.name: i for i, s in enumerate(steps)}
    for doc in documents["prod"]:
        for dep in doc["dependsOn"]:
            assert position[dep] < position[doc["name"]], (dep, doc["name"])
    by_name = {s.name: s for s in steps}
    assert by_name["model-llama-70b-job"].needs_s == 7200
    assert by_name["llama-70b-frontend-deployment"].ready_at_s >= 7200 + 1215
    assert by_name["llama-70b-prefill-leaderworkerset"].timeout_s is None  # a custom resource: not awaited


def test_router_readiness_on_workers_is_refused(documents: dict) -> None:
    """A router whose readiness is /health (503 until workers are healthy) waits on GPUs: no bound."""
    docs = copy.deepcopy(documents["prod"])
    router = _named(docs, "llama-70b-router-deployment")
    router["inputs"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/health"
    problems = first_apply_problems(docs)
    assert any(p.startswith("Deployment 'llama-70b-router-deployment'") and "needs GPU workers" in p for p in problems)
    assert any(p.startswith("Service 'llama-70b-router-service'") for p in problems)


def test_a_job_awaited_for_less_than_its_deadline_is_refused(documents: dict) -> None:
    docs = copy.deepcopy(documents["dev"])
    job = _named(docs, "model-llama-8b-job")
    job["options"]["customTimeouts"] = {"create": "30m"}
    assert first_apply_problems(docs) == [
        "Job 'model-llama-8b-job': pulumi up waits 1800 s for it, but it needs up to 3600 s (completes or fails "
        "by activeDeadlineSeconds 3600): raise its customTimeouts, or set pulumi.com/skipAwait with a reason"
    ]


def test_a_deployment_reading_a_job_it_does_not_wait_for_adds_the_job(documents: dict) -> None:
    """Without the dependency on its model Job, the frontend's pods would wait for the download
    inside the Deployment's own timeout."""
    docs = copy.deepcopy(documents["dev"])
    frontend = _named(docs, "llama-8b-frontend-deployment")
    frontend["dependsOn"] = [d for d in frontend["dependsOn"] if d != "model-llama-8b-job"]
    problems = first_apply_problems(docs)
    assert len(problems) == 1 and "needs up to 4815 s" in problems[0]
    assert "its pods read what Job model-llama-8b-job writes, not awaited first" in problems[0]


def test_the_fsx_claim_without_wait_for_meets_the_fixed_five_minutes(documents: dict) -> None:
    docs = copy.deepcopy(documents["dev"])
    claim = _named(docs, "llm-dev-store-claim")
    del claim["inputs"]["metadata"]["annotations"]["pulumi.com/waitFor"]
    assert first_apply_problems(docs) == [
        "PersistentVolumeClaim 'llm-dev-store-claim': pulumi up waits 300 s for it, but it needs up to 1200 s (a "
        "new FSx for Lustre file system is created for it): raise its customTimeouts, or set pulumi.com/skipAwait "
        "with a reason"
    ]


def test_skip_await_silences_a_resource(documents: dict) -> None:
    docs = copy.deepcopy(documents["dev"])
    job = _named(docs, "model-llama-8b-job")
    job["options"]["customTimeouts"] = {"create": "60s"}
    job["inputs"]["metadata"]["annotations"]["pulumi.com/skipAwait"] = "true"
    assert first_apply_problems(docs) == []


def test_durations_are_go_durations() -> None:
    assert parse_duration("8100s") == 8100 and parse_duration("1h30m") == 5400
    with pytest.raises(ValueError, match="customTimeouts value '10 min'"):
        parse_duration("10 min")


def test_cli_reads_a_synth_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from disaggctl.__main__ import main
    from disaggctl.synth.program import synthesize

    synthesize(PROJECT_DIR, "dev", tmp_path / "dev")
    assert main(["first-apply", str(tmp_path / "dev")]) == 0
    assert "every awaited resource is ready within its timeout" in capsys.readouterr().out
    assert main(["first-apply", str(tmp_path)]) == 2
