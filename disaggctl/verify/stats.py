"""Percentiles and summaries of latency samples (pure functions, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)
"""Percentiles every report carries, as ``p50``/``p90``/``p95``/``p99`` (the SLO percentiles)."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linearly interpolated between ranks.

    Same definition as numpy's default (``method="linear"``): rank ``(n - 1) * q / 100`` of the
    sorted values, interpolated between its two neighbours. Raises ``ValueError`` on an empty
    sequence, a NaN sample, or ``q`` outside [0, 100].
    """
    if not 0 <= q <= 100 or math.isnan(q):
        raise ValueError(f"percentile q={q} is outside [0, 100]")
    if not values:
        raise ValueError("percentile of no values: at least one sample is needed")
    ordered = sorted(float(v) for v in values)
    if any(math.isnan(v) for v in ordered):
        raise ValueError("percentile of values containing NaN")
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    frac = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * frac


def summarize(values: Sequence[float], digits: int = 6) -> dict[str, float | int | None]:
    """``count``, ``min``, ``mean``, ``p50``, ``p90``, ``p99``, ``max`` of ``values``, rounded.

    With no values, ``count`` is 0 and every statistic is ``None`` (JSON ``null``), so a report
    never invents a figure it did not measure.
    """
    out: dict[str, float | int | None] = {"count": len(values)}
    if not values:
        out.update({"min": None, "mean": None, **{f"p{p}": None for p in PERCENTILES}, "max": None})
        return out
    out["min"] = round(min(values), digits)
    out["mean"] = round(sum(values) / len(values), digits)
    for p in PERCENTILES:
        out[f"p{p}"] = round(percentile(values, p), digits)
    out["max"] = round(max(values), digits)
    return out
