"""What a deployment serves and must deliver: workload, SLO, budget, and the planner's prediction.

``disagg:deployments[i].workload`` (``ModelDeploymentConfig.workload``) holds this; ``python -m
disaggctl plan`` writes ``prediction`` from NVIDIA AIConfigurator, and synth compares it with the
SLO and the deployment's current layout without running the performance model again.
``disagg:pricing`` (``StackConfig.pricing``) overrides the shipped AWS price table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from components.config.base import ConfigModel


class LengthDistribution(ConfigModel):
    """Token lengths that vary: planned at ``mean``; ``max`` bounds maxSeqLen."""

    mean: int = Field(ge=1, le=1_000_000)
    max: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _max_above_mean(self) -> LengthDistribution:
        if self.max is not None and self.max < self.mean:
            raise ValueError(f"max ({self.max}) is below mean ({self.mean}): raise max or lower mean")
        return self


TokenLength = int | LengthDistribution


def typical(length: TokenLength) -> int:
    """The length the planner sizes for: the value itself, or a distribution's mean."""
    return length if isinstance(length, int) else length.mean


def longest(length: TokenLength) -> int:
    return length if isinstance(length, int) else (length.max or length.mean)


class SloConfig(ConfigModel):
    """Latency targets at a percentile of requests."""

    ttft_ms: float = Field(gt=0, le=600_000)
    """Time to first token."""
    tpot_ms: float = Field(gt=0, le=60_000)
    """Time per output token (inter-token latency)."""
    percentile: Literal[50, 90, 95, 99] = 90
    on_breach: Literal["refuse", "warn"] = "refuse"
    """What synth does when the prediction misses the SLO (or is stale): fail, or print a warning."""


class BudgetConfig(ConfigModel):
    max_gpus: int | None = Field(default=None, ge=1)
    max_dollars_per_hour: float | None = Field(default=None, gt=0)


class RolePrediction(ConfigModel):
    """The layout the prediction was made for (one worker group role)."""

    tensor_parallel_size: int = Field(ge=1)
    pipeline_parallel_size: int = Field(default=1, ge=1)
    max_batch_size: int = Field(ge=1)
    groups: int = Field(ge=0)


class PredictionConfig(ConfigModel):
    """Written by ``disaggctl plan``; synth trusts it only while the layout still matches ``roles``."""

    source: str
    """e.g. ``aiconfigurator 0.12.0, h200_sxm trtllm 1.3.0rc20``."""
    gpu: str
    """GPU model the prediction is for (the pool's instance type's GPU), e.g. ``H200-141GB``."""
    tokens_per_second_per_gpu: float = Field(gt=0)
    tokens_per_second_per_user: float = Field(gt=0)
    ttft_ms: float = Field(gt=0)
    tpot_ms: float = Field(gt=0)
    requests_per_second: float = Field(gt=0)
    """What the planned layout sustains (all groups) at these latencies."""
    concurrency: int = Field(ge=1)
    """Requests in flight the planned layout holds (all groups) at these latencies."""
    roles: dict[str, RolePrediction]


class WorkloadConfig(ConfigModel):
    """Traffic one deployment is sized for and the SLO it must meet."""

    input_tokens: TokenLength
    output_tokens: TokenLength
    request_rate: float | None = Field(default=None, gt=0)
    """Requests per second to sustain (or give ``concurrency``)."""
    concurrency: int | None = Field(default=None, ge=1)
    """Requests in flight to sustain (or give ``requestRate``)."""
    slo: SloConfig
    budget: BudgetConfig = BudgetConfig()
    prediction: PredictionConfig | None = None

    @field_validator("input_tokens", "output_tokens", mode="before")
    @classmethod
    def _length(cls, value: object) -> object:
        """One message for a bad distribution (not one per member of the int | mapping union)."""
        if isinstance(value, dict):
            try:
                return LengthDistribution.model_validate(value)
            except ValidationError as err:
                first = err.errors()[0]
                key = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"{key + ': ' if key else ''}{first['msg'].removeprefix('Value error, ')}") from None
        return value

    @model_validator(mode="after")
    def _one_target(self) -> WorkloadConfig:
        if self.request_rate is not None and self.concurrency is not None:
            raise ValueError(
                f"requestRate ({self.request_rate:g}) and concurrency ({self.concurrency}) are both "
                "set: give one target (requests per second or requests in flight)"
            )
        return self


class PricingConfig(ConfigModel):
    """Prices in USD per instance-hour; anything not given comes from disaggctl/plan/pricing.py."""

    on_demand: dict[str, float] = {}
    """Instance type -> price, overriding the shipped table (all regions)."""
    capacity_blocks: dict[str, float] = {}
    """Capacity reservation id of a Capacity Block -> effective hourly price."""
    reservations: dict[str, float] = {}
    """On-demand capacity reservation id -> hourly price (e.g. with a savings plan)."""
