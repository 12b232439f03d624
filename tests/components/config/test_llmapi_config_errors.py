"""Malformed llmapi configurations (dev and prod stacks): exact one-line messages, no resources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.config import ConfigError, load_stack_config

D0 = "disagg:deployments[0]"
PD = "disagg:deployments[1]"


def problems_of(config: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stack_config(config.raw)
    return caught.value.problems


def workers(change: Callable[[dict[str, Any]], Any]) -> Callable[[Any], None]:
    """A change of the dev deployment's worker group."""

    def apply(config: Any) -> None:
        deployments = config.section("deployments")
        change(deployments[0]["workers"])
        config.set("deployments", deployments)

    return apply


def llm_api(**values: Any) -> Callable[[Any], None]:
    return workers(lambda w: w["llmApi"].update(values))


def model(**values: Any) -> Callable[[Any], None]:
    def apply(config: Any) -> None:
        models = config.section("models")
        models["llama-8b"].update(values)
        config.set("models", models)

    return apply


def images(**values: Any) -> Callable[[Any], None]:
    """Set image keys over the stack's own (prod names its worker and tiers images)."""
    return lambda config: config.set(
        "images", {**(config.section("images") if "disagg:images" in config.raw else {}), **values}
    )


DEV_CASES: list[tuple[str, Callable[[Any], None], list[str]]] = [
    (
        "unknown llmApi option",
        llm_api(maxBatchSise=64),
        [f"{D0}.workers.llmApi.maxBatchSise: unknown key 'maxBatchSise': did you mean 'maxBatchSize'?"],
    ),
    (
        "unknown nested llmApi option",
        workers(lambda w: w["llmApi"]["kvCacheConfig"].update(freeGpuMemFraction=0.5)),
        [
            f"{D0}.workers.llmApi.kvCacheConfig.freeGpuMemFraction: unknown key 'freeGpuMemFraction': "
            "did you mean 'freeGpuMemoryFraction'?"
        ],
    ),
    (
        "parallel size differs from the group's GPUs",
        llm_api(tensorParallelSize=8),
        [
            f"{D0}.workers.llmApi: tensorParallelSize × pipelineParallelSize = 8 × 1 = 8 GPUs, but the group "
            "gets podsPerGroup 1 × gpusPerPod 2 = 2: set podsPerGroup: 4, or change "
            "tensorParallelSize/pipelineParallelSize"
        ],
    ),
    (
        "tensor parallel size that cannot split the heads",
        workers(lambda w: (w["llmApi"].update(tensorParallelSize=3), w.update(gpusPerPod=3))),
        [
            f"{D0}.workers.llmApi.tensorParallelSize: 3 must divide the 32 attention heads of "
            "'llama-3.1-8b-instruct': use one of 1, 2, 4, 8, 16, 32",
            f"{D0}.workers.llmApi.tensorParallelSize: 3 must divide the 8 KV heads of 'llama-3.1-8b-instruct' "
            "or be a multiple of them: use one of 1, 2, 4, 8 or a multiple of 8",
        ],
    ),
    (
        "sequence longer than the model's context",
        llm_api(maxSeqLen=200000, maxNumTokens=200000),
        [
            f"{D0}.workers.llmApi.maxSeqLen: 200000 exceeds the 131072 positions 'llama-3.1-8b-instruct' was "
            "trained for: lower maxSeqLen to at most 131072"
        ],
    ),
    (
        "fewer tokens per pass than requests per batch",
        llm_api(maxNumTokens=32),
        [
            f"{D0}.workers.llmApi.maxNumTokens: 32 is below maxBatchSize 64, so a full batch of decoding "
            "requests (one token each) never fits one forward pass (upstream warns: max_batch_size should be "
            "<= max_num_tokens): raise maxNumTokens to at least 64 or lower maxBatchSize"
        ],
    ),
    (
        "long prompts without chunked prefill",
        llm_api(maxNumTokens=4096, enableChunkedPrefill=False),
        [
            f"{D0}.workers.llmApi.maxNumTokens: 4096 is below maxSeqLen 8192 without chunked prefill, so longer "
            "prompts can never be scheduled: set enableChunkedPrefill: true or raise maxNumTokens to 8192"
        ],
    ),
    (
        "CUDA graphs beyond the batch size",
        workers(lambda w: w["llmApi"]["cudaGraphConfig"].update(maxBatchSize=128)),
        [
            f"{D0}.workers.llmApi.cudaGraphConfig.maxBatchSize: CUDA graphs up to batch 128 exceed the group's "
            "maxBatchSize 64, so the larger graphs are never used but cost memory: capture at most 64"
        ],
    ),
    (
        "FP8 KV cache on Ampere",
        workers(lambda w: w["llmApi"]["kvCacheConfig"].update(dtype="fp8")),
        [
            f"{D0}.workers.llmApi.kvCacheConfig.dtype: 'fp8' needs Ada/Hopper (sm89+), not ampere (sm80): use "
            "dtype: auto"
        ],
    ),
    (
        "FP8 weights on Ampere",
        model(quantization="fp8", revision="a" * 40),
        [
            "disagg:models.llama-8b.quantization: 'fp8' weights need Ada/Hopper (sm89+), not ampere (sm80): use "
            "quantization none or a pool with newer GPUs"
        ],
    ),
    (
        "70B in bf16 on two A100-40GB",
        model(model="llama-3.1-70b-instruct", revision="a" * 40),
        [
            f"{D0}.workers.llmApi: model too large: 'llama-3.1-70b-instruct' at bf16 over tp 2 × pp 1 needs "
            "65.7 GiB of weights + 0.5 GiB activations + 2.5 GiB runtime per GPU, but one 40 GiB GPU has 36.0 "
            "GiB usable: raise tensorParallelSize or pipelineParallelSize, or lower maxNumTokens"  # A100: no fp8 offered
        ],
    ),
    (
        "KV-cache share too small for one sequence",
        workers(
            lambda w: (
                w["llmApi"].update(maxSeqLen=131072),
                w["llmApi"]["kvCacheConfig"].update(freeGpuMemoryFraction=0.05),
            )
        ),
        [
            f"{D0}.workers.llmApi.maxSeqLen: one 131072-token sequence of 'llama-3.1-8b-instruct' at bf16 over "
            "tp 2 × pp 1 needs 8.0 GiB of KV cache per GPU, but freeGpuMemoryFraction 0.05 of the 25.8 GiB left "
            "after weights leaves 1.3 GiB: lower maxSeqLen, raise kvCacheConfig.freeGpuMemoryFraction, or add "
            "GPUs"  # A100: no fp8 KV cache offered
        ],
    ),
    (
        "revision is a branch",
        model(revision="main"),
        [
            "disagg:models.llama-8b.revision: 'main' is not a pinned commit: use the 40-hex commit id of "
            "meta-llama/Llama-3.1-8B-Instruct (huggingface.co/meta-llama/Llama-3.1-8B-Instruct/commits/main)"
        ],
    ),
    (
        "quantization without a published checkpoint",
        model(model="llama-3.1-70b-instruct", quantization="nvfp4"),
        [
            "disagg:models.llama-8b.quantization: 'nvfp4' for 'llama-3.1-70b-instruct': NVIDIA publishes no "
            "pre-quantized checkpoint of it: use one of none, fp8"
        ],
    ),
    (
        "model not in the catalog",
        model(model="llama-4-maverick"),
        [
            "disagg:models.llama-8b.model: model 'llama-4-maverick' is not in the catalog: use one of "
            "llama-3.1-70b-instruct, llama-3.1-8b-instruct, llama-3.3-70b-instruct, mixtral-8x7b-instruct "
            "(or add it to engines/catalog.py)"
        ],
    ),
    (
        "gated model without a token secret",
        lambda c: c.set("hfTokenSecret", "null"),
        [
            "disagg:hfTokenSecret: model 'llama-8b' downloads 'meta-llama/Llama-3.1-8B-Instruct', a gated "
            "model, but hfTokenSecret is null: name the Secret holding HF_TOKEN"
        ],
    ),
    (
        "llmapi image of the wrong generation",
        images(trtllm="nvcr.io/nvidia/tensorrt-llm/release:0.21.0"),
        [
            "disagg:images.trtllm: 'nvcr.io/nvidia/tensorrt-llm/release:0.21.0' carries TensorRT-LLM 0.21.0, but "
            "runtime 'llmapi' needs >= 1.0 (trtllm-serve with the PyTorch LLM API needs TensorRT-LLM 1.0 or "
            "newer): use a newer image, e.g. nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
        ],
    ),
    (
        "image the tables cannot place",
        images(trtllm="registry.example.com/ml/trtllm:custom"),
        [
            "disagg:images.trtllm: cannot tell which TensorRT-LLM version 'registry.example.com/ml/trtllm:custom' "
            "carries (only nvcr.io/nvidia/tensorrt-llm/release:X.Y and the tritonserver YY.MM-trtllm-python-py3 "
            "tags in the compatibility table are known): declare it with disagg:images.trtllmVersion, e.g. "
            "'1.2.1'"
        ],
    ),
    (
        "malformed image digest",
        images(trtllm="nvcr.io/nvidia/tensorrt-llm/release:1.2.1@sha256:zz"),
        [
            "disagg:images.trtllm: 'nvcr.io/nvidia/tensorrt-llm/release:1.2.1@sha256:zz' has a malformed digest "
            "(sha256: and 64 lowercase hex digits): copy it again"
        ],
    ),
    (
        "engine key on an llmapi group",
        workers(lambda w: w.update(engine="llama-8b-tp4")),
        [
            f"{D0}.workers.engine: 'llama-8b-tp4' names a TensorRT engine, which runtime 'llmapi' does not "
            "serve: use model: <key in disagg:models>, or set runtime: engine"
        ],
    ),
    (
        "unknown model key",
        workers(lambda w: w.update(model="llama-9b")),
        [
            "disagg:models.llama-8b: no llmapi deployment serves this model: reference it from a worker group "
            "(model: llama-8b) or remove it",
            f"{D0}.workers.model: no model 'llama-9b' in disagg:models (known: llama-8b): add it there or fix "
            "the name",
        ],
    ),
    (
        "default output length beyond the sequence length",
        lambda c: c.set(
            "deployments",
            [{**d, "orchestrator": {"defaultMaxTokens": 8192}} for d in c.section("deployments")],
        ),
        [
            f"{D0}.orchestrator.defaultMaxTokens: 8192 output tokens cannot fit workers.llmApi.maxSeqLen 8192: "
            "lower it"
        ],
    ),
]


def decode(change: Callable[[dict[str, Any]], Any]) -> Callable[[Any], None]:
    return pd(lambda d: change(d["decode"]["llmApi"]))


def pd(change: Callable[[dict[str, Any]], Any]) -> Callable[[Any], None]:
    """A change of prod's prefill-decode deployment."""

    def apply(config: Any) -> None:
        deployments = config.section("deployments")
        assert deployments[1]["mode"] == "prefill-decode"
        change(deployments[1])
        config.set("deployments", deployments)

    return apply


def both_transceivers(**values: Any) -> Callable[[Any], None]:
    return pd(lambda d: [d[side]["llmApi"]["cacheTransceiverConfig"].update(values) for side in ("prefill", "decode")])


PROD_CASES: list[tuple[str, Callable[[Any], None], list[str]]] = [
    (
        "different KV-cache dtypes",
        decode(lambda o: o["kvCacheConfig"].update(dtype="bfloat16")),
        [
            f"{PD}.decode.llmApi.kvCacheConfig.dtype: 'bfloat16' (bfloat16) differs from the prefill side's "
            "'fp8' (fp8); the cache formatter only transfers KV cache of the same data type: set the same "
            "kvCacheConfig.dtype on both sides"
        ],
    ),
    (
        "different tokens per block",
        decode(lambda o: o["kvCacheConfig"].update(tokensPerBlock=64)),
        [
            f"{PD}.decode.llmApi.kvCacheConfig.tokensPerBlock: 64 differs from the prefill side's 32; the cache "
            "formatter transfers whole blocks and needs the same size on both sides: set the same "
            "tokensPerBlock on both"
        ],
    ),
    (
        "different models",
        pd(lambda d: d["decode"].update(model="llama-70b")),
        [
            f"{PD}.decode.model: 'llama-70b' is not the checkpoint the prefill side serves ('llama-70b-fp8': "
            "repository nvidia/Llama-3.1-70B-Instruct-FP8 vs meta-llama/Llama-3.1-70B-Instruct; revision "
            "07a08be3d8a8f5254c2aba375b79743bca8fd491 vs 1605565b47bb9346c5515c34102e054115b4f98b; quantization "
            "fp8 vs none); KV cache only transfers between identical weights: use the same model key on both "
            "sides"
        ],
    ),
    (
        "mismatched transceiver backends",
        decode(lambda o: o["cacheTransceiverConfig"].update(backend="UCX")),
        [
            f"{PD}.decode.llmApi.cacheTransceiverConfig.backend: 'UCX' differs from the prefill side's 'NIXL'; "
            "both ends of a transfer must speak the same backend: use the same backend on both sides",
            f"{PD}.decode.llmApi.cacheTransceiverConfig.backend: 'UCX' on pool 'h200' (fabric efa): UCX has no "
            "EFA transport: use backend NIXL (its LIBFABRIC backend speaks EFA)",
        ],
    ),
    (
        "UCX on an EFA pool",
        both_transceivers(backend="UCX"),
        [
            f"{PD}.{side}.llmApi.cacheTransceiverConfig.backend: 'UCX' on pool 'h200' (fabric efa): UCX has no "
            "EFA transport: use backend NIXL (its LIBFABRIC backend speaks EFA)"
            for side in ("prefill", "decode")
        ],
    ),
    (
        "MPI transceiver",
        both_transceivers(backend="MPI"),
        [
            f"{PD}.{side}.llmApi.cacheTransceiverConfig.backend: 'MPI' moves KV cache only between ranks of one "
            "MPI world, but prefill and decode servers are started separately: use UCX or NIXL"
            for side in ("prefill", "decode")
        ],
    ),
    (
        "no transceiver on one side",
        decode(lambda o: o.pop("cacheTransceiverConfig")),
        [
            f"{PD}.decode.llmApi.cacheTransceiverConfig: missing; prefill-decode moves KV cache through a cache "
            "transceiver: set cacheTransceiverConfig: {backend: NIXL} (UCX has no EFA transport) on both sides"
        ],
    ),
    (
        "transfer buffer smaller than a prompt and not whole blocks",
        both_transceivers(maxTokensInBuffer=8200),
        [
            message
            for side in ("prefill", "decode")
            for message in (
                f"{PD}.{side}.llmApi.cacheTransceiverConfig.maxTokensInBuffer: 8200 is not a multiple of "
                "tokensPerBlock 32 (upstream asserts whole blocks): use 8224",
                f"{PD}.{side}.llmApi.cacheTransceiverConfig.maxTokensInBuffer: 8200 is below the prefill side's "
                "maxSeqLen 32768; upstream requires the buffer to hold the longest prompt (smaller buffers "
                "deadlock transfers under load): set it to at least 32768",
            )
        ],
    ),
    (
        "unsupported parallel combination (decode TP cannot split the KV heads)",
        # 4 groups of 3 GPUs stay on the 2 nodes the planned 5 groups of 2 take
        pd(lambda d: (d["decode"]["llmApi"].update(tensorParallelSize=3), d["decode"].update(gpusPerPod=3, groups=4))),
        [
            f"{PD}.decode.llmApi.tensorParallelSize: 3 must divide the 64 attention heads of "
            "'llama-3.1-70b-instruct': use one of 1, 2, 4, 8, 16, 32, 64",
            f"{PD}.decode.llmApi.tensorParallelSize: 3 must divide the 8 KV heads of 'llama-3.1-70b-instruct' or "
            "be a multiple of them: use one of 1, 2, 4, 8 or a multiple of 8",
        ],
    ),
    (
        "overlap scheduler on the context side",
        pd(lambda d: d["prefill"]["llmApi"].update(disableOverlapScheduler=False)),
        [
            f"{PD}.prefill.llmApi.disableOverlapScheduler: false, but context servers do not support the overlap "
            "scheduler (upstream disagg-serving guide): remove the key or set it to true"
        ],
    ),
    (
        "decode side shorter than the prefill side",
        decode(lambda o: o.update(maxSeqLen=16384)),
        [
            f"{PD}.decode.llmApi.maxSeqLen: 16384 is below the prefill side's 32768, so a prompt the prefill "
            "side accepts may not fit the decode side: set decode maxSeqLen to at least 32768"
        ],
    ),
    (
        "engine runtime with prefill-decode",
        lambda c: c.set(
            "deployments",
            [
                *c.section("deployments")[:2],
                {
                    **{k: v for k, v in c.section("deployments")[2].items() if k != "workers"},
                    "mode": "prefill-decode",
                    "prefill": c.section("deployments")[2]["workers"],
                    "decode": c.section("deployments")[2]["workers"],
                },
            ],
        ),
        [
            "disagg:deployments[2].mode: 'prefill-decode' with runtime 'engine' cannot move KV cache between "
            "separate groups: Triton's TensorRT-LLM backend offers no cache-transceiver choice "
            "(model_instance_state.cc builds its ExecutorConfig without one) and moves KV cache over MPI inside "
            "one MPI world, whose size upstream gives as context tp×pp + generation tp×pp + 1 (tensorrtllm_backend "
            "disaggregated_serving README), while here each group is its own world: use runtime: llmapi with "
            "cacheTransceiverConfig.backend UCX or NIXL, or mode: tensor-parallel",
            # the engine groups now take two h200 nodes instead of one: the pool's 6 no longer hold them
            "disagg:deployments[1].prefill, disagg:deployments[1].decode, disagg:deployments[2].prefill, "
            "disagg:deployments[2].decode: at their largest (groups or maxGroups) the worker groups on pool 'h200' "
            "need 7 nodes, but its maxSize is 6: lower groups/maxGroups or raise the pool's maxSize (at most 450)",
        ],
    ),
    (
        "engine image of the 1.3 generation",
        images(tritonTrtllm="nvcr.io/nvidia/tensorrt-llm/release:1.3.0"),
        [
            "disagg:images.tritonTrtllm: 'nvcr.io/nvidia/tensorrt-llm/release:1.3.0' carries TensorRT-LLM 1.3.0, "
            "but runtime 'engine' needs 0.9 to 1.2 (TensorRT-LLM removed the TensorRT-engine backend "
            "(trtllm-build, Triton's inflight_batcher_llm) in 1.3): use runtime: llmapi for this deployment, or "
            "a tritonserver image carrying TensorRT-LLM <= 1.2 (e.g. "
            "nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3)"
        ],
    ),
    (
        "LLM API options on an engine deployment",
        lambda c: c.set(
            "deployments",
            [
                *c.section("deployments")[:2],
                {
                    **c.section("deployments")[2],
                    "workers": {**c.section("deployments")[2]["workers"], "llmApi": {"maxBatchSize": 8}},
                },
            ],
        ),
        [
            "disagg:deployments[2].workers.llmApi: LLM API options apply to runtime 'llmapi' only (engine "
            "settings live in disagg:engines): remove llmApi, or set runtime: llmapi"
        ],
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in DEV_CASES], ids=[c[0] for c in DEV_CASES])
def test_dev_llmapi_config_errors(dev_config, mutate, expected) -> None:
    mutate(dev_config)
    assert problems_of(dev_config) == expected


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in PROD_CASES], ids=[c[0] for c in PROD_CASES])
def test_prod_prefill_decode_config_errors(prod_config, mutate, expected) -> None:
    mutate(prod_config)
    assert problems_of(prod_config) == expected


def test_image_with_declared_version_is_accepted(dev_config) -> None:
    images(trtllm="registry.example.com/ml/trtllm:custom", trtllmVersion="1.2.0")(dev_config)
    assert load_stack_config(dev_config.raw).images.trtllm_version == "1.2.0"


def test_engine_image_from_the_triton_table_is_accepted(prod_config) -> None:
    images(tritonTrtllm="nvcr.io/nvidia/tritonserver:26.05-trtllm-python-py3")(prod_config)
    assert load_stack_config(prod_config.raw).images.triton_trtllm.startswith("nvcr.io/nvidia/tritonserver:26.05")


def test_dev_config_is_valid_and_uses_the_llm_api(dev_config) -> None:
    config = load_stack_config(dev_config.raw)
    assert config.runtimes() == {"llmapi"}
    assert config.used_models() == ["llama-8b"]
    assert config.engine_pools() == {}


def test_llmapi_autoscaling_needs_keda_or_a_metrics_adapter(dev_config) -> None:
    workers(lambda w: w.update(autoscaling={"enabled": True}))(dev_config)
    assert problems_of(dev_config) == [
        f"{D0}.workers.autoscaling.enabled: worker groups scale on trtllm-serve metrics, which need KEDA or a "
        "metrics adapter, but disagg:platform.keda.enabled and disagg:platform.metricsAdapter.enabled are "
        "false: enable KEDA (it queries the stack's Prometheus) or set autoscaling.enabled: false"
    ]


def test_llmapi_autoscaling_is_valid_with_keda(dev_config) -> None:
    workers(lambda w: w.update(autoscaling={"enabled": True}, minGroups=1, maxGroups=2))(dev_config)
    dev_config.set("platform", {"keda": {"enabled": True}})
    config = load_stack_config(dev_config.raw)
    assert config.metrics_autoscaling() and not config.platform.metrics_adapter.enabled
