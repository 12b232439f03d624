"""How long ``pulumi up`` may wait for what the stack declares, sized from what each thing waits for.

pulumi-kubernetes waits for a Job to complete and a Deployment to be ready, 10 minutes unless the
resource's ``customTimeouts`` (or the ``pulumi.com/timeoutSeconds`` annotation) say otherwise
(pulumi/pulumi-kubernetes ``provider/pkg/await/await.go`` ``Creation``: ``timeout := 10 *
time.Minute``; ``provider/pkg/metadata/overrides.go`` ``TimeoutDuration``; @94977969d641, the newest
source readable here: the tag of the pinned ``pulumi-kubernetes==4.34.2`` is not, so the rules are
read from that commit and the budgets below are conservative). A model-preparation Job is a
download: its deadline is the checkpoint's size over the slower of the download and the store's
write throughput, twice, plus the image pull; Pulumi then waits that deadline plus a margin.
"""

from __future__ import annotations

import math

from components.cluster.contract import SharedStorage
from components.config.models import ModelSourceConfig
from engines.catalog import ModelInfo, get_model
from engines.llm_api_checks import WEIGHT_BYTES
from engines.spec import EngineSpec

DEFAULT_AWAIT_S = 600
"""pulumi-kubernetes' await timeout when a resource sets none (await.go ``Creation``/``Update``)."""
IMAGE_PULL_S = 900
"""Budget to pull and unpack the TensorRT-LLM release image (tens of GB) on a node that has never
pulled it: 15 minutes at the ~50 MB/s a registry pull sustains, unpacking included. An estimate:
nothing here can measure it."""
DOWNLOAD_MB_S = 50.0
"""The slowest Hugging Face download the budgets plan for (MB/s, one pod, ``hf_transfer`` off)."""
S3_MOUNTPOINT_MB_S = 100.0
"""Write throughput assumed for a Mountpoint for S3 store from one pod (sequential writes)."""
EXISTING_STORE_MB_S = 100.0
"""Write throughput assumed for an existing cluster's ReadWriteMany class (unknown: conservative)."""
SAFETY_FACTOR = 2.0
"""Deadlines allow twice the estimated transfer (retries, slow mirrors, shared throughput)."""
LOAD_BALANCER_S = 300
"""The AWS Load Balancer Controller gives a LoadBalancer Service its NLB hostname within minutes."""
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
"""The annotation that makes pulumi-kubernetes return as soon as the object is accepted
(provider/pkg/metadata/overrides.go ``SkipAwaitLogic``); every use states its reason."""
JOB_AWAIT_MARGIN_S = 900
"""How much longer than a Job's activeDeadlineSeconds Pulumi waits: the deadline counts from the
Job's start, and the provider needs a moment to observe the final condition."""
MIN_PREPARATION_DEADLINE_S = 3600
CHECKPOINT_OVERHEAD = 1.02
"""Tokenizer, configs and safetensors headers on top of the weights."""
BUILD_S_PER_B_PARAMS = 60.0
"""Checkpoint conversion + ``trtllm-build`` seconds per billion parameters on one node (an estimate:
TensorRT-LLM's guides put a 70B build at 1-2 hours with the download; nothing here can measure it)."""
CALIBRATION_S_PER_B_PARAMS = 60.0
"""ModelOpt calibration (``examples/quantization/quantize.py``) seconds per billion parameters, when
the engine is quantized (an estimate, as above)."""
MIN_ENGINE_BUILD_DEADLINE_S = 4 * 3600
"""The engine-build deadline before it was sized: a sized deadline is never shorter."""


def store_write_mb_s(storage: SharedStorage, fsx_throughput_per_tib: int | None = None) -> float:
    """MB/s the shared store takes writes at: FSx for Lustre PERSISTENT_2 gives
    ``perUnitStorageThroughput`` MB/s per TiB of capacity (FSx for Lustre User Guide, "Performance");
    the other kinds are the assumptions above."""
    if storage.kind == "fsx-lustre":
        if fsx_throughput_per_tib is None:
            raise ValueError("an fsx-lustre store needs its throughput per TiB")
        return fsx_throughput_per_tib * storage.size_gib / 1024
    if storage.kind == "s3-mountpoint":
        return S3_MOUNTPOINT_MB_S
    return EXISTING_STORE_MB_S


def checkpoint_bytes(model: ModelInfo, quantization: str) -> int:
    """Bytes of a Hugging Face checkpoint: parameters × bytes per parameter of its precision."""
    return math.ceil(model.params_b * 1e9 * WEIGHT_BYTES[quantization] * CHECKPOINT_OVERHEAD)


def download_seconds(size_bytes: int, store_mb_s: float, download_mb_s: float = DOWNLOAD_MB_S) -> float:
    """Seconds to move ``size_bytes`` from the hub to the store (the slower of the two paths)."""
    return size_bytes / (min(store_mb_s, download_mb_s) * 1e6)


def preparation_deadline_seconds(size_bytes: int, store_mb_s: float) -> int:
    """``activeDeadlineSeconds`` of a model-preparation Job: image pull + twice the transfer,
    rounded up to 10 minutes, at least an hour."""
    estimate = IMAGE_PULL_S + SAFETY_FACTOR * download_seconds(size_bytes, store_mb_s)
    return max(MIN_PREPARATION_DEADLINE_S, math.ceil(estimate / 600) * 600)


def model_preparation_deadline(
    source: ModelSourceConfig, storage: SharedStorage, fsx_throughput_per_tib: int | None = None
) -> int:
    """:func:`preparation_deadline_seconds` of one configured checkpoint on the stack's store."""
    size = checkpoint_bytes(source.info, source.quantization)
    return preparation_deadline_seconds(size, store_write_mb_s(storage, fsx_throughput_per_tib))


def engine_build_deadline_seconds(params_b: float, quantized: bool, store_mb_s: float) -> int:
    """``activeDeadlineSeconds`` of an engine-build Job: image pull, then twice (download of the bf16
    checkpoint + conversion and build + calibration when quantized), rounded up to 10 minutes, at
    least ``MIN_ENGINE_BUILD_DEADLINE_S``."""
    size = math.ceil(params_b * 1e9 * WEIGHT_BYTES["none"] * CHECKPOINT_OVERHEAD)
    work = params_b * (BUILD_S_PER_B_PARAMS + (CALIBRATION_S_PER_B_PARAMS if quantized else 0.0))
    estimate = IMAGE_PULL_S + SAFETY_FACTOR * (download_seconds(size, store_mb_s) + work)
    return max(MIN_ENGINE_BUILD_DEADLINE_S, math.ceil(estimate / 600) * 600)


def engine_build_deadline(spec: EngineSpec, storage: SharedStorage, fsx_throughput_per_tib: int | None = None) -> int:
    """:func:`engine_build_deadline_seconds` of one configured engine on the stack's store."""
    model = get_model(spec.model)
    return engine_build_deadline_seconds(model.params_b, spec.quantization != "none",
                                         store_write_mb_s(storage, fsx_throughput_per_tib))


def job_await_seconds(active_deadline_seconds: int) -> int:
    """The Job's ``customTimeouts.create``: Pulumi waits past the deadline, never less."""
    return active_deadline_seconds + JOB_AWAIT_MARGIN_S


def cpu_tier_await_seconds(startup_window_s: int, readiness_window_s: int) -> int:
    """``customTimeouts`` of a CPU-tier Deployment (frontend, router) whose pods are ready once
    their process serves: a first image pull on a new node plus the startup and readiness probes'
    windows (period × failureThreshold each)."""
    return IMAGE_PULL_S + startup_window_s + readiness_window_s


def service_await_seconds(pods_await_s: int, load_balancer: bool) -> int:
    """``customTimeouts`` of a Service over such pods: pulumi-kubernetes waits until none of its
    selected pods is not-ready (provider/pkg/await/service.go ``checkAndLogStatus``), and for a
    load balancer's address when it is of type LoadBalancer."""
    return pods_await_s + (LOAD_BALANCER_S if load_balancer else 0)
