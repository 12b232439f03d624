"""What each TensorRT-LLM release generation offers the project: the one capability table.

Every upstream interface the project relies on (request fields, metric names and the endpoint
that serves them, LLM API option keys, cache-transceiver backends and their environment,
endpoints, CLI flags) is a row here, per release generation, with the upstream file@commit or
PR that proves it (:data:`SOURCES`, one entry per field). Rendering (components), the router and
the stand-in all read this table; none re-types a fact.

It lives in ``runtime/`` because the serving processes are shipped alone (stdlib + aiohttp) and
must agree with the components on the protocol; everything else may import it, it imports nothing.

How the rows were proven (2026-12-02): the release branches (release/1.0, release/1.1,
release/1.2) and the tags v1.2.0 / v1.2.1 could NOT be read here (the repository snapshot is
over the size limit and the file index holds one, recent, version per file). A feature therefore
counts as present in a release only when the PR that added it was merged before that release's
branch left main (dates below); a feature merged around or after a branch point is treated as
absent there (the conservative value). ``1.3`` is main as read (1.3.0rc line): each ``1.3`` fact
is proven by the file@commit named in :data:`SOURCES`.

Branch points used: 1.2.0rc2 tagged 2025-11 (ai-dynamo/dynamo PR #4586 pins v1.2.0rc2),
1.2.0rc4 published 2025-12 (NVIDIA/TensorRT-LLM issue #9752), 1.2.0rc6 2026-01-02 (dynamo PR
#5138), 1.2.0rc8 on release/1.2 2026-01-12..15 (tensorrtllm_backend PR #837), 1.3.0rc1 on main
2026-01-27.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

GENERATIONS: tuple[str, ...] = ("1.0", "1.1", "1.2", "1.3")
"""Release generations (major.minor) the project accepts; ``1.3`` stands for 1.3 rc / main."""

TRANSCEIVER_BACKENDS = ("DEFAULT", "UCX", "NIXL", "MPI")
"""``cache_transceiver_config.backend`` values the project renders (every generation)."""

METRICS_ENDPOINT = "/prometheus/metrics"
"""Where ``trtllm-serve`` serves Prometheus text (plain ``/metrics`` is JSON iteration stats)."""
METRICS_OPTIONS = {"return_perf_metrics": True, "enable_iter_perf_stats": True}
"""LLM API options without which no ``trtllm_*`` gauge is exported: ``return_perf_metrics`` mounts
:data:`METRICS_ENDPOINT`, ``enable_iter_perf_stats`` feeds the iteration gauges."""
REQUEST_GAUGES = ("trtllm_num_requests_running", "trtllm_num_requests_waiting")
KV_CACHE_UTILIZATION_GAUGE = "trtllm_kv_cache_utilization"

KV_TRANSFER_TIMEOUT_DEFAULT_MS = 60000
"""``cache_transceiver_config.kv_transfer_timeout_ms`` default upstream since PR #12249."""

SERVE_FLAGS = ("--host", "--port", "--backend", "--extra_llm_api_options", "--trust_remote_code")
"""``trtllm-serve serve`` flags the project renders (tensorrt_llm/commands/serve.py)."""

# --- top-level request fields of /v1/completions and /v1/chat/completions ------------------------
# Upstream's ``CompletionRequest`` / ``ChatCompletionRequest`` (tensorrt_llm/serve/openai_protocol.py)
# derive from ``OpenAIBaseModel``, ``model_config = ConfigDict(extra="forbid", populate_by_name=True)``
# in every version read (NVIDIA/TensorRT-LLM @54cf7be08a35 and @319f5114a274, and the older copy
# k-l-lambda/TensorRT-LLM @89f95403b2e2): a field the release's model lacks is refused with 400
# ("<field>: Extra inputs are not permitted"). Which fields each release has, and why:
#
# | set                        | adds                              | read at (tensorrt_llm/serve/openai_protocol.py) |
# |----------------------------|-----------------------------------|--------------------------------------------------|
# | _COMPLETION/_CHAT_EARLY    | (the lists below)                 | k-l-lambda/TensorRT-LLM @89f95403b2e2, a copy    |
# |                            |                                   | older than 2025-05 (no chat prompt_token_ids, no |
# |                            |                                   | openai_harmony); all kept @54cf7be08a35 and      |
# |                            |                                   | @319f5114a274                                    |
# | _COMPLETION_SEP2025        | lora_request, detokenize          | NVIDIA/TensorRT-LLM @54cf7be08a35: after PR #7637|
# | _CHAT_SEP2025              | prompt_token_ids, reasoning_effort| (cached tokens, 2025-09-19), before PR #8127     |
# |                            | lora_request, cache_salt          | (prompt_ignore_length, 2025-10-21); kept @319f51 |
# | _COMPLETION/_CHAT_JAN2026  | prompt_ignore_length              | NVIDIA/TensorRT-LLM @319f5114a274 (has           |
# |                            |                                   | disagg_request_id, PR #10187, 2026-01-06)        |
#
# A release has a field when a version from before its branch point and one from after both have
# it (the versions read only ever add fields). 1.3 (main): @319f5114a274. 1.2: release/1.2 left main
# after PR #8127 (1.2.0rc4 carries promptIgnoreLength, PR #13633) and around PR #10187: @54cf7be08a35
# is before it, @319f5114a274 at or after it. 1.0 and 1.1: their branch points are not shown to
# follow @54cf7be08a35 (1.0 GA ~2025-09; 1.1.0rc5 existed by 2025-11, issue #9442; neither branch
# was read), so they get the early sets, older than both. Conservative consequences:
# ``prompt_ignore_length`` is refused by 1.2 (PR #8127 added the sampling option before release/1.2,
# but no file read shows the OpenAI field there); chat ``prompt_token_ids`` is refused by 1.0 and 1.1
# (likely PR #4492, 2025-05-23, "Remove duplicate tokenization in generation server", not shown in a
# file read), so the frontend's chat requests (always token ids) are unproven on 1.0 / 1.1.

_COMPLETION_EARLY: tuple[str, ...] = (
    "model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
    "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix", "temperature", "top_p", "user",
    "use_beam_search", "top_k", "top_p_min", "min_p", "repetition_penalty", "length_penalty", "early_stopping",
    "stop_token_ids", "include_stop_str_in_output", "ignore_eos", "min_tokens", "skip_special_tokens",
    "spaces_between_special_tokens", "truncate_prompt_tokens", "return_context_logits", "add_special_tokens",
    "response_format", "disaggregated_params",
)
_COMPLETION_SEP2025 = _COMPLETION_EARLY + ("lora_request", "detokenize")
_COMPLETION_JAN2026 = _COMPLETION_SEP2025 + ("prompt_ignore_length",)

_CHAT_EARLY: tuple[str, ...] = (
    "messages", "model", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_completion_tokens",
    "n", "presence_penalty", "response_format", "seed", "stop", "stream", "stream_options", "temperature",
    "top_p", "tools", "tool_choice", "user", "best_of", "use_beam_search", "top_k", "top_p_min", "min_p",
    "repetition_penalty", "length_penalty", "early_stopping", "stop_token_ids", "include_stop_str_in_output",
    "ignore_eos", "min_tokens", "skip_special_tokens", "spaces_between_special_tokens", "truncate_prompt_tokens",
    "echo", "add_generation_prompt", "add_special_tokens", "documents", "chat_template", "chat_template_kwargs",
    "disaggregated_params",
)
_CHAT_SEP2025 = _CHAT_EARLY + ("prompt_token_ids", "reasoning_effort", "lora_request", "cache_salt")
_CHAT_JAN2026 = _CHAT_SEP2025 + ("prompt_ignore_length",)

CHAT_FIELD_ALIASES = {"max_tokens": "max_completion_tokens"}
"""``ChatCompletionRequest.max_completion_tokens`` has ``validation_alias='max_tokens'`` (every version
read); with ``populate_by_name`` either key is accepted, and when both are sent pydantic refuses
``max_completion_tokens`` as an extra input."""


@dataclass(frozen=True)
class Capabilities:
    generation: str
    disagg_request_id: bool
    """``DisaggregatedParams.disagg_request_id`` accepted (``extra="forbid"`` refuses it otherwise)."""
    kv_transfer_timeout_ms: bool
    """``cache_transceiver_config.kv_transfer_timeout_ms``: context KV released after a timeout."""
    request_gauges: bool
    """``trtllm_num_requests_running`` / ``trtllm_num_requests_waiting`` on ``/prometheus/metrics``."""
    kv_cache_utilization_gauge: bool
    """``trtllm_kv_cache_utilization`` on ``/prometheus/metrics``."""
    kv_cache_events: bool
    """``POST /kv_cache_events`` (the route is POST on every version seen: it pops the events it returns)
    with ``kv_cache_config.event_buffer_max_size``."""
    prometheus_endpoint: bool = False
    """``/prometheus/metrics`` mounted when ``return_perf_metrics: true`` (latency histograms)."""
    kv_transfer_timeout_default_ms: int | None = None
    """Upstream's default of ``kv_transfer_timeout_ms`` (None: no timeout, context KV held until pulled)."""
    transceiver_backends: tuple[str, ...] = TRANSCEIVER_BACKENDS
    """``cache_transceiver_config.backend`` values accepted."""
    nixl_backends: tuple[str, ...] = ("UCX",)
    """NIXL transports ``TRTLLM_NIXL_KVCACHE_BACKEND`` selects (UCX only: the variable is absent)."""
    nixl_plugins_dir_env: bool = False
    """``NIXL_PLUGINS_DIR`` names where NIXL loads its backend plugins (LIBFABRIC from a custom image)."""
    served_model_name_flag: bool = False
    """``trtllm-serve --served_model_name`` (the project names the model in its own frontend instead)."""
    serve_flags: tuple[str, ...] = SERVE_FLAGS
    """The ``trtllm-serve serve`` flags the project renders, all accepted."""
    completion_fields: tuple[str, ...] = _COMPLETION_EARLY
    """Top-level ``/v1/completions`` request fields (``CompletionRequest``, ``extra="forbid"``)."""
    chat_fields: tuple[str, ...] = _CHAT_EARLY
    """Top-level ``/v1/chat/completions`` request fields (``ChatCompletionRequest``, ``extra="forbid"``;
    ``max_tokens`` is accepted as the alias of ``max_completion_tokens``, :data:`CHAT_FIELD_ALIASES`)."""

    def request_fields(self, chat: bool) -> tuple[str, ...]:
        """The top-level fields of the completions (or chat) request model of this generation."""
        return self.chat_fields if chat else self.completion_fields

    def worker_metrics(self) -> tuple[str, ...]:
        """The ``trtllm_*`` gauges a leader exports with :data:`METRICS_OPTIONS` on this generation."""
        names: tuple[str, ...] = REQUEST_GAUGES if self.request_gauges else ()
        return names + ((KV_CACHE_UTILIZATION_GAUGE,) if self.kv_cache_utilization_gauge else ())

    def row(self, field: str) -> str:
        """``<generation>.<field>`` and its source: what a refusal cites."""
        return f"runtime/capabilities.py row {self.generation}.{field} ({SOURCES[field][self.generation]})"


_UNREAD = "release branch not read here; "
_EARLY_FIELDS = ("k-l-lambda/TensorRT-LLM tensorrt_llm/serve/openai_protocol.py @89f95403b2e2 (older than "
                 "2025-05), kept in NVIDIA/TensorRT-LLM @54cf7be08a35 and @319f5114a274")

SOURCES: dict[str, dict[str, str]] = {
    "disagg_request_id": {
        "1.0": "absent: added by PR #10187, merged 2026-01-06",
        "1.1": "absent: added by PR #10187, merged 2026-01-06",
        "1.2": _UNREAD + "PR #10187 merged 2026-01-06, at the release/1.2 branch point (1.2.0rc6 2026-01-02, "
        "rc8 2026-01-12): treated absent",
        "1.3": "tensorrt_llm/disaggregated_params.py @01009a33a704 (disagg_request_id: Optional[int])",
    },
    "kv_transfer_timeout_ms": {
        "1.0": _UNREAD + "the option's first PR (#6801, 2025-08) was closed unmerged: treated absent",
        "1.1": _UNREAD + "treated absent",
        "1.2": _UNREAD + "a 1.1/1.2-era llm_args.py copy has it (default None) but no release file was read: "
        "treated absent",
        "1.3": "tensorrt_llm/llmapi/llm_args.py @fcd3f3168280 CacheTransceiverConfig.kv_transfer_timeout_ms; "
        "default 60000 ms since PR #12249 (2026-03)",
    },
    "kv_transfer_timeout_default_ms": {
        "1.0": "no default (PR #12249 came 2026-03)",
        "1.1": "no default (PR #12249 came 2026-03)",
        "1.2": "no default (PR #12249 came 2026-03, after release/1.2)",
        "1.3": "PR #12249 'BREAKING: Setting default value of KV cache transfer timeout to 60s' (2026-03-16)",
    },
    "request_gauges": {
        "1.0": "absent: PR #12545 (2026-03-25)",
        "1.1": "absent: PR #12545 (2026-03-25)",
        "1.2": "absent: PR #12545 merged ~2026-03-25, after release/1.2 split",
        "1.3": "PR #12545; tensorrt_llm/metrics/collector.py @050f80def8df",
    },
    "kv_cache_utilization_gauge": {
        "1.0": "absent: PR #11243 (2026-02)",
        "1.1": "absent: PR #11243 (2026-02)",
        "1.2": "absent: PR #11243 opened 2026-02-03, after release/1.2 split",
        "1.3": "PR #11243; tensorrt_llm/metrics/collector.py @050f80def8df",
    },
    "kv_cache_events": {
        "1.0": _UNREAD + "treated absent",
        "1.1": _UNREAD + "treated absent",
        "1.2": _UNREAD + "treated absent",
        "1.3": "tensorrt_llm/serve/openai_server.py @e7f7345e31e5 (POST /kv_cache_events); "
        "kv_cache_config.event_buffer_max_size in tensorrt_llm/llmapi/llm_args.py @fcd3f3168280",
    },
    "prometheus_endpoint": {
        "1.0": _UNREAD + "PR #5785 (2025-07) mounted it on main: treated absent",
        "1.1": _UNREAD + "treated absent",
        "1.2": _UNREAD + "treated absent",
        "1.3": "tensorrt_llm/serve/openai_server.py @00057725d9a6 (mount_metrics at /prometheus/metrics with "
        "return_perf_metrics)",
    },
    "transceiver_backends": {
        g: "PR #5234 (2025-06, cacheTransceiverConfig.backend); docs/source/features/disagg-serving.md "
        "@0434b982fa38: DEFAULT | UCX | NIXL | MPI"
        for g in GENERATIONS
    },
    "nixl_backends": {
        "1.0": "UCX only: TRTLLM_NIXL_KVCACHE_BACKEND came with PR #9075 (2025-11)",
        "1.1": "UCX only: TRTLLM_NIXL_KVCACHE_BACKEND came with PR #9075 (2025-11)",
        "1.2": "PRs #9075 (TRTLLM_NIXL_KVCACHE_BACKEND) and #9225 (LIBFABRIC), merged 2025-11 before 1.2.0rc4 "
        "(issue #9752: 1.2.0rc4 carries NIXL LIBFABRIC support); unknown names fall back to UCX, a missing "
        "plugin throws 'Failed to create NIXL backend'",
        "1.3": "cpp/tensorrt_llm/executor/cache_transmission/nixl_utils/transferAgent.cpp (PR #9225); "
        "docs/source/features/disagg-serving.md @0434b982fa38",
    },
    "nixl_plugins_dir_env": {
        "1.0": "not needed (UCX only)",
        "1.1": "not needed (UCX only)",
        "1.2": "NIXL's own loader (NIXL_PLUGINS_DIR); disagg-serving.md @0434b982fa38: the release container "
        "lacks the LIBFABRIC plugin",
        "1.3": "docs/source/features/disagg-serving.md @0434b982fa38",
    },
    "served_model_name_flag": {
        g: "not rendered: the project's frontend serves the deployment's name (served_model_name) and the "
        "router speaks to trtllm-serve by URL"
        for g in GENERATIONS
    },
    "serve_flags": {
        g: "tensorrt_llm/commands/serve.py @00209af149e7: --host --port --backend --extra_llm_api_options "
        "(alias of --config on main) --trust_remote_code; all present since 0.x"
        for g in GENERATIONS
    },
    "completion_fields": {
        "1.0": _EARLY_FIELDS + "; lora_request, detokenize (first read @54cf7be08a35, 2025-09/10) treated absent",
        "1.1": _EARLY_FIELDS + "; lora_request, detokenize (first read @54cf7be08a35, 2025-09/10) treated absent",
        "1.2": "CompletionRequest @54cf7be08a35 (2025-09/10, before release/1.2), kept @319f5114a274; "
        "prompt_ignore_length (first read @319f5114a274) treated absent",
        "1.3": "CompletionRequest @319f5114a274 (2026-01, main)",
    },
    "chat_fields": {
        "1.0": _EARLY_FIELDS + "; prompt_token_ids, reasoning_effort, lora_request, cache_salt (first read "
        "@54cf7be08a35) treated absent",
        "1.1": _EARLY_FIELDS + "; prompt_token_ids, reasoning_effort, lora_request, cache_salt (first read "
        "@54cf7be08a35) treated absent",
        "1.2": "ChatCompletionRequest @54cf7be08a35 (2025-09/10, before release/1.2), kept @319f5114a274; "
        "prompt_ignore_length (first read @319f5114a274) treated absent",
        "1.3": "ChatCompletionRequest @319f5114a274 (2026-01, main)",
    },
}
"""Field -> generation -> the proof (or why the conservative value was taken)."""


_TABLE: dict[str, Capabilities] = {
    "1.0": Capabilities(
        generation="1.0", disagg_request_id=False, kv_transfer_timeout_ms=False, request_gauges=False,
        kv_cache_utilization_gauge=False, kv_cache_events=False,
    ),
    "1.1": Capabilities(
        generation="1.1", disagg_request_id=False, kv_transfer_timeout_ms=False, request_gauges=False,
        kv_cache_utilization_gauge=False, kv_cache_events=False,
    ),
    "1.2": Capabilities(
        generation="1.2", disagg_request_id=False, kv_transfer_timeout_ms=False, request_gauges=False,
        kv_cache_utilization_gauge=False, kv_cache_events=False,
        nixl_backends=("UCX", "LIBFABRIC"), nixl_plugins_dir_env=True,
        completion_fields=_COMPLETION_SEP2025, chat_fields=_CHAT_SEP2025,
    ),
    "1.3": Capabilities(
        generation="1.3", disagg_request_id=True, kv_transfer_timeout_ms=True, request_gauges=True,
        kv_cache_utilization_gauge=True, kv_cache_events=True, prometheus_endpoint=True,
        kv_transfer_timeout_default_ms=KV_TRANSFER_TIMEOUT_DEFAULT_MS,
        nixl_backends=("UCX", "LIBFABRIC"), nixl_plugins_dir_env=True,
        completion_fields=_COMPLETION_JAN2026, chat_fields=_CHAT_JAN2026,
    ),
}

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?(?:rc\d+)?(?:\.post\d+)?(?:\.dev\w*)?$")


def capabilities(generation: str) -> Capabilities:
    """The row of a release generation (``"1.2"``), ValueError naming the accepted ones otherwise."""
    try:
        return _TABLE[generation]
    except KeyError:
        raise ValueError(
            f"TensorRT-LLM generation {generation!r} is not in the capability table; accepted: "
            f"{', '.join(GENERATIONS)}"
        ) from None


def generation_of(version: str) -> str:
    """The generation of a TensorRT-LLM version (``'1.2.1'`` -> ``'1.2'``, ``'1.3.0rc24'`` -> ``'1.3'``).

    ValueError when the version is not one or its generation is not in the table."""
    match = _VERSION.match(version.strip())
    if match is None:
        raise ValueError(f"{version!r} is not a TensorRT-LLM version (e.g. '1.2.1')")
    generation = f"{int(match.group(1))}.{int(match.group(2))}"
    capabilities(generation)
    return generation


def _check_sources() -> None:
    """Every field but ``generation`` has a source for every generation (import-time guard)."""
    for f in fields(Capabilities):
        if f.name != "generation" and set(SOURCES.get(f.name, {})) != set(GENERATIONS):
            raise AssertionError(f"capabilities: SOURCES[{f.name!r}] must name every generation")


_check_sources()
