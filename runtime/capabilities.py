"""What each TensorRT-LLM release generation offers the project: the one capability table.

Every upstream interface the project relies on (request fields, metric names and the endpoint
that serves them, LLM API option keys, cache-transceiver backends, endpoints) is a row here, per
release generation, with the upstream file@tag/commit that proves it. Rendering (components),
the router and the stand-in all read this table; none re-types a fact.

It lives in ``runtime/`` because the serving processes are shipped alone (stdlib + aiohttp) and
must agree with the components on the protocol; everything else may import it, it imports nothing.

Where a release's source could not be read, the row says so and takes the conservative value
(the feature is treated as absent).

SKELETON (2026-12-02): the rows below are placeholders pending the research of issue 20; every
value is conservative until a source column proves otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

GENERATIONS: tuple[str, ...] = ("1.0", "1.1", "1.2", "1.3")
"""Release generations (major.minor) the project accepts; ``1.3`` stands for 1.3 rc / main."""


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
    """``GET /kv_cache_events`` with ``kv_cache_config.event_buffer_max_size``."""


_TABLE: dict[str, Capabilities] = {
    g: Capabilities(
        generation=g,
        disagg_request_id=g == "1.3",
        kv_transfer_timeout_ms=g == "1.3",
        request_gauges=g == "1.3",
        kv_cache_utilization_gauge=g == "1.3",
        kv_cache_events=g == "1.3",
    )
    for g in GENERATIONS
}


def capabilities(generation: str) -> Capabilities:
    """The row of a release generation (``"1.2"``), ValueError naming the accepted ones otherwise."""
    try:
        return _TABLE[generation]
    except KeyError:
        raise ValueError(
            f"TensorRT-LLM generation {generation!r} is not in the capability table; accepted: "
            f"{', '.join(GENERATIONS)}"
        ) from None
