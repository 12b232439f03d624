"""Await budgets: deadlines and timeouts sized from what each resource waits for."""

from __future__ import annotations

from components.cluster.contract import SharedStorage
from components.models.await_budget import (
    IMAGE_PULL_S,
    checkpoint_bytes,
    cpu_tier_await_seconds,
    download_seconds,
    job_await_seconds,
    preparation_deadline_seconds,
    service_await_seconds,
    store_write_mb_s,
)
from engines.catalog import get_model

PROD_FSX = SharedStorage(storage_class="fsx-lustre", size_gib=4800, kind="fsx-lustre")


def test_fsx_throughput_is_per_tib_of_capacity() -> None:
    assert store_write_mb_s(PROD_FSX, 500) == 500 * 4800 / 1024  # 2343.75 MB/s
    assert store_write_mb_s(SharedStorage("nfs", 2000, "existing")) == 100.0


def test_a_70b_download_is_bounded_by_the_hub_not_the_store() -> None:
    """144 GB of bf16 weights at 50 MB/s (the hub, slower than 2.3 GB/s of FSx): 48 minutes; twice
    that plus a 15-minute image pull, rounded up to 10 minutes: 2 hours."""
    size = checkpoint_bytes(get_model("llama-3.1-70b-instruct"), "none")
    assert 140e9 < size < 150e9
    store = store_write_mb_s(PROD_FSX, 500)
    assert round(download_seconds(size, store)) == round(size / 50e6)
    assert preparation_deadline_seconds(size, store) == 7200
    assert job_await_seconds(7200) == 8100


def test_a_slow_store_stretches_the_deadline() -> None:
    size = checkpoint_bytes(get_model("llama-3.1-70b-instruct"), "fp8")
    assert preparation_deadline_seconds(size, 10.0) > preparation_deadline_seconds(size, 1000.0) >= 3600


def test_small_checkpoints_get_the_one_hour_floor() -> None:
    size = checkpoint_bytes(get_model("llama-3.1-8b-instruct"), "none")
    assert preparation_deadline_seconds(size, 292.97) == 3600


def test_cpu_tier_timeouts_cover_a_pull_and_the_probe_windows() -> None:
    assert cpu_tier_await_seconds(300, 15) == IMAGE_PULL_S + 315
    assert service_await_seconds(1215, True) == 1515 and service_await_seconds(1215, False) == 1215


def test_an_engine_build_deadline_covers_download_build_and_calibration() -> None:
    """70B, bf16 download 144 GB at 50 MB/s (2881 s) + 70.6 × 60 s build, twice, + the pull: 15,134 s,
    rounded up to 15,600 s; quantized: + 70.6 × 60 s twice = 23,606 s -> 24,000 s."""
    from components.models.await_budget import engine_build_deadline_seconds

    store = store_write_mb_s(PROD_FSX, 500)
    assert engine_build_deadline_seconds(70.6, False, store) == 15_600
    assert engine_build_deadline_seconds(70.6, True, store) == 24_000
    assert engine_build_deadline_seconds(70.6, False, 10.0) > 15_600  # a slow store stretches it
    assert engine_build_deadline_seconds(8.03, True, store) == 4 * 3600  # small models: the 4-hour floor


def test_the_stack_sizes_each_engine_builds_deadline() -> None:
    from components.models.await_budget import engine_build_deadline
    from engines.spec import EngineSpec

    spec = EngineSpec.model_validate({"model": "llama-3.1-70b-instruct", "dtype": "bfloat16", "tpSize": 8, "ppSize": 1,
                                      "maxBatchSize": 64, "maxInputLen": 4096, "maxSeqLen": 8192,
                                      "maxNumTokens": 8192, "quantization": "fp8"})
    assert engine_build_deadline(spec, PROD_FSX, 500) == 24_000
