"""Malformed stack configurations of the engine runtime: each fails before any resource, with
exact messages (the dev stack moved to runtime 'engine' by the ``engine_config`` fixture; the
llmapi runtime's cases are in test_llmapi_config_errors.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.config import ConfigError, load_stack_config

D0 = "disagg:deployments[0]"


def problems_of(config: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stack_config(config.raw)
    return caught.value.problems


def edit(section: str, change: Callable[[Any], None]) -> Callable[[Any], None]:
    """A mutation of one config section of the dev stack."""

    def apply(config: Any) -> None:
        value = config.section(section)
        change(value)
        config.set(section, value)

    return apply


def workers(change: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
    return edit("deployments", lambda d: change(d[0]["workers"]))


def engine(change: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
    return edit("engines", lambda e: change(e["llama-8b-tp4"]))


def set_key(mapping: dict[str, Any], key: str, value: Any) -> None:
    mapping[key] = value


CASES: list[tuple[str, Callable[[Any], None], list[str]]] = [
    (
        "misspelled top-level key",
        lambda c: c.set("clustr", {"name": "x"}),
        ["disagg:clustr: unknown key 'clustr': did you mean 'cluster'?"],
    ),
    (
        "unknown nested key",
        edit("deployments", lambda d: set_key(d[0]["frontend"], "minReplica", 2)),
        [f"{D0}.frontend.minReplica: unknown key 'minReplica': did you mean 'minReplicas'?"],
    ),
    (
        "wrong type",
        engine(lambda e: set_key(e, "tpSize", "four")),
        [
            "disagg:engines.llama-8b-tp4.tpSize: Input should be a valid integer, unable to parse "
            'string as an integer (got "four"): fix the value'
        ],
    ),
    (
        "cluster section missing",
        lambda c: c.raw.pop("disagg:cluster"),
        ["disagg:cluster: required but missing: add it"],
    ),
    (
        "tp x pp does not match the worker group's GPUs",
        engine(lambda e: set_key(e, "tpSize", 8)),
        [
            f"{D0}.workers: engine 'llama-8b-tp4' needs tpSize × ppSize = 8 × 1 = 8 GPUs, but the "
            "group gets podsPerGroup 1 × gpusPerPod 4 = 4: set podsPerGroup: 2, or change the "
            "engine's tpSize/ppSize"
        ],
    ),
    (
        "more GPUs per pod than the instance type has",
        workers(lambda w: set_key(w, "gpusPerPod", 16)),
        [
            f"{D0}.workers.gpusPerPod: 16 GPUs per pod asked, but p4d.24xlarge nodes have 8: "
            "lower gpusPerPod and raise podsPerGroup, or use a larger instance type",
            f"{D0}.workers: engine 'llama-8b-tp4' needs tpSize × ppSize = 4 × 1 = 4 GPUs, but the "
            "group gets podsPerGroup 1 × gpusPerPod 16 = 16: set gpusPerPod to a divisor of 4, "
            "or change the engine's tpSize/ppSize",
        ],
    ),
    (
        "worker group names an unknown engine",
        workers(lambda w: set_key(w, "engine", "llama-70b")),
        [
            "disagg:engines.llama-8b-tp4: no deployment uses this engine, so there is no GPU pool "
            "to build it on: reference it from a worker group or remove it",
            f"{D0}.workers.engine: no engine 'llama-70b' in disagg:engines (known: llama-8b-tp4): "
            "add it there or fix the name",
        ],
    ),
    (
        "worker group names an unknown pool",
        workers(lambda w: set_key(w, "pool", "h100")),
        [
            f"{D0}.workers.pool: no GPU node pool 'h100' in disagg:cluster (known: a100): add the "
            "pool or fix the name"
        ],
    ),
    (
        "multi-node group without an RDMA fabric",
        lambda c: (
            edit("cluster", lambda k: set_key(k["eks"]["gpuNodePools"][0], "efa", False))(c),
            workers(lambda w: w.update(podsPerGroup=2, gpusPerPod=2))(c),
        ),
        [
            f"{D0}.workers.podsPerGroup: 2 pods per group span nodes, but pool 'a100' has no RDMA "
            "fabric (EFA/InfiniBand/RoCE): use an EFA-capable instance type with efa enabled, or "
            "keep the group on one node"
        ],
    ),
    (
        "Triton batch size above the engine's",
        edit("deployments", lambda d: set_key(d[0]["orchestrator"], "maxBatchSize", 128)),
        [
            f"{D0}.orchestrator.maxBatchSize: 128 exceeds the engine's maxBatchSize 64: lower it "
            "or rebuild the engine with a larger maxBatchSize"
        ],
    ),
    (
        "default output length beyond the engine's sequence length",
        edit("deployments", lambda d: set_key(d[0]["orchestrator"], "defaultMaxTokens", 8192)),
        [
            f"{D0}.orchestrator.defaultMaxTokens: 8192 output tokens cannot fit the engine's "
            "maxSeqLen 8192: lower it"
        ],
    ),
    (
        "duplicate deployment names",
        edit("deployments", lambda d: d.append(dict(d[0]))),
        [
            "disagg:deployments[1].name: deployment name 'llama-8b' is used twice: give each "
            "deployment its own name"
        ],
    ),
    (
        "prefill-decode mode without its groups",
        edit("deployments", lambda d: set_key(d[0], "mode", "prefill-decode")),
        [
            f"{D0}: mode 'prefill-decode' needs both 'prefill' and 'decode' sections: add them",
        ],
    ),
    (
        "frontend replica bounds inverted",
        edit("deployments", lambda d: d[0]["frontend"].update(minReplicas=4, maxReplicas=2)),
        [
            f"{D0}.frontend: minReplicas (4) is larger than maxReplicas (2): raise maxReplicas or "
            "lower minReplicas"
        ],
    ),
    (
        "worker groups outside their bounds",
        workers(lambda w: w.update(groups=3, maxGroups=2)),
        [
            f"{D0}.workers: groups (3) must lie between minGroups (3) and maxGroups (2): adjust "
            "groups or the bounds"
        ],
    ),
    (
        "worker autoscaling without KEDA or a metrics adapter",
        workers(lambda w: set_key(w, "autoscaling", {"enabled": True})),
        [
            f"{D0}.workers.autoscaling.enabled: worker groups scale on Triton metrics, which need KEDA or a "
            "metrics adapter, but disagg:platform.keda.enabled and disagg:platform.metricsAdapter.enabled are "
            "false: enable KEDA (it queries the stack's Prometheus) or set autoscaling.enabled: false"
        ],
    ),
    (
        "deployment name not a DNS label",
        edit("deployments", lambda d: set_key(d[0], "name", "Llama_8B")),
        [
            f"{D0}.name: name 'Llama_8B' must be lowercase letters, digits and '-', start and end "
            "with a letter or digit, at most 40 characters (it names Kubernetes objects): rename it"
        ],
    ),
    (
        "namespace not a DNS label",
        lambda c: c.set("namespace", "LLM.dev"),
        [
            "disagg:namespace: namespace 'LLM.dev' must be lowercase letters, digits and '-', start "
            "and end with a letter or digit, at most 63 characters (it names Kubernetes objects): "
            "rename it"
        ],
    ),
    (
        "unpinned image",
        lambda c: c.set("images", {"frontend": "nvcr.io/nvidia/tritonserver:latest"}),
        [
            "disagg:images.frontend: tag 'latest' of 'nvcr.io/nvidia/tritonserver:latest' moves (a branch or "
            "channel, not a release): pin a release tag or @sha256 digest, or set "
            "disagg:platform.security.allowMutableImageTags: true"
        ],
    ),
    (
        "engine input length not below its sequence length",
        engine(lambda e: set_key(e, "maxInputLen", 8192)),
        [
            "disagg:engines.llama-8b-tp4: maxInputLen (8192) must be smaller than maxSeqLen (8192): "
            "raise maxSeqLen or lower maxInputLen"
        ],
    ),
    (
        "engine dtype outside the supported set",
        engine(lambda e: set_key(e, "dtype", "fp32")),
        [
            "disagg:engines.llama-8b-tp4.dtype: Input should be 'float16' or 'bfloat16' "
            '(got "fp32"): fix the value'
        ],
    ),
]


CASES.append(
    (
        "gated model without a Hugging Face token secret",
        lambda c: c.set("hfTokenSecret", "null"),
        [
            "disagg:hfTokenSecret: engine 'llama-8b-tp4' downloads 'meta-llama/Llama-3.1-8B-Instruct', "
            "a gated model, but hfTokenSecret is null: name the Secret holding HF_TOKEN"
        ],
    )
)


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_config_is_rejected_with_exact_messages(engine_config, mutate, expected) -> None:
    mutate(engine_config)
    assert problems_of(engine_config) == expected


def test_every_problem_is_reported_at_once(engine_config) -> None:
    CASES[0][1](engine_config)
    CASES[4][1](engine_config)
    CASES[9][1](engine_config)
    problems = problems_of(engine_config)
    assert problems == CASES[0][2] + CASES[4][2] + CASES[9][2]


def test_error_text_lists_each_problem_on_its_own_line(engine_config) -> None:
    workers(lambda w: set_key(w, "pool", "h100"))(engine_config)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(engine_config.raw)
    text = str(caught.value)
    assert text.splitlines()[0] == "invalid stack configuration (1 problem):"
    assert text.splitlines()[1].startswith(f"  - {D0}.workers.pool: no GPU node pool 'h100'")


def test_engine_variant_of_dev_is_valid(engine_config) -> None:
    config = load_stack_config(engine_config.raw)
    assert config.cluster.provider == "eks"
    assert config.engines["llama-8b-tp4"].world_size == 4
    assert config.engine_pools() == {"llama-8b-tp4": "a100"}
    assert config.used_models() == []
    assert config.fabric() == "efa"
