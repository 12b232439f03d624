"""The SLO gate: measured TTFT and inter-token latency percentiles against the declared SLO and the
planner's prediction (``disagg:deployments[i].workload`` in ``Pulumi.<stack>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class SloTarget:
    ttft_ms: float | None
    tpot_ms: float | None
    percentile: int = 90
    predicted_ttft_ms: float | None = None
    predicted_tpot_ms: float | None = None
    source: str = "flags"


class SloError(ValueError):
    """The stack's workload could not be read; the message names the key."""


def slo_from_stack(project: Path, stack: str, deployment: str) -> SloTarget:
    """The SLO and prediction of ``deployment`` in ``Pulumi.<stack>.yaml``."""
    from pydantic import ValidationError

    from components.config.workload import WorkloadConfig

    path = project / f"Pulumi.{stack}.yaml"
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise SloError(f"cannot read {path}: {err.strerror}") from err
    deployments = (doc.get("config") or {}).get("disagg:deployments") or []
    for index, entry in enumerate(deployments):
        if entry.get("name") != deployment:
            continue
        if not entry.get("workload"):
            raise SloError(f"disagg:deployments[{index}].workload: none declared in {path.name}: declare the SLO there")
        try:
            workload = WorkloadConfig.model_validate(entry["workload"])
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise SloError(f"disagg:deployments[{index}].workload.{key}: {first['msg']}: fix it in {path.name}") from err
        prediction = workload.prediction
        return SloTarget(
            ttft_ms=workload.slo.ttft_ms,
            tpot_ms=workload.slo.tpot_ms,
            percentile=workload.slo.percentile,
            predicted_ttft_ms=prediction.ttft_ms if prediction else None,
            predicted_tpot_ms=prediction.tpot_ms if prediction else None,
            source=f"{path.name} deployment {deployment}",
        )
    known = ", ".join(str(d.get("name")) for d in deployments) or "none"
    raise SloError(f"no deployment '{deployment}' in {path.name} (known: {known})")


def slo_gate(report: dict, target: SloTarget, max_over_prediction_pct: float | None = None) -> tuple[str, list[str]]:
    """A table of measured vs SLO vs predicted, and the breaches (empty: the gate passes). Pure."""
    key = f"p{target.percentile}"
    rows = [
        ("TTFT", report["ttft_s"].get(key), target.ttft_ms, target.predicted_ttft_ms),
        ("inter-token (TPOT)", report["inter_token_s"].get(key), target.tpot_ms, target.predicted_tpot_ms),
    ]

    def cell(value: float | None, digits: str = ".1f") -> str:
        return f"{value:>12{digits}}" if value is not None else f"{'-':>12}"

    lines = [f"{'SLO gate (' + key + ', ms)':<24}{'measured':>12}{'SLO':>12}{'predicted':>12}"]
    problems: list[str] = []
    for name, measured_s, slo_ms, predicted_ms in rows:
        measured = measured_s * 1000 if measured_s is not None else None
        lines.append(f"{name:<24}{cell(measured)}{cell(slo_ms, 'g')}{cell(predicted_ms)}")
        if slo_ms is None:
            continue
        if measured is None:
            problems.append(f"{name} {key}: nothing measured (no streamed tokens), so the SLO of {slo_ms:g} ms is unproven")
        elif measured > slo_ms:
            problems.append(f"{name} {key} {measured:.1f} ms breaches the SLO of {slo_ms:g} ms ({target.source})")
        if measured is not None and predicted_ms and max_over_prediction_pct is not None:
            over = (measured / predicted_ms - 1) * 100
            if over > max_over_prediction_pct:
                problems.append(
                    f"{name} {key} {measured:.1f} ms is {over:.0f}% over the prediction {predicted_ms:.1f} ms "
                    f"(allowed {max_over_prediction_pct:g}%): re-run plan, or check the deployment"
                )
    return "\n".join(lines) + "\n", problems
