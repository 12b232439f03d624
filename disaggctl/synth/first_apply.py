"""First-apply check: would the first ``pulumi up`` of a synthesized stack wait on something that
cannot be ready within the waiting resource's timeout?

A pure function over the synth's resource documents (``resources/<type>/<name>.json``, see
:func:`disaggctl.synth.program.resource_document`). It walks the resources in dependency order with a
model of pulumi-kubernetes' await rules, read from pulumi/pulumi-kubernetes @94977969d641 (the
newest source readable here; the pinned 4.34.2's tag is not, so where the model must guess it
guesses long):

=====================  ======================================================================
kind                   what ``pulumi up`` waits for (provider/pkg/await/…)
=====================  ======================================================================
Deployment             the rollout: updated, available replicas (deployment.go); pods are ready
                       once their image is pulled and their readiness probe passes
Job                    completion (job.go); a Job ends, done or failed, by activeDeadlineSeconds
PersistentVolumeClaim  Bound, or Pending for a WaitForFirstConsumer class, for a fixed 5 minutes
                       whatever the timeout (awaiters.go ``untilCoreV1PersistentVolumeClaimReady``)
Service                no not-ready endpoint among its selected pods (headless and selector-less
                       Services: none), and an address for type LoadBalancer (service.go)
helm.sh/v3 Release     Helm's own wait for the chart's objects, bounded by the release's
                       ``timeout`` input (not modeled here: the platform charts wait on CPU nodes only)
everything else        nothing (custom resources, ConfigMaps, policies, …: awaiters.go ``awaiters``
                       has no entry or an empty one, and ``PULUMI_K8S_AWAIT_ALL`` is not set)
=====================  ======================================================================

``pulumi.com/skipAwait: "true"`` skips all of it, ``pulumi.com/waitFor`` replaces the built-in
rule (metadata/overrides.go ``ReadyCondition``); the timeout is ``customTimeouts`` (create), else
the ``pulumi.com/timeoutSeconds`` annotation, else 10 minutes (await.go ``Creation``).
A resource is created once everything it depends on is ready, so its own timeout counts from then.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.models.await_budget import DEFAULT_AWAIT_S, IMAGE_PULL_S, LOAD_BALANCER_S

PVC_BUILTIN_AWAIT_S = 300
"""awaiters.go ``untilCoreV1PersistentVolumeClaimReady``: ``WatchUntil(pvcReady, 5*time.Minute)``."""
FSX_PROVISION_S = 20 * 60
"""A new FSx for Lustre file system: "typically 5 to 10 minutes", up to 20 for large ones (FSx
for Lustre User Guide); the CSI driver creates it when its claim is made."""
LWS_LABEL_PREFIX = "leaderworkerset.sigs.k8s.io/"
"""Labels the LeaderWorkerSet controller adds to its pods (group and worker index)."""
FSX_PROVISIONER = "fsx.csi.aws.com"
SKIP_AWAIT = "pulumi.com/skipAwait"
WAIT_FOR = "pulumi.com/waitFor"
TIMEOUT_SECONDS = "pulumi.com/timeoutSeconds"
WORKER_GATED_READINESS = {
    ("runtime.router", "/health"): "runtime/router.py Router.health is 503 while a worker pool has no healthy endpoint",
}
"""(module in the container command, readiness path) whose readiness needs GPU worker groups:
those wait for GPU nodes, model loading and, on Capacity Blocks, the block's start, so no
timeout bounds them."""
UNBOUNDED = math.inf


@dataclass(frozen=True)
class Step:
    """One resource on the first apply: how long it may wait, and how long it may need."""

    name: str
    kind: str
    timeout_s: float | None
    """None: ``pulumi up`` does not wait for it."""
    needs_s: float
    """Upper bound of the time from its creation until it is ready (``UNBOUNDED``: none)."""
    why: str
    ready_at_s: float = 0.0
    """Upper bound of when it is ready, counted from the start of the apply along its dependencies."""


def _kind(document: Mapping[str, Any]) -> str:
    return str(document.get("type", "")).rsplit(":", 1)[-1]


def _annotations(document: Mapping[str, Any]) -> dict[str, str]:
    metadata = (document.get("inputs") or {}).get("metadata") or {}
    return dict(metadata.get("annotations") or {})


def parse_duration(text: str) -> float:
    """Seconds of a Pulumi custom timeout (``"90s"``, ``"30m"``, ``"1h30m"``, Go duration syntax)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"customTimeouts value '{text}' is not a duration such as 90s, 30m or 2h")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def await_timeout_s(document: Mapping[str, Any]) -> float | None:
    """How long ``pulumi up`` waits for the resource on create (None: it does not wait)."""
    if not str(document.get("type", "")).startswith("kubernetes:") or _kind(document) == "Release":
        return None
    annotations = _annotations(document)
    if annotations.get(SKIP_AWAIT) == "true":
        return None
    kind = _kind(document)
    if kind not in ("Deployment", "Job", "PersistentVolumeClaim", "Service") and WAIT_FOR not in annotations:
        return None
    create = ((document.get("options") or {}).get("customTimeouts") or {}).get("create")
    if create:
        timeout = parse_duration(create)
    elif annotations.get(TIMEOUT_SECONDS, "").isdigit():
        timeout = float(annotations[TIMEOUT_SECONDS])
    else:
        timeout = float(DEFAULT_AWAIT_S)
    if kind == "PersistentVolumeClaim" and WAIT_FOR not in annotations:
        return min(timeout, PVC_BUILTIN_AWAIT_S)
    return timeout


def _probe_window_s(probe: Mapping[str, Any] | None) -> float:
    if not probe:
        return 0.0
    return float(probe.get("initialDelaySeconds", 0)) + float(probe.get("periodSeconds", 10)) * float(
        probe.get("failureThreshold", 3)
    )


def pod_ready_s(pod_spec: Mapping[str, Any]) -> tuple[float, str]:
    """Upper bound for a pod of this spec to be ready: a first image pull, then the startup and
    readiness probes' windows; UNBOUNDED when its readiness needs GPU workers."""
    worst, why = 0.0, "image pull and probes"
    for container in pod_spec.get("containers") or []:
        command = " ".join(str(c) for c in [*(container.get("command") or []), *(container.get("args") or [])])
        probe = container.get("readinessProbe") or {}
        path = (probe.get("httpGet") or {}).get("path")
        for (module, gated_path), reason in WORKER_GATED_READINESS.items():
            if module in command and path == gated_path:
                return UNBOUNDED, f"readiness {path} needs GPU workers ({reason})"
        need = IMAGE_PULL_S + _probe_window_s(container.get("startupProbe")) + _probe_window_s(probe)
        worst = max(worst, need)
    return worst, why


def _job_keys(document: Mapping[str, Any]) -> set[str]:
    """Content keys a Job writes (``disagg.ai/*-key`` labels): pods naming one read its output."""
    labels = ((document.get("inputs") or {}).get("metadata") or {}).get("labels") or {}
    return {value for key, value in labels.items() if key.startswith("disagg.ai/") and key.endswith("-key")}


def _selects(selector: Mapping[str, str], labels: Mapping[str, str], controller_prefix: str = "") -> bool:
    """Whether pods with ``labels`` match ``selector`` (labels under ``controller_prefix`` are the
    pods' controller's to set, so they may match too)."""
    return bool(selector) and all(
        labels.get(k) == v or (controller_prefix and k.startswith(controller_prefix)) for k, v in selector.items()
    )


def _lws_templates(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    template = ((document.get("inputs") or {}).get("spec") or {}).get("leaderWorkerTemplate") or {}
    return [t for t in (template.get("leaderTemplate"), template.get("workerTemplate")) if t]


def _needs(
    document: Mapping[str, Any], by_kind: Mapping[str, list[Mapping[str, Any]]], storage_classes: Mapping[str, Any]
) -> tuple[float, str]:
    """Upper bound from creation to ready, and why (the model in the module docstring)."""
    kind, inputs = _kind(document), document.get("inputs") or {}
    spec = inputs.get("spec") or {}
    if kind == "Job":
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is None:
            return UNBOUNDED, "a Job without activeDeadlineSeconds may run forever"
        return float(deadline), f"completes or fails by activeDeadlineSeconds {deadline}"
    if kind == "Deployment":
        if spec.get("replicas") == 0:
            return 0.0, "no replicas"
        return pod_ready_s((spec.get("template") or {}).get("spec") or {})
    if kind == "PersistentVolumeClaim":
        cls = storage_classes.get(spec.get("storageClassName", ""))
        if (
            cls is not None
            and cls.get("provisioner") == FSX_PROVISIONER
            and cls.get("volumeBindingMode", "Immediate") == "Immediate"
        ):
            return float(FSX_PROVISION_S), "a new FSx for Lustre file system is created for it"
        return 0.0, "binds to an existing volume or waits for its first consumer"
    if kind == "Service":
        if spec.get("clusterIP") == "None" or not spec.get("selector"):
            need, why = 0.0, "headless or selector-less: no endpoint wait"
        else:
            need, why = 0.0, "no selected pod yet"
            for deployment in by_kind.get("Deployment", []):
                template = ((deployment.get("inputs") or {}).get("spec") or {}).get("template") or {}
                if _selects(spec["selector"], (template.get("metadata") or {}).get("labels") or {}):
                    pods, reason = pod_ready_s(template.get("spec") or {})
                    if pods > need:
                        need, why = pods, f"selects the pods of {deployment['name']}: {reason}"
            for group in by_kind.get("LeaderWorkerSet", []):
                for template in _lws_templates(group):
                    labels = (template.get("metadata") or {}).get("labels") or {}
                    if _selects(spec["selector"], labels, LWS_LABEL_PREFIX):
                        need, why = UNBOUNDED, (
                            f"selects the GPU pods of {group['name']}: GPU nodes, model loading, a "
                            "Capacity Block's start"
                        )
        if spec.get("type") == "LoadBalancer":
            need, why = need + LOAD_BALANCER_S, why + "; a load balancer address"
        return need, why
    return 0.0, "not awaited"


def _order(documents: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Documents with every dependency before its dependents (input order among equals)."""
    by_name = {d["name"]: d for d in documents}
    done: set[str] = set()
    ordered: list[Mapping[str, Any]] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in done or name not in by_name or name in stack:
            return
        for dep in by_name[name].get("dependsOn") or []:
            visit(dep, (*stack, name))
        done.add(name)
        ordered.append(by_name[name])

    for document in documents:
        visit(document["name"], ())
    return ordered


def first_apply_steps(documents: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Every resource in dependency order with its timeout, its need and when it is ready."""
    docs = sorted(documents, key=lambda d: (str(d.get("type")), str(d.get("name"))))
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for document in docs:
        by_kind.setdefault(_kind(document), []).append(document)
    storage_classes = {
        ((d.get("inputs") or {}).get("metadata") or {}).get("name", d["name"]): d.get("inputs") or {}
        for d in by_kind.get("StorageClass", [])
    }
    jobs = {d["name"]: (_job_keys(d), _needs(d, by_kind, storage_classes)[0]) for d in by_kind.get("Job", [])}
    steps: dict[str, Step] = {}
    ancestors: dict[str, set[str]] = {}
    for document in _order(docs):
        name, kind = document["name"], _kind(document)
        deps = [d for d in document.get("dependsOn") or [] if d in steps]
        ancestors[name] = set(deps).union(*(ancestors[d] for d in deps)) if deps else set()
        need, why = _needs(document, by_kind, storage_classes)
        if kind == "Deployment":  # pods reading what a Job writes, without waiting for that Job
            text = json.dumps(document.get("inputs") or {}, sort_keys=True)
            for job, (keys, job_need) in sorted(jobs.items()):
                if job not in ancestors[name] and any(key in text for key in keys):
                    need, why = need + job_need, f"{why}; its pods read what Job {job} writes, not awaited first"
        start = max((steps[d].ready_at_s for d in deps), default=0.0)
        timeout = await_timeout_s(document)
        waited = need if timeout is not None else 0.0
        steps[name] = Step(name, kind, timeout, need, why, start + waited)
    return list(steps.values())


def first_apply_problems(documents: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per resource ``pulumi up`` would wait on for longer than its timeout."""
    problems = []
    for step in first_apply_steps(documents):
        if step.timeout_s is None or step.needs_s <= step.timeout_s:
            continue
        need = "no bound" if step.needs_s == UNBOUNDED else f"up to {step.needs_s:.0f} s"
        problems.append(
            f"{step.kind} '{step.name}': pulumi up waits {step.timeout_s:.0f} s for it, but it needs {need} "
            f"({step.why}): raise its customTimeouts, or set pulumi.com/skipAwait with a reason"
        )
    return problems


def read_documents(synth_dir: Path) -> list[dict[str, Any]]:
    """The resource documents of one stack's synth output."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((synth_dir / "resources").rglob("*.json"))]


def _first_apply(args: argparse.Namespace) -> int:
    synth_dir = Path(args.synth_dir)
    if not (synth_dir / "resources").is_dir():
        print(f"first-apply: {synth_dir} holds no resources/ directory: run `python -m disaggctl synth` first")
        return 2
    documents = read_documents(synth_dir)
    problems = first_apply_problems(documents)
    for problem in problems:
        print(problem)
    longest = max((s.ready_at_s for s in first_apply_steps(documents)), default=0.0)
    if not problems:
        print(f"first apply: every awaited resource is ready within its timeout (longest chain {longest / 3600:.1f} h)")
    return 1 if problems else 0


def add_first_apply_command(commands: argparse._SubParsersAction) -> None:
    """Register ``first-apply`` on the disaggctl command line."""
    cmd = commands.add_parser(
        "first-apply", help="check a synth output against pulumi-kubernetes' await rules (exit 1 on a problem)"
    )
    cmd.add_argument("synth_dir", help="one stack's synth output, e.g. build/synth/prod")
    cmd.set_defaults(func=_first_apply)
